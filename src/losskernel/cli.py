"""``losskernel <rule> ...``: every job of the workflow from a shell, without Snakemake.
(``losskernel calibrate`` is the exception: it hands the calibration to Snakemake.)

Every rule of the workflow is a command of the same name. It reads the same config files as
``snakemake`` (later files override earlier ones, key by key), takes the job's wildcards as
options, and runs the job the workflow would run: the same input files, output files and
arguments (``losskernel.dag``), the same step (``losskernel.pipeline``). Paths are relative to
``--directory`` (default: here), as with ``snakemake --directory``. An output that exists is
not replaced without ``--force``; ``--output NAME=PATH`` writes an output elsewhere. Examples:

    losskernel train_model    --experiment <name>
    losskernel sample_chain   --experiment <name> --run seed0 --chain 0-3
    losskernel merge_chains   --experiment <name> --run seed0
    losskernel compute_kernel --experiment <name> --run seed0

and, besides the rules:

    losskernel validate-config --config config/config.yaml my-overrides.yaml
    losskernel jobs            --experiment <name>      # every job of an experiment
    losskernel plan            --experiment <name>      # sizes and hours of its jobs
    losskernel calibrate       --experiment <name>      # snakemake's calibration, its verdict
    losskernel provenance results/figures/<name>/<figure>.png
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from losskernel import dag
from losskernel.config import ConfigError, load_config
from losskernel.errors import CheckFailed
from losskernel.job import Job, paths
from losskernel.plan import Plan
from losskernel.provenance import ProvenanceError

DEFAULT_CONFIG = ["config/config.yaml"]
DEFAULT_SCHEMA = Path("workflow/schemas/config.schema.yaml")
CODE = Path(__file__).resolve().parent
"""Where the package's code is: the git state of its repository goes into provenance."""
OTHER_COMMANDS = ("validate-config", "jobs", "plan", "provenance", "calibrate")
"""The commands that are no rule."""
WILDCARD_HELP = {
    "experiment": "the experiment (a key of experiments in the config)",
    "run": "the run: seed<S>, gamma<γ> or checkpoint<i> (see `losskernel jobs`)",
    "seed": "the SGLD seed (one of sampling.seeds)",
    "chain": "the chains of the job: one (3) or a block (0-3); `losskernel jobs` lists them",
    "point": "a setting of the calibration grid: eps<ε>-nbeta<nβ>-gamma<γ>",
}


def load_plan(args: argparse.Namespace, check_files: bool = True) -> Plan:
    """The plan of the command's config files."""
    return Plan.from_config(load_config(args.config), args.schema,
                            source=" + ".join(map(str, args.config)), check_files=check_files)


def run_rule(args: argparse.Namespace) -> int:
    """Run one job of a rule, as the workflow would."""
    from losskernel.pipeline import run_recorded, set_thread_pools

    plan = load_plan(args)
    rule = dag.rules(plan)[args.command]
    try:
        job = dag.job(plan, args.command, {name: str(getattr(args, name))
                                           for name in rule.wildcards})
    except KeyError as error:
        raise ConfigError(error.args[0]) from None
    outputs = {**job.outputs, **_redirected(args.output, job.outputs)}
    arguments = dict(job.arguments)
    if getattr(args, "save_every", None) is not None:
        arguments["save_every_seconds"] = args.save_every
    job = Job(job.rule, job.step, job.wildcards, job.inputs, outputs, arguments)
    Path(args.directory).mkdir(parents=True, exist_ok=True)
    os.chdir(args.directory)
    _check_files(plan, job, args.force)
    set_thread_pools(args.threads)
    # the whole config, as the workflow's jobs record it
    run_recorded(job, CODE, args.threads, run_config=plan.config, rule=f"cli:{job.rule}")
    for path in job.outputs.values():
        print(f"wrote {path}")
    return 0


def _redirected(overrides: Sequence[str], outputs: dict[str, str]) -> dict[str, str]:
    """``NAME=PATH`` options as absolute paths by output name."""
    redirected = {}
    for override in overrides:
        name, _, path = override.partition("=")
        if name not in outputs or not path:
            raise ConfigError(f"--output {override!r}: give NAME=PATH with NAME one of this "
                              f"rule's outputs: {', '.join(outputs)}")
        redirected[name] = str(Path(path).resolve())
    return redirected


