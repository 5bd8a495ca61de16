"""The rules written out in the workflow's Snakemake files, read as text (for the tests that
check the rules against the package: their params, scripts, steps and figure names)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = [ROOT / "Snakefile", *sorted((ROOT / "workflow/rules").glob("*.smk"))]
"""The Snakemake files whose rules are written out (tasks.smk makes the declared ones in a
loop, as ``rule:`` with a ``name:``)."""
RULE = re.compile(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", re.MULTILINE | re.DOTALL)
"""A rule written in a Snakemake file: its name and its indented body."""


def written_rules() -> dict[str, str]:
    """The body of every rule written out in ``WORKFLOW_FILES``, by name."""
    return {name: body for path in WORKFLOW_FILES for name, body in RULE.findall(path.read_text())}
