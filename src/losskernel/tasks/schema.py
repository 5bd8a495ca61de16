"""Task schemas and report captions kept as files beside the task modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CAPTIONS = Path(__file__).parent / "captions"
"""The reStructuredText captions of the built-in tasks' figures (the HTML report shows them)."""


def load_schema(module_file: str) -> dict[str, Any]:
    """The JSON schema in ``<module>.schema.yaml`` beside a task module's file."""
    path = Path(module_file).with_suffix(".schema.yaml")
    with open(path) as handle:
        return yaml.safe_load(handle)


def caption(name: str) -> str:
    """The path of a built-in figure's caption, ``captions/<name>.rst``."""
    return str(CAPTIONS / f"{name}.rst")
