# losskernel: regenerate every figure and table of the loss-kernel paper's embedded default.
#
#   snakemake --cores all                      # the default config (config/config.yaml)
#   snakemake --cores all --configfile config/config.yaml config/sweeps/modarith.yaml
#   snakemake --cores all --configfile config/config.yaml config/imagenet.yaml figure1
#   snakemake --cores all calibrate            # pass/fail of a grid of SGLD settings
#
# What each experiment runs is known to the package (losskernel.plan, losskernel.dag); the
# rules in workflow/rules/, one file per stage, say how each job is executed, and every job
# runs its step of losskernel.pipeline through workflow/scripts/run_step.py.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/sampling.smk"
include: "workflow/rules/kernels.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/tasks.smk"
include: "workflow/rules/paper.smk"
include: "workflow/rules/calibration.smk"


rule all:
    default_target: True
    input:
        dag.targets(PLAN),


rule check:
    input:
        # every experiment's gates (analysis.checks): a failed one stops the workflow
        dag.check_targets(PLAN),


rule figure1:
    input:
        # the experiments that draw Figure 1: their figures and headline rows
        dag.offering_targets(PLAN, "figure1"),


rule calibrate:
    input:
        # every experiment's calibration table and figure (analysis.calibration)
        dag.calibration_targets(PLAN),
