"""The tiny run's provenance names one config: every job records the hash of the run's whole
resolved config (and its own settings apart), and rule run_config saves the config itself under
that hash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from losskernel.config import load_config
from losskernel.plan import Plan
from losskernel.provenance import RUN_CONFIG_DIR, config_sha256, lineage, run_config_path

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILES = [ROOT / "config/config.yaml", ROOT / "tests/smoke/overrides.yaml"]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
FIGURE = "results/figures/digits/diagnostics.png"
"""The figure with the widest lineage of the tiny run: models, chains, kernels, readings."""


@pytest.mark.slow
def test_a_figure_of_the_tiny_run_names_one_run_config_saved_in_full(smoke_run):
    work = smoke_run.work
    nodes = lineage(work / FIGURE, workdir=work)
    assert len(nodes) > 20 and not any(node.older_record or node.unreadable for node in nodes)
    assert len({node.settings_sha256 for node in nodes}) > 10  # each job's own slice, as before
    (run,) = {node.config_sha256 for node in nodes}
    # the config snakemake resolved (common.smk: config.update(PLAN.config)) is the plan's
    resolved = Plan.from_config(load_config(CONFIG_FILES), SCHEMA, check_files=False).config
    assert run == config_sha256(resolved)
    saved = work / run_config_path(run)
    assert sorted((work / RUN_CONFIG_DIR).iterdir()) == [saved]  # one run, one config, no part
    assert config_sha256(yaml.safe_load(saved.read_text())) == run

    audit = subprocess.run([sys.executable, "-m", "losskernel.cli", "provenance", FIGURE,
                            "--show-config"], cwd=work, capture_output=True, text=True,
                           timeout=300)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr
    lines = audit.stdout.splitlines()
    assert lines[-1].endswith(f"; run config sha256 (1): {run[:12]}...")
    assert lines[-2] == f"run config {run[:12]}...: {run_config_path(run)}"
    assert not any(line.startswith("artifacts by run config") for line in lines)
