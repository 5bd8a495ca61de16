# Readings of the kernels: convergence per run, mislabels per seed, the γ sweep and the
# developmental trajectory per experiment, summaries over seeds (per model) and over models,
# the headline table and the UMAP coordinates the figures draw. The tasks' own readings are in
# tasks.smk.


rule convergence:
    input:
        traces=rules.merge_chains.output.traces,
    output:
        curve="results/{experiment}/{run}/convergence-curve.tsv",
        metrics="results/{experiment}/{run}/convergence.tsv",
    log:
        "results/logs/convergence/{experiment}/{run}.log",
    benchmark:
        "results/benchmarks/convergence/{experiment}/{run}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("convergence"),
        code=code_of("convergence"),
    script:
        "../scripts/convergence.py"


rule mislabel_baselines:
    input:
        unpack(data_files),
        model=model_of(rules.train_model.output.model),
        checkpoints=model_of(rules.train_model.output.checkpoints),
    output:
        scores="results/{experiment}/mislabel-baselines.tsv",
    log:
        "results/logs/mislabel_baselines/{experiment}.log",
    benchmark:
        "results/benchmarks/mislabel_baselines/{experiment}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    params:
        arguments=params_of("mislabel_baselines"),
        code=code_of("mislabel_baselines"),
    script:
        "../scripts/mislabel_baselines.py"


rule input_features:
    input:
        unpack(data_files),
        model=model_of(rules.train_model.output.model),
    output:
        features="results/{experiment}/input-features.nc",
    log:
        "results/logs/input_features/{experiment}.log",
    benchmark:
        "results/benchmarks/input_features/{experiment}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=uses_gpu("sampling"),
    params:
        arguments=params_of("input_features"),
        code=code_of("input_features"),
    script:
        "../scripts/input_features.py"


rule mislabel_detection:
    input:
        covariance=at_seed(rules.compute_kernel.output.covariance),
        traces=at_seed(rules.merge_chains.output.traces),
        baselines=rules.mislabel_baselines.output.scores,
    output:
        metrics="results/{experiment}/seed{seed}/mislabels.tsv",
        scores="results/{experiment}/seed{seed}/mislabel-scores.tsv",
    log:
        "results/logs/mislabel_detection/{experiment}/seed{seed}.log",
    benchmark:
        "results/benchmarks/mislabel_detection/{experiment}/seed{seed}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("mislabel_detection"),
        code=code_of("mislabel_detection"),
    script:
        "../scripts/mislabel_detection.py"


rule gamma_sweep:
    input:
        covariance=at_runs(rules.compute_kernel.output.covariance, "gamma_runs"),
        correlation=at_runs(rules.compute_kernel.output.correlation, "gamma_runs"),
        replica_covariance=gamma_replica(rules.compute_kernel.output.covariance),
        replica_correlation=gamma_replica(rules.compute_kernel.output.correlation),
    output:
        cka="results/{experiment}/gamma-sweep-cka.tsv",
        lift="results/{experiment}/gamma-sweep-lift.tsv",
        ceiling="results/{experiment}/gamma-sweep-ceiling.tsv",
    log:
        "results/logs/gamma_sweep/{experiment}.log",
    benchmark:
        "results/benchmarks/gamma_sweep/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("gamma_sweep"),
        code=code_of("gamma_sweep"),
    script:
        "../scripts/gamma_sweep.py"


rule trajectory:
    input:
        covariance=at_runs(rules.compute_kernel.output.covariance, "checkpoint_runs"),
        correlation=at_runs(rules.compute_kernel.output.correlation, "checkpoint_runs"),
    output:
        table="results/{experiment}/trajectory.tsv",
        metrics="results/{experiment}/trajectory-metrics.tsv",
    log:
        "results/logs/trajectory/{experiment}.log",
    benchmark:
        "results/benchmarks/trajectory/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("trajectory"),
        code=code_of("trajectory"),
    script:
        "../scripts/trajectory.py"


