# losskernel: regenerate every figure and table of the loss-kernel paper's embedded default.
#
#   snakemake --cores all                      # the default config (config/config.yaml)
#   snakemake --cores all --configfile config/config.yaml config/sweeps/modarith.yaml
#   snakemake figure1 --cores all --configfile config/config.yaml config/imagenet.yaml  # targets
#                                              # first: --configfile takes every word after it
#   snakemake --cores all calibrate            # pass/fail of a grid of SGLD settings
#   snakemake --cores all sweeps --configfile config/config.yaml config/sweeps/capacity.yaml
#
# Which experiments, runs and seeds exist, and what each job is told, come from the package
# (losskernel.plan, losskernel.params); the rules in workflow/rules/, one file per stage, write
# the files each job reads and writes, and each rule runs its step of losskernel.pipeline
# through its own script, workflow/scripts/<rule>.py.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/sampling.smk"
include: "workflow/rules/kernels.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/tasks.smk"
include: "workflow/rules/paper.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/sweeps.smk"
include: "workflow/rules/crate.smk"


# The run's whole config, resolved, under its hash: every output's provenance names it by that
# hash (config_sha256), and `losskernel provenance --show-config` reads it back.
rule run_config:
    output:
        config="results/provenance/configs/{sha256}.yaml",
    log:
        "results/logs/run_config/{sha256}.log",
    benchmark:
        "results/benchmarks/run_config/{sha256}.tsv"
    localrule: True
    conda:
        "envs/analysis.yaml"
    params:
        code=code_of("run_config"),
    script:
        "workflow/scripts/run_config.py"


RUN_CONFIG = expand(rules.run_config.output.config, sha256=CONFIG_SHA256)


rule all:
    default_target: True
    input:
        run_outputs(),
        rules.crate.output.crate,


rule check:
    input:
        # every experiment's gates (analysis.checks): a failed one stops the workflow
        checks(PLAN.experiments),
        RUN_CONFIG,


rule figure1:
    input:
        # the experiments that draw Figure 1: their figures, headline rows and checks
        figures(offering("figure1")),
        expand(rules.summarize_models.output.headline, experiment=offering("figure1")),
        checks(offering("figure1")),
        RUN_CONFIG,


rule sweeps:
    input:
        # each sweep's table and figure (config key sweeps), and only what they need
        sweep_outputs(),
        RUN_CONFIG,


rule calibrate:
    input:
        # every experiment's calibration table and figure (analysis.calibration)
        tables=expand(rules.calibrate_experiment.output.table, experiment=PLAN.experiments),
        figures=expand(rules.calibrate_experiment.output.figure, experiment=PLAN.experiments),
        config=RUN_CONFIG,
    # no output: it prints each experiment's verdict, on the terminal and in the log, when a
    # table is new (`losskernel calibrate` forces it: --forcerun calibrate reruns this job
    # alone, so the verdicts come every time)
    log:
        "results/logs/calibrate/verdict.log",
    benchmark:
        "results/benchmarks/calibrate/verdict.tsv"
    localrule: True
    conda:
        "envs/analysis.yaml"
    params:
        experiments=list(PLAN.experiments),
    script:
        "workflow/scripts/calibrate.py"
