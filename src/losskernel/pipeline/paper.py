"""Steps of the summaries: an experiment's metrics and headline rows, the headline table, the
paper's LaTeX macros; and the provenance of the paper's figures, which the rule ``paper``
writes before it runs LaTeX (:func:`write_figure_provenance`)."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from losskernel.pipeline.io import Files, Record, read_tsv
from losskernel.provenance import atomic_path, short_commit, write_tsv
from losskernel.readings.summary import (
    gather_metrics,
    headline_rows,
    latex_macros,
    model_headline,
    paired_comparisons,
    runs_pass,
)


def summarize_experiment(inputs: Files, outputs: Files, *, experiment: str, seeds: Sequence[int],
                         headline_metrics: Sequence[str], record: Record) -> None:
    """Every metric of every seed of one model in one table (``summary``) and the model's
    headline rows over its seeds (``model_headline``; see
    ``losskernel.readings.summary.headline_rows``).

    ``seed_metrics`` are the per-seed metric tables, seed by seed in the order of ``seeds``,
    the same readings for each; ``experiment_metrics`` hold one value per experiment.
    """
    paths = list(inputs["seed_metrics"])
    per_seed = len(paths) // len(seeds)
    seed_tables = {seed: [(str(path), read_tsv(path))
                          for path in paths[index * per_seed:(index + 1) * per_seed]]
                   for index, seed in enumerate(seeds)}
    gathered = gather_metrics(seed_tables, [(str(path), read_tsv(path))
                                            for path in inputs["experiment_metrics"]])
    write_tsv(gathered, outputs["summary"], record)
    write_tsv(headline_rows(experiment, gathered, headline_metrics, str(outputs["summary"])),
              outputs["model_headline"], record)


def summarize_models(inputs: Files, outputs: Files, *, experiment: str,
                     runs_behind: Mapping[str, Sequence[str]], bounds: Mapping[str, float],
                     comparisons: Sequence[Sequence[str]], record: Record) -> None:
    """The experiment's ``headline`` over its trained models and its kernel-versus-baseline
    ``comparisons``, paired by model (``losskernel.readings.summary.model_headline`` and
    ``paired_comparisons``).

    Inputs, one file per model, model 0 first: ``headlines`` (each model's headline rows over
    its seeds), ``summaries`` (every metric of every seed) and ``diagnostics`` (a row per
    run). A metric's diagnostics pass when each of its ``runs_behind`` passes in every model
    that reports it (``runs_pass`` with ``bounds``: ``max_rhat``, ``min_median_ess``).
    """
    per_model = [read_tsv(path) for path in inputs["headlines"]]
    passed = [runs_pass(read_tsv(path), **bounds) for path in inputs["diagnostics"]]
    reported = [set(headline["metric"]) for headline in per_model]
    diagnostics_passed = {
        metric: all(bool(runs[run]) for runs, metrics in zip(passed, reported, strict=True)
                    if metric in metrics for run in runs_behind[metric])
        for metric in per_model[0]["metric"]}
    source = ", ".join(map(str, inputs["headlines"]))
    write_tsv(model_headline(experiment, per_model, diagnostics_passed, source),
              outputs["headline"], record)
    write_tsv(paired_comparisons(experiment, [read_tsv(path) for path in inputs["summaries"]],
                                 comparisons, ", ".join(map(str, inputs["summaries"]))),
              outputs["comparisons"], record)


def summarize_sweep(inputs: Files, outputs: Files, *, sweep: str, experiments: Sequence[str],
                    x: str, label: str | None, panels: Mapping[str, Sequence[str]],
                    record: Record) -> None:
    """A sweep's ``table`` (``losskernel.readings.sweep.sweep_table``) from its experiments'
    headline tables (``headlines``, in the order of ``experiments``)."""
    from losskernel.readings.sweep import sweep_table

    headlines = {experiment: read_tsv(path)
                 for experiment, path in zip(experiments, inputs["headlines"], strict=True)}
    write_tsv(sweep_table(sweep, headlines, x, panels, label), outputs["table"], record)


def headline_table(inputs: Files, outputs: Files, *, record: Record) -> None:
    """The experiments' headline rows (``fragments``) in one ``table``, their comparisons
    (``comparison_fragments``) in ``comparisons``, and the headline rows as an HTML page,
    ``html``, which the workflow's report shows (:func:`headline_html`)."""
    table = pd.concat([read_tsv(path) for path in inputs["fragments"]], ignore_index=True)
    write_tsv(table, outputs["table"], record)
    write_tsv(pd.concat([read_tsv(path) for path in inputs["comparison_fragments"]],
                        ignore_index=True), outputs["comparisons"], record)
    with atomic_path(outputs["html"]) as partial:
        partial.write_text(headline_html(table, record, str(outputs["table"])))


