"""Does the modular-arithmetic training recipe converge beyond the case it was tuned on?

    python benchmarks/training_convergence.py --primes 41,53 --seeds 0:0,1:1 \\
        --output benchmarks/results/training_convergence.tsv     # prints a Markdown table

Trains the recipe of the config's ``modarith`` experiment (``config/config.yaml``, resolved and
completed with defaults by :class:`losskernel.plan.Plan`) once per prime p and
``init_seed:split_seed`` pair, with every other setting as configured, exactly as the workflow's
``train_model`` step does (:func:`losskernel.pipeline.models.train_model`), one training at a
time on ``--threads`` torch threads.

Outputs: the table (``--output``, TSV with a provenance header, read with ``comment="#"``) with
one row per training, rewritten after each one, and every training's history (one row per
evaluation) in ``<output stem>-history.tsv``. With ``--append`` the cases already in the
table are kept, not retrained (so several invocations, e.g. more seeds for one prime, make one
table; its provenance header is the last invocation's). ``converged`` is the stopping rule of
:func:`losskernel.training.train_adamw` replayed on the history: the task's ``is_converged``
held at every evaluation of the last ``patience_steps`` steps; ``first_target_step`` is the
first evaluation at which it held at all (empty when never).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from losskernel.config import load_config  # noqa: E402
from losskernel.plan import Plan  # noqa: E402
from losskernel.provenance import collect_provenance, write_tsv  # noqa: E402
from losskernel.tasks import load_task  # noqa: E402

TASK = "modular_arithmetic"
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
COLUMNS = ("modulus", "init_seed", "split_seed", "converged", "steps", "first_target_step",
           "final_train_accuracy")
"""The table's leading columns; ``final_test_accuracy_<task>`` (one per operation) and
``wall_seconds`` follow."""


def recipe_settings(config_paths: Sequence[str | Path], experiment: str = "modarith",
                    ) -> dict[str, Any]:
    """The experiment's resolved settings (variants, defaults, checks) from the config files."""
    plan = Plan.from_config(load_config(config_paths), SCHEMA, check_files=False)
    settings = plan.experiment(experiment).settings
    if settings["task"] != TASK:
        raise ValueError(f"experiment {experiment} has task {settings['task']!r}; this benchmark "
                         f"trains {TASK!r} experiments only")
    return copy.deepcopy(dict(settings))


def variant_settings(settings: Mapping[str, Any], modulus: int, init_seed: int, split_seed: int,
                     max_steps: int | None = None) -> dict[str, Any]:
    """``settings`` with p, the two seeds and (when given) ``training.max_steps`` replaced."""
    variant = copy.deepcopy(dict(settings))
    variant["data"]["modulus"], variant["data"]["split_seed"] = modulus, split_seed
    variant["model"]["init_seed"] = init_seed
    if max_steps is not None:
        variant["training"]["max_steps"] = max_steps
    return variant


def stopping_rule_held(history: pd.DataFrame, training: Mapping[str, Any],
                       ) -> tuple[bool, int | None]:
    """``(converged, first_target_step)`` from a training history.

    ``converged``: the task's ``is_converged`` held at every evaluation from some step s to the
    last one, with ``last step - s >= patience_steps`` (the rule that stops ``train_adamw``).
    ``first_target_step``: the first evaluation at which it held, or None.
    """
    task = load_task(TASK)
    met = [bool(task.is_converged(row, training))
           for row in history.drop(columns=["step", "train_loss"]).to_dict("records")]
    steps = history["step"].tolist()
    first = next((int(step) for step, ok in zip(steps, met, strict=True) if ok), None)
    since = None
    for step, ok in zip(steps, met, strict=True):
        since = (step if since is None else since) if ok else None
    return since is not None and steps[-1] - since >= training["patience_steps"], first


def train_recipe(settings: Mapping[str, Any]) -> tuple[pd.DataFrame, int, float]:
    """Train as ``train_model`` does (progress off): ``(history, final_step, wall seconds)``."""
    from losskernel.method.losses import cross_entropy_per_sample_float64
    from losskernel.training import train_adamw, training_config_from_settings

    start = time.perf_counter()
    module, training = load_task(TASK), settings["training"]
    data = module.make_data(settings["data"])
    train_data, _ = module.training_split(data)
    result = train_adamw(
        module.build_model(settings["model"], data), cross_entropy_per_sample_float64,
        train_data,
        training_config_from_settings(training),
        evaluate=lambda model: module.evaluate(model, data),
        is_converged=lambda metrics: module.is_converged(metrics, training), progress=False,
        monitor=module.monitor_set(data), device=training["device"],
    )
    return result.history, result.final_step, time.perf_counter() - start


