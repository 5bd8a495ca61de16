"""``losskernel``: check a config, size an experiment's jobs, calibrate, trace a result.

Snakemake runs every job of the workflow and decides what to rerun: ``snakemake --cores all``
for everything, ``snakemake <file>`` for one result and what it needs. These commands read the
same config files as ``snakemake`` (later files override earlier ones, key by key):

    losskernel validate-config --config config/config.yaml my-overrides.yaml
    losskernel plan            --experiment <name>      # sizes and hours of its jobs
    losskernel calibrate                                # snakemake's target calibrate
    losskernel provenance results/figures/<name>/<figure>.png
    losskernel snapshot-docs                            # the results the docs quote
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from losskernel.config import ConfigError, load_config
from losskernel.errors import CheckFailed
from losskernel.plan import Plan
from losskernel.provenance import ProvenanceError
from losskernel.snapshot import SnapshotError

DEFAULT_CONFIG = ["config/config.yaml"]
DEFAULT_SCHEMA = Path("workflow/schemas/config.schema.yaml")
CODE = Path(__file__).resolve().parent
"""Where the package's code is: the git state of its repository goes into provenance."""


def load_plan(args: argparse.Namespace, check_files: bool = True) -> Plan:
    """The plan of the command's config files."""
    return Plan.from_config(load_config(args.config), args.schema,
                            source=" + ".join(map(str, args.config)), check_files=check_files)


def calibrate(args: argparse.Namespace) -> int:
    """``losskernel calibrate``: Snakemake's target ``calibrate`` in ``--directory``, with this
    checkout's workflow: every experiment's calibration table and figure (the points whose
    inputs or settings changed, the model first if it is missing: Snakemake's rerun rules),
    then each experiment's verdict, which the target prints (forced, so it prints each time)."""
    load_plan(args)  # a bad config is refused before Snakemake starts
    snakefile = CODE.parents[1] / "Snakefile"
    if not snakefile.is_file():
        raise FileNotFoundError(f"{snakefile} does not exist: losskernel calibrate runs the "
                                f"workflow of a clone of the repository, with this package "
                                f"installed from it (setup.sh does)")
    Path(args.directory).mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        # --forcerun calibrate: the verdicts are printed every time, though no point reruns
        [sys.executable, "-m", "snakemake", "calibrate", "--forcerun", "calibrate",
         "--snakefile", str(snakefile),
         "--directory", str(Path(args.directory).resolve()), "--cores", str(args.threads),
         "--configfile", *(str(Path(path).resolve()) for path in args.config)], check=False)
    if run.returncode != 0:
        print(f"losskernel calibrate: snakemake stopped (exit {run.returncode}); its log "
              f"above names the job that failed", file=sys.stderr)
        return 1
    return 0


def validate(args: argparse.Namespace) -> int:
    load_plan(args)
    print("config OK: " + " + ".join(map(str, args.config)))
    return 0


def size_jobs(args: argparse.Namespace) -> int:
    """``losskernel plan``: sizes and hours of an experiment's jobs (``losskernel.costs``)."""
    from losskernel import costs

    # planning comes before the data: a data root or weights file need not exist yet
    plan = load_plan(args, check_files=False)
    experiment = plan.experiment(args.experiment)
    print(costs.plan_report(
        experiment, num_inputs=args.inputs, threads=args.threads, device=args.device,
        repeats=args.repeats, train_batch=args.train_batch, eval_batch=args.eval_batch,
        gpu_tflops=costs.DEFAULT_GPU_TFLOPS if args.gpu_tflops is None else args.gpu_tflops))
    replicates = plan.models(args.experiment)[1:] if args.experiment in plan.experiments else []
    if replicates:
        print(f"\nThese are model 0's jobs. The experiment trains {len(replicates) + 1} models "
              f"(config key models); each of {', '.join(replicates)} trains and samples its "
              f"main runs too: losskernel plan --experiment {replicates[0]} sizes them.")
    return 0


