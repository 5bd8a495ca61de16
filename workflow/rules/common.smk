# The plan of the config, wildcard constraints and one-line functions over the plan.
#
# Everything an experiment runs is known to the package: losskernel.plan (experiments, runs,
# readings, checks) and losskernel.dag (each rule's output files, and each job's input files
# and arguments). The rules only add how a job is executed: log, benchmark, threads, conda.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The plan uses the package from this checkout (as the jobs do), installed or not.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from losskernel import dag
from losskernel.config import ConfigError
from losskernel.plan import Plan

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


wildcard_constraints:
    **dag.WILDCARD_PATTERNS,
    experiment="|".join(PLAN.experiments),


def job_of(rule, wildcards):
    """The job of `rule` at `wildcards` (losskernel.dag.job)."""
    try:
        return dag.job(PLAN, rule, dict(wildcards.items()))
    except KeyError as error:
        raise WorkflowError(error.args[0]) from None


def inputs_of(rule):
    """Input function: the job's input files by name."""
    return lambda wildcards: job_of(rule, wildcards).inputs


def outputs_of(rule):
    """The rule's output files by name (patterns)."""
    return dag.rules(PLAN)[rule].outputs


def figures_of(rule, category, captions=None):
    """The rule's output figures, each in the report with its caption (by default
    workflow/report/<figure>.rst) under `category` and the experiment."""
    return {
        name: report(
            path,
            caption=(captions or {}).get(name) or f"../report/{Path(path).stem}.rst",
            category=category,
            subcategory="{experiment}",
        )
        for name, path in outputs_of(rule).items()
    }


def params_of(rule):
    """The rule's params: the step that runs a job, and the job's arguments."""
    return {
        "step": dag.rules(PLAN)[rule].step or rule,
        "arguments": lambda wildcards: job_of(rule, wildcards).arguments,
    }


def experiments_of(rule):
    """Wildcard constraint: the experiments `rule` makes files for (losskernel.dag)."""
    return dag.wildcard_constraint(PLAN, rule, "experiment")


def uses_gpu(section):
    """Resource `gpu`: 1 when the experiment's `section` runs on a CUDA device."""
    return lambda w: int(
        PLAN.experiment(w.experiment).settings[section]["device"].startswith("cuda")
    )