def summarize(history: pd.DataFrame, final_step: int, settings: Mapping[str, Any],
              seconds: float) -> dict[str, Any]:
    """One row of the table for one training."""
    training = settings["training"]
    converged, first = stopping_rule_held(history, training)
    if final_step < training["max_steps"] and not converged:
        raise AssertionError(f"training stopped early at step {final_step} but its history does "
                             f"not meet the stopping rule: the replay disagrees with train_adamw")
    last = history.iloc[-1]
    tests = {f"final_{key}": float(last[key]) for key in history.columns
             if key.startswith("test_accuracy_")}
    return {"modulus": settings["data"]["modulus"], "init_seed": settings["model"]["init_seed"],
            "split_seed": settings["data"]["split_seed"], "converged": converged,
            "steps": final_step, "first_target_step": first,
            "final_train_accuracy": float(last["train_accuracy"]), **tests,
            "wall_seconds": seconds}


def to_markdown(table: pd.DataFrame) -> str:
    """The table as Markdown (accuracies to 4 decimals, seconds to 1)."""
    def cell(column: str, value: Any) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
            return "–"
        if column == "wall_seconds":
            return f"{value:.1f}"
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value)

    lines = ["| " + " | ".join(table.columns) + " |",
             "|" + "|".join("---:" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(cell(column, row[column]) for column in table.columns) + " |"
              for _, row in table.iterrows()]
    return "\n".join(lines) + "\n"


def history_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}-history.tsv")


def parse_seeds(text: str) -> list[tuple[int, int]]:
    """``"0:0,1:1"`` -> ``[(0, 0), (1, 1)]`` (init_seed:split_seed)."""
    pairs = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
            raise argparse.ArgumentTypeError(
                f"--seeds takes init_seed:split_seed pairs separated by commas, e.g. 0:0,1:1; "
                f"got {item!r}")
        pairs.append((int(parts[0]), int(parts[1])))
    return pairs


def parse_primes(text: str) -> list[int]:
    try:
        return [int(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--primes takes primes separated by commas, e.g. "
                                         f"41,53; got {text!r}") from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--primes", type=parse_primes, default=[53],
                        help="moduli p, comma-separated (default: 53)")
    parser.add_argument("--seeds", type=parse_seeds, default=[(0, 0)],
                        help="init_seed:split_seed pairs, comma-separated (default: 0:0)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="override training.max_steps (default: the config's)")
    parser.add_argument("--output", type=Path,
                        default=ROOT / "benchmarks/results/training_convergence.tsv")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--config", nargs="+", default=[ROOT / "config/config.yaml"],
                        help="config files, merged in order (default: config/config.yaml)")
    parser.add_argument("--experiment", default="modarith", help="whose recipe (default: modarith)")
    parser.add_argument("--append", action="store_true",
                        help="keep the cases already in --output and train only the others")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """Train every (p, seeds) case in turn; write the table and histories after each one."""
    import torch

    args = parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    recipe = recipe_settings(args.config, args.experiment)
    rows, histories = [], []
    if args.append and args.output.exists():
        rows = pd.read_csv(args.output, sep="\t", comment="#").to_dict("records")
        histories = [pd.read_csv(history_path(args.output), sep="\t", comment="#")]
    done = {(row["modulus"], row["init_seed"], row["split_seed"]) for row in rows}
    table = pd.DataFrame(rows)
    for modulus in args.primes:
        for init_seed, split_seed in args.seeds:
            if (modulus, init_seed, split_seed) in done:
                continue
            settings = variant_settings(recipe, modulus, init_seed, split_seed, args.max_steps)
            history, final_step, seconds = train_recipe(settings)
            rows.append(summarize(history, final_step, settings, seconds))
            histories.append(history.assign(modulus=modulus, init_seed=init_seed,
                                            split_seed=split_seed))
            print(f"p={modulus} seeds={init_seed}:{split_seed}: converged={rows[-1]['converged']} "
                  f"steps={final_step} in {seconds:.0f} s", file=sys.stderr, flush=True)
            record = collect_provenance(
                {"recipe": recipe, "primes": args.primes, "seeds": args.seeds,
                 "max_steps": args.max_steps, "threads": args.threads},
                rule="benchmarks/training_convergence.py", workdir=ROOT)
            table = pd.DataFrame(rows).astype({"first_target_step": "Int64"})
            write_tsv(table, args.output, record)
            write_tsv(pd.concat(histories, ignore_index=True), history_path(args.output), record)
    print(to_markdown(table))
    return table


if __name__ == "__main__":
    main()
