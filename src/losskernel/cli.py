"""``losskernel <step> ...``: every pipeline step from a shell, without Snakemake.

Steps read the same config files as the workflow (later files override earlier ones, key by
key) and write the same files, with a provenance record naming the step. Example:

    losskernel train  --config config/config.yaml --experiment modarith --out-dir results/modarith
    losskernel sample --config config/config.yaml --experiment modarith --seed 0 \\
        --model results/modarith/model.pt --traces results/modarith/seed0/traces.nc
    losskernel kernel --traces results/modarith/seed0/traces.nc --kind correlation \\
        --output results/modarith/seed0/kernel-correlation.nc
    losskernel plan   --config config/config.yaml config/imagenet.yaml --experiment imagenet
    losskernel provenance results/figures/digits/mislabel_roc.png --workdir .
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from losskernel.config import (
    ConfigError,
    load_config,
    quoted_settings,
    resolve_experiments,
    validate_config,
)
from losskernel.provenance import ProvenanceError

DEFAULT_SCHEMA = Path("workflow/schemas/config.schema.yaml")


def _experiment(args: argparse.Namespace, check_files: bool = True) -> Mapping:
    config = load_config(args.config)
    validate_config(config, args.schema, source=" + ".join(args.config), check_files=check_files)
    config = resolve_experiments(config)
    if args.experiment not in config["experiments"]:
        raise ConfigError(f"--experiment {args.experiment!r} is not in the config; "
                          f"choose from {sorted(config['experiments'])}")
    return config["experiments"][args.experiment]


def _record(args: argparse.Namespace, settings: object, inputs: Sequence[str] = ()) -> dict:
    from losskernel.provenance import collect_provenance

    wildcards = {"experiment": getattr(args, "experiment", "")}
    return collect_provenance(settings, rule=f"cli:{args.step}", wildcards=wildcards,
                              seed=getattr(args, "seed", None), inputs=inputs)


def run(args: argparse.Namespace) -> int:
    """Dispatch one parsed command line to its step; return the exit status."""
    from losskernel import steps

    if args.step == "validate-config":
        validate_config(load_config(args.config), args.schema, source=" + ".join(args.config))
        print("config OK: " + " + ".join(args.config))
    elif args.step == "train":
        settings = _experiment(args)
        used = {key: settings[key] for key in ("task", "data", "model", "training")}
        out = Path(args.out_dir)
        steps.train(settings["task"], settings["data"], settings["model"], settings["training"],
                    model_path=out / "model.pt", checkpoints_path=out / "checkpoints.pt",
                    history_path=out / "training.tsv", record=_record(args, used),
                    threads=args.threads)
    elif args.step == "sample":
        settings = _experiment(args)
        sampling = {k: v for k, v in settings["sampling"].items() if k != "seeds"}
        used = {"task": settings["task"], "data": settings["data"],
                "kernel_inputs": settings["kernel_inputs"], "sampling": sampling}
        steps.sample(settings["task"], settings["data"], settings["kernel_inputs"], sampling,
                     args.seed, model_path=args.model, traces_path=args.traces,
                     record=_record(args, used, [args.model]), threads=args.threads,
                     chains=args.chains, state_dir=args.state_dir,
                     save_every_seconds=args.save_every)
    elif args.step == "kernel":
        steps.kernel(args.traces, args.kind, args.centring, kernel_path=args.output,
                     record=_record(args, {"centring": args.centring}, [args.traces]))
    elif args.step == "separation":
        settings = _experiment(args)
        analysis = {key: settings["analysis"][key] for key in ("knn_k", "standard_error_batches")}
        steps.separation(settings["task"], analysis, correlation_path=args.correlation,
                         traces_path=args.traces, metrics_path=args.metrics,
                         scores_path=args.scores,
                         record=_record(args, analysis, [args.correlation, args.traces]))
    elif args.step == "embed":
        settings = _experiment(args)
        steps.embed(settings["analysis"], settings["task"], correlation_path=args.correlation,
                    embedding_path=args.output,
                    record=_record(args, settings["analysis"]["umap"], [args.correlation]))
    elif args.step == "summarize":
        settings = _experiment(args)
        used = {"seeds": settings["sampling"]["seeds"],
                "headline_metrics": settings["headline_metrics"]}
        steps.summarize(args.experiment, used["seeds"], args.metrics, used["headline_metrics"],
                        summary_path=args.summary, headline_path=args.headline,
                        record=_record(args, used, args.metrics))
    elif args.step == "figures":
        settings = _experiment(args)
        out = Path(args.out_dir)
        steps.figures(args.experiment, settings["sampling"]["seeds"],
                      settings["analysis"]["figure_seed"], settings["analysis"]["knn_k"],
                      correlation_path=args.correlation,
                      embedding_path=args.embedding, scores_paths=args.scores,
                      metrics_paths=args.metrics, heatmap_path=out / "kernel_heatmap.png",
                      distributions_path=out / "kernel_distributions.png",
                      umap_path=out / "umap.png", roc_path=out / "roc.png",
                      record=_record(args, {"seeds": settings["sampling"]["seeds"]},
                                     [args.correlation, args.embedding, *args.scores]))
    elif args.step == "headline":
        steps.headline(args.fragments, output_path=args.output,
                       record=_record(args, None, args.fragments))
    elif args.step == "macros":
        config = load_config(args.config)
        validate_config(config, args.schema, source=" + ".join(args.config))
        settings = quoted_settings(config)
        steps.latex_macros(args.headline, settings, output_path=args.output,
                           record=_record(args, settings, [args.headline]))
    elif args.step == "plan":
        from losskernel import planning

        gpu_tflops = planning.DEFAULT_GPU_TFLOPS if args.gpu_tflops is None else args.gpu_tflops
        # planning comes before the data: the root and weights need not exist yet
        settings = _experiment(args, check_files=False)
        print(planning.plan_report(settings, args.experiment, num_classes=args.classes,
                                   threads=args.threads, device=args.device,
                                   repeats=args.repeats, gpu_tflops=gpu_tflops,
                                   train_batch=args.train_batch, eval_batch=args.eval_batch))
    elif args.step == "provenance":
        from losskernel.provenance import format_lineage, lineage

        nodes = lineage(args.path, workdir=args.workdir)
        print(format_lineage(nodes, show_config=args.config), end="")
        return int(any(check.status != "ok" for node in nodes for check in node.inputs))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="losskernel", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="step", required=True, metavar="STEP")

    def command(name: str, help_text: str, *, config: bool = False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if config:
            sub.add_argument("--config", nargs="+", default=["config/config.yaml"],
                             help="config file(s), later ones override earlier ones")
            sub.add_argument("--schema", default=str(DEFAULT_SCHEMA), help="config schema")
        return sub

    command("validate-config", "check config files against the schema", config=True)
    train = command("train", "train an experiment's model", config=True)
    train.add_argument("--experiment", required=True)
    train.add_argument("--out-dir", required=True,
                       help="writes model.pt, checkpoints.pt and training.tsv here")
    train.add_argument("--threads", type=int, default=1)
    sample = command("sample", "SGLD traces around a trained model", config=True)
    sample.add_argument("--experiment", required=True)
    sample.add_argument("--seed", type=int, required=True)
    sample.add_argument("--model", required=True)
    sample.add_argument("--traces", required=True, help="output netCDF")
    sample.add_argument("--threads", type=int, default=1,
                        help="cores for the run; on the CPU, chains run side by side on them, "
                             "one thread each")
    sample.add_argument("--chains", type=int, nargs="+", default=None,
                        help="run only these chains (default: all of sampling.num_chains)")
    sample.add_argument("--state-dir", default=None,
                        help="save each chain's progress here and resume from it after a kill")
    sample.add_argument("--save-every", type=float, default=60.0,
                        help="seconds between progress saves (with --state-dir)")
    kernel = command("kernel", "the covariance or correlation kernel of a trace file")
    kernel.add_argument("--traces", required=True)
    kernel.add_argument("--kind", choices=["covariance", "correlation"], default="correlation")
    kernel.add_argument("--centring", choices=["pooled", "per_chain"], default="pooled")
    kernel.add_argument("--output", required=True, help="output netCDF")
    separation = command("separation", "task-separation readings of one kernel", config=True)
    separation.add_argument("--experiment", required=True)
    separation.add_argument("--correlation", required=True)
    separation.add_argument("--traces", required=True)
    separation.add_argument("--metrics", required=True, help="output TSV")
    separation.add_argument("--scores", required=True, help="output TSV of per-input scores")
    embed = command("embed", "UMAP coordinates from a correlation kernel", config=True)
    embed.add_argument("--experiment", required=True)
    embed.add_argument("--correlation", required=True)
    embed.add_argument("--output", required=True, help="output TSV")
    summarize = command("summarize", "gather per-seed metrics; write the headline rows",
                        config=True)
    summarize.add_argument("--experiment", required=True)
    summarize.add_argument("--metrics", nargs="+", required=True,
                           help="separation.tsv of every seed, in the config's seed order")
    summarize.add_argument("--summary", required=True, help="output TSV")
    summarize.add_argument("--headline", required=True, help="output TSV")
    figures = command("figures", "an experiment's four figures", config=True)
    figures.add_argument("--experiment", required=True)
    figures.add_argument("--correlation", required=True, help="kernel of the figure seed")
    figures.add_argument("--embedding", required=True)
    figures.add_argument("--scores", nargs="+", required=True, help="one per seed")
    figures.add_argument("--metrics", nargs="+", required=True, help="one per seed")
    figures.add_argument("--out-dir", required=True)
    headline = command("headline", "concatenate headline rows into one table")
    headline.add_argument("--fragments", nargs="+", required=True)
    headline.add_argument("--output", required=True)
    macros = command("macros", "LaTeX macros of every headline number and quoted setting",
                     config=True)
    macros.add_argument("--headline", required=True)
    macros.add_argument("--output", required=True)
    plan = command("plan", "size an experiment's jobs: images, FLOPs, hours per sampling run "
                   "(measures GoogLeNet's per-image cost here first)", config=True)
    plan.add_argument("--experiment", required=True)
    plan.add_argument("--gpu-tflops", type=float, default=None,
                      help="ASSUMED sustained GPU throughput in TFLOP/s (default: "
                           "planning.DEFAULT_GPU_TFLOPS = 10; GoogLeNet fp32/TF32 on an A100 "
                           "sustains roughly 10-20)")
    plan.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                      help="torch threads for the measurement (default: all cores)")
    plan.add_argument("--device", default="cpu", help="device to measure on (cpu, cuda, ...)")
    plan.add_argument("--repeats", type=int, default=3, help="timed batches per measurement")
    plan.add_argument("--train-batch", type=int, default=None,
                      help="forward+backward batch to measure (default: sampling.batch_size, "
                           "at most 64 on cpu)")
    plan.add_argument("--eval-batch", type=int, default=None,
                      help="forward batch to measure (default: sampling.eval_batch_size, "
                           "at most 64 on cpu)")
    plan.add_argument("--classes", type=int, default=None,
                      help="number of classes (default: wnid folders under data.root, else 1000)")
    provenance = command("provenance", "the lineage of a result back to configs, seeds and code "
                         "version, with every recorded input hash checked against the file on "
                         "disk; exit status 1 when an input changed or is missing")
    provenance.add_argument("path", help="any artifact: .nc, .tsv, .png, .pt or .tex")
    provenance.add_argument("--workdir", default=".",
                            help="directory the workflow ran in; recorded input paths are "
                                 "relative to it (default: the current directory)")
    provenance.add_argument("--config", action="store_true",
                            help="also print each artifact's config JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ConfigError, FileNotFoundError, ProvenanceError) as error:
        print(f"losskernel {args.step}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