def trace_provenance(args: argparse.Namespace) -> int:
    from losskernel.provenance import RUN_CONFIG_DIR, format_lineage, is_commit, lineage

    if args.crate:
        return write_crate(args)
    if args.path is None:
        raise SystemExit("losskernel provenance: give the artifact to trace (PATH), or "
                         "--crate FILE.zip to pack the run into a Workflow Run RO-Crate")
    nodes = lineage(args.path, workdir=args.workdir)
    print(format_lineage(nodes, show_config=args.show_config,
                         run_configs=Path(args.workdir) / RUN_CONFIG_DIR), end="")
    # 1 when the lineage cannot vouch for the result: an unreadable file, an input or a data
    # file changed or missing since (or a file added to a data tree), or an artifact whose
    # code version (git commit) is unknown
    return int(any(node.unreadable or not is_commit(node.git_commit)
                   or any(check.status != "ok" for check in (*node.inputs, *node.data))
                   for node in nodes))


def write_crate(args: argparse.Namespace) -> int:
    """``losskernel provenance --crate``: the run in ``--workdir`` (or PATH's lineage) as a
    Workflow Run RO-Crate, validated against the Workflow Run Crate profile unless
    ``--no-validate``; exit status 1 when the validator finds a required property missing."""
    from losskernel.crate import build_crate, validate_crate

    artifacts = None if args.path is None else [Path(args.path).resolve()]
    summary = build_crate(Path(args.workdir), Path(args.crate), artifacts,
                          checkout=Path(args.checkout) if args.checkout else CODE.parents[1])
    print(f"{summary.path}: {summary.bytes / 1e6:.1f} MB, {summary.actions} jobs, "
          f"{summary.files} files ({summary.included} in the zip), {summary.data_files} data "
          f"files, made in {summary.seconds:.1f} s")
    if args.no_validate:
        return 0
    failed = 0
    for profile in ("workflow-run-crate", "provenance-run-crate"):
        verdict = validate_crate(summary.path, profile=profile)
        print(f"{profile} (REQUIRED): {'passed' if verdict.passed else 'FAILED'}"
              + "".join(f"\n  {issue}" for issue in verdict.issues))
        failed |= not verdict.passed
    return int(failed)


def snapshot_docs(args: argparse.Namespace) -> int:
    """``losskernel snapshot-docs``: the results the documentation quotes
    (``losskernel.snapshot``)."""
    from losskernel.provenance import atomic_path
    from losskernel.snapshot import describe, render_readme, write_snapshot

    snapshot = write_snapshot(Path(args.results), Path(args.docs))
    print(f"{Path(args.docs) / 'snapshot'}: {len(snapshot.files)} files from "
          f"{describe(snapshot.stamp)}")
    readme = Path(args.readme)
    if readme.is_file():
        text = readme.read_text()
        with atomic_path(readme) as partial:
            partial.write_text(render_readme(text, Path(args.docs) / "snapshot"))
        print(f"{readme}: its headline table rewritten from the snapshot")
    return 0


def _common_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--config", nargs="+", default=DEFAULT_CONFIG,
                         help="config file(s), later ones override earlier ones "
                              "(default: config/config.yaml)")
    options.add_argument("--schema", default=str(DEFAULT_SCHEMA), help="the config schema")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="losskernel", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_commands(commands, _common_options())
    return parser