def headline_html(table: pd.DataFrame, record: Record, source: str) -> str:
    """The headline table as a standalone HTML page: one row per experiment and metric, values
    as in the TSV ``source`` (6 significant digits; no spread: a dash), the counts and the
    diagnostics verdict right beside them, and the provenance
    record as ``<!-- key: value -->`` comments (its ``config`` left out) and a footer line."""
    body = table.to_html(index=False, na_rep="–", float_format=lambda value: f"{value:.6g}",
                         border=0, classes="headline", escape=True)
    commit = short_commit(str(record.get("git_commit", "")))
    dirty = " (uncommitted changes)" if str(record.get("git_dirty", "")) == "1" else ""
    comments = "".join(f"<!-- {key}: {str(value).replace('--', '- -')} -->\n"
                       for key, value in record.items() if key != "config")  # '--' ends one
    return (f"<!DOCTYPE html>\n{comments}<html><head><meta charset=\"utf-8\">"
            "<title>Headline numbers</title><style>"
            "body{font-family:sans-serif;font-size:14px;margin:1em}"
            "table.headline{border-collapse:collapse}"
            "table.headline th,table.headline td{padding:2px 10px;text-align:left;"
            "white-space:nowrap}"
            "table.headline td:nth-child(n+3):nth-child(-n+7){text-align:right;"
            "font-variant-numeric:tabular-nums}"
            "table.headline tr:nth-child(even){background:#f2f2f2}"
            "p.provenance{color:#555;font-size:12px}"
            f"</style></head><body>\n{body}\n"
            f"<p class=\"provenance\">{html.escape(source)}, written by rule "
            f"{html.escape(str(record.get('rule', '')))} at commit {commit}{dirty}, "
            f"{html.escape(str(record.get('created_at', '')))}.</p>\n</body></html>\n")


def paper_macros(inputs: Files, outputs: Files, *,
                 settings: Mapping[str, Mapping[str, object]], record: Record) -> None:
    """LaTeX macros of every headline number of ``headline``, every comparison of
    ``comparisons`` and every quoted setting, as ``macros`` (see
    ``losskernel.readings.summary.latex_macros``)."""
    comments = [f"% generated from {inputs['headline']}; do not edit",
                *(f"% {key}: {value}" for key, value in record.items() if key != "config")]
    with atomic_path(outputs["macros"]) as partial:
        partial.write_text(latex_macros(read_tsv(inputs["headline"]),
                                        read_tsv(inputs["comparisons"]), settings, comments))


CHECKOUT = Path(__file__).resolve().parents[3]
"""The checkout whose ``src/`` holds this package: a rule's script imports the package from
its own checkout, so this is the workflow that ran (its Snakefile, rules and scripts)."""

# The provenance of the paper's figures, read back from each figure's PNG.

PAPER_GRAPHICS = re.compile(r"\\includegraphics(?:\[[^]]*\])?\{([^}]+)\}")
PAPER_FIGURE = re.compile(r"\\begin\{figure\*?\}(.*?)\\end\{figure\*?\}", re.S)
MADE_BY = re.compile(r"\\madeby\{([^}]*)\}")
SNAKEMAKE_SCRIPT = "workflow/scripts/{step}.py"
"""The script of a rule whose step is ``step`` (records of the retired command line that ran
one job name their rule ``cli:<rule>``)."""


def included_figures(tex: str) -> list[str]:
    """Every figure a LaTeX source includes, in order and once each, as a path in the working
    directory: each ``\\includegraphics`` name resolved against the first ``\\graphicspath``
    entry, which is relative to ``paper/``, the directory latexmk runs in. Commented-out
    lines include nothing."""
    text, directory = _uncommented(tex)
    return list(dict.fromkeys(_included(text, directory)))