rule diagnose_run:
    input:
        traces=rules.merge_chains.output.traces,
    output:
        table="results/{experiment}/{run}/diagnostics.tsv",
        summary="results/{experiment}/{run}/diagnostics-summary.tsv",
    log:
        "results/logs/diagnose_run/{experiment}/{run}.log",
    benchmark:
        "results/benchmarks/diagnose_run/{experiment}/{run}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("diagnose_run"),
        code=code_of("diagnose_run"),
    script:
        "../scripts/diagnose_run.py"


rule diagnostics:
    input:
        summaries=at_runs(rules.diagnose_run.output.summary, "runs"),
        covariance=at_runs(rules.compute_kernel.output.covariance, "main_runs"),
        correlation=at_runs(rules.compute_kernel.output.correlation, "main_runs"),
    output:
        table="results/{experiment}/diagnostics.tsv",
        metrics="results/{experiment}/diagnostics-metrics.tsv",
    log:
        "results/logs/diagnostics/{experiment}.log",
    benchmark:
        "results/benchmarks/diagnostics/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("diagnostics"),
        code=code_of("diagnostics"),
    script:
        "../scripts/diagnostics.py"


rule embed_umap:
    input:
        correlation=umap_runs(rules.compute_kernel.output.correlation),
    output:
        embedding="results/{experiment}/umap.tsv",
    log:
        "results/logs/embed_umap/{experiment}.log",
    benchmark:
        "results/benchmarks/embed_umap/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("embed_umap"),
        code=code_of("embed_umap"),
    script:
        "../scripts/embed_umap.py"


rule summarize_experiment:
    input:
        # every per-seed reading's and per-experiment reading's metrics
        seed_metrics=seed_metrics,
        experiment_metrics=experiment_metrics,
    output:
        summary="results/{experiment}/summary.tsv",
        model_headline="results/{experiment}/model-headline.tsv",
    log:
        "results/logs/summarize_experiment/{experiment}.log",
    benchmark:
        "results/benchmarks/summarize_experiment/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("summarize_experiment"),
        code=code_of("summarize_experiment"),
    script:
        "../scripts/summarize_experiment.py"


rule check_experiment:
    input:
        unpack(diagnostics_table),
        headline=rules.summarize_experiment.output.model_headline,
        summary=rules.summarize_experiment.output.summary,
        model=model_of(rules.train_model.output.model),
    output:
        checks="results/{experiment}/checks.tsv",
    log:
        "results/logs/check_experiment/{experiment}.log",
    benchmark:
        "results/benchmarks/check_experiment/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("check_experiment"),
        code=code_of("check_experiment"),
    script:
        "../scripts/check_experiment.py"


rule summarize_models:
    input:
        # each trained model's headline rows, summary and diagnostics, model 0 first
        headlines=at_models(rules.summarize_experiment.output.model_headline),
        summaries=at_models(rules.summarize_experiment.output.summary),
        diagnostics=at_models(rules.diagnostics.output.table),
    output:
        headline="results/{experiment}/headline.tsv",
        comparisons="results/{experiment}/comparisons.tsv",
    log:
        "results/logs/summarize_models/{experiment}.log",
    benchmark:
        "results/benchmarks/summarize_models/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("summarize_models"),
        code=code_of("summarize_models"),
    script:
        "../scripts/summarize_models.py"


rule headline_table:
    input:
        fragments=expand(rules.summarize_models.output.headline, experiment=PLAN.experiments),
        comparison_fragments=expand(
            rules.summarize_models.output.comparisons, experiment=PLAN.experiments
        ),
        # the checks are inputs, so a failed gate stops the table and the paper's macros
        checks=checks(PLAN.experiments),
    output:
        table="results/tables/headline.tsv",
        comparisons="results/tables/comparisons.tsv",
        # the same rows as a page the report shows (it only offers a .tsv for download)
        html=report(
            "results/tables/headline.html",
            caption="../report/headline.rst",
            category="Headline numbers",
            subcategory="all experiments",
        ),
    log:
        "results/logs/headline_table/headline.log",
    benchmark:
        "results/benchmarks/headline_table/headline.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("headline_table"),
        code=code_of("headline_table"),
    script:
        "../scripts/headline_table.py"
