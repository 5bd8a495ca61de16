# Readings of the kernels: task separation and mislabels per seed, convergence per run, the γ
# sweep and the developmental trajectory per experiment, summaries over seeds, the headline
# table and the UMAP coordinates the figures draw.


rule score_separation:
    input:
        correlation="results/{experiment}/seed{seed}/kernel-correlation.nc",
        traces="results/{experiment}/seed{seed}/traces.nc",
    output:
        metrics="results/{experiment}/seed{seed}/separation.tsv",
        scores="results/{experiment}/seed{seed}/separation-scores.tsv",
    params:
        task=lambda w: experiment(w)["task"],
        knn_k=lambda w: experiment(w)["analysis"]["knn_k"],
        standard_error_batches=lambda w: experiment(w)["analysis"]["standard_error_batches"],
    log:
        "results/logs/score_separation/{experiment}/seed{seed}.log",
    benchmark:
        "results/benchmarks/score_separation/{experiment}/seed{seed}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/score_separation.py"


rule convergence:
    input:
        traces="results/{experiment}/{run}/traces.nc",
    output:
        curve="results/{experiment}/{run}/convergence-curve.tsv",
        metrics="results/{experiment}/{run}/convergence.tsv",
    params:
        centring=lambda w: experiment(w)["kernel"]["centring"],
        num_points=lambda w: experiment(w)["analysis"]["convergence"]["num_points"],
    log:
        "results/logs/convergence/{experiment}/{run}.log",
    benchmark:
        "results/benchmarks/convergence/{experiment}/{run}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/convergence.py"


rule mislabel_baselines:
    input:
        model=lambda w: f"results/{model_source(config, w.experiment)}/model.pt",
        checkpoints=lambda w: f"results/{model_source(config, w.experiment)}/checkpoints.pt",
    output:
        scores="results/{experiment}/mislabel-baselines.tsv",
    params:
        task=lambda w: experiment(w)["task"],
        data=data_settings,
        kernel_inputs=lambda w: experiment(w)["kernel_inputs"],
        mislabels=lambda w: experiment(w)["analysis"]["mislabels"],
    log:
        "results/logs/mislabel_baselines/{experiment}.log",
    benchmark:
        "results/benchmarks/mislabel_baselines/{experiment}.tsv"
    threads: 1
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/mislabel_baselines.py"


rule mislabel_detection:
    input:
        covariance="results/{experiment}/seed{seed}/kernel-covariance.nc",
        traces="results/{experiment}/seed{seed}/traces.nc",
        baselines="results/{experiment}/mislabel-baselines.tsv",
    output:
        metrics="results/{experiment}/seed{seed}/mislabels.tsv",
        scores="results/{experiment}/seed{seed}/mislabel-scores.tsv",
    log:
        "results/logs/mislabel_detection/{experiment}/seed{seed}.log",
    benchmark:
        "results/benchmarks/mislabel_detection/{experiment}/seed{seed}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/mislabel_detection.py"


rule taxonomy:
    input:
        correlation="results/{experiment}/seed{seed}/kernel-correlation.nc",
    output:
        lift="results/{experiment}/seed{seed}/taxonomic-lift.tsv",
        metrics="results/{experiment}/seed{seed}/taxonomy.tsv",
    params:
        task=lambda w: experiment(w)["task"],
        knn_k=lambda w: experiment(w)["analysis"]["knn_k"],
    log:
        "results/logs/taxonomy/{experiment}/seed{seed}.log",
    benchmark:
        "results/benchmarks/taxonomy/{experiment}/seed{seed}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/taxonomy.py"


rule gamma_sweep:
    input:
        covariance=per_gamma("results/{experiment}/{run}/kernel-covariance.nc"),
        correlation=per_gamma("results/{experiment}/{run}/kernel-correlation.nc"),
    output:
        cka="results/{experiment}/gamma-sweep-cka.tsv",
        lift="results/{experiment}/gamma-sweep-lift.tsv",
    params:
        task=lambda w: experiment(w)["task"],
        gamma_sweep=lambda w: experiment(w)["analysis"]["gamma_sweep"],
    log:
        "results/logs/gamma_sweep/{experiment}.log",
    benchmark:
        "results/benchmarks/gamma_sweep/{experiment}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/gamma_sweep.py"


rule trajectory:
    input:
        covariance=per_checkpoint("results/{experiment}/{run}/kernel-covariance.nc"),
        correlation=per_checkpoint("results/{experiment}/{run}/kernel-correlation.nc"),
    output:
        table="results/{experiment}/trajectory.tsv",
        metrics="results/{experiment}/trajectory-metrics.tsv",
    params:
        task=lambda w: experiment(w)["task"],
        knn_k=lambda w: experiment(w)["analysis"].get("knn_k"),
    log:
        "results/logs/trajectory/{experiment}.log",
    benchmark:
        "results/benchmarks/trajectory/{experiment}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/trajectory.py"


rule summarize_experiment:
    input:
        seed_metrics=lambda w: [p for paths in seed_metric_files(w).values() for p in paths],
        experiment_metrics=experiment_metric_files,
    output:
        summary="results/{experiment}/summary.tsv",
        headline="results/{experiment}/headline.tsv",
    params:
        seed_metrics=seed_metric_files,
        experiment_metrics=experiment_metric_files,
        headline_metrics=lambda w: experiment(w)["headline_metrics"],
    log:
        "results/logs/summarize_experiment/{experiment}.log",
    benchmark:
        "results/benchmarks/summarize_experiment/{experiment}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/summarize_experiment.py"


rule headline_table:
    input:
        fragments=expand("results/{experiment}/headline.tsv", experiment=EXPERIMENTS),
    output:
        table="results/tables/headline.tsv",
    log:
        "results/logs/headline_table/headline.log",
    benchmark:
        "results/benchmarks/headline_table/headline.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/headline_table.py"


rule embed_umap:
    input:
        correlation=embedded_kernels,
    output:
        embedding="results/{experiment}/umap.tsv",
    params:
        task=lambda w: experiment(w)["task"],
        umap=lambda w: experiment(w)["analysis"]["umap"],
    log:
        "results/logs/embed_umap/{experiment}.log",
    benchmark:
        "results/benchmarks/embed_umap/{experiment}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/embed_umap.py"
