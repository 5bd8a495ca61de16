"""Propose the SLURM profile's per-rule runtime and memory from a run's benchmark files.

    snakemake --cores all                          # a run to measure (here: the default)
    python benchmarks/slurm_resources.py           # prints a `set-resources:` block
    python benchmarks/slurm_resources.py --root DIR --margin 3

For every rule, the largest wall time ``s`` and peak resident memory ``max_rss`` (MB) over its
jobs in ``results/benchmarks/<rule>/`` (read by ``pipeline_times.read_benchmarks``) are
multiplied by ``--margin`` and rounded up:

    runtime = max(min_runtime, ceil(margin · max s / 60))            minutes
    mem_mb  = max(min_mem_mb, ceil(margin · max max_rss / 256) · 256)  MB

A job too short for Snakemake to sample its memory (``max_rss`` NA) gets ``min_mem_mb``. The
numbers describe the machine and config that ran: a run's chains in one job use more memory and
time than one chain's job, so a profile of one job per chain gets an upper bound from a default
run; a larger config (ImageNet) needs its own measurement or `losskernel plan`'s estimate.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
from pipeline_times import read_benchmarks

MIN_RUNTIME_MIN = 5
"""The least runtime (minutes) asked for: SLURM's start-up and the file system's latency."""
MIN_MEM_MB = 1024
"""The least memory (MB) asked for: Python with torch imported is a few hundred MB."""


def propose(table: pd.DataFrame, margin: float = 2.0) -> pd.DataFrame:
    """Per rule: jobs, the largest ``s`` and ``max_rss`` measured, and the proposed ``runtime``
    (minutes) and ``mem_mb``."""
    if margin < 1:
        raise ValueError(f"margin {margin} would ask for less than was measured; use >= 1")
    grouped = table.groupby("rule").agg(jobs=("job", "size"), max_s=("s", "max"),
                                        max_rss_mb=("max_rss", "max"))
    grouped["runtime"] = [max(MIN_RUNTIME_MIN, math.ceil(margin * s / 60))
                          for s in grouped["max_s"]]
    grouped["mem_mb"] = [MIN_MEM_MB if pd.isna(rss) else
                         max(MIN_MEM_MB, math.ceil(margin * rss / 256) * 256)
                         for rss in grouped["max_rss_mb"]]
    return grouped.reset_index()


def to_profile_yaml(proposal: pd.DataFrame, root: Path, margin: float) -> str:
    """The proposal as the profile's ``set-resources`` block, with where it came from."""
    lines = [f"# from benchmarks/slurm_resources.py --root {root} --margin {margin:g}: the "
             f"largest of each rule's jobs times {margin:g}",
             "set-resources:"]
    for row in proposal.itertuples():
        lines.append(f"  {row.rule}: {{runtime: {row.runtime}, mem_mb: {row.mem_mb}}}"
                     f"  # {row.jobs} jobs, max {row.max_s:.0f} s, "
                     f"{'?' if pd.isna(row.max_rss_mb) else f'{row.max_rss_mb:.0f}'} MB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="the directory the pipeline ran in (default: here)")
    parser.add_argument("--margin", type=float, default=2.0,
                        help="times the measured maximum (default 2)")
    args = parser.parse_args(argv)
    proposal = propose(read_benchmarks(args.root), args.margin)
    print(to_profile_yaml(proposal, args.root, args.margin))


if __name__ == "__main__":
    main()
