"""Sphinx configuration of losskernel's documentation (MyST Markdown pages, the furo theme).

Build it strictly, as the tests do (warnings and broken links are errors):

    .venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

Everything the pages need is in the repository and the venv: no CDN, web font or network access
at build time or when a page is opened (furo's fonts are the system's; no maths is rendered).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "losskernel"
author = "the losskernel authors"
copyright = "the losskernel authors"

extensions = [
    "myst_nb",  # MyST Markdown pages, and the tutorial, a jupytext script run at build time
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "sphinxarg.ext",  # the command line page, from losskernel.cli's parser
    "snapshot",  # the results the pages quote: docs/snapshot/ (losskernel snapshot-docs)
]

exclude_patterns = ["_build", "_ext", "conf.py", "**/.ipynb_checkpoints", "jupyter_execute"]
root_doc = "index"

# MyST: heading anchors for links like [x](trust.md#calibration), ::: fences, definition lists.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]
suppress_warnings = [
    "myst.header",  # pages moved from the README start at ## under their title
    # two classes share a short name (the ``Files`` of a job and of a step; the ``DataFile``
    # of a task and of the crate): a type hint naming one links to either
    "ref.python",
]

# The tutorial: examples/loss_kernel_on_your_model.py (jupytext percent format, linked into
# docs/tutorial/), executed at every build, so its output and figure are this build's.
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# The API reference: the documented members of each public module, in source order.
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "description"
autodoc_preserve_defaults = True
autosummary_generate = False

highlight_language = "none"  # docstrings' formula blocks are plain text, not Python
html_theme = "furo"
html_title = "losskernel"
html_static_path: list[str] = []
html_show_sourcelink = False
html_theme_options = {"navigation_with_keys": True}


def _formulas_as_literal_blocks(app, what, name, obj, options, lines: list[str]) -> None:
    """Our docstrings set their maths as an indented block after a paragraph, plain text that a
    terminal shows as is; reST would reflow it as a quotation. A lone ``::`` paragraph before
    such a block makes it a literal block, and is itself dropped from the output."""
    def indent(line: str) -> int:
        return len(line) - len(line.lstrip())

    index = 1
    while index + 1 < len(lines):
        before, blank, block = lines[index - 1], lines[index], lines[index + 1]
        if (before.strip() and not blank.strip() and block.strip()
                and indent(block) > indent(before) and not before.rstrip().endswith("::")
                and not before.lstrip().startswith(("- ", "* ", ".. "))):
            lines[index:index] = ["", " " * indent(before) + "::"]
            index += 2
        index += 1


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _formulas_as_literal_blocks)
