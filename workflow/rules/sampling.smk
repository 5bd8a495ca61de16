# Localized SGLD around trained weights: per-sample loss traces of the kernel inputs.
# A job runs a block of a run's chains (config key chains_per_job): by default all of them,
# one after another on one core while other jobs use the other cores (`--set-threads
# sample_chain=N` runs N of them side by side in the job instead: for a small model they wait
# for each other's Python); with chains_per_job: 1 (profiles/slurm) one chain per job, so a
# cluster runs every chain as its own job. Then one trace file per run.
# A chain saves its progress beside its output and resumes from it after a kill (the state
# file is not an output: Snakemake would delete it with the failed job it exists to resume).


rule sample_chain:
    input:
        unpack(inputs_of("sample_chain")),
    output:
        **outputs_of("sample_chain"),
    log:
        "results/logs/sample_chain/{experiment}/{run}/chain{chain}.log",
    benchmark:
        "results/benchmarks/sample_chain/{experiment}/{run}/chain{chain}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=uses_gpu("sampling"),
    params:
        **params_of("sample_chain"),
    script:
        "../scripts/run_step.py"


rule merge_chains:
    input:
        unpack(inputs_of("merge_chains")),
    output:
        **outputs_of("merge_chains"),
    log:
        "results/logs/merge_chains/{experiment}/{run}.log",
    benchmark:
        "results/benchmarks/merge_chains/{experiment}/{run}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("merge_chains"),
    script:
        "../scripts/run_step.py"
