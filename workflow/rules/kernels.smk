# The loss kernel K (covariance) or its normalized form R (correlation) from one trace file.


rule compute_kernel:
    input:
        traces="results/{experiment}/seed{seed}/traces.nc",
    output:
        kernel="results/{experiment}/seed{seed}/kernel-{kind}.nc",
    params:
        centring=lambda w: experiment(w)["kernel"]["centring"],
    log:
        "results/logs/compute_kernel/{experiment}/seed{seed}-{kind}.log",
    benchmark:
        "results/benchmarks/compute_kernel/{experiment}/seed{seed}-{kind}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/compute_kernel.py"