def figure_groups(tex: str) -> dict[str, list[str]]:
    """The figures of each ``figure`` environment of a LaTeX source, by the key of its
    ``\\madeby{key}`` (paths as in :func:`included_figures`).

    Raises ``ValueError`` for an environment that includes figures without exactly one
    ``\\madeby``, and for a key used twice."""
    text, directory = _uncommented(tex)
    groups: dict[str, list[str]] = {}
    for body in PAPER_FIGURE.findall(text):
        included, keys = _included(body, directory), MADE_BY.findall(body)
        if not included:
            continue
        if len(keys) != 1:
            raise ValueError(f"the figure environment including {included[0]} has "
                             f"{len(keys)} \\madeby{{...}}, not 1: put one \\madeby{{name}} "
                             "after its caption (paper/main.tex)")
        if keys[0] in groups:
            raise ValueError(f"\\madeby{{{keys[0]}}} names two figure environments; give "
                             "each its own name (paper/main.tex)")
        groups[keys[0]] = included
    return groups


def _uncommented(tex: str) -> tuple[str, str]:
    """``tex`` without its comments, and the directory of its figures (``\\graphicspath``)."""
    text = re.sub(r"(?<!\\)%.*", "", tex)
    graphicspath = re.search(r"\\graphicspath\{\{([^}]*)\}", text)
    return text, os.path.join("paper", graphicspath.group(1) if graphicspath else "")


def _included(text: str, directory: str) -> list[str]:
    return [os.path.normpath(os.path.join(directory, name))
            for name in PAPER_GRAPHICS.findall(text)]


def write_figure_provenance(tex: str | os.PathLike, output: str | os.PathLike,
                            code_dir: str | os.PathLike) -> None:
    """Write ``output``, the LaTeX file that defines ``\\madeby{key}`` for every figure
    environment of the source ``tex`` (see :func:`figure_groups`): who made its figures, read
    from each figure's own PNG provenance record (rule, step, drawing function, commit), not
    from the code of now. The file's own record names ``code_dir``'s git state, and
    ``\\builtatcommit`` typesets its commit (the reproducibility statement's; like
    ``\\madeby``, not an ``\\lk...`` macro: those are the numbers of ``macros.tex``)."""
    from losskernel.provenance import collect_provenance

    groups = figure_groups(Path(tex).read_text())
    figures = list(dict.fromkeys(path for paths in groups.values() for path in paths))
    record = collect_provenance(None, rule="paper", inputs=figures, workdir=code_dir)
    comments = ["% generated from the PNG metadata of the figures paper/main.tex includes; "
                "do not edit", *(f"% {key}: {value}" for key, value in record.items()
                                  if key != "config")]
    built_at = short_commit(record["git_commit"]) + (
        " (uncommitted changes)" if record["git_dirty"] else "")
    with atomic_path(output) as partial:
        partial.write_text(figure_provenance_macros(
            {key: [(path, figure_record(path)) for path in paths]
             for key, paths in groups.items()}, comments)
            + f"\\newcommand{{\\builtatcommit}}{{{_tex_commit(built_at)}}}\n")


def figure_record(path: str | os.PathLike) -> dict[str, str]:
    """A figure's provenance record with the ``step`` and ``draw`` that figures add to it
    (:func:`losskernel.pipeline.figures.save_figures`; empty when the figure has none)."""
    from losskernel.provenance import _png_text, read_provenance

    record = read_provenance(path)
    extra = _png_text(Path(path))  # read_provenance keeps the keys of every artifact only
    return {**record, "step": extra.get("step", ""), "draw": extra.get("draw", "")}


