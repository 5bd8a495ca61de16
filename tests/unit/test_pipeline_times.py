"""benchmarks/pipeline_times.py on a fake results/benchmarks tree in Snakemake's format."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("pipeline_times",
                                              ROOT / "benchmarks/pipeline_times.py")
assert SPEC is not None and SPEC.loader is not None
pipeline_times = importlib.util.module_from_spec(SPEC)
sys.modules["pipeline_times"] = pipeline_times
SPEC.loader.exec_module(pipeline_times)

# The header and row format of a benchmark file Snakemake 9 wrote for this workflow
# (results/benchmarks/embed_umap/modarith.tsv); NA is what it writes for the memory and CPU of a
# job that ended before its first sample.
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
T0 = 1_800_000_000.0
# path below results/benchmarks/, its rows (one per repeat), its end (modification time) - T0
FILES = {
    "train_model/modarith.tsv": (
        ["36.00\t0:00:36\t896.40\t1828.75\t880.10\t885.00\t0.00\t12.50\t98.61\t35.50",
         "40.00\t0:00:40\t901.00\t1830.00\t881.00\t886.00\t0.00\t12.50\t99.00\t39.60"], 76.0),
    "sample_chain/modarith/seed0/chain0.tsv": (
        ["20.00\t0:00:20\t400.50\t828.75\t390.00\t395.00\t0.00\t0.40\t95.00\t19.00"], 96.0),
    "sample_chain/modarith/seed0/chain1.tsv": (
        ["22.00\t0:00:22\t410.25\t830.00\t399.00\t401.00\t0.00\t0.40\t95.45\t21.00"], 98.0),
    "sample_chain/digits/seed0/chain0.tsv": (
        ["18.00\t0:00:18\t380.00\t800.00\t370.00\t375.00\t0.00\t0.30\t94.44\t17.00"], 114.0),
    "compute_kernel/modarith/seed0-covariance.tsv": (
        ["2.50\t0:00:02\t340.12\t700.00\t330.00\t335.00\t0.00\t0.10\t84.00\t2.10"], 120.5),
    "compute_kernel/modarith/seed0-correlation.tsv": (
        ["1.50\t0:00:01\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA"], 121.0),
    "headline_table/headline.tsv": (
        ["0.00\t0:00:00\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA"], 125.0),
}


def fake_run(root: Path, files=FILES) -> Path:
    for name, (rows, end) in files.items():
        path = root / "results/benchmarks" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER + "".join(row + "\n" for row in rows))
        os.utime(path, (T0 + end, T0 + end))
    return root


def test_the_fake_files_have_the_header_snakemake_writes():
    from snakemake.benchmark import BenchmarkRecord

    assert HEADER.rstrip("\n").split("\t") == BenchmarkRecord.get_header() == \
        pipeline_times.COLUMNS


def test_read_benchmarks_one_row_per_file_with_the_first_repeat(tmp_path):
    table = pipeline_times.read_benchmarks(fake_run(tmp_path))
    assert len(table) == len(FILES)
    assert list(table.columns) == ["rule", "job", *pipeline_times.COLUMNS, "repeats", "start",
                                   "end"]
    rows = table.set_index(["rule", "job"])
    assert list(rows.loc["sample_chain"].index) == [
        "digits/seed0/chain0", "modarith/seed0/chain0", "modarith/seed0/chain1"]
    train = rows.loc[("train_model", "modarith")]
    assert train["s"] == 36.0 and train["cpu_time"] == 35.5 and train["h:m:s"] == "0:00:36"
    assert train["repeats"] == 2
    # the file was written at T0 + 76 after both repeats (36 s + 40 s): the job started at T0
    assert train["start"] == pytest.approx(T0) and train["end"] == pytest.approx(T0 + 76)
    short = rows.loc[("compute_kernel", "modarith/seed0-correlation")]
    assert short["s"] == 1.5 and short[["max_rss", "cpu_time"]].isna().all()


def test_per_rule_sums_counts_and_shares(tmp_path):
    summary = pipeline_times.per_rule(pipeline_times.read_benchmarks(fake_run(tmp_path)))
    assert list(summary.index) == ["sample_chain", "train_model", "compute_kernel",
                                   "headline_table"]
    assert list(summary.columns) == ["jobs", "total_s", "mean_s", "max_s", "share", "cpu_s",
                                     "max_rss_mb"]
    assert list(summary["jobs"]) == [3, 1, 2, 1]
    assert list(summary["total_s"]) == pytest.approx([60.0, 36.0, 4.0, 0.0])
    assert list(summary["mean_s"]) == pytest.approx([20.0, 36.0, 2.0, 0.0])
    assert list(summary["max_s"]) == pytest.approx([22.0, 36.0, 2.5, 0.0])
    assert list(summary["share"]) == pytest.approx([0.60, 0.36, 0.04, 0.0])
    assert list(summary["cpu_s"]) == pytest.approx([57.0, 35.5, 2.1, 0.0])  # NA counts 0
    assert list(summary["max_rss_mb"][:3]) == pytest.approx([410.25, 896.4, 340.12])
    assert math.isnan(summary.loc["headline_table", "max_rss_mb"])  # all its jobs' are NA


def test_markdown_rows_and_where_the_time_goes(tmp_path):
    root = fake_run(tmp_path)
    summary = pipeline_times.per_rule(pipeline_times.read_benchmarks(root))
    text = pipeline_times.to_markdown(summary, pipeline_times.wall_clock(root))
    assert text.splitlines() == [
        "| rule | jobs | total s | mean s | max s | share | CPU s | max RSS MB |",
        "|:---|---:|---:|---:|---:|---:|---:|---:|",
        "| sample_chain | 3 | 60.0 | 20.0 | 22.0 | 60.0% | 57.0 | 410 |",
        "| train_model | 1 | 36.0 | 36.0 | 36.0 | 36.0% | 35.5 | 896 |",
        "| compute_kernel | 2 | 4.0 | 2.0 | 2.5 | 4.0% | 2.1 | 340 |",
        "| headline_table | 1 | 0.0 | 0.0 | 0.0 | 0.0% | 0.0 | n/a |",
        "| **total** | 7 | 100.0 |  |  | 100.0% | 94.6 | 896 |",
        "",
        "Where the time goes: `sample_chain`, 60.0% of the 100.0 job-seconds (3 jobs, 20.0 s "
        "each on average).",
        "Wall clock: 2 min 5 s for 7 jobs (0.80 jobs running on average).",
    ]
    assert pipeline_times.to_markdown(summary, None).splitlines()[-1] == \
        "Wall clock: unknown; 7 jobs."


def test_wall_clock_spans_earliest_start_to_latest_end(tmp_path):
    # train_model started at T0 (ended T0 + 76 after 76 s), headline_table ended at T0 + 125
    assert pipeline_times.wall_clock(fake_run(tmp_path)) == pytest.approx(125.0)


def test_wall_clock_warns_about_an_idle_gap_between_runs(tmp_path):
    files = {**FILES, "headline_table/headline.tsv": (FILES["headline_table/headline.tsv"][0],
                                                      1000.0)}
    with pytest.warns(UserWarning, match=r"no job ran for 879 s \(after compute_kernel/modarith/"
                                         r"seed0-correlation\)"):
        assert pipeline_times.wall_clock(fake_run(tmp_path, files)) == pytest.approx(1000.0)


def test_no_benchmark_files_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the pipeline first") as error:
        pipeline_times.read_benchmarks(tmp_path)
    assert str(tmp_path / "results/benchmarks") in str(error.value)
    assert "snakemake --cores all" in str(error.value)


def test_a_file_that_is_not_a_benchmark_is_named(tmp_path):
    path = tmp_path / "results/benchmarks/train_model/modarith.tsv"
    path.parent.mkdir(parents=True)
    path.write_text("experiment\tvalue\nmodarith\t1\n")
    with pytest.raises(ValueError, match=r"modarith\.tsv lacks the columns"):
        pipeline_times.read_benchmarks(tmp_path)


def test_per_experiment_sums_its_jobs_and_spans_its_first_start_to_its_last_end(tmp_path):
    root = fake_run(tmp_path)
    for directory in ("modarith", "digits", "tables"):  # experiments have a results directory
        (root / "results" / directory).mkdir()
    table = pipeline_times.per_experiment(pipeline_times.read_benchmarks(root), root)
    assert list(table.index) == ["modarith", "digits", "(shared)"]
    # training (36 s, its first repeat), two chains (20 + 22 s), two kernels (2.5 + 1.5 s)
    assert table.loc["modarith", "jobs"] == 5 and table.loc["modarith", "total_s"] == 82.0
    assert table.loc["modarith", "span_s"] == pytest.approx(121.0)  # T0 to the last kernel
    assert table.loc["digits", "span_s"] == pytest.approx(18.0)
    assert table.loc["(shared)", "jobs"] == 1  # the headline table belongs to no experiment
    assert table["share"].sum() == pytest.approx(1.0)
    assert table.loc["modarith", "share"] == pytest.approx(0.82)
    markdown = pipeline_times.experiments_markdown(table)
    assert "| modarith | 5 | 82.0 | 82.0% | 2 min 1 s |" in markdown


def load_slurm_resources():
    spec = importlib.util.spec_from_file_location("slurm_resources",
                                                  ROOT / "benchmarks/slurm_resources.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_slurm_resources_proposes_the_largest_job_times_the_margin(tmp_path):
    slurm_resources = load_slurm_resources()
    table = pipeline_times.read_benchmarks(fake_run(tmp_path))
    proposal = slurm_resources.propose(table, margin=2.0).set_index("rule")
    # train_model: 36 s (first repeat), 896.40 MB -> 5 min (the least), ceil(1792.8 / 256) · 256
    assert proposal.loc["train_model", ["jobs", "runtime", "mem_mb"]].tolist() == [1, 5, 2048]
    # sample_chain: the largest of 3 jobs, 22 s and 410.25 MB -> the least memory, 1024
    assert proposal.loc["sample_chain", ["jobs", "max_s", "mem_mb"]].tolist() == [3, 22.0, 1024]
    # a job too short to sample memory: the least memory
    assert proposal.loc["headline_table", "mem_mb"] == 1024
    assert slurm_resources.propose(table, margin=60.0).loc[
        lambda rows: rows["rule"] == "sample_chain", "runtime"].item() == 22
    yaml_text = slurm_resources.to_profile_yaml(proposal.reset_index(), tmp_path, 2.0)
    assert "  train_model: {runtime: 5, mem_mb: 2048}  # 1 jobs, max 36 s, 896 MB" in yaml_text
    with pytest.raises(ValueError, match=r"margin 0\.5 would ask for less"):
        slurm_resources.propose(table, margin=0.5)
