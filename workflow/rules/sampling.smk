# Localized SGLD around trained weights: per-sample loss traces of the kernel inputs.
# One job per run: a seed of the main sampling, a γ of the sweep, or a training checkpoint.


rule sample_traces:
    input:
        data_files,
        model=run_model,
    output:
        traces="results/{experiment}/{run}/traces.nc",
    params:
        task=lambda w: experiment(w)["task"],
        data=data_settings,
        kernel_inputs=lambda w: experiment(w)["kernel_inputs"],
        run=run_settings,
    log:
        "results/logs/sample_traces/{experiment}/{run}.log",
    benchmark:
        "results/benchmarks/sample_traces/{experiment}/{run}.tsv"
    threads: 1
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/sample_traces.py"
