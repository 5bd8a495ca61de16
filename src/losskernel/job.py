"""A job of the workflow: a rule at concrete wildcards, with its files and arguments.

Kept apart from :mod:`losskernel.dag`, which makes jobs from a plan, so that a running job
imports neither the plan nor the config schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Files = dict[str, str | list[str]]
"""A job's input or output files by name: a path, or a list of paths."""


@dataclass(frozen=True)
class Job:
    """One job: ``rule`` at ``wildcards``; ``step`` names the function of
    ``losskernel.pipeline`` that runs it with its files and ``arguments`` (the rule's params)."""

    rule: str
    step: str
    wildcards: Mapping[str, str]
    inputs: Files
    outputs: dict[str, str]
    arguments: dict[str, Any]


def paths(files: Files) -> list[str]:
    """Every path of a job's files, in order."""
    return [str(path) for named in files.values()
            for path in (named if isinstance(named, list | tuple) else [named])]
