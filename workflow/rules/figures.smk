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
    benchmark:
        "results/benchmarks/plot_experiment/{experiment}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/plot_experiment.py"


rule plot_gamma_sweep:
    input:
        cka="results/{experiment}/gamma-sweep-cka.tsv",
        lift="results/{experiment}/gamma-sweep-lift.tsv",
        convergence=per_gamma("results/{experiment}/{run}/convergence-curve.tsv"),
    output:
        cka=report(
            "results/figures/{experiment}/gamma_cka.png",
            caption="../report/gamma_cka.rst",
            category="Appendix analyses",
            subcategory="{experiment}",
        ),
        lift=report(
            "results/figures/{experiment}/gamma_lift.png",
            caption="../report/gamma_lift.rst",
            category="Appendix analyses",
            subcategory="{experiment}",
        ),
        convergence=report(
            "results/figures/{experiment}/convergence.png",
            caption="../report/convergence.rst",
            category="Appendix analyses",
            subcategory="{experiment}",
        ),
    params:
        localizations=lambda w: experiment(w)["analysis"]["gamma_sweep"]["localizations"],
    log:
        "results/logs/plot_gamma_sweep/{experiment}.log",
    benchmark:
        "results/benchmarks/plot_gamma_sweep/{experiment}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/plot_gamma_sweep.py"


rule plot_mislabels:
    input:
        scores=figure_seed_file("results/{experiment}/seed{seed}/mislabel-scores.tsv"),
        metrics=figure_seed_file("results/{experiment}/seed{seed}/mislabels.tsv"),
        embedding="results/{experiment}/umap.tsv",
    output:
        roc=report(
            "results/figures/{experiment}/mislabel_roc.png",
            caption="../report/mislabel_roc.rst",
            category="Appendix analyses",
            subcategory="{experiment}",
        ),
        self_covariance=report(
            "results/figures/{experiment}/self_covariance.png",
            caption="../report/self_covariance.rst",
            category="Appendix analyses",
            subcategory="{experiment}",
        ),
        umap=report(
            "results/figures/{experiment}/umap_mislabels.png",
            caption="../report/umap_mislabels.rst",
            category="Appendix analyses",
            subcategory="{experiment}",
        ),
    params:
        figure_seed=lambda w: experiment(w)["analysis"]["figure_seed"],
    log:
        "results/logs/plot_mislabels/{experiment}.log",
    benchmark:
        "results/benchmarks/plot_mislabels/{experiment}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/plot_mislabels.py"


rule plot_trajectory:
    input:
        table="results/{experiment}/trajectory.tsv",
        embedding="results/{experiment}/umap.tsv",
    output:
        score=report(
            "results/figures/{experiment}/trajectory_score.png",
            caption="../report/trajectory_score.rst",
            category="Appendix analyses",
            subcategory="{experiment}",
        ),
        umap=report(
            "results/figures/{experiment}/trajectory_umap.png",
            caption="../report/trajectory_umap.rst",
            category="Appendix analyses",
            subcategory="{experiment}",
        ),
    log:
        "results/logs/plot_trajectory/{experiment}.log",
    benchmark:
        "results/benchmarks/plot_trajectory/{experiment}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/plot_trajectory.py"


rule plot_figure1:
    input:
        correlation=figure_seed_file("results/{experiment}/seed{seed}/kernel-correlation.nc"),
        embedding="results/{experiment}/umap.tsv",
        lift=figure_seed_file("results/{experiment}/seed{seed}/taxonomic-lift.tsv"),
    output:
        umap=report(
            "results/figures/{experiment}/umap_hierarchy.png",
            caption="../report/umap_hierarchy.rst",
            category="ImageNet (Figure 1)",
            subcategory="{experiment}",
        ),
        umap_3d=report(
            "results/figures/{experiment}/umap_hierarchy_3d.png",
            caption="../report/umap_hierarchy_3d.rst",
            category="ImageNet (Figure 1)",
            subcategory="{experiment}",
        ),
        matrices=report(
            "results/figures/{experiment}/kernel_vs_wordnet.png",
            caption="../report/kernel_vs_wordnet.rst",
            category="ImageNet (Figure 1)",
            subcategory="{experiment}",
        ),
        insets=report(
            "results/figures/{experiment}/neighbourhood_insets.png",
            caption="../report/neighbourhood_insets.rst",
            category="ImageNet (Figure 1)",
            subcategory="{experiment}",
        ),
        lift=report(
            "results/figures/{experiment}/taxonomic_lift.png",
            caption="../report/taxonomic_lift.rst",
            category="ImageNet (Figure 1)",
            subcategory="{experiment}",
        ),
    params:
        figure_seed=lambda w: experiment(w)["analysis"]["figure_seed"],
        analysis=lambda w: experiment(w)["analysis"],
        image_root=lambda w: experiment(w)["data"]["root"],
    log:
        "results/logs/plot_figure1/{experiment}.log",
    benchmark:
        "results/benchmarks/plot_figure1/{experiment}.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/plot_figure1.py"
