# Figures only draw: they read computed tables and kernels, so restyling never re-samples.
# The figures of the appendix analyses; the tasks' own figures are in tasks.smk. Each figure
# goes into the report with its caption, workflow/report/<figure>.rst (appendix_figure).


rule plot_gamma_sweep:
    input:
        cka=rules.gamma_sweep.output.cka,
        ceiling=rules.gamma_sweep.output.ceiling,
        lift=rules.gamma_sweep.output.lift,
        convergence=at_runs(rules.convergence.output.curve, "gamma_runs"),
    output:
        cka=appendix_figure("results/figures/{experiment}/gamma_cka.png"),
        lift=appendix_figure("results/figures/{experiment}/gamma_lift.png"),
        convergence=appendix_figure("results/figures/{experiment}/convergence.png"),
    log:
        "results/logs/plot_gamma_sweep/{experiment}.log",
    benchmark:
        "results/benchmarks/plot_gamma_sweep/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("plot_gamma_sweep"),
        code=code_of("plot_gamma_sweep"),
    script:
        "../scripts/plot_gamma_sweep.py"


rule plot_mislabels:
    input:
        scores=at_figure_seed(rules.mislabel_detection.output.scores),
        metrics=at_figure_seed(rules.mislabel_detection.output.metrics),
        embedding=rules.embed_umap.output.embedding,
    output:
        roc=appendix_figure("results/figures/{experiment}/mislabel_roc.png"),
        self_covariance=appendix_figure("results/figures/{experiment}/self_covariance.png"),
        umap=appendix_figure("results/figures/{experiment}/umap_mislabels.png"),
    log:
        "results/logs/plot_mislabels/{experiment}.log",
    benchmark:
        "results/benchmarks/plot_mislabels/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("plot_mislabels"),
        code=code_of("plot_mislabels"),
    script:
        "../scripts/plot_mislabels.py"


rule plot_trajectory:
    input:
        table=rules.trajectory.output.table,
        embedding=rules.embed_umap.output.embedding,
    output:
        score=appendix_figure("results/figures/{experiment}/trajectory_score.png"),
        umap=appendix_figure("results/figures/{experiment}/trajectory_umap.png"),
    log:
        "results/logs/plot_trajectory/{experiment}.log",
    benchmark:
        "results/benchmarks/plot_trajectory/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("plot_trajectory"),
        code=code_of("plot_trajectory"),
    script:
        "../scripts/plot_trajectory.py"


rule plot_diagnostics:
    input:
        runs=rules.diagnostics.output.table,
        inputs=at_runs(rules.diagnose_run.output.table, "main_runs"),
    output:
        diagnostics=appendix_figure(
            "results/figures/{experiment}/diagnostics.png", category="Sampler diagnostics"
        ),
    log:
        "results/logs/plot_diagnostics/{experiment}.log",
    benchmark:
        "results/benchmarks/plot_diagnostics/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("plot_diagnostics"),
        code=code_of("plot_diagnostics"),
    script:
        "../scripts/plot_diagnostics.py"
