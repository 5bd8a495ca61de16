"""The gates of an experiment's results: what must hold before its numbers reach the paper.

Each check gives rows of ``CHECK_COLUMNS``: the experiment, the check, what it was applied to
(a metric, a seed, a run or the model), the value, the bound, whether it passed, and the reason
in words with the config key that moves the bound. :func:`failures` turns the failed rows into
one message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import pandas as pd

from losskernel.readings.summary import combined_z

CHECK_COLUMNS = ("experiment", "check", "subject", "value", "bound", "passed", "reason")


def _row(experiment: str, check: str, subject: str, value: float, bound: float | str,
         passed: bool, reason: str) -> dict[str, object]:
    return dict(zip(CHECK_COLUMNS, (experiment, check, subject, value, bound, passed, reason),
                    strict=True))


def finite_headline(experiment: str, headline: pd.DataFrame) -> list[dict[str, object]]:
    """Every headline value is finite, and so is its spread when it has one (``n >= 2``)."""
    rows = []
    for row in headline.itertuples():
        value_finite = math.isfinite(row.value)
        spread_finite = row.n < 2 or math.isfinite(row.spread)
        reason = ("finite" if value_finite and spread_finite else
                  f"headline {row.metric} is {row.value} ± {row.spread} over n = {row.n}: a "
                  f"reading gave no finite value; see {row.source}")
        rows.append(_row(experiment, "finite_headline", row.metric, row.value, "finite",
                         value_finite and spread_finite, reason))
    return rows


def every_seed(experiment: str, summary: pd.DataFrame, metrics: Sequence[str],
               seeds: Sequence[int]) -> list[dict[str, object]]:
    """Every per-seed ``metric`` (of the headline) has a finite value at every configured seed
    in ``summary`` (the table of :func:`losskernel.readings.summary.gather_metrics`)."""
    per_seed = summary.dropna(subset=["seed"])
    rows = []
    for metric in metrics:
        values = per_seed[per_seed["metric"] == metric]
        if values.empty:
            continue  # one value per experiment: finite_headline checks it
        finite = {int(seed) for seed, value in zip(values["seed"], values["value"], strict=True)
                  if math.isfinite(float(value))}
        missing = [seed for seed in seeds if seed not in finite]
        reason = ("every seed has a finite value" if not missing else
                  f"{metric} has no finite value at seeds {missing} of {list(seeds)}: the "
                  f"headline would average fewer seeds than configured (sampling.seeds)")
        rows.append(_row(experiment, "every_seed", metric, float(len(finite)), len(seeds),
                         not missing, reason))
    return rows


def model_metrics(history: pd.DataFrame, training: str | None) -> dict[str, float]:
    """A trained model's ``num_parameters`` (from its provenance's ``training`` record: JSON,
    None when absent) and its ``train_accuracy`` and ``test_accuracy`` at the last evaluation
    of its training ``history`` (a row per evaluation); NaN for what is not recorded."""
    recorded = json.loads(training) if training is not None else {}
    last = history.iloc[-1] if len(history) else pd.Series(dtype=float)
    return {"num_parameters": float(recorded.get("num_parameters", math.nan)),
            **{name: float(last.get(name, math.nan))
               for name in ("train_accuracy", "test_accuracy")}}


def converged(experiment: str, model: str, trained: bool, training: str | None,
              allow_unconverged: bool) -> list[dict[str, object]]:
    """The model met its convergence target, as its provenance records (``training``: JSON
    with ``converged``, ``final_step``, ``max_steps``; None when absent). A model that did not
    passes only with ``training.allow_unconverged``; one ``trained`` here without the record
    fails (it predates the record)."""
    if not trained:
        return [_row(experiment, "converged", model, math.nan, "target met", True,
                     "not trained here (imported weights)")]
    if training is None:
        return [_row(experiment, "converged", model, math.nan, "target met", False,
                     f"{model} does not record whether training met its target (it predates "
                     f"the record); delete it and rerun snakemake to retrain")]
    outcome = json.loads(training)
    if outcome["converged"] is None:
        return [_row(experiment, "converged", model, math.nan, "target met", True,
                     "the task sets no convergence target (training runs max_steps)")]
    met = bool(outcome["converged"])
    if met:
        reason = f"target met, stopped at step {outcome['final_step']}"
    elif allow_unconverged:
        reason = (f"target NOT met in {outcome['max_steps']} steps; allowed by "
                  f"training.allow_unconverged")
    else:
        reason = (f"{model} did not meet its convergence target in training.max_steps = "
                  f"{outcome['max_steps']} steps: its kernel would describe an untrained model; "
                  f"raise training.max_steps, or set training.allow_unconverged: true to "
                  f"proceed knowingly")
    return [_row(experiment, "converged", model, float(met), "target met",
                 met or allow_unconverged, reason)]


def rhat_within_bound(experiment: str, runs: pd.DataFrame, main_runs: Sequence[str],
                      max_rhat: float) -> list[dict[str, object]]:
    """Each main run's worst split R-hat (``runs``: the experiment's diagnostics table, a row
    per run) is at most ``max_rhat``."""
    table = runs.set_index("run")
    rows = []
    for run in main_runs:
        worst = float(table.loc[run, "worst_rhat"])
        passed = math.isfinite(worst) and worst <= max_rhat
        reason = ("within bound" if passed else
                  f"run {run}: worst R-hat {worst:.4g} > analysis.checks.max_rhat = {max_rhat}: "
                  f"its chains disagree; raise sampling.num_draws or num_chains, or run "
                  f"losskernel calibrate")
        rows.append(_row(experiment, "rhat", run, worst, max_rhat, passed, reason))
    return rows


def positive_control(experiment: str, summary: pd.DataFrame, max_z: float,
                     max_entry_z2: float) -> list[dict[str, object]]:
    """Prop. 2's control: the cross-task kernel vanishes. The mean test: ``|z|`` of the seeds'
    pooled mean cross-task K (:func:`losskernel.readings.summary.combined_z`, the headline's
    ``cross_task_z``) at most ``max_z``. The per-entry test, per seed: the mean ``z²`` over the
    block's entries (``cross_task_entry_z2``) at most ``max_entry_z2``; it catches couplings of
    opposite sign, which cancel in the mean. ``summary`` is every seed's metrics."""
    per_seed = summary.dropna(subset=["seed"])
    z, _, n = combined_z(per_seed.pivot(index="seed", columns="metric", values="value")
                         .astype(float))
    passed = n > 0 and abs(z) <= max_z
    reason = ("within bound" if passed else
              "no seed has a finite cross_task_K, cross_task_K_se and cross_task_z: the "
              "experiment's readings do not test a cross-task block" if n == 0 else
              f"the mean cross-task K is {z:.3g} standard errors from 0 "
              f"(bound analysis.checks.max_control_z = {max_z}): the disjoint networks' "
              f"losses co-vary, so the kernel or the sampler is wrong")
    rows = [_row(experiment, "control_mean", "cross_task_z", z, max_z, passed, reason)]
    entries = summary[summary["metric"] == "cross_task_entry_z2"].dropna(subset=["seed"])
    if entries.empty:
        rows.append(_row(experiment, "control_entries", "cross_task_entry_z2", math.nan,
                         max_entry_z2, False, "no per-seed cross_task_entry_z2 in the summary: "
                         "the control's reading does not test the entries"))
    for seed, value in zip(entries["seed"], entries["value"], strict=True):
        value = float(value)
        passed = math.isfinite(value) and value <= max_entry_z2
        rows.append(_row(experiment, "control_entries", f"seed{int(seed)}", value, max_entry_z2,
                         passed, "within bound" if passed else
                         f"seed {int(seed)}: mean z² over the cross-task entries is {value:.3g} "
                         f"> analysis.checks.max_control_entry_z2 = {max_entry_z2}: entries of "
                         f"the cross-task block differ from 0 (couplings of either sign)"))
    return rows


def checks_table(rows: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(CHECK_COLUMNS))


def failures(table: pd.DataFrame) -> str | None:
    """One line per failed check (``<experiment>: <check> of <subject>: <reason>``), or None."""
    failed = table[~table["passed"].astype(bool)]
    if failed.empty:
        return None
    lines = [f"{row.experiment}: {row.check} of {row.subject}: {row.reason}"
             for row in failed.itertuples()]
    return f"{len(lines)} check(s) failed:\n" + "\n".join(lines)
