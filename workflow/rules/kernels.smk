# The loss kernel K (covariance) and its normalized form R (correlation) from one trace file.


rule compute_kernel:
    input:
        traces=rules.merge_chains.output.traces,
    output:
        covariance="results/{experiment}/{run}/kernel-covariance.nc",
        correlation="results/{experiment}/{run}/kernel-correlation.nc",
    log:
        "results/logs/compute_kernel/{experiment}/{run}.log",
    benchmark:
        "results/benchmarks/compute_kernel/{experiment}/{run}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("compute_kernel"),
        code=code_of("compute_kernel"),
    script:
        "../scripts/compute_kernel.py"
