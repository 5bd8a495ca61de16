# The run as a Workflow Run RO-Crate (losskernel.crate), made after everything the default
# target makes: the workflow, the resolved config, every job as an action with its files,
# times, commit and code fingerprint, the software, the machine, the data with hashes and
# origins, and the results; zipped, ready to deposit. Its preview page goes into the report,
# whose front page names the crate and the checkout's commit (param commit: a new commit, or a
# copy of the checkout without git, remakes the crate, and only the crate).


rule crate:
    input:
        run_outputs,
    output:
        crate="results/crate.zip",
        preview=report(
            "results/crate-preview.html",
            caption="../report/crate.rst",
            category="Provenance",
            subcategory="this run",
        ),
    log:
        "results/logs/crate/crate.log",
    benchmark:
        "results/benchmarks/crate/crate.tsv"
    # reads the records of every result, where the results are: seconds of work
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("crate"),
        commit=CHECKOUT_COMMIT,
        code=code_of("crate"),
    script:
        "../scripts/crate.py"
