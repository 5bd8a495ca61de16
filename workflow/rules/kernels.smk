# The loss kernel K (covariance) and its normalized form R (correlation) from one trace file.


rule compute_kernel:
    input:
        unpack(inputs_of("compute_kernel")),
    output:
        **outputs_of("compute_kernel"),
    log:
        "results/logs/compute_kernel/{experiment}/{run}.log",
    benchmark:
        "results/benchmarks/compute_kernel/{experiment}/{run}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("compute_kernel"),
    script:
        "../scripts/run_step.py"
