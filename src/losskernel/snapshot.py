"""The documentation's snapshot of a run: the results the pages quote, and where they came from.

The pages of ``docs/`` type no result by hand. They quote the rows of a committed copy of a
run's ``results/tables/headline.tsv`` and ``comparisons.tsv`` (through the docs' roles
``{result}`` and ``{results-table}``), and show copies of the run's figures. This module writes
that copy, ``docs/snapshot/``, in one step:

    losskernel snapshot-docs --results results --docs docs

- ``headline.tsv`` and ``comparisons.tsv``, byte for byte, provenance header included;
- ``figures/<experiment>/<name>.png``: exactly the figures the pages reference (every
  ``snapshot/figures/...png`` path written in a ``docs/**/*.md`` page), byte for byte, so
  each keeps the provenance record in its PNG metadata;
- ``stamp.yaml``: the commit the run was made at, when, on which machine (host, CPU, cores,
  memory, operating system, torch and numpy), when the snapshot was taken, and the SHA-256 of
  every file above.

Training results move across machines (a model trained on another CPU can land elsewhere), so
a number on a page is only meaningful beside the machine and commit it came from. The copy is
refused when the run's artifacts disagree on the commit, when the commit had uncommitted
changes (its code cannot be checked out again), or when a referenced figure is missing.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from losskernel.provenance import atomic_path, file_sha256, read_provenance

TABLES = ("headline.tsv", "comparisons.tsv")
"""The tables of ``results/tables/`` the pages quote."""
FIGURE_REFERENCE = re.compile(r"snapshot/figures/([\w.-]+)/([\w.-]+\.png)")
"""A page's reference to a snapshot figure: ``snapshot/figures/<experiment>/<name>.png``."""


class SnapshotError(ValueError):
    """The run cannot be snapshotted as it is; the message says why and what to do."""


@dataclass(frozen=True)
class Snapshot:
    """What :func:`write_snapshot` wrote: the stamp's fields and the copied files."""

    stamp: dict
    files: tuple[Path, ...]


def referenced_figures(docs: Path) -> list[tuple[str, str]]:
    """``(experiment, name)`` of every snapshot figure a page of ``docs`` references, sorted."""
    found: set[tuple[str, str]] = set()
    for page in sorted(docs.rglob("*.md")):
        if "_build" in page.relative_to(docs).parts:
            continue
        found.update(FIGURE_REFERENCE.findall(page.read_text()))
    return sorted(found)


def machine() -> dict[str, object]:
    """The machine this runs on, as a reader comparing numbers across machines needs it."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), flags=re.MULTILINE)
        cpu = names[0].strip() if names else cpu
    memory_gib = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {"host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(),
            "memory_gib": memory_gib, "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


def _packages(record: Mapping[str, str]) -> dict[str, str]:
    """The versions of torch and numpy in a record's ``packages`` (a JSON object)."""
    versions = json.loads(record.get("packages") or "{}")
    return {name: versions[name] for name in ("torch", "numpy") if name in versions}


def _one_commit(records: Mapping[Path, Mapping[str, str]]) -> tuple[str, Mapping[str, str]]:
    """The one commit every record names, and the headline table's record."""
    commits = {path: record.get("git_commit", "") for path, record in records.items()}
    if len(set(commits.values())) != 1:
        listing = "; ".join(f"{path}: {commit[:12]}" for path, commit in commits.items())
        raise SnapshotError(f"the run's files come from different commits ({listing}); rerun "
                            f"the default at one commit (snakemake --cores all) and snapshot it")
    dirty = [str(path) for path, record in records.items() if record.get("git_dirty") != "0"]
    if dirty:
        raise SnapshotError(f"{', '.join(dirty)} were made with uncommitted changes, so their "
                            f"code cannot be checked out again; commit, rerun the default "
                            f"(snakemake --cores all) and snapshot that run")
    headline = next(iter(records.values()))
    return headline["git_commit"], headline


def write_snapshot(results: Path, docs: Path, now: dt.datetime | None = None) -> Snapshot:
    """Copy the run in ``results`` that the pages of ``docs`` quote into ``docs/snapshot``.

    Everything is checked before anything is written, so a refused snapshot leaves the old one
    whole. Figures no page references any more are removed from the snapshot.
    """
    tables = [results / "tables" / name for name in TABLES]
    figures = [(results / "figures" / experiment / name, Path("figures") / experiment / name)
               for experiment, name in referenced_figures(docs)]
    missing = [path for path in [*tables, *(source for source, _ in figures)]
               if not path.is_file()]
    if missing:
        raise SnapshotError(f"missing from the run in {results}: "
                            f"{', '.join(map(str, missing))}; run the default first "
                            f"(.venv/bin/snakemake --cores all), or fix the page that "
                            f"references a figure the run does not make")
    records = {path: read_provenance(path) for path in [*tables, *(s for s, _ in figures)]}
    commit, headline_record = _one_commit(records)
    if headline_record.get("host") not in ("", socket.gethostname()):
        raise SnapshotError(f"the run in {results} was made on host {headline_record['host']!r}, "
                            f"this is {socket.gethostname()!r}: the stamp describes the machine it "
                            f"is written on, so snapshot the run on the machine that made it")

    destination = docs / "snapshot"
    copies = [(path, Path(path.name)) for path in tables] + figures
    stamp = {
        "about": "The results the documentation quotes: a copy of one run of the default "
                 "(losskernel snapshot-docs). Training results differ across machines; compare "
                 "them against the spread across trained models, not digit by digit.",
        "commit": commit,
        "run_created_at": headline_record["created_at"],
        "run_host": headline_record.get("host", ""),
        "packages": _packages(headline_record),
        "machine": machine(),
        "snapshot_taken_at": (now or dt.datetime.now(dt.UTC)).isoformat(
            timespec="seconds"),
        "files": {str(target): file_sha256(source) for source, target in copies},
    }
    old_figures = destination / "figures"
    if old_figures.is_dir():
        shutil.rmtree(old_figures)
    written = []
    for source, target in copies:
        path = destination / target
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as partial:
            shutil.copyfile(source, partial)
        written.append(path)
    with atomic_path(destination / "stamp.yaml") as partial:
        partial.write_text(yaml.safe_dump(stamp, sort_keys=False, allow_unicode=True))
    return Snapshot(stamp=stamp, files=(*written, destination / "stamp.yaml"))


