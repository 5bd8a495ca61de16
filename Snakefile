# losskernel: regenerate every figure and table of the loss-kernel paper's embedded default.
#
#   snakemake --cores all                      # the default config (config/config.yaml)
#   snakemake --cores all --configfile config/config.yaml config/sweeps/modarith.yaml
#   snakemake --cores all --configfile config/config.yaml config/imagenet.yaml figure1
#
# The rules live in workflow/rules/, one file per stage; the method is the package
# src/losskernel/, which the scripts in workflow/scripts/ call.

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
include: "workflow/rules/paper.smk"


rule all:
    default_target: True
    input:
        all_targets(),


rule figure1:
    input:
        # the ImageNet branch only: Figure 1 and the analyses of every ImageNet experiment
        [path for name in IMAGENET for path in experiment_figures(name)],
        [f"results/{name}/headline.tsv" for name in IMAGENET],
