"""The documentation site: it builds strictly, works offline, renders, and shows only commands
that exist and results from the committed snapshot.

The build runs once per module (``sphinx-build -W --keep-going``: a warning, a broken link or
an API page that fails to import is an error) and executes the tutorial, so it takes about as
long as the tutorial does.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.needs import require

from losskernel.cli import build_parser
from losskernel.snapshot import (
    README_TABLE,
    TABLES,
    format_number,
    read_stamp,
    read_tables,
    referenced_figures,
    render_readme,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(page for page in DOCS.rglob("*.md") if "_build" not in page.parts)
VENV_BIN = Path(sys.executable).parent
SCREEN = (1280, 900)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The HTML site, built strictly into a temporary directory."""
    out = tmp_path_factory.mktemp("docs")
    build = subprocess.run(
        [str(VENV_BIN / "sphinx-build"), "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
        capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert build.returncode == 0, f"strict build failed:\n{build.stderr[-6000:]}"
    return out / "html"


def test_the_strict_build_makes_every_page(site):
    built = {path.relative_to(site).with_suffix("").as_posix() for path in site.rglob("*.html")}
    pages = {page.relative_to(DOCS).with_suffix("").as_posix() for page in PAGES}
    assert pages <= built, sorted(pages - built)
    assert "tutorial/loss_kernel_on_your_model" in built
    # the tutorial ran in the build: its printed numbers and its figure are on its page
    tutorial = (site / "tutorial" / "loss_kernel_on_your_model.html").read_text()
    assert "ROC-AUC of K(z,z)" in tutorial and "worst R-hat" in tutorial
    assert re.search(r'<img [^>]*src="\.\./_images/[0-9a-f]+\.png"', tutorial)


def documented_modules() -> dict[str, str]:
    """``module: API page`` for every ``automodule`` of docs/api/."""
    found = {}
    for page in sorted((DOCS / "api").glob("*.md")):
        for module in re.findall(r"\.\. automodule:: ([\w.]+)", page.read_text()):
            found[module] = page.stem
    return found


def test_every_public_module_has_an_api_page_that_renders_its_members(site):
    package = ROOT / "src" / "losskernel"
    public = {".".join(("losskernel", *path.relative_to(package).with_suffix("").parts))
              .removesuffix(".__init__")
              for path in package.rglob("*.py") if not path.name.startswith("_")
              or path.name == "__init__.py"}
    documented = documented_modules()
    assert public - {"losskernel"} <= set(documented), sorted(public - set(documented))
    for module, page in documented.items():
        html = (site / "api" / f"{page}.html").read_text()
        assert f'id="module-{module}"' in html, f"{module} did not render on api/{page}"
    # a function of the method renders with its signature and docstring
    method = (site / "api" / "method.html").read_text()
    assert 'id="losskernel.method.kernel.compute_kernel"' in method
    assert "The loss kernel and its normalized form, from loss traces." in method


class _Resources(HTMLParser):
    """Every address a page loads by itself: scripts, styles, images, frames, fonts."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "embed") and values.get("src"):
            self.loaded.append(values["src"] or "")
        if tag == "link" and values.get("href") and values.get("rel") != "canonical":
            self.loaded.append(values["href"] or "")


def test_the_site_loads_nothing_from_the_network(site):
    remote = re.compile(r"^(https?:)?//", re.I)
    for page in site.rglob("*.html"):
        parser = _Resources()
        parser.feed(page.read_text())
        assert parser.loaded, page
        offenders = [address for address in parser.loaded if remote.match(address)]
        assert not offenders, f"{page.relative_to(site)} loads {offenders}"
    for sheet in site.rglob("*.css"):
        urls = re.findall(r"url\(\s*['\"]?([^)'\"]+)", sheet.read_text())
        assert not [url for url in urls if remote.match(url)], sheet
        assert "@import url(http" not in sheet.read_text(), sheet


def screenshot(page: Path, tmp_path: Path) -> np.ndarray:
    """Headless Chromium's screenshot of a built page, greyscale."""
    picture = tmp_path / f"{page.stem}.png"
    shot = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chromium-profile'}",
         f"--window-size={SCREEN[0]},{SCREEN[1]}", "--virtual-time-budget=10000",
         f"--screenshot={picture}", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=300)
    assert shot.returncode == 0, shot.stderr[-3000:]
    with Image.open(picture) as image:
        return np.asarray(image.convert("L"), dtype=float)


@pytest.mark.parametrize("page", ["index.html", "api/method.html"])
def test_headless_chromium_renders_the_home_page_and_an_api_page(site, page, tmp_path):
    require("chromium")
    pixels = screenshot(site / page, tmp_path)
    assert pixels.shape == (SCREEN[1], SCREEN[0])
    assert pixels.std() > 15, f"{page}: the screenshot is nearly uniform (std {pixels.std():.1f})"
    assert len(np.unique(pixels)) > 40, f"{page}: too few shades for text and a sidebar"
    ink = (pixels < 128).mean()  # dark pixels: text, the figure, the code
    assert 0.005 < ink < 0.6, f"{page}: {ink:.1%} of the screen is dark"
    # the sidebar (left) and the content (right) both hold something
    assert pixels[:, : SCREEN[0] // 4].std() > 5 and pixels[:, SCREEN[0] // 3:].std() > 15


# --- the commands the pages show ------------------------------------------------------------

UNCHECKED_PROGRAMS = {
    # outside the repository and its venv: installed by the user or their cluster
    "sudo", "apt-get", "git", "cd", "conda", "mamba", "micromamba", "sbatch", "squeue",
    "scancel", "sacct", "srun", "sinfo", "export", "cat", "ls", "rm", "cp", "mkdir", "unzip",
    "head", "tail", "less", "grep", "time", "module", "xdg-open", "wc", "diff", "ssh", "scp",
    "rsync", "du", "tar", "env",
}
VENV_PROGRAMS = {"snakemake", "losskernel", "python", "pytest", "sphinx-build", "ruff",
                 "snakefmt", "pip", "jupytext"}
REPOSITORY_ROOTS = {"config", "workflow", "profiles", "envs", "benchmarks", "tests", "examples",
                    "docs", "src", "paper", "Snakefile", "setup.sh"}


def shown_commands() -> list[tuple[str, str]]:
    """``(where, command)`` for every command of a ```bash block of the pages and the README."""
    commands = []
    for document in [ROOT / "README.md", *PAGES]:
        text = document.read_text()
        for block in re.findall(r"^```(?:bash|sh|shell|console)\n(.*?)^```", text, re.M | re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = re.sub(r"(^|\s)#.*$", "", line.strip().removeprefix("$ ")).strip()
                for command in re.split(r"\s*(?:&&|\|\||;|\|)\s*", line):
                    if command:
                        commands.append((document.relative_to(ROOT).as_posix(), command))
    return commands


def rule_names() -> set[str]:
    sources = [ROOT / "Snakefile", *(ROOT / "workflow" / "rules").glob("*.smk")]
    return {name for source in sources
            for name in re.findall(r"^(?:local)?rule (\w+):", source.read_text(), re.M)}


@pytest.fixture(scope="module")
def snakemake_options() -> set[str]:
    help_text = subprocess.run([str(VENV_BIN / "snakemake"), "--help"], capture_output=True,
                               text=True, timeout=300, cwd=ROOT).stdout
    return set(re.findall(r"(--[\w-]+)", help_text))


def check_command(command: str, snakemake_options: set[str]) -> str | None:
    """Why ``command`` would not run as shown, or None."""
    words = shlex.split(command)
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words = words[1:]  # VAR=value command
    if not words:
        return None
    program = words[0]
    name = Path(program).name
    if program.startswith(".venv/bin/") or name in VENV_PROGRAMS:
        if not (VENV_BIN / name).exists():
            return f"{program}: not in the venv"
    elif name in UNCHECKED_PROGRAMS or "<" in program:
        return None
    elif name == "bash":
        pass
    else:
        return f"{program}: unknown program (add it to UNCHECKED_PROGRAMS if it is outside us)"
    for word in words[1:]:
        head = word.split("/", 1)[0]
        placeholder = any(mark in word for mark in ("<", "*", "_build"))  # or an output
        if head in REPOSITORY_ROOTS and not placeholder and not (ROOT / word).exists():
            return f"{word}: no such file in the repository"
    if name == "losskernel":
        try:
            build_parser().parse_args(words[1:])
        except SystemExit:
            return "losskernel rejects these arguments"
    if name == "snakemake":
        unknown = [word.split("=")[0] for word in words[1:]
                   if word.startswith("--") and word.split("=")[0] not in snakemake_options]
        if unknown:
            return f"snakemake has no option {unknown}"
        targets = []
        for word in words[1:]:
            if word.startswith("-"):
                break
            targets.append(word)
        rules = rule_names()
        wrong = [target for target in targets if "/" not in target and "." not in target
                 and "<" not in target and target not in rules]
        if wrong:
            return f"no rule named {wrong}"
    if name == "python" and words[1:2] == ["-m"]:
        import importlib.util

        if importlib.util.find_spec(words[2]) is None:
            return f"no module {words[2]}"
    return None


def test_every_command_the_pages_show_exists(snakemake_options):
    commands = shown_commands()
    assert len(commands) > 20  # the pages do show commands
    wrong = [f"{where}: {command!r}: {why}" for where, command in commands
             if (why := check_command(command, snakemake_options))]
    assert not wrong, "\n".join(wrong)


def test_the_command_check_catches_what_does_not_exist(snakemake_options):
    assert check_command(".venv/bin/losskernel no-such-command", snakemake_options)
    assert check_command(".venv/bin/losskernel plan --no-such-option", snakemake_options)
    assert check_command(".venv/bin/snakemake no_such_rule --cores 2", snakemake_options)
    assert check_command(".venv/bin/snakemake --no-such-option", snakemake_options)
    assert check_command(".venv/bin/python benchmarks/no_such_benchmark.py", snakemake_options)
    assert check_command("frobnicate --now", snakemake_options)
    assert check_command(".venv/bin/snakemake calibrate --cores 2", snakemake_options) is None


# --- results come from the snapshot ---------------------------------------------------------

def test_the_snapshot_matches_its_stamp_and_comes_from_this_repository():
    stamp = read_stamp(DOCS / "snapshot")
    assert set(TABLES) <= set(stamp["files"])
    for key in ("commit", "run_created_at", "snapshot_taken_at"):
        assert stamp[key], key
    assert {"cpu", "cores", "host"} <= set(stamp["machine"])
    if (ROOT / ".git").exists() and shutil.which("git"):
        known = subprocess.run(["git", "cat-file", "-e", f"{stamp['commit']}^{{commit}}"],
                               cwd=ROOT, capture_output=True)
        assert known.returncode == 0, f"the snapshot's commit {stamp['commit']} is not in git"


def test_every_figure_a_page_shows_is_in_the_snapshot():
    stamp = read_stamp(DOCS / "snapshot")
    figures = referenced_figures(DOCS)
    assert figures
    for experiment, name in figures:
        assert f"figures/{experiment}/{name}" in stamp["files"], (experiment, name)


def test_no_page_types_a_result_of_the_snapshot_by_hand():
    """A number in a page's prose that equals a snapshot value, as the pages would print it, was
    typed by hand (or pasted from a run): it must come through ``{result}`` instead."""
    values = set()
    headline, comparisons = read_tables(DOCS / "snapshot")
    for column in ("value", "model_spread", "seed_spread"):
        values |= {format_number(v) for v in headline[column] if np.isfinite(v)}
    for column in ("kernel_value", "baseline_value", "difference"):
        values |= {format_number(v) for v in comparisons[column] if np.isfinite(v)}
    values = {value for value in values if re.fullmatch(r"-?\d*\.\d{2,}", value)}
    typed = []
    for document in [ROOT / "README.md", *PAGES]:
        prose = README_TABLE.sub("", document.read_text())  # generated from the snapshot
        prose = re.sub(r"^```.*?^```", "", prose, flags=re.M | re.S)
        prose = re.sub(r"`[^`\n]*`", "", prose)  # code, and the roles' arguments
        typed += [f"{document.relative_to(ROOT)}: {number}"
                  for number in re.findall(r"(?<![\w.])-?\d*\.\d+(?![\w.])", prose)
                  if number in values]
    assert not typed, "results typed by hand (use {result}`experiment/metric`):\n" + \
        "\n".join(typed)


def test_the_readmes_headline_table_is_the_snapshots():
    readme = (ROOT / "README.md").read_text()
    assert README_TABLE.search(readme), "README.md has no generated headline table"
    assert render_readme(readme, DOCS / "snapshot") == readme, \
        "README.md's headline table differs from docs/snapshot: run losskernel snapshot-docs"


def test_the_readme_is_short_opens_with_the_two_commands_and_links_what_exists():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S)[1].strip().splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == [
        "bash setup.sh && .venv/bin/snakemake --cores all",
        "bash setup.sh && .venv/bin/python -m pytest"]
    links = re.findall(r"\]\(([^)#\s]+)", readme)
    assert any(link.startswith("docs/") for link in links)
    missing = [link for link in links if not re.match(r"https?://", link)
               and not (ROOT / link).exists()]
    assert not missing, missing
    figures = re.findall(r"!\[[^]]*\]\((docs/snapshot/[^)]+)\)", readme)
    assert figures, "the README shows a figure of the snapshot"
    stamp = read_stamp(DOCS / "snapshot")
    assert all(path.removeprefix("docs/snapshot/") in stamp["files"] for path in figures)
