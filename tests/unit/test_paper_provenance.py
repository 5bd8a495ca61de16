"""The paper's figure provenance (who made each figure, read from its PNG) and the headline
table's page in the report."""

import subprocess

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from tests.needs import require

from losskernel.pipeline.figures import plot_figures, save_figures
from losskernel.pipeline.paper import (
    figure_groups,
    figure_provenance_macros,
    headline_html,
    included_figures,
    write_figure_provenance,
)
from losskernel.provenance import read_provenance

TEX = r"""\graphicspath{{../results/figures/}}
\begin{document}
\includegraphics{toy/outside.png}
\begin{figure}
  \includegraphics[width=0.5\linewidth]{toy/a.png}
  % \includegraphics{toy/commented.png}
  \includegraphics{toy/b.png}
  \caption{Two panels.}
  \madeby{first}
\end{figure}
\begin{figure}
  \includegraphics{other/c.png}\includegraphics{toy/a.png}
  \caption{Again.}
  \madeby{second}
\end{figure}
\end{document}
"""
COMMIT = "abc1234def5678" + "0" * 26  # a full commit id: 40 hex digits
RECORD = {"created_at": "2026-01-01T00:00:00+00:00", "git_commit": COMMIT,
          "git_dirty": 0, "rule": "plot_toy", "input_sha256": "{}"}


def test_included_figures_and_their_groups():
    assert included_figures(TEX) == [
        "results/figures/toy/outside.png", "results/figures/toy/a.png",
        "results/figures/toy/b.png", "results/figures/other/c.png"]
    assert figure_groups(TEX) == {
        "first": ["results/figures/toy/a.png", "results/figures/toy/b.png"],
        "second": ["results/figures/other/c.png", "results/figures/toy/a.png"]}


@pytest.mark.parametrize("tex, message", [
    (TEX.replace(r"\madeby{second}", ""), r"other/c.png has 0 \\madeby"),
    (TEX.replace(r"\madeby{second}", r"\madeby{first}"), r"\\madeby\{first\} names two"),
])
def test_a_figure_without_one_madeby_of_its_own_is_an_error(tex, message):
    with pytest.raises(ValueError, match=message):
        figure_groups(tex)
    assert len(included_figures(tex)) == 4  # the workflow still knows every figure


def figure(path, record, step, draw):
    """A one-panel figure saved as a figure step saves it."""
    figure_, axis = plt.subplots()
    axis.plot([0, 1])
    save_figures({"only": figure_}, {"only": str(path)}, record, step=step, draw=draw)


