# Sweeps (config key sweeps): experiments that differ in one setting, read side by side. Each
# sweep's table gathers its experiments' headline rows (every trained model, its spreads) with
# the swept size beside them; its figure draws them against that size.


rule summarize_sweep:
    input:
        headlines=sweep_headlines,
        # the sweep's models passed their checks, as the headline table's did
        checks=sweep_checks,
    output:
        table="results/sweeps/{sweep}.tsv",
    log:
        "results/logs/summarize_sweep/{sweep}.log",
    benchmark:
        "results/benchmarks/summarize_sweep/{sweep}.tsv"
    wildcard_constraints:
        sweep=only(PLAN.sweeps),
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("summarize_sweep"),
        code=code_of("summarize_sweep"),
    script:
        "../scripts/summarize_sweep.py"


rule plot_sweep:
    input:
        table=rules.summarize_sweep.output.table,
    output:
        sweep=report(
            "results/figures/sweeps/{sweep}.png",
            caption="../report/sweep.rst",
            category="Sweeps",
            subcategory="{sweep}",
        ),
    log:
        "results/logs/plot_sweep/{sweep}.log",
    benchmark:
        "results/benchmarks/plot_sweep/{sweep}.tsv"
    wildcard_constraints:
        sweep=only(PLAN.sweeps),
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("plot_sweep"),
        code=code_of("plot_sweep"),
    script:
        "../scripts/plot_sweep.py"
