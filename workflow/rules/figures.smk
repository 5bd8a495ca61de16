# Figures only draw: they read computed tables and kernels, so restyling never re-samples.
# The figures of the appendix analyses; the tasks' own figures are in tasks.smk.


rule plot_gamma_sweep:
    input:
        unpack(inputs_of("plot_gamma_sweep")),
    output:
        **figures_of("plot_gamma_sweep", category="Appendix analyses"),
    log:
        "results/logs/plot_gamma_sweep/{experiment}.log",
    benchmark:
        "results/benchmarks/plot_gamma_sweep/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("plot_gamma_sweep"),
    script:
        "../scripts/run_step.py"


rule plot_mislabels:
    input:
        unpack(inputs_of("plot_mislabels")),
    output:
        **figures_of("plot_mislabels", category="Appendix analyses"),
    log:
        "results/logs/plot_mislabels/{experiment}.log",
    benchmark:
        "results/benchmarks/plot_mislabels/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("plot_mislabels"),
    script:
        "../scripts/run_step.py"


rule plot_trajectory:
    input:
        unpack(inputs_of("plot_trajectory")),
    output:
        **figures_of("plot_trajectory", category="Appendix analyses"),
    log:
        "results/logs/plot_trajectory/{experiment}.log",
    benchmark:
        "results/benchmarks/plot_trajectory/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("plot_trajectory"),
    script:
        "../scripts/run_step.py"


rule plot_diagnostics:
    input:
        unpack(inputs_of("plot_diagnostics")),
    output:
        **figures_of("plot_diagnostics", category="Sampler diagnostics"),
    log:
        "results/logs/plot_diagnostics/{experiment}.log",
    benchmark:
        "results/benchmarks/plot_diagnostics/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("plot_diagnostics"),
    script:
        "../scripts/run_step.py"
