"""The HTML report and the paper as a reader gets them, from one run of the whole DAG on the tiny
config of the smoke test: `snakemake --report` opened in headless Chromium, and the `paper`
target built with latexmk."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from tests.needs import TEX_PACKAGES, require

from losskernel.pipeline.paper import figure_groups
from losskernel.provenance import git_state, read_provenance

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ["--configfile", str(ROOT / "config/config.yaml"),
           str(ROOT / "tests/smoke/overrides.yaml")]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
PAPER = ROOT / "paper/main.tex"


# The figures of the tiny config, by report category and subcategory (the experiment).
FIGURES = {
    ("Modular arithmetic", "modarith"): ["kernel_heatmap", "kernel_distributions", "umap", "roc"],
    ("Modular arithmetic", "modarith-control"): ["kernel_heatmap", "kernel_distributions", "umap",
                                                 "roc"],
    ("Appendix analyses", "modarith"): ["trajectory_score", "trajectory_umap"],
    ("Appendix analyses", "digits"): ["mislabel_roc", "self_covariance", "umap_mislabels",
                                      "gamma_cka", "gamma_lift", "convergence", "trajectory_score",
                                      "trajectory_umap"],
    ("Figure 1 (WordNet)", "fashion"): ["umap_hierarchy", "umap_hierarchy_3d",
                                       "kernel_vs_wordnet", "neighbourhood_insets",
                                       "taxonomic_lift", "hierarchy_similarities"],
    ("Appendix analyses", "fashion"): ["gamma_cka", "gamma_lift", "convergence",
                                      "trajectory_score", "trajectory_umap"],
    **{("Sampler diagnostics", experiment): ["diagnostics"]
       for experiment in ("modarith", "modarith-control", "digits", "fashion")},
}
# The tables of the report (HTML pages), by category and subcategory.
TABLES = {("Headline numbers", "all experiments"): ["results/tables/headline.html"],
          ("Provenance", "this run"): ["results/crate-preview.html"]}


def snakemake(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800, env=env)


def report_variable(html: str, name: str) -> dict:
    """A JSON variable of the report's data (`var results = {...}`), as the app reads it."""
    match = re.search(rf'<script id="{name}">\s*var {name} = (.*?);\s*</script>', html, re.S)
    assert match, f"no `var {name}` in the report"
    return json.loads(match.group(1))


