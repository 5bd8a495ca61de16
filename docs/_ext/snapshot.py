"""The results the pages quote, from ``docs/snapshot/`` (written by ``losskernel snapshot-docs``).

No result is typed into a page: a page names a row of the snapshot's ``headline.tsv`` or
``comparisons.tsv`` and this extension writes its value in, so the number on the page is the
run's, and the stamp says which run. An unknown experiment or metric is an error, which the
strict build (``-W``) turns into a failed build.

- ``{result}`experiment/metric``` writes the value;
- ``{result-spread}`experiment/metric``` the value with its spreads across trained models and
  across SGLD seeds;
- the directive ``results-table`` (``:experiment:``, optional ``:metrics:``) a table of
  headline rows; ``comparisons-table`` (``:experiment:``) the kernel-versus-baseline rows;
- ``snapshot-stamp`` one sentence naming the commit, date and machine of the run.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective, SphinxRole

from losskernel.snapshot import (
    TABLES,
    SnapshotError,
    describe,
    format_number,
    format_spread,
    headline_by_key,
    headline_row,
    read_stamp,
    read_tables,
)

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshot"


class Snapshot:
    """The snapshot's tables, read once per build."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.stamp = read_stamp(directory)
        headline, comparisons = read_tables(directory)
        self.headline = headline_by_key(headline)
        self.comparisons = comparisons

    def row(self, key: str):
        return headline_row(self.headline, key, f"{self.directory}/headline.tsv")


def spreads(row) -> str:
    """How far the value moves: across trained models, and across SGLD seeds within one."""
    parts = []
    if row.models >= 2:
        parts.append(f"standard deviation {format_number(row.model_spread)} across "
                     f"{row.models} trained models")
    if row.seeds >= 2 and not math.isnan(row.seed_spread):
        parts.append(f"{format_number(row.seed_spread)} across {row.seeds} SGLD seeds "
                     f"of a model")
    return "; ".join(parts) or "one value, no spread"


@functools.lru_cache(maxsize=1)
def _read(directory: Path, stamp_mtime_ns: int) -> Snapshot:
    return Snapshot(directory)


def _snapshot(env) -> Snapshot:
    """The snapshot, read again when ``stamp.yaml`` changes (a new ``snapshot-docs``)."""
    stamp = SNAPSHOT / "stamp.yaml"
    if not stamp.is_file():
        raise SnapshotError(f"{stamp} does not exist: run the default (.venv/bin/snakemake "
                            f"--cores all), then .venv/bin/losskernel snapshot-docs")
    return _read(SNAPSHOT, stamp.stat().st_mtime_ns)


def _note_dependencies(env) -> None:
    for name in (*TABLES, "stamp.yaml"):
        env.note_dependency(str(SNAPSHOT / name))


class ResultRole(SphinxRole):
    """``{result}`experiment/metric``` (``with_spread``: ``{result-spread}``)."""

    def __init__(self, with_spread: bool) -> None:
        self.with_spread = with_spread

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        _note_dependencies(self.env)
        try:
            row = _snapshot(self.env).row(self.text)
        except KeyError as error:
            message = self.inliner.reporter.error(str(error.args[0]), line=self.lineno)
            return [self.inliner.problematic(self.rawtext, self.rawtext, message)], [message]
        text = format_number(row.value)
        if self.with_spread:
            text += f" ({spreads(row)})"
        return [nodes.inline(self.rawtext, text, classes=["snapshot-result"])], []


class ResultsTable(SphinxDirective):
    """A table of an experiment's headline rows (``:metrics:`` picks and orders them)."""

    option_spec: ClassVar[dict] = {"experiment": directives.unchanged_required,
                   "metrics": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        _note_dependencies(self.env)
        snapshot = _snapshot(self.env)
        experiment = self.options["experiment"]
        metrics = (self.options.get("metrics") or "").replace(",", " ").split() or [
            metric for e, metric in snapshot.headline if e == experiment]
        if not metrics:
            raise self.error(f"no headline rows of experiment {experiment!r} in the snapshot")
        lines = ["| metric | value | across trained models | across SGLD seeds | "
                 "draws passed the diagnostics |", "|:--|--:|--:|--:|:--|"]
        for metric in metrics:
            try:
                row = snapshot.row(f"{experiment}/{metric}")
            except KeyError as error:
                raise self.error(str(error.args[0])) from None
            lines.append(
                f"| `{metric}` | {format_number(row.value)} | "
                f"{format_spread(row.model_spread, row.models, 'model')} | "
                f"{format_spread(row.seed_spread, row.seeds, 'seed')} | "
                f"{'yes' if row.diagnostics_passed else '**no**'} |")
        return self.parse_text_to_nodes("\n".join(lines))


class ComparisonsTable(SphinxDirective):
    """The kernel against each baseline of an experiment, model by model."""

    option_spec: ClassVar[dict] = {"experiment": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        _note_dependencies(self.env)
        table = _snapshot(self.env).comparisons
        rows = table[table["experiment"] == self.options["experiment"]]
        if rows.empty:
            raise self.error(f"no comparisons of experiment {self.options['experiment']!r} "
                             f"in the snapshot's comparisons.tsv")
        lines = ["| kernel | baseline | kernel | baseline | difference | across trained "
                 "models | kernel better in |", "|:--|:--|--:|--:|--:|--:|--:|"]
        for row in rows.itertuples():
            lines.append(
                f"| `{row.kernel}` | `{row.baseline}` | {format_number(row.kernel_value)} | "
                f"{format_number(row.baseline_value)} | {format_number(row.difference)} | "
                f"{format_spread(row.model_spread, row.models, 'model')} | "
                f"{row.kernel_better_in} of {row.models} models |")
        return self.parse_text_to_nodes("\n".join(lines))


class SnapshotStamp(SphinxDirective):
    """Which run the page's numbers are from."""

    def run(self) -> list[nodes.Node]:
        _note_dependencies(self.env)
        stamp = _snapshot(self.env).stamp
        text = (f"The numbers and figures on this page are from one run of the default "
                f"(`docs/snapshot/`, written by `losskernel snapshot-docs`): "
                f"{describe(stamp)}. Trained on another machine, a model can land elsewhere: "
                f"compare against the spread across trained models, not digit by digit.")
        return [nodes.note("", *self.parse_text_to_nodes(text))]


def setup(app: Sphinx) -> dict[str, object]:
    app.add_role("result", ResultRole(with_spread=False))
    app.add_role("result-spread", ResultRole(with_spread=True))
    app.add_directive("results-table", ResultsTable)
    app.add_directive("comparisons-table", ComparisonsTable)
    app.add_directive("snapshot-stamp", SnapshotStamp)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
