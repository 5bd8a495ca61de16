# Localized SGLD around trained weights: per-sample loss traces of the kernel inputs.
# One job per chain of a run (a seed of the main sampling, a γ of the sweep, or a training
# checkpoint), so a cluster runs the chains side by side; then one trace file per run.
# A chain saves its progress beside its output and resumes from it after a kill.


rule sample_chain:
    input:
        data_files,
        model=run_model,
    output:
        traces="results/{experiment}/{run}/chains/chain{chain}.nc",
    params:
        task=lambda w: experiment(w)["task"],
        data=data_settings,
        kernel_inputs=lambda w: experiment(w)["kernel_inputs"],
        run=run_settings,
        chain=lambda w: int(w.chain),
        # not an output: Snakemake would delete it with the failed job it exists to resume
        state_dir=lambda w: f"results/{w.experiment}/{w.run}/chains",
    resources:
        gpu=lambda w: int(experiment(w)["sampling"].get("device", "cpu").startswith("cuda")),
    log:
        "results/logs/sample_chain/{experiment}/{run}/chain{chain}.log",
    benchmark:
        "results/benchmarks/sample_chain/{experiment}/{run}/chain{chain}.tsv"
    threads: 1
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/sample_chain.py"


rule merge_chains:
    input:
        chains=run_chain_files,
    output:
        traces="results/{experiment}/{run}/traces.nc",
    log:
        "results/logs/merge_chains/{experiment}/{run}.log",
    benchmark:
        "results/benchmarks/merge_chains/{experiment}/{run}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/merge_chains.py"
