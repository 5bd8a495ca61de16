# The paper is a node of the DAG: every number its text quotes is a generated macro, and every
# figure it includes is a workflow output. `snakemake --cores all paper` builds paper/main.pdf;
# TeX is optional, so `all` does not ask for it.

import sys
from pathlib import Path

from losskernel.pipeline.paper import included_figures

# The source is read from the checkout, the macros and figures from the working directory, so
# `snakemake --directory elsewhere paper` builds the paper of that directory's results.
PAPER_SOURCE = Path(workflow.basedir) / "paper/main.tex"
# Every figure main.tex includes, as a path in the working directory (losskernel.pipeline.paper).
PAPER_FIGURES = included_figures(PAPER_SOURCE.read_text())
# The rule paper writes who made each figure (rule, step, commit: from the figure's own PNG
# record) as the LaTeX macro \madeby, with the Python that runs snakemake and this checkout's
# package, as the jobs use it.
WRITE_FIGURE_PROVENANCE = (
    "import sys; from losskernel.pipeline.paper import write_figure_provenance; "
    "write_figure_provenance(*sys.argv[1:])"
)
# Rule paper's command: the figures' provenance table, then latexmk.
PAPER_COMMAND = (
    "if ! command -v latexmk > /dev/null; then"
    "  echo {params.missing_tex:q} | tee {log:q} >&2; exit 1;"
    " fi; "
    "PYTHONPATH={params.src:q} {params.python:q} -c {params.write_provenance:q}"
    " {input.tex:q} {output.provenance:q} {params.checkout:q} > {log:q} 2>&1 && "
    "cd paper && latexmk -pdf -interaction=nonstopmode -halt-on-error {input.tex:q}"
    " >> ../{log:q} 2>&1"
)
# The Debian packages that compile main.tex: geometry, graphicx, amsmath and hyperref are in
# texlive-latex-base, booktabs is in texlive-latex-recommended.
TEX_PACKAGES = "latexmk texlive-latex-base texlive-latex-recommended"


rule paper_macros:
    input:
        headline=rules.headline_table.output.table,
        comparisons=rules.headline_table.output.comparisons,
    output:
        macros="paper/generated/macros.tex",
    log:
        "results/logs/paper_macros/macros.log",
    benchmark:
        "results/benchmarks/paper_macros/macros.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("paper_macros"),
        code=code_of("paper_macros"),
    script:
        "../scripts/paper_macros.py"


rule paper:
    input:
        tex=str(PAPER_SOURCE),
        macros=rules.paper_macros.output.macros,
        figures=PAPER_FIGURES,
    output:
        pdf="paper/main.pdf",
        provenance="paper/generated/figure-provenance.tex",
    log:
        "results/logs/paper/latexmk.log",
    benchmark:
        "results/benchmarks/paper/latexmk.tsv"
    # Where snakemake runs, not on a cluster node: it is seconds of work, and TeX is installed
    # where the user installed it.
    localrule: True
    # latexmk runs in a shadow copy of the working directory, so its .aux, .log, .fls and
    # .fdb_latexmk files are discarded with it and only main.pdf comes back.
    shadow:
        "minimal"
    # Used only with --sdm apptainer (TeX Live 2022, as in Debian 12); otherwise the system's TeX.
    # The image has no Python with losskernel's packages: with --sdm apptainer, writing
    # figure-provenance.tex fails (the rule's log says so).
    container:
        "docker://texlive/texlive:TL2022-historic"
    threads: 1
    params:
        missing_tex=(
            "paper: latexmk is not on PATH. The paper needs a TeX system: install the Debian "
            f"packages {TEX_PACKAGES} (apt-get install --no-install-recommends {TEX_PACKAGES}), "
            "or build without the target `paper` (`all` does not need TeX)."
        ),
        python=sys.executable,
        src=str(Path(workflow.basedir) / "src"),
        # the checkout of main.tex, whose git state the file's own record names
        checkout=lambda wildcards, input: Path(input.tex).parents[1],
        write_provenance=WRITE_FIGURE_PROVENANCE,
        code=shell_code(PAPER_COMMAND, WRITE_FIGURE_PROVENANCE, "workflow/rules/paper.smk"),
    shell:
        PAPER_COMMAND