def render(report: Path, tmp_path: Path, name: str, navigate: str = "") -> tuple[str, np.ndarray]:
    """The DOM and a screenshot of `report` after headless Chromium ran its JavaScript.

    `navigate` is JavaScript run once the page has loaded, on a copy of the report: it calls the
    app's own view changes, as clicking a link of the report does."""
    page = report
    if navigate:
        html = report.read_text()
        end = html.rindex("</body>")
        script = ('<script>window.addEventListener("load", () => setTimeout(() => {'
                  f"{navigate}}}, 100));</script>")
        page = tmp_path / f"{name}.html"
        page.write_text(html[:end] + script + html[end:])
    screenshot = tmp_path / f"{name}.png"
    result = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1400,1000",
         "--virtual-time-budget=20000", f"--screenshot={screenshot}", "--dump-dom",
         page.resolve().as_uri()],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with Image.open(screenshot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    return result.stdout, pixels


def rendered_app(dom: str) -> str:
    """What the app drew into <div id="app">, without the embedded images' data."""
    assert '<div id="app">' in dom
    app = dom[dom.index('<div id="app">'):]
    return re.sub(r'src="data:[^"]*"', 'src="data:..."', app.split("<script", 1)[0])


def assert_not_blank(pixels: np.ndarray) -> None:
    assert pixels.shape == (1000, 1400)
    assert pixels.std() > 20, f"screenshot is nearly uniform (std {pixels.std():.1f})"
    assert len(np.unique(pixels)) > 50  # text, figures and the rule graph, not a flat page


@pytest.fixture(scope="module")
def workdir(smoke_run):
    """The run of the whole DAG on the tiny config (tests/workflow/conftest.py)."""
    return smoke_run.work


@pytest.fixture(scope="module")
def report(workdir):
    path = workdir / "report.html"
    result = snakemake("--directory", str(workdir), *CONFIGS, "--report", str(path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return path


@pytest.mark.slow
def test_report_has_every_figure_with_a_caption_naming_its_paper_figure(report):
    html = report.read_text()
    results, categories = report_variable(html, "results"), report_variable(html, "categories")
    assert {(category, subcategory) for category, subcategories in categories.items()
            for subcategory in subcategories} == set(FIGURES) | set(TABLES)
    for (category, subcategory), names in FIGURES.items():
        expected = [f"results/figures/{subcategory}/{name}.png" for name in names]
        assert sorted(categories[category][subcategory]) == sorted(expected)
    for (category, subcategory), paths in TABLES.items():
        assert categories[category][subcategory] == paths
    tables = {path for paths in TABLES.values() for path in paths}
    for path, result in results.items():
        if path in tables:
            continue  # test_report_has_the_headline_table
        assert result["mime_type"] == "image/png" and result["data_uri"].startswith(
            "data:image/png"), path
        # every caption opens with the paper figure it reproduces, in bold
        lead = re.match(r"<p><strong>(.*?)</strong>", result["caption"], re.S)
        assert lead and "paper" in lead.group(1).lower(), (path, result["caption"][:200])
        assert "{{" not in result["caption"] and "System Message" not in result["caption"], path
    assert "System Message" not in html  # the RST of the captions and of workflow.rst is valid


@pytest.mark.slow
def test_report_has_the_headline_table(report, workdir):
    """The headline table is in the report as a page of its own, every row of
    results/tables/headline.tsv with its value, under a caption that says what the columns
    are; the report's description points to it."""
    html = report.read_text()
    result = report_variable(html, "results")["results/tables/headline.html"]
    assert result["mime_type"] == "text/html"
    caption = re.sub(r"\s+", " ", result["caption"])
    assert caption.startswith("<p><strong>The numbers the paper quotes: the headline "
                              "table.</strong>")
    for column in ("model_spread", "seed_spread", "diagnostics_passed"):
        assert f'<tt class="docutils literal">{column}</tt>' in caption
    page = base64.b64decode(result["data_uri"].split("base64,", 1)[1]).decode()
    headline = pd.read_csv(workdir / "results/tables/headline.tsv", sep="\t", comment="#")
    cells = re.findall(r"<td>(.*?)</td>", page)
    width = len(headline.columns)
    rows = [cells[index:index + width] for index in range(0, len(cells), width)]
    assert len(rows) == len(headline) > 0
    for row, expected in zip(rows, headline.itertuples(), strict=True):
        assert row[:2] == [expected.experiment, expected.metric]
        assert float(row[2]) == pytest.approx(expected.value, rel=1e-5)
        for cell, spread in ((row[3], expected.model_spread), (row[5], expected.seed_spread)):
            assert cell == "–" if np.isnan(spread) else float(cell) == pytest.approx(
                spread, rel=1e-5)
        assert [int(row[4]), int(row[6])] == [expected.models, expected.seeds]
        assert row[7] == str(expected.diagnostics_passed)
    commit = read_provenance(workdir / "results/tables/headline.tsv")["git_commit"]
    assert f"written by rule headline_table at commit {commit[:7]}" in page
    assert "javascript:app.showCategory('Headline%20numbers')" in html  # workflow.rst


@pytest.mark.slow
def test_the_front_page_and_the_crates_page_name_the_crate_and_the_commit(report, workdir):
    commit, dirty = git_state(ROOT)
    commit = f"{commit} (uncommitted changes)" if dirty else commit
    html = report.read_text()
    front = html[html.index("this run is packed as a Workflow Run RO-Crate"):][:600]
    assert "results/crate.zip" in front and commit in front
    page = report_variable(html, "results")["results/crate-preview.html"]
    assert page["mime_type"] == "text/html"
    assert re.sub(r"\s+", " ", page["caption"]).startswith(
        '<p>The run as a <strong>Workflow Run RO-Crate</strong>, <tt class="docutils literal">'
        f'results/crate.zip</tt>, made at commit <tt class="docutils literal">{commit}</tt>')
    preview = base64.b64decode(page["data_uri"].split("base64,", 1)[1]).decode()
    assert preview == (workdir / "results/crate-preview.html").read_text()
    assert f"<title>losskernel run in {workdir.name}</title>" in preview


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report, tmp_path):
    require("chromium")
    dom, pixels = render(report, tmp_path, "start")
    app = rendered_app(dom)
    assert 'id="loading-screen" style="display: none;"' in dom  # the scripts ran to the end
    for text in ("Snakemake", "Results", "Modular arithmetic", "Appendix analyses",
                 "Loss-kernel reproduction", "modarith-control", "Save as SVG"):
        assert text in app, text  # menu, categories, workflow.rst, rule graph (vega-embed)
    assert_not_blank(pixels)

    dom, pixels = render(report, tmp_path, "listing", navigate=(
        'app.setView({navbarMode: "subcategory", category: "Modular arithmetic", '
        'subcategory: "modarith"});'))
    app = rendered_app(dom)
    for name in FIGURES["Modular arithmetic", "modarith"]:
        assert f"results/figures/modarith/{name}.png" in app, name
    assert_not_blank(pixels)

    path = "results/figures/modarith/kernel_distributions.png"
    dom, pixels = render(report, tmp_path, "figure", navigate=(
        f'app.setView({{navbarMode: "resultinfo", resultPath: "{path}", content: "img", '
        f'contentPath: results["{path}"].data_uri}});'))
    app = rendered_app(dom)
    assert "<strong>Paper Figure 3D.</strong>" in app  # the caption, rendered from its RST
    assert "within division" in app and "plot_experiment" in app
    assert app.count('<img src="data:..."') >= 2  # the logo and the figure
    assert_not_blank(pixels)
    # the figure fills the right of the page: it is not blank either
    assert pixels[:, 500:].std() > 10


@pytest.mark.slow
def test_paper_target_builds_the_pdf_from_generated_macros_and_figures(workdir):
    require("latexmk")
    result = snakemake("--directory", str(workdir), *CONFIGS, "--cores", "1", "paper")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    pdf = (workdir / "paper/main.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    log = (workdir / "results/logs/paper/latexmk.log").read_text()
    pages = re.findall(r"Output written on main\.pdf \((\d+) pages", log)
    assert pages and int(pages[-1]) >= 3, log[-2000:]
    assert "Undefined control sequence" not in log and "LaTeX Error" not in log
    figures = re.findall(r"\\includegraphics(?:\[[^]]*\])?\{([^}]+)\}", PAPER.read_text())
    assert len(re.findall(rb"/Subtype\s*/Image", pdf)) >= len(figures)  # every figure is in
    # latexmk's auxiliary files stayed in the shadow directory
    assert sorted(p.name for p in (workdir / "paper").iterdir()) == ["generated", "main.pdf"]
    assert sorted(p.name for p in (workdir / "paper/generated").iterdir()) == [
        "figure-provenance.tex", "macros.tex"]
    # under each caption, who made its figures: as each figure's PNG records it
    made = (workdir / "paper/generated/figure-provenance.tex").read_text()
    record = read_provenance(workdir / "results/figures/modarith/kernel_heatmap.png")
    with Image.open(workdir / "results/figures/modarith/kernel_heatmap.png") as image:
        draw = image.info["losskernel:draw"]
    assert draw == "losskernel.tasks.modarith._draw_separation"
    assert (r"Made by rule \texttt{plot\_experiment} (\texttt{workflow/\allowbreak{}scripts/"
            r"\allowbreak{}plot\_figures.\allowbreak{}py} $\rightarrow$ \texttt{losskernel."
            r"\allowbreak{}tasks.\allowbreak{}modarith.\allowbreak{}\_draw\_separation}) at "
            rf"commit \texttt{{{record['git_commit'][:7]}}}") in made
    if shutil.which("pdftotext"):  # one sentence per figure: the run is of one commit
        text = subprocess.run(["pdftotext", workdir / "paper/main.pdf", "-"], capture_output=True,
                              text=True, check=True).stdout
        assert len(re.findall(r"Made (?:by rule|at commit)", text)) == len(
            figure_groups(PAPER.read_text())) == 4

    again = snakemake("--directory", str(workdir), *CONFIGS, "-n", "paper")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_paper_target_without_latexmk_names_the_debian_packages(workdir, tmp_path):
    """With latexmk off PATH (only the tools snakemake's shell needs), the paper rule fails at
    once and says what to install; the rest of the workflow does not need TeX."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("sh", "bash", "which", "tee", "git"):
        if shutil.which(tool):
            (tools / tool).symlink_to(shutil.which(tool))
    env = {**os.environ, "PATH": str(tools)}
    result = snakemake("--directory", str(workdir), *CONFIGS, "--cores", "1", "--forcerun",
                       "paper", "paper", env=env)
    assert result.returncode != 0
    message = (workdir / "results/logs/paper/latexmk.log").read_text()
    assert "latexmk is not on PATH" in message and TEX_PACKAGES in message
    assert TEX_PACKAGES in result.stderr
    assert not (workdir / "paper/main.pdf").exists()


def test_all_does_not_need_tex(tmp_path):
    dry_run = snakemake("--directory", str(tmp_path), *CONFIGS, "-n")
    assert dry_run.returncode == 0, dry_run.stderr[-3000:]
    jobs = re.findall(r"^(\w+)\s+\d+$", dry_run.stdout, re.M)
    assert "paper_macros" in jobs and "paper" not in jobs
