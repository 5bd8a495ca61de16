# The paper is a node of the DAG: every number its text quotes is a generated macro.


rule paper_macros:
    input:
        headline="results/tables/headline.tsv",
    output:
        macros="paper/generated/macros.tex",
    params:
        settings=quoted_settings(config),
    log:
        "results/logs/paper_macros/macros.log",
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/paper_macros.py"
