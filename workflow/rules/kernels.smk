# The loss kernel K (covariance) or its normalized form R (correlation) from one trace file.


rule compute_kernel:
    input:
        traces="results/{experiment}/{run}/traces.nc",
    output:
        kernel="results/{experiment}/{run}/kernel-{kind}.nc",
    params:
        centring=lambda w: experiment(w)["kernel"]["centring"],
    log:
        "results/logs/compute_kernel/{experiment}/{run}-{kind}.log",
    benchmark:
        "results/benchmarks/compute_kernel/{experiment}/{run}-{kind}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/compute_kernel.py"
