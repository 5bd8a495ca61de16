"""The linters pass with nothing to report: ruff on the Python, snakefmt on the Snakefile and the
rule files, and `snakemake --lint` on the workflow (the last two as the Snakemake workflow
catalog runs them). setup.sh installs ruff and snakefmt from requirements.lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.needs import require

ROOT = Path(__file__).resolve().parents[2]


def run(module: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m module args`` from the repository root, with this test run's Python."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_finds_nothing():
    require("ruff")
    result = run("ruff", "check", "--no-cache", "src", "tests", "benchmarks", "workflow",
                 "examples", "docs/conf.py", "docs/_ext")
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakefmt_would_change_nothing():
    require("snakefmt")
    result = run("snakefmt", "--check", "Snakefile", "workflow")
    if result.returncode != 0:
        # --check names no file; the diff says which and how
        diff = run("snakefmt", "--diff", "Snakefile", "workflow")
        raise AssertionError(result.stderr + diff.stdout + diff.stderr)


def test_snakemake_lint_finds_nothing(tmp_path):
    # The default config plans the fashion experiment, whose files are checked as the
    # workflow loads. Run in a directory of its own, where snakemake writes its log.
    require("fashion_mnist")
    result = run("snakemake", "--lint", "--snakefile", str(ROOT / "Snakefile"),
                 "--configfile", str(ROOT / "config/config.yaml"), "--directory", str(tmp_path))
    output = result.stdout + result.stderr
    # snakemake 9 exits 1 when it prints any lint
    assert result.returncode == 0, output
    assert "Congratulations, your workflow is in a good condition!" in output, output
