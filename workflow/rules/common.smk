# The plan of the config, wildcard constraints, and the input functions that expand the
# rules' own output patterns over the runs, seeds, chain blocks, checkpoints, γ values and
# calibration points the plan gives. The plan (losskernel.plan) says which experiments, runs
# and seeds exist; losskernel.params says what each job is told; the files are written here
# and in the rules, and Snakemake alone resolves them to jobs.

import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The plan uses the package from this checkout (as the jobs do), installed or not.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from losskernel.config import ConfigError
from losskernel.fingerprint import digest, source_code
from losskernel.params import job_params
from losskernel.plan import Plan
from losskernel.provenance import config_sha256, git_state

try:
    PLAN = Plan.from_config(
        config,
        Path(workflow.current_basedir) / "../schemas/config.schema.yaml",
        source="the config file(s) given to snakemake (default config/config.yaml)",
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None

# The resolved config (variants laid out, defaults filled), as the jobs and the report see it.
config.update(PLAN.config)
# Every output's provenance names this config by its hash; rule run_config saves it.
CONFIG_SHA256 = config_sha256(config)


def checkout_commit():
    """The commit of this checkout, as the crate's preview in the report and the report's
    front page name it (git's reason when it cannot say which)."""
    commit, dirty = git_state(workflow.basedir)
    return f"{commit} (uncommitted changes)" if dirty else commit


CHECKOUT_COMMIT = checkout_commit()


wildcard_constraints:
    # the experiments and their replicates (<experiment>/model<m>, losskernel.plan)
    experiment="|".join(map(re.escape, PLAN.every_model)),
    run=r"seed\d+|gamma[0-9.e+-]+(?:-seed\d+)?|checkpoint\d+",
    seed=r"\d+",
    chain=r"\d+(?:-\d+)?",
    point=r"eps[0-9.e+-]+-nbeta[0-9.e+-]+-gamma[0-9.e+-]+",
    sha256=r"[0-9a-f]{64}",


def experiment_of(wildcards):
    return PLAN.experiment(wildcards.experiment)


def only(names):
    """Wildcard constraint: one of these experiments (none: matches nothing)."""
    return "|".join(map(re.escape, names)) or "(?!)"


def params_of(rule):
    """The rule's params at a job's wildcards (losskernel.params); an unknown run, chain block
    or calibration point is an error that names the ones there are."""

    def params(wildcards):
        try:
            return job_params(PLAN, rule, dict(wildcards.items()))
        except KeyError as error:
            raise WorkflowError(error.args[0]) from None

    return params


def code_of(script, declared=None):
    """Param `code`: the fingerprint of the code a job runs (losskernel.fingerprint): its rule's
    script workflow/scripts/<script>.py, what that reaches in the package, its experiment's
    task hooks and, for a task's declared rule, the `declared` function. Snakemake's params
    trigger then reruns a job whose code changed, and what depends on it."""
    key = f"workflow/scripts/{script}.py"
    source = (Path(workflow.basedir) / key).read_text()  # once per rule, not per job
    return lambda w: source_code(source, key, task_module(w), declared)


def shell_code(command, snippet, key):
    """Param `code` of a shell rule: its `command` (by digest: the profiles leave Snakemake's
    code trigger out) and the fingerprint of the `python -c` `snippet` it runs, as `key`."""
    return lambda w: {f"{key} shell": digest(command), **source_code(snippet, key)}


def task_module(wildcards):
    """The import path of the job's experiment's task (none for a job of no experiment)."""
    return experiment_of(wildcards).task.__name__ if "experiment" in wildcards.keys() else None


def uses_gpu(section):
    """Resource `gpu`: 1 when the experiment's `section` runs on a CUDA device."""
    return lambda w: int(experiment_of(w).settings[section]["device"].startswith("cuda"))


# Input functions ---------------------------------------------------------------------------


def run_outputs(wildcards=None):
    """Everything the default target makes but the crate, which describes it: every
    experiment's checks and figures, the headline table, the paper's macros, the sweeps and
    the run's config."""
    return [
        *checks(PLAN.experiments),
        rules.headline_table.output.table,
        rules.paper_macros.output.macros,
        *figures(PLAN.experiments),
        *sweep_outputs(),
        *expand(rules.run_config.output.config, sha256=CONFIG_SHA256),
    ]


def data_files(wildcards):
    """The task's data tables by key (each made by its own rule, tasks.smk), and the manifests
    of the outside data it reads (rule record_data)."""
    return {
        **experiment_of(wildcards).data_files(),
        **data_manifests(wildcards.experiment),
    }


def data_manifests(reader):
    """The manifest of each data source an experiment or a data file's rule reads, by
    `data_<source>`."""
    return {
        f"data_{name.replace('-', '_')}": rules.record_data.output.manifest.format(source=name)
        for name in PLAN.sources_of(reader)
    }


def data_source_files(wildcards):
    """The single files of a data source (a tree's are hashed by the job instead)."""
    return list(PLAN.data_sources[wildcards.source].files)


def pretrained_files(wildcards):
    """The pretrained weights and the user's own training checkpoints."""
    pretrained = experiment_of(wildcards).pretrained
    return {
        "weights": pretrained.weights,
        "training_checkpoints": [path for _, path in pretrained.checkpoints],
    }


def model_of(output):
    """Input function: the model's file `output` (train_model's, or import_model's: the same
    files) of the experiment whose model this one samples (config key model_from; by default
    its own)."""
    return lambda w: output.format(experiment=experiment_of(w).model_source)


def accepted_model(wildcards):
    """The gate's verdict on the model a job samples around (rule accept_model), when the
    model is trained here: sampling waits for it, so an unconverged model is never sampled."""
    source = experiment_of(wildcards).model_source
    if source not in PLAN.trained:
        return []
    return rules.accept_model.output.verdict.format(experiment=source)


def at_models(output):
    """Input function: a per-experiment `output` of each of the experiment's trained models
    (model 0, then the replicates: config key models)."""
    return lambda w: expand(output, experiment=PLAN.models(w.experiment))


def sampled_model(wildcards):
    """The weights a run samples around: the trained model, or for a trajectory run the
    training checkpoints (its step picks its own)."""
    run = experiment_of(wildcards).run(wildcards.run)
    output = rules.train_model.output
    return model_of(output.model if run.checkpoint is None else output.checkpoints)(wildcards)


def chain_blocks(wildcards):
    """A run's sampling jobs' traces, one file per block of chains (config chains_per_job)."""
    return expand(
        rules.sample_chain.output.traces,
        chain=PLAN.run_blocks(wildcards.experiment, wildcards.run),
        allow_missing=True,
    )


def at_runs(output, runs):
    """Input function: a per-run `output` at each run of the experiment's attribute `runs`
    (main_runs, gamma_runs, checkpoint_runs, runs)."""
    return lambda w: expand(output, run=list(getattr(experiment_of(w), runs)), allow_missing=True)


def at_seed(output):
    """A per-run `output` at the run of the job's seed, run `seed{seed}` (one file)."""
    return expand(output, run="seed{seed}", allow_missing=True)[0]


def at_figure_seed(output):
    """Input function: a per-seed `output` at the experiment's analysis.figure_seed (one
    file)."""
    return lambda w: expand(
        output, seed=experiment_of(w).analysis["figure_seed"], allow_missing=True
    )[0]


def gamma_replica(output):
    """Input function: a per-run `output` at the run of the γ nearest the localization and at
    its replica (another seed): their CKA is the γ sweep's noise ceiling."""

    def files(w):
        experiment = experiment_of(w)
        pair = [
            experiment.gamma_runs[experiment.nearest_gamma_index],
            experiment.gamma_replica[0],
        ]
        return expand(output, run=pair, allow_missing=True)

    return files


def umap_runs(output):
    """Input function: a per-run `output` at the figure seed's run and every checkpoint run
    (the UMAP of the final kernel and of the trajectory share one fit)."""

    def files(w):
        experiment = experiment_of(w)
        runs = [f"seed{experiment.analysis['figure_seed']}", *experiment.checkpoint_runs]
        return expand(output, run=runs, allow_missing=True)

    return files


SEED_METRICS = "results/{experiment}/seed{seed}/{reading}.tsv"
"""Every per-seed reading's metrics: a task's declared reading (tasks.smk), mislabel_detection's
and convergence's (the name of the analysis)."""
EXPERIMENT_METRICS = "results/{experiment}/{reading}-metrics.tsv"
"""Every per-experiment reading's metrics: trajectory's and diagnostics'."""


def seed_metrics(wildcards):
    experiment = experiment_of(wildcards)
    return expand(
        SEED_METRICS,
        seed=experiment.seeds,
        reading=experiment.seed_readings,
        allow_missing=True,
    )


def experiment_metrics(wildcards):
    return expand(
        EXPERIMENT_METRICS,
        reading=experiment_of(wildcards).experiment_readings,
        allow_missing=True,
    )


def calibration_points(wildcards):
    return expand(
        rules.calibration_point.output.summary,
        point=experiment_of(wildcards).calibration_points,
        allow_missing=True,
    )


def diagnostics_table(wildcards):
    """The diagnostics table by name, when the experiment runs analysis.diagnostics."""
    if "diagnostics" not in experiment_of(wildcards).analysis:
        return {}
    return {"diagnostics": rules.diagnostics.output.table.format(**wildcards)}


def appendix_figure(path, category="Appendix analyses"):
    """An appendix figure in the report: its caption workflow/report/<figure>.rst, under
    `category` and the experiment (figures.smk)."""
    return report(
        path,
        caption=f"../report/{Path(path).stem}.rst",
        category=category,
        subcategory="{experiment}",
    )


def figure_set_inputs(figure_set):
    """Input function: a figure set's declared files at the figure seed, at every seed, or
    the experiment's (tasks.smk)."""

    def files(w):
        experiment = experiment_of(w)
        seed_file = lambda seed, name: f"results/{w.experiment}/seed{seed}/{name}"
        located = {
            "figure_seed": lambda name: seed_file(experiment.analysis["figure_seed"], name),
            "every_seed": lambda name: [seed_file(seed, name) for seed in experiment.seeds],
            "experiment": lambda name: f"results/{w.experiment}/{name}",
        }
        return {name: located[scope](file) for name, (scope, file) in figure_set.inputs.items()}

    return files


# Targets -----------------------------------------------------------------------------------

APPENDIX_FIGURES = {
    # analysis section -> the rule that draws its figures (figures.smk)
    "mislabels": "plot_mislabels",
    "gamma_sweep": "plot_gamma_sweep",
    "trajectory": "plot_trajectory",
    "diagnostics": "plot_diagnostics",
}


def figures(names):
    """Every figure of these experiments: each one's task's figure sets (tasks.smk), then its
    appendix analyses' (figures.smk)."""
    found = []
    for name in names:
        experiment = PLAN.experiment(name)
        drawing = [figure_set.rule for figure_set in experiment.task.FIGURES] + [
            drawer
            for analysis, drawer in APPENDIX_FIGURES.items()
            if analysis in experiment.analysis
        ]
        for drawer in drawing:
            found += expand(list(getattr(rules, drawer).output), experiment=name)
    return found


def checks(names):
    """The checks of these experiments' models, check_experiment's tables: the gates their
    results passed."""
    models = [model for name in names for model in PLAN.models(name)]
    return expand(rules.check_experiment.output.checks, experiment=models)


def sweep_headlines(wildcards):
    """Input function: the headline table of each experiment of the sweep, in its order."""
    return expand(
        rules.summarize_models.output.headline,
        experiment=PLAN.sweep(wildcards.sweep)["experiments"],
    )


def sweep_checks(wildcards):
    return checks(PLAN.sweep(wildcards.sweep)["experiments"])


def sweep_outputs():
    """Every sweep's table and figure (the target sweeps)."""
    return expand(
        [rules.summarize_sweep.output.table, rules.plot_sweep.output.sweep],
        sweep=PLAN.sweeps,
    )


def offering(figure_set):
    """The experiments whose task draws `figure_set` (the target figure1's branch)."""
    return [
        name
        for name, experiment in PLAN.experiments.items()
        if figure_set in (declared.name for declared in experiment.task.FIGURES)
    ]