def read_stamp(snapshot: Path) -> dict:
    """The stamp of a snapshot directory, checked against the files it lists."""
    stamp = yaml.safe_load((snapshot / "stamp.yaml").read_text())
    changed = [name for name, digest in stamp["files"].items()
               if not (snapshot / name).is_file() or file_sha256(snapshot / name) != digest]
    if changed:
        raise SnapshotError(f"{snapshot}: {', '.join(changed)} differ from stamp.yaml (edited by "
                            f"hand?); write the snapshot again: losskernel snapshot-docs")
    return stamp


def describe(stamp: Mapping[str, object]) -> str:
    """One sentence naming the run a snapshot came from."""
    machine_of = stamp["machine"]
    assert isinstance(machine_of, Mapping)
    packages: Iterable[str] = (f"{name} {version}"
                               for name, version in dict(stamp["packages"]).items())
    return (f"commit {str(stamp['commit'])[:12]}, run on {str(stamp['run_created_at'])[:10]} "
            f"on {machine_of['cpu']} ({machine_of['cores']} cores, "
            f"{machine_of['memory_gib']} GiB, {machine_of['os']}, Python {machine_of['python']}, "
            f"{', '.join(packages)})")


def format_number(value: float) -> str:
    """A result as the pages print it: three significant digits, whole numbers whole."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    for digits in (3, 4, 5):  # 0.99961 is 0.9996, not 1
        text = f"{value:.{digits}g}"
        if not float(text).is_integer() or value == 0:
            break
    return text


def read_tables(snapshot: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The snapshot's headline and comparisons tables (provenance header skipped)."""
    headline, comparisons = (pd.read_csv(snapshot / name, sep="\t", comment="#")
                             for name in TABLES)
    return headline, comparisons


README_TABLE = re.compile(r"(<!-- snapshot-table: ([^>]*?) -->\n).*?(<!-- end snapshot-table -->)",
                          re.S)
"""The README's generated table: its opening marker names the rows (``experiment/metric``)."""


def format_spread(spread: float, count: int, unit: str) -> str:
    """A spread and how many values it is over: ``0.0027 (3 models)``, or ``one model``."""
    count = int(count)
    return f"{format_number(spread)} ({count} {unit}s)" if count >= 2 else f"one {unit}"


def headline_by_key(headline: pd.DataFrame) -> dict[tuple[str, str], tuple]:
    """The headline table's rows (named tuples) by ``(experiment, metric)``."""
    return {(row.experiment, row.metric): row for row in headline.itertuples()}


def headline_row(rows: Mapping[tuple[str, str], tuple], key: str, where: str):
    """The row ``experiment/metric`` of :func:`headline_by_key`; an unknown key raises
    ``KeyError`` naming the experiment's metrics (or the experiments) of ``where``."""
    experiment, _, metric = key.strip().partition("/")
    if (experiment, metric) not in rows:
        known = sorted(m for e, m in rows if e == experiment)
        raise KeyError(f"no headline row {key!r} in {where}; "
                       + (f"{experiment}'s metrics: {', '.join(known)}" if known else
                          f"experiments: {', '.join(sorted({e for e, _ in rows}))}"))
    return rows[(experiment, metric)]


def readme_table(snapshot: Path, rows: list[str]) -> str:
    """The headline rows ``rows`` as a Markdown table, then the run they came from."""
    headline = headline_by_key(read_tables(snapshot)[0])
    lines = ["| experiment | metric | value | spread across trained models | "
             "spread across SGLD seeds |", "|:--|:--|--:|--:|--:|"]
    for key in rows:
        try:
            row = headline_row(headline, key, f"{snapshot}/headline.tsv")
        except KeyError as error:
            raise SnapshotError(f"README.md names a row the snapshot lacks: "
                                f"{error.args[0]}") from None
        lines.append(f"| {row.experiment} | `{row.metric}` | {format_number(row.value)} | "
                     f"{format_spread(row.model_spread, row.models, 'model')} | "
                     f"{format_spread(row.seed_spread, row.seeds, 'seed')} |")
    lines.append(f"\nFrom `docs/snapshot/`: {describe(read_stamp(snapshot))}.")
    return "\n".join(lines) + "\n"


def render_readme(text: str, snapshot: Path) -> str:
    """``text`` with each generated table filled in from the snapshot."""
    return README_TABLE.sub(
        lambda match: match[1] + readme_table(snapshot, match[2].split()) + match[3], text)
