# Readings of the kernels: convergence per run, mislabels per seed, the γ sweep and the
# developmental trajectory per experiment, summaries over seeds, the headline table and the
# UMAP coordinates the figures draw. The tasks' own readings are in tasks.smk.


rule convergence:
    input:
        unpack(inputs_of("convergence")),
    output:
        **outputs_of("convergence"),
    log:
        "results/logs/convergence/{experiment}/{run}.log",
    benchmark:
        "results/benchmarks/convergence/{experiment}/{run}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("convergence"),
    script:
        "../scripts/run_step.py"


rule mislabel_baselines:
    input:
        unpack(inputs_of("mislabel_baselines")),
    output:
        **outputs_of("mislabel_baselines"),
    log:
        "results/logs/mislabel_baselines/{experiment}.log",
    benchmark:
        "results/benchmarks/mislabel_baselines/{experiment}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    params:
        **params_of("mislabel_baselines"),
    script:
        "../scripts/run_step.py"


rule input_features:
    input:
        unpack(inputs_of("input_features")),
    output:
        **outputs_of("input_features"),
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
        **params_of("input_features"),
    script:
        "../scripts/run_step.py"


rule mislabel_detection:
    input:
        unpack(inputs_of("mislabel_detection")),
    output:
        **outputs_of("mislabel_detection"),
    log:
        "results/logs/mislabel_detection/{experiment}/seed{seed}.log",
    benchmark:
        "results/benchmarks/mislabel_detection/{experiment}/seed{seed}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("mislabel_detection"),
    script:
        "../scripts/run_step.py"


rule gamma_sweep:
    input:
        unpack(inputs_of("gamma_sweep")),
    output:
        **outputs_of("gamma_sweep"),
    log:
        "results/logs/gamma_sweep/{experiment}.log",
    benchmark:
        "results/benchmarks/gamma_sweep/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("gamma_sweep"),
    script:
        "../scripts/run_step.py"


rule trajectory:
    input:
        unpack(inputs_of("trajectory")),
    output:
        **outputs_of("trajectory"),
    log:
        "results/logs/trajectory/{experiment}.log",
    benchmark:
        "results/benchmarks/trajectory/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("trajectory"),
    script:
        "../scripts/run_step.py"


rule summarize_experiment:
    input:
        unpack(inputs_of("summarize_experiment")),
    output:
        **outputs_of("summarize_experiment"),
    log:
        "results/logs/summarize_experiment/{experiment}.log",
    benchmark:
        "results/benchmarks/summarize_experiment/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("summarize_experiment"),
    script:
        "../scripts/run_step.py"


rule check_experiment:
    input:
        unpack(inputs_of("check_experiment")),
    output:
        **outputs_of("check_experiment"),
    log:
        "results/logs/check_experiment/{experiment}.log",
    benchmark:
        "results/benchmarks/check_experiment/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("check_experiment"),
    script:
        "../scripts/run_step.py"


rule headline_table:
    input:
        unpack(inputs_of("headline_table")),
    output:
        table=outputs_of("headline_table")["table"],
        # the same rows as a page the report shows (it only offers a .tsv for download)
        html=report(
            outputs_of("headline_table")["html"],
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
        **params_of("headline_table"),
    script:
        "../scripts/run_step.py"


rule embed_umap:
    input:
        unpack(inputs_of("embed_umap")),
    output:
        **outputs_of("embed_umap"),
    log:
        "results/logs/embed_umap/{experiment}.log",
    benchmark:
        "results/benchmarks/embed_umap/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("embed_umap"),
    script:
        "../scripts/run_step.py"


rule diagnose_run:
    input:
        unpack(inputs_of("diagnose_run")),
    output:
        **outputs_of("diagnose_run"),
    log:
        "results/logs/diagnose_run/{experiment}/{run}.log",
    benchmark:
        "results/benchmarks/diagnose_run/{experiment}/{run}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("diagnose_run"),
    script:
        "../scripts/run_step.py"


rule diagnostics:
    input:
        unpack(inputs_of("diagnostics")),
    output:
        **outputs_of("diagnostics"),
    log:
        "results/logs/diagnostics/{experiment}.log",
    benchmark:
        "results/benchmarks/diagnostics/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("diagnostics"),
    script:
        "../scripts/run_step.py"
