"""Where the pipeline's time goes: wall time per rule and per experiment from Snakemake's
benchmark files.

    snakemake --cores all                       # the run to measure
    python benchmarks/pipeline_times.py         # per-rule and per-experiment tables, Markdown
    python benchmarks/pipeline_times.py --root DIR   # a run made with `--directory DIR`

Every rule that runs a job has a `benchmark:` directive writing
``results/benchmarks/<rule>/<wildcards>.tsv``: one header line and one row per repeat, with
Snakemake's columns (``s`` is the job's wall time in seconds, ``max_rss`` its peak resident memory
in MB, ``cpu_time`` its CPU seconds; memory and CPU are ``NA`` for a job that ended before
Snakemake's first sample). The rule is the first path component below ``results/benchmarks/``,
the job the rest of the path without ``.tsv``.

Wall clock. It is taken from the benchmark files themselves, not from ``.snakemake/log/``: the
newest log there is usually not the run the files describe (``snakemake --lint`` writes a log, a
partial rerun writes one covering a few jobs, a dry run or a crashed run leaves its own), and its
text is Snakemake's human-readable output, not an interface. Snakemake writes a job's benchmark
file right after the job ends, so a file's modification time is the job's end and that time minus
the file's summed ``s`` (all repeats) its start; the wall clock is the latest end minus the
earliest start. That is the same set of jobs the table sums. It breaks when ``results/`` was copied
without keeping modification times (``cp`` without ``-p``), and it counts idle time when the files
come from several invocations (a rerun of some rules hours later): `wall_clock` warns when no job
ran for more than `IDLE_GAP_S` seconds within the span.
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path

import pandas as pd

#: The columns of Snakemake's (non-extended) benchmark TSV, in its order.
COLUMNS = ["s", "h:m:s", "max_rss", "max_vms", "max_uss", "max_pss", "io_in", "io_out",
           "mean_load", "cpu_time"]
#: Where, below the root of a run, the benchmark files are.
BENCHMARK_DIR = Path("results/benchmarks")
#: A stretch longer than this (seconds) with no job running makes `wall_clock` warn: in one local
#: run the next job starts within a second or two of the last one's end.
IDLE_GAP_S = 60.0


def read_benchmarks(root: Path) -> pd.DataFrame:
    """One row per benchmark file under ``root/results/benchmarks/``.

    Columns: ``rule``, ``job``, Snakemake's `COLUMNS` (from the file's first row, the first
    repeat), ``repeats`` (its number of rows), ``start`` and ``end`` (seconds since the epoch: the
    file's modification time minus the summed ``s`` of its repeats, and that time). Sorted by
    rule and job. Raises FileNotFoundError when there is no benchmark file.
    """
    directory = Path(root) / BENCHMARK_DIR
    paths = sorted(directory.rglob("*.tsv")) if directory.is_dir() else []
    if not paths:
        raise FileNotFoundError(
            f"no benchmark files (*.tsv) under {directory}: run the pipeline first "
            "(`snakemake --cores all`), or pass the directory it ran in")
    rows = []
    for path in paths:
        relative = path.relative_to(directory)
        if len(relative.parts) < 2:
            raise ValueError(f"{path}: a benchmark file must be in a directory named after "
                             "its rule (results/benchmarks/<rule>/<job>.tsv)")
        records = pd.read_csv(path, sep="\t", na_values=["NA", "-"], keep_default_na=False)
        missing = [column for column in COLUMNS if column not in records.columns]
        if missing or records.empty:
            problem = f"lacks the columns {missing}" if missing else "has no rows"
            raise ValueError(f"{path} {problem}: not a Snakemake benchmark file")
        end = path.stat().st_mtime
        rows.append({
            "rule": relative.parts[0],
            "job": relative.relative_to(relative.parts[0]).with_suffix("").as_posix(),
            **records.iloc[0][COLUMNS].to_dict(),
            "repeats": len(records),
            "start": end - float(records["s"].sum()),
            "end": end,
        })
    table = pd.DataFrame(rows)
    numeric = [column for column in COLUMNS if column != "h:m:s"]
    table[numeric] = table[numeric].astype(float)
    table["h:m:s"] = table["h:m:s"].astype(str)
    return table.sort_values(["rule", "job"], ignore_index=True)


def per_rule(table: pd.DataFrame) -> pd.DataFrame:
    """Per rule (the index): ``jobs``, ``total_s``, ``mean_s``, ``max_s`` (wall seconds of its
    jobs), ``share`` (of all rules' job-seconds, 0-1), ``cpu_s`` (summed ``cpu_time``; a job whose
    CPU time is NA counts 0) and ``max_rss_mb`` (the largest ``max_rss``; NaN when every job's is
    NA). Sorted by ``total_s``, largest first (ties by rule name)."""
    grouped = table.groupby("rule", sort=True)
    summary = pd.DataFrame({
        "jobs": grouped["s"].count(),
        "total_s": grouped["s"].sum(),
        "mean_s": grouped["s"].mean(),
        "max_s": grouped["s"].max(),
        "cpu_s": grouped["cpu_time"].sum(),
        "max_rss_mb": grouped["max_rss"].max(),
    })
    total = summary["total_s"].sum()
    summary.insert(4, "share", summary["total_s"] / total if total > 0 else 0.0)
    return summary.sort_values("total_s", ascending=False, kind="stable")


NOT_EXPERIMENTS = frozenset({"tables", "figures", "logs", "benchmarks", "wordnet"})
"""Directories of ``results/`` that are not an experiment's."""


def per_experiment(table: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Per experiment (the index; ``(shared)`` for jobs of no experiment, such as the headline
    table): ``jobs``, ``total_s`` (job-seconds), ``span_s`` (from its first job's start to its
    last job's end; the experiments share the cores, so spans overlap) and ``share`` (of all
    job-seconds). A job's experiment is the first component of its path when
    ``root/results/<component>/`` is an experiment's directory. Sorted by ``total_s``."""
    results = Path(root) / "results"

    def experiment(job: str) -> str:
        first = job.split("/", 1)[0]
        known = first not in NOT_EXPERIMENTS and (results / first).is_dir()
        return first if known else "(shared)"

    grouped = table.assign(experiment=table["job"].map(experiment)).groupby("experiment")
    summary = pd.DataFrame({"jobs": grouped["s"].count(), "total_s": grouped["s"].sum(),
                            "span_s": grouped["end"].max() - grouped["start"].min()})
    summary["share"] = summary["total_s"] / summary["total_s"].sum()
    return summary.sort_values("total_s", ascending=False, kind="stable")


def experiments_markdown(table: pd.DataFrame) -> str:
    """The `per_experiment` table as Markdown."""
    lines = ["| experiment | jobs | job-seconds | share | span (first start to last end) |",
             "|:---|---:|---:|---:|---:|"]
    for name, row in table.iterrows():
        lines.append(f"| {name} | {int(row['jobs'])} | {_number(row['total_s'], 1)} | "
                     f"{_percent(row['share'])} | {_duration(row['span_s'])} |")
    return "\n".join(lines) + "\n"


def wall_clock(root: Path) -> float:
    """Seconds from the earliest job start to the latest job end of the benchmark files under
    ``root/results/benchmarks/`` (see the module docstring). Warns (UserWarning) when no job ran
    for more than `IDLE_GAP_S` seconds in between: the files then likely come from more than one
    snakemake invocation (or, on a cluster, jobs waited in its queue), and the span counts that
    time."""
    table = read_benchmarks(root)
    gap, after = _longest_idle_gap(table)
    if gap > IDLE_GAP_S:
        warnings.warn(
            f"no job ran for {gap:.0f} s (after {after}): the benchmark files under "
            f"{Path(root) / BENCHMARK_DIR} likely come from more than one snakemake run (or jobs "
            "waited in a cluster queue), and the wall clock counts that time", UserWarning,
            stacklevel=2)
    return float(table["end"].max() - table["start"].min())


def _longest_idle_gap(table: pd.DataFrame) -> tuple[float, str]:
    """The longest time within the span when no job ran, and the job that ended before it."""
    longest, after, reach, last = 0.0, "", -math.inf, ""
    for row in table.sort_values("start").itertuples(index=False):
        if reach > -math.inf and row.start - reach > longest:
            longest, after = row.start - reach, last
        if row.end > reach:
            reach, last = row.end, f"{row.rule}/{row.job}"
    return longest, after


def to_markdown(per_rule_table: pd.DataFrame, wall_clock_s: float | None) -> str:
    """The `per_rule` table as a Markdown table with a total row, then a line on where the time
    goes (the top rule and its share) and one on the wall clock (unknown when None)."""
    header = ["rule", "jobs", "total s", "mean s", "max s", "share", "CPU s", "max RSS MB"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    for rule, row in per_rule_table.iterrows():
        lines.append("| " + " | ".join([
            str(rule), str(int(row["jobs"])), _number(row["total_s"], 1),
            _number(row["mean_s"], 1), _number(row["max_s"], 1), _percent(row["share"]),
            _number(row["cpu_s"], 1), _number(row["max_rss_mb"], 0)]) + " |")
    jobs, total = int(per_rule_table["jobs"].sum()), float(per_rule_table["total_s"].sum())
    lines.append("| " + " | ".join([
        "**total**", str(jobs), _number(total, 1), "", "", _percent(1.0 if total > 0 else 0.0),
        _number(per_rule_table["cpu_s"].sum(), 1), _number(per_rule_table["max_rss_mb"].max(), 0),
    ]) + " |")
    lines.append("")
    if len(per_rule_table):
        top, row = per_rule_table.index[0], per_rule_table.iloc[0]
        lines.append(
            f"Where the time goes: `{top}`, {_percent(row['share'])} of the {_number(total, 1)} "
            f"job-seconds ({int(row['jobs'])} jobs, {_number(row['mean_s'], 1)} s each on "
            "average).")
    if wall_clock_s is None:
        lines.append(f"Wall clock: unknown; {jobs} jobs.")
    else:
        parallel = total / wall_clock_s if wall_clock_s > 0 else math.nan
        lines.append(
            f"Wall clock: {_duration(wall_clock_s)} for {jobs} jobs "
            f"({_number(parallel, 2)} jobs running on average).")
    return "\n".join(lines) + "\n"


def _number(value: float, digits: int) -> str:
    return "n/a" if pd.isna(value) else f"{value:.{digits}f}"


def _percent(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{100 * value:.1f}%"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="directory the pipeline ran in (default: the current directory)")
    args = parser.parse_args(argv)
    table = read_benchmarks(args.root)
    print(to_markdown(per_rule(table), wall_clock(args.root)))
    print(experiments_markdown(per_experiment(table, args.root)), end="")


if __name__ == "__main__":
    main()
