# The outside data each task reads (Debian's Fashion-MNIST and WordNet files, scikit-learn's
# digits, an ImageNet tree): one manifest per data source, results/data/<source>.tsv, with
# each file's size, sha256 and origin (losskernel.manifest). Every job that reads the data
# takes the manifest as an input, so its records name the data by hash. A source's single
# files are this rule's inputs (a changed file reruns it, and so everything downstream); a
# tree's files are too many to list, and its param `arguments` carries a stamp of their sizes
# and modification times instead (Snakemake's params trigger reruns it when one changes).


rule record_data:
    input:
        files=data_source_files,
    output:
        manifest="results/data/{source}.tsv",
    log:
        "results/logs/record_data/{source}.log",
    benchmark:
        "results/benchmarks/record_data/{source}.tsv"
    wildcard_constraints:
        source=only(PLAN.data_sources),
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("record_data"),
        code=code_of("record_data"),
    script:
        "../scripts/record_data.py"
