# The loss kernel K (covariance) or its normalized form R (correlation) from one trace file.


rule compute_kernel:
    input:
        unpack(inputs_of("compute_kernel")),
    output:
        **outputs_of("compute_kernel"),
    params:
        **params_of("compute_kernel"),
    log:
        "results/logs/compute_kernel/{experiment}/{run}-{kind}.log",
    benchmark:
        "results/benchmarks/compute_kernel/{experiment}/{run}-{kind}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/run_step.py"