def _add_commands(commands, common: argparse.ArgumentParser) -> None:
    sub = commands.add_parser("validate-config", parents=[common],
                              help="check config files before anything runs")
    sub.set_defaults(handler=validate)
    _add_plan_command(commands, common)
    sub = commands.add_parser(
        "calibrate", parents=[common], help="short SGLD runs over a grid of step size × nβ "
        "× γ (analysis.calibration) of every experiment, run by Snakemake (what changed "
        "only), each marked pass/fail with the reason; suggests one")
    sub.add_argument("--directory", default=".", help="where results/ is (default: here)")
    sub.add_argument("--threads", "--cores", type=int, default=1,
                     help="cores Snakemake may use (its --cores; default 1)")
    sub.set_defaults(handler=calibrate)
    sub = commands.add_parser(
        "provenance", help="the lineage of a result back to configs, seeds and code version, "
        "with every recorded input hash checked against the file on disk; exit status 1 when "
        "an input changed or is missing")
    sub.add_argument("path", nargs="?", help="any artifact: .nc, .tsv, .png, .pt or .tex")
    sub.add_argument("--workdir", default=".", help="directory the workflow ran in; recorded "
                     "input paths are relative to it (default: the current directory)")
    sub.add_argument("--show-config", "--config", dest="show_config", action="store_true",
                     help="also print each artifact's settings (its slice of the config, as "
                          "JSON) and the file of each run's whole config, "
                          "results/provenance/configs/<config sha256>.yaml, checked against "
                          "its hash")
    sub.add_argument("--crate", metavar="FILE.zip",
                     help="instead of printing the lineage, pack the run in --workdir (with "
                          "PATH: that artifact's lineage only) into a Workflow Run RO-Crate, "
                          "validated offline against the Workflow Run and Provenance Run Crate "
                          "profiles (exit status 1 when a required property is missing)")
    sub.add_argument("--checkout", help="with --crate: the workflow's checkout, whose "
                     "Snakefile and rules the crate holds (default: this package's)")
    sub.add_argument("--no-validate", action="store_true",
                     help="with --crate: skip the validation (about 15 s per profile on the "
                          "default's crate)")
    sub.set_defaults(handler=trace_provenance)
    sub = commands.add_parser(
        "snapshot-docs", help="copy a finished run's headline and comparison tables, and the "
        "figures the documentation's pages show, into docs/snapshot/ with a stamp of the "
        "commit, date and machine they came from (the pages quote results only from there)")
    sub.add_argument("--results", default="results",
                     help="the run's results directory (default: results)")
    sub.add_argument("--docs", default="docs", help="the documentation's source directory, "
                     "whose pages name the figures to copy (default: docs)")
    sub.add_argument("--readme", default="README.md", help="a Markdown file whose "
                     "'<!-- snapshot-table: experiment/metric ... -->' blocks are filled in "
                     "from the snapshot (default: README.md; skipped when it does not exist)")
    sub.set_defaults(handler=snapshot_docs)


def _add_plan_command(commands, common: argparse.ArgumentParser) -> None:
    sub = commands.add_parser(
        "plan", parents=[common], help="size an experiment's jobs: inputs through the "
        "network, FLOPs, hours per sampling run (times the task's model here first)")
    sub.add_argument("--experiment", required=True)
    sub.add_argument("--gpu-tflops", type=float, default=None,
                     help="ASSUMED sustained GPU throughput in TFLOP/s (default: "
                          "costs.DEFAULT_GPU_TFLOPS = 10)")
    sub.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                     help="torch threads for the measurement (default: all cores)")
    sub.add_argument("--device", default="cpu", help="device to measure on (cpu, cuda, ...)")
    sub.add_argument("--repeats", type=int, default=3, help="timed batches per measurement")
    sub.add_argument("--train-batch", type=int, default=None,
                     help="forward+backward batch to measure (default: sampling.batch_size, "
                          "at most 64 on cpu)")
    sub.add_argument("--eval-batch", type=int, default=None,
                     help="forward batch to measure (default: sampling.eval_batch_size, at "
                          "most 64 on cpu)")
    sub.add_argument("--inputs", type=int, default=None,
                     help="number of kernel inputs (default: the task counts them)")
    sub.set_defaults(handler=size_jobs)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, OSError, ProvenanceError, SnapshotError) as error:
        print(f"losskernel {args.command}: error: {error}", file=sys.stderr)
        return 2
    except CheckFailed as error:  # the table is written; the failures are the message
        print(f"losskernel {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