def _check_files(plan: Plan, job: Job, force: bool) -> None:
    """Every input exists (else name the rule that makes it); no output is replaced unless
    ``force``."""
    for path in paths(job.inputs):
        if not Path(path).exists():
            maker = dag.producer(plan, path)
            hint = "" if maker is None else (f"; make it with `{command_line(*maker)}` or "
                                             f"snakemake")
            raise FileNotFoundError(f"input {path} does not exist (in {Path.cwd()}){hint}")
    existing = [path for path in job.outputs.values() if Path(path).exists()]
    if existing and not force:
        raise FileExistsError(f"{', '.join(existing)} exists already; pass --force to replace "
                              f"it, or --output NAME=PATH to write elsewhere")


def command_line(rule: str, wildcards: Mapping[str, str]) -> str:
    """The command that runs the job of ``rule`` at ``wildcards``."""
    return f"losskernel {rule}" + "".join(f" --{name} {value}"
                                         for name, value in wildcards.items())


def list_jobs(args: argparse.Namespace) -> int:
    """Every job of the workflow's target ``all`` (or of one experiment), as the command that
    runs it, in an order that runs each after the jobs it reads from."""
    plan = load_plan(args, check_files=False)
    if args.experiment is not None:
        plan.experiment(args.experiment)  # an unknown name is an error
    for job in dag.jobs_for(plan, dag.targets(plan)):
        if args.experiment in (None, job.wildcards.get("experiment")):
            print(command_line(job.rule, job.wildcards))
    return 0


def calibrate(args: argparse.Namespace) -> int:
    """``losskernel calibrate``: Snakemake makes an experiment's calibration table and figure
    in ``--directory`` (every point whose inputs or settings changed, the model first if it is
    missing: Snakemake's rerun rules), then the verdict is printed from the table."""
    from losskernel.pipeline.diagnostics import calibration_verdict
    from losskernel.pipeline.io import read_tsv

    plan = load_plan(args)  # a bad config or experiment is refused before Snakemake starts
    plan.experiment(args.experiment)
    snakefile = CODE.parents[1] / "Snakefile"
    if not snakefile.is_file():
        raise FileNotFoundError(f"{snakefile} does not exist: losskernel calibrate runs the "
                                f"workflow of a clone of the repository, with this package "
                                f"installed from it (setup.sh does)")
    targets = dag.calibration_targets(plan, [args.experiment])
    Path(args.directory).mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", *targets, "--snakefile", str(snakefile),
         "--directory", str(Path(args.directory).resolve()), "--cores", str(args.threads),
         "--configfile", *(str(Path(path).resolve()) for path in args.config)], check=False)
    if run.returncode != 0:
        print(f"losskernel calibrate: snakemake stopped (exit {run.returncode}); its log "
              f"above names the job that failed", file=sys.stderr)
        return 1
    print(calibration_verdict(args.experiment, read_tsv(Path(args.directory) / targets[0])))
    return 0


def validate(args: argparse.Namespace) -> int:
    load_plan(args)
    print("config OK: " + " + ".join(map(str, args.config)))
    return 0


def size_jobs(args: argparse.Namespace) -> int:
    """``losskernel plan``: sizes and hours of an experiment's jobs (``losskernel.costs``)."""
    from losskernel import costs

    # planning comes before the data: a data root or weights file need not exist yet
    experiment = load_plan(args, check_files=False).experiment(args.experiment)
    print(costs.plan_report(
        experiment, num_inputs=args.inputs, threads=args.threads, device=args.device,
        repeats=args.repeats, train_batch=args.train_batch, eval_batch=args.eval_batch,
        gpu_tflops=costs.DEFAULT_GPU_TFLOPS if args.gpu_tflops is None else args.gpu_tflops))
    return 0


def trace_provenance(args: argparse.Namespace) -> int:
    from losskernel.provenance import RUN_CONFIG_DIR, format_lineage, lineage

    nodes = lineage(args.path, workdir=args.workdir)
    print(format_lineage(nodes, show_config=args.show_config,
                         run_configs=Path(args.workdir) / RUN_CONFIG_DIR), end="")
    return int(any(node.unreadable or any(check.status != "ok" for check in node.inputs)
                   for node in nodes))


