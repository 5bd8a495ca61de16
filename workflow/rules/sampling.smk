# Localized SGLD around the trained weights: per-sample loss traces of the kernel inputs.


rule sample_traces:
    input:
        model=trained_model,
    output:
        traces="results/{experiment}/seed{seed}/traces.nc",
    params:
        task=lambda w: experiment(w)["task"],
        data=lambda w: experiment(w)["data"],
        kernel_inputs=lambda w: experiment(w)["kernel_inputs"],
        sampling=sampling_settings,
    log:
        "results/logs/sample_traces/{experiment}/seed{seed}.log",
    benchmark:
        "results/benchmarks/sample_traces/{experiment}/seed{seed}.tsv"
    threads: 1
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/sample_traces.py"
