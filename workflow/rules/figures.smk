# Figures only draw: they read computed tables and kernels, so restyling never re-samples.


rule plot_experiment:
    input:
        correlation=figure_seed_file("results/{experiment}/seed{seed}/kernel-correlation.nc"),
        embedding="results/{experiment}/umap.tsv",
        scores=per_seed("results/{experiment}/seed{seed}/separation-scores.tsv"),
        metrics=per_seed("results/{experiment}/seed{seed}/separation.tsv"),
    output:
        heatmap=report(
            "results/figures/{experiment}/kernel_heatmap.png",
            caption="../report/kernel_heatmap.rst",
            category="Modular arithmetic",
            subcategory="{experiment}",
        ),
        distributions=report(
            "results/figures/{experiment}/kernel_distributions.png",
            caption="../report/kernel_distributions.rst",
            category="Modular arithmetic",
            subcategory="{experiment}",
        ),
        umap=report(
            "results/figures/{experiment}/umap.png",
            caption="../report/umap.rst",
            category="Modular arithmetic",
            subcategory="{experiment}",
        ),
        roc=report(
            "results/figures/{experiment}/roc.png",
            caption="../report/roc.rst",
            category="Modular arithmetic",
            subcategory="{experiment}",
        ),
    params:
        seeds=seeds,
        figure_seed=lambda w: experiment(w)["analysis"]["figure_seed"],
        knn_k=lambda w: experiment(w)["analysis"]["knn_k"],
    log:
        "results/logs/plot_experiment/{experiment}.log",
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/plot_experiment.py"
