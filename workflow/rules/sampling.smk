# Localized SGLD around trained weights: per-sample loss traces of the kernel inputs.
# A job runs a block of a run's chains (config key chains_per_job): by default all of them,
# one after another on one core while other jobs use the other cores (`--set-threads
# sample_chain=N` runs N of them side by side in the job instead: for a small model they wait
# for each other's Python); with chains_per_job: 1 (profiles/slurm) one chain per job, so a
# cluster runs every chain as its own job. Then one trace file per run.


rule sample_chain:
    input:
        unpack(data_files),
        accepted=accepted_model,
        model=sampled_model,
    output:
        traces="results/{experiment}/{run}/chains/chain{chain}.nc",
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
        arguments=params_of("sample_chain"),
        code=code_of("sample_chain"),
        # A chain saves its progress here and resumes from it after a kill (not an output:
        # Snakemake would delete it with the failed job it exists to resume).
        state_dir=subpath(output.traces, parent=True),
    script:
        "../scripts/sample_chain.py"


rule merge_chains:
    input:
        chains=chain_blocks,
    output:
        traces="results/{experiment}/{run}/traces.nc",
    log:
        "results/logs/merge_chains/{experiment}/{run}.log",
    benchmark:
        "results/benchmarks/merge_chains/{experiment}/{run}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("merge_chains"),
        code=code_of("merge_chains"),
    script:
        "../scripts/merge_chains.py"