def figure_provenance_macros(groups: Mapping[str, Sequence[tuple[str, Mapping[str, str]]]],
                             comment_lines: Sequence[str] = ()) -> str:
    """The text of the figure-provenance file: ``\\madeby{key}`` typesets, for the figure
    environment ``key`` of ``groups`` (key -> ``(path, record)`` of each figure), a small
    paragraph naming the rule, script, drawing function and commit that made its figures:

        Made by rule plot_mislabels (workflow/scripts/plot_mislabels.py -> losskernel.plotting.
        figures.mislabel_figures) at commit abc1234: digits/mislabel_roc, self_covariance.

    Figures are grouped by rule, drawing function (the step for a record without one) and
    commit, in the order they appear; several rules at one commit share one "Made at commit
    ... by". A dirty work tree is said: "(uncommitted changes)". ``\\madeby`` with a key not in
    ``groups`` stops LaTeX with an error naming it.
    """
    lines = [f"{line}\n" for line in comment_lines]
    lines.append("\\makeatletter\n"
                 "\\newcommand{\\madeby}[1]{\\@ifundefined{lk@madeby@#1}{\\PackageError"
                 "{figure-provenance}{no provenance for the figure #1}{Rebuild the paper with "
                 "snakemake (rule paper)}}{\\par\\scriptsize\\raggedright"
                 "\\csname lk@madeby@#1\\endcsname\\par}}\n")
    for key, figures in groups.items():
        made: dict[tuple[str, str, str], list[str]] = {}
        for path, record in figures:
            commit = short_commit(record["git_commit"]) + (
                " (uncommitted changes)" if record.get("git_dirty") == "1" else "")
            step = record.get("step", "")
            code = record.get("draw") or step
            made.setdefault((record.get("rule", ""), step, code, commit), []).append(path)
        commits = list(dict.fromkeys(commit for *_, commit in made))
        if len(made) > 1 and len(commits) == 1:
            text = f"Made at commit {_tex_commit(commits[0])} by " + "; ".join(
                f"{_tex_made(rule, step, code)}: {_tex_files(paths)}"
                for (rule, step, code, _), paths in made.items()) + "."
        else:
            text = " ".join(f"Made by {_tex_made(rule, step, code)} at commit "
                            f"{_tex_commit(commit)}: {_tex_files(paths)}."
                            for (rule, step, code, commit), paths in made.items())
        lines.append(f"\\expandafter\\def\\csname lk@madeby@{key}\\endcsname{{%\n  {text}}}\n")
    lines.append("\\makeatother\n")
    return "".join(lines)


def _tex_made(rule: str, step: str, code: str) -> str:
    """``rule X (script -> code)``; the script is the rule's, ``workflow/scripts/<step>.py``
    for the step ``losskernel.pipeline.<module>.<step>`` (none known without a step), or the
    command line for a record it wrote (rule ``cli:X``)."""
    name = rule.removeprefix("cli:") or "unknown"
    script = (f"losskernel {name}" if rule.startswith("cli:")
              else SNAKEMAKE_SCRIPT.format(step=step.rsplit(".", 1)[-1]) if step else "")
    chain = " $\\rightarrow$ ".join(f"\\texttt{{{_tex_code(part)}}}" for part in (script, code)
                                    if part)
    return f"rule \\texttt{{{_tex_code(name)}}} ({chain})"


def _tex_commit(commit: str) -> str:
    """``abc1234 (uncommitted changes)`` with the hash in typewriter."""
    short, _, rest = commit.partition(" ")
    return f"\\texttt{{{short}}}" + (f" {rest}" if rest else "")


def _tex_files(paths: Sequence[str]) -> str:
    """``results/figures/a/x.png, results/figures/a/y.png`` as ``a/x, y`` (per directory)."""
    by_directory: dict[str, list[str]] = {}
    for path in paths:
        directory, name = os.path.split(os.path.relpath(path, "results/figures"))
        by_directory.setdefault(directory, []).append(Path(name).stem)
    return "; ".join(_tex_code(f"{directory}/" if directory else "") + ", ".join(
        _tex_code(name) for name in names) for directory, names in by_directory.items())


def _tex_code(text: str) -> str:
    """``text`` safe in LaTeX, with a line break allowed after each ``.`` and ``/``."""
    escaped = re.sub(r"([_&%$#{}])", r"\\\1", text)
    return re.sub(r"([./])", r"\1\\allowbreak{}", escaped)


def crate(inputs: Files, outputs: Files, *, commit: str, record: Record) -> None:
    """The run in the working directory as a zipped Workflow Run RO-Crate (``crate``,
    :func:`losskernel.crate.build_crate`: every artifact under ``results/`` and ``paper/``
    with a record, and the workflow of this checkout) and the crate's preview page
    (``preview``) for the report; ``commit`` is the checkout's, as the report names it. The
    inputs are what the run made, so the crate is made after them."""
    import zipfile

    from losskernel.crate import build_crate

    summary = build_crate(Path("."), Path(outputs["crate"]), checkout=CHECKOUT)
    print(f"crate of the run at commit {commit}: {summary}")
    with zipfile.ZipFile(outputs["crate"]) as packed, atomic_path(outputs["preview"]) as partial:
        partial.write_bytes(packed.read("ro-crate-preview.html"))
