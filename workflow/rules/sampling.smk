# Localized SGLD around trained weights: per-sample loss traces of the kernel inputs.
# One job per chain of a run (a seed of the main sampling, a γ of the sweep, or a training
# checkpoint), so a cluster runs the chains side by side; then one trace file per run.
# A chain saves its progress beside its output and resumes from it after a kill (the state
# file is not an output: Snakemake would delete it with the failed job it exists to resume).


rule sample_chain:
    input:
        unpack(inputs_of("sample_chain")),
    output:
        **outputs_of("sample_chain"),
    params:
        **params_of("sample_chain"),
    resources:
        gpu=uses_gpu("sampling"),
    log:
        "results/logs/sample_chain/{experiment}/{run}/chain{chain}.log",
    benchmark:
        "results/benchmarks/sample_chain/{experiment}/{run}/chain{chain}.tsv"
    threads: 1
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/run_step.py"


rule merge_chains:
    input:
        unpack(inputs_of("merge_chains")),
    output:
        **outputs_of("merge_chains"),
    params:
        **params_of("merge_chains"),
    log:
        "results/logs/merge_chains/{experiment}/{run}.log",
    benchmark:
        "results/benchmarks/merge_chains/{experiment}/{run}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/run_step.py"