def rule_names(argv: Sequence[str]) -> dict[str, list[str]]:
    """Every rule (a command) with its wildcards: the fixed rules, the rules the built-in
    tasks declare, and those of the tasks of the config named in ``argv`` (if it reads). The
    config is read only when ``argv`` names no command known without it (a task's own rule)."""
    from losskernel.tasks import BUILTIN_TASKS, load_task

    found = {name: rule.wildcards for name, rule in dag.RULES.items()}
    for task in BUILTIN_TASKS:
        module = load_task(task)
        for declaration in (*module.DATA_FILES, *module.READINGS, *module.FIGURES):
            found[declaration.rule] = dag.declared_wildcards(declaration)
    if argv and (argv[0] in found or argv[0] in OTHER_COMMANDS):
        return found
    known = argparse.Namespace(config=_option_values(argv, "--config") or DEFAULT_CONFIG,
                               schema=(_option_values(argv, "--schema") or [DEFAULT_SCHEMA])[0])
    try:
        plan = load_plan(known, check_files=False)
    except (ConfigError, OSError):
        return found  # the command itself reports a config that does not read
    return {**found, **{name: rule.wildcards for name, rule in dag.rules(plan).items()}}


def _option_values(argv: Sequence[str], option: str) -> list[str]:
    """The values after ``option`` in ``argv`` (up to the next option), before parsing."""
    if option not in argv:
        return []
    values = list(argv[argv.index(option) + 1:])
    return values[:next((i for i, value in enumerate(values) if value.startswith("-")),
                        len(values))]


def _common_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--config", nargs="+", default=DEFAULT_CONFIG,
                         help="config file(s), later ones override earlier ones "
                              "(default: config/config.yaml)")
    options.add_argument("--schema", default=str(DEFAULT_SCHEMA), help="the config schema")
    return options


def build_parser(rules: dict[str, list[str]]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="losskernel", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()
    for name, wildcards in rules.items():
        _add_rule_command(commands, common, name, wildcards)
    _add_other_commands(commands, common)
    return parser


def _add_rule_command(commands, common: argparse.ArgumentParser, name: str,
                      wildcards: list[str]) -> None:
    sub = commands.add_parser(name, parents=[common], help=f"run a job of rule {name}",
                              description=f"Run one job of the workflow's rule {name}: its "
                                          f"inputs, outputs and arguments as snakemake's.")
    for wildcard in wildcards:
        sub.add_argument(f"--{wildcard}", required=True, help=WILDCARD_HELP[wildcard])
    sub.add_argument("--directory", default=".", help="where results/ is (default: here)")
    sub.add_argument("--threads", type=int, default=1, help="cores for the job")
    sub.add_argument("--output", action="append", default=[], metavar="NAME=PATH",
                     help="write the output NAME to PATH instead (repeatable)")
    sub.add_argument("--force", action="store_true", help="replace outputs that exist")
    if name == "sample_chain":
        sub.add_argument("--save-every", type=float, default=None, metavar="SECONDS",
                         help="seconds between progress saves (default 60)")
    sub.set_defaults(handler=run_rule)


def _add_other_commands(commands, common: argparse.ArgumentParser) -> None:
    sub = commands.add_parser("validate-config", parents=[common],
                              help="check config files before anything runs")
    sub.set_defaults(handler=validate)
    sub = commands.add_parser("jobs", parents=[common],
                              help="every job of the workflow (or of --experiment), as commands")
    sub.add_argument("--experiment", default=None)
    sub.set_defaults(handler=list_jobs)
    _add_plan_command(commands, common)
    sub = commands.add_parser(
        "calibrate", parents=[common], help="short SGLD runs over a grid of step size × nβ "
        "× γ (analysis.calibration), run by Snakemake (what changed only), each marked "
        "pass/fail with the reason; suggests one")
    sub.add_argument("--experiment", required=True)
    sub.add_argument("--directory", default=".", help="where results/ is (default: here)")
    sub.add_argument("--threads", "--cores", type=int, default=1,
                     help="cores Snakemake may use (its --cores; default 1)")
    sub.set_defaults(handler=calibrate)
    sub = commands.add_parser(
        "provenance", help="the lineage of a result back to configs, seeds and code version, "
        "with every recorded input hash checked against the file on disk; exit status 1 when "
        "an input changed or is missing")
    sub.add_argument("path", help="any artifact: .nc, .tsv, .png, .pt or .tex")
    sub.add_argument("--workdir", default=".", help="directory the workflow ran in; recorded "
                     "input paths are relative to it (default: the current directory)")
    sub.add_argument("--show-config", "--config", dest="show_config", action="store_true",
                     help="also print each artifact's settings (its slice of the config, as "
                          "JSON) and the file of each run's whole config, "
                          "results/provenance/configs/<config sha256>.yaml, checked against "
                          "its hash")
    sub.set_defaults(handler=trace_provenance)


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
    args = build_parser(rule_names(argv)).parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, OSError, ProvenanceError) as error:
        print(f"losskernel {args.command}: error: {error}", file=sys.stderr)
        return 2
    except CheckFailed as error:  # the table is written; the failures are the message
        print(f"losskernel {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
