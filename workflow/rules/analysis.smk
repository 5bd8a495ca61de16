# Readings of the kernels: task separation per seed, summaries over seeds, the headline table
# and the UMAP coordinates the figures draw.


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
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/score_separation.py"


rule summarize_experiment:
    input:
        metrics=per_seed("results/{experiment}/seed{seed}/separation.tsv"),
    output:
        summary="results/{experiment}/summary.tsv",
        headline="results/{experiment}/headline.tsv",
    params:
        seeds=seeds,
        headline_metrics=lambda w: experiment(w)["headline_metrics"],
    log:
        "results/logs/summarize_experiment/{experiment}.log",
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
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/headline_table.py"


rule embed_umap:
    input:
        correlation=figure_seed_file("results/{experiment}/seed{seed}/kernel-correlation.nc"),
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
