"""Errors of a finished step that the command line reports as one message (no traceback)."""

from __future__ import annotations


class CheckFailed(RuntimeError):
    """A result failed a gate of ``analysis.checks`` (or the training target); the message
    names every failed gate, and the checks table is written beside it."""