def test_figure_provenance_comes_from_each_figures_record(tmp_path, monkeypatch):
    """The commit is the one each PNG records (not the git state of now), the rule and
    drawing function too; rules at one commit share a sentence; a dirty tree is said."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.tex").write_text(TEX)
    for name in ("toy/outside.png", "toy/a.png", "toy/b.png"):
        (tmp_path / "results/figures" / name).parent.mkdir(parents=True, exist_ok=True)
        figure(tmp_path / "results/figures" / name, RECORD, plot_figures, np.mean)
    figure(tmp_path / "results/figures/other/c.png",
           {**RECORD, "rule": "cli:plot_other", "git_dirty": 1}, np.sum, np.median)
    record = read_provenance(tmp_path / "results/figures/toy/a.png")
    assert record["rule"] == "plot_toy"

    write_figure_provenance(tmp_path / "main.tex", tmp_path / "figure-provenance.tex", tmp_path)
    text = (tmp_path / "figure-provenance.tex").read_text()
    assert text.startswith("% generated from the PNG metadata")
    assert "% rule: paper" in text  # the file's own record
    first = (r"Made by rule \texttt{plot\_toy} (\texttt{workflow/\allowbreak{}scripts/"
             r"\allowbreak{}plot\_figures.\allowbreak{}py} $\rightarrow$ "
             r"\texttt{numpy.\allowbreak{}mean}) at commit \texttt{abc1234}: "
             r"toy/\allowbreak{}a, b.")
    assert f"\\csname lk@madeby@first\\endcsname{{%\n  {first}}}" in text
    second = (r"Made by rule \texttt{plot\_other} (\texttt{losskernel plot\_other} "
              r"$\rightarrow$ \texttt{numpy.\allowbreak{}median}) at commit \texttt{abc1234} "
              r"(uncommitted changes): other/\allowbreak{}c. Made by rule \texttt{plot\_toy} "
              r"(\texttt{workflow/\allowbreak{}scripts/\allowbreak{}plot\_figures."
              r"\allowbreak{}py} "
              r"$\rightarrow$ \texttt{numpy.\allowbreak{}mean}) at commit \texttt{abc1234}: "
              r"toy/\allowbreak{}a.")
    assert f"\\csname lk@madeby@second\\endcsname{{%\n  {second}}}" in text


def test_rules_at_one_commit_share_a_sentence():
    # a record without a step names no script; a step names its rule's script
    made = {"rule": "plot_a", "git_commit": "1234567890" * 4, "git_dirty": "1", "draw": "m.f"}
    text = figure_provenance_macros({"key": [
        ("results/figures/x/a.png", made),
        ("results/figures/x/b.png", {**made, "rule": "plot_b", "draw": "", "step": "m.plot_b"}),
        ("results/figures/y/c.png", made)]})
    assert (r"Made at commit \texttt{1234567} (uncommitted changes) by rule \texttt{plot\_a} "
            r"(\texttt{m.\allowbreak{}f}): x/\allowbreak{}a; y/\allowbreak{}c; "
            r"rule \texttt{plot\_b} (\texttt{workflow/\allowbreak{}scripts/\allowbreak{}"
            r"plot\_b.\allowbreak{}py} $\rightarrow$ \texttt{m.\allowbreak{}plot\_b}): "
            r"x/\allowbreak{}b.}") in text


def test_the_macros_typeset_and_an_unknown_figure_stops_latex(tmp_path):
    require("latexmk")  # with TeX's pdflatex; under CI a missing TeX fails instead of skipping
    made = {"rule": "plot_a", "git_commit": "1234567890" * 4, "git_dirty": "0",
            "step": "losskernel.pipeline.figures.plot_figures", "draw": "toy._draw_it"}
    (tmp_path / "provenance.tex").write_text(figure_provenance_macros(
        {"key": [("results/figures/x/a_b.png", made)]}, ["% a comment"]))
    for name, key in (("good", "key"), ("bad", "nokey")):
        (tmp_path / f"{name}.tex").write_text(
            "\\documentclass{article}\\input{provenance.tex}\\begin{document}"
            f"\\begin{{figure}}\\caption{{A.}}\\madeby{{{key}}}\\end{{figure}}\\end{{document}}\n")
        result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                                 f"{name}.tex"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=120)
        assert (result.returncode == 0) == (name == "good"), result.stdout[-2000:]
    assert "no provenance for the figure nokey" in (tmp_path / "bad.log").read_text()


def test_headline_page_shows_the_rows_and_the_record():
    table = pd.DataFrame({"experiment": ["toy", "toy"], "metric": ["roc_auc", "gain"],
                          "value": [0.912345678, 0.5], "model_spread": [0.02, np.nan],
                          "models": [3, 1], "seed_spread": [0.01, np.nan], "seeds": [2, 1],
                          "diagnostics_passed": [True, False],
                          "source": ["results/toy/summary.tsv"] * 2})
    record = {**RECORD, "git_dirty": 1, "config": '{"a": 1}', "packages": '{"x--y": "1"}'}
    page = headline_html(table, record, "results/tables/headline.tsv")
    assert page.startswith("<!DOCTYPE html>\n<!-- created_at: 2026-01-01")
    assert f"<!-- git_commit: {COMMIT} -->" in page and "config" not in page
    assert '<!-- packages: {"x- -y": "1"} -->' in page  # "--" would end the comment
    assert "".join(f"<th>{column}</th>" for column in table.columns) in "".join(
        page.split())
    for cell in ("<td>0.912346</td>", "<td>0.02</td>", "<td>0.01</td>", "<td>–</td>",
                 "<td>0.5</td>", "<td>True</td>", "<td>False</td>"):
        assert cell in page, cell
    assert ("results/tables/headline.tsv, written by rule plot_toy at commit abc1234 "
            "(uncommitted changes), 2026-01-01T00:00:00+00:00.") in page
