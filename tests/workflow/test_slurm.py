"""The tiny-config workflow through profiles/slurm on a real single-node SLURM cluster.

The cluster comes from ``../shared/slurm/up.sh`` (slurmctld, slurmd, slurmdbd with MariaDB,
munge; it needs root and installs its Debian packages) and is stopped by ``down.sh``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr
from tests.needs import SLURM_SCRIPTS, require

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "profiles" / "slurm"
SITE = {"SITE-ACCOUNT": "local", "SITE-PARTITION": "debug"}  # what up.sh creates


@pytest.fixture(scope="module")
def cluster():
    require("slurm")
    # up.sh sizes the node with nproc, which a thread limit in the environment would lower
    env = {key: value for key, value in os.environ.items()
           if key not in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT")}
    start = subprocess.run(["bash", str(SLURM_SCRIPTS / "up.sh")], capture_output=True,
                           text=True, env={**env, "SMOKE": "0"}, timeout=900)
    assert start.returncode == 0, start.stdout[-3000:] + start.stderr[-3000:]
    cancel_leftover_test_jobs()
    up = subprocess.run(["bash", str(SLURM_SCRIPTS / "up.sh")], capture_output=True, text=True,
                        env=env, timeout=900)  # now with up.sh's own smoke job
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    yield
    subprocess.run(["bash", str(SLURM_SCRIPTS / "down.sh")], capture_output=True, timeout=300)


def cancel_leftover_test_jobs() -> None:
    """Cancel jobs that an interrupted earlier test run left in slurmctld's saved state.

    slurmctld restores its queue from StateSaveLocation when it starts, so a run killed while
    its chain jobs ran (or a machine image taken then) brings those jobs back holding the node,
    and every new job stays PENDING. Only jobs of pytest's temporary directories and up.sh's
    smoke job are cancelled: the local test cluster runs nothing else.
    """
    queue = subprocess.run(["squeue", "-h", "-o", "%i|%j|%Z"], capture_output=True, text=True,
                           timeout=60, check=True)
    leftovers = [job_id for job_id, name, work_dir in
                 (line.split("|", 2) for line in queue.stdout.splitlines())
                 if name == "slurm_local_smoke" or "/pytest-of-" in work_dir]
    if not leftovers:
        return
    print(f"cancelling {len(leftovers)} jobs left by an earlier test run: {', '.join(leftovers)}")
    subprocess.run(["scancel", *leftovers], timeout=60, check=True)
    for _ in range(60):
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                               timeout=60).stdout.strip()
        if state.startswith("idle"):
            return
        time.sleep(1)
    pytest.fail(f"the node stayed {state!r} after cancelling jobs {leftovers}")


def site_profile(directory: Path) -> Path:
    """profiles/slurm with the site settings a user fills in set to the local cluster's."""
    text = (PROFILE / "config.yaml").read_text()
    for placeholder, value in SITE.items():
        assert placeholder in text  # the settings a user must fill in are named in the profile
        text = text.replace(placeholder, value)
    directory.mkdir()
    (directory / "config.yaml").write_text(text)
    return directory


@pytest.mark.slow
def test_the_smoke_workflow_runs_on_slurm(cluster, tmp_path):
    profile = site_profile(tmp_path / "profile")
    work = tmp_path / "work"
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(work), "--workflow-profile", str(profile),
         "--configfile", str(ROOT / "config/config.yaml"),
         str(ROOT / "tests/smoke/overrides.yaml")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=3600)
    assert result.returncode == 0, result.stdout[-5000:]

    headline = pd.read_csv(work / "results/tables/headline.tsv", sep="\t", comment="#")
    assert headline["value"].notna().all()
    # the profile's chains_per_job: 1 made every chain its own SLURM job, and its provenance
    # names that job
    chain_files = sorted(work.glob("results/*/*/chains/chain*.nc"))
    assert chain_files and all(path.stem.removeprefix("chain").isdigit() for path in chain_files)
    job_ids = set()
    for path in chain_files:
        with xr.open_dataset(path) as chain:
            job_ids.add(chain.attrs["slurm_job_id"])
    assert "" not in job_ids and len(job_ids) == len(chain_files)
    accounting = subprocess.run(["sacct", "-X", "-n", "-P", "-j", ",".join(sorted(job_ids)),
                                 "-o", "JobIDRaw,JobID,State,Account,Partition"],
                                capture_output=True, text=True, timeout=60)
    rows = [line.split("|") for line in accounting.stdout.split()]
    assert len(rows) == len(job_ids)
    assert {state for _, _, state, _, _ in rows} == {"COMPLETED"}
    assert {(account, partition) for _, _, _, account, partition in rows} == {("local", "debug")}
    # ... submitted as job arrays (slurm-array-jobs: sample_chain): an array task's JobID is
    # <array job>_<task>, its JobIDRaw its own job id
    arrays = {job_id.split("_")[0] for _, job_id, _, _, _ in rows}
    assert all("_" in job_id for _, job_id, _, _, _ in rows), rows
    assert len(arrays) < len(rows)
    print(f"{len(rows)} chain jobs in {len(arrays)} SLURM job arrays")

    # the plugin's efficiency report of every job of the run, where the profile puts it
    reports = list(work.glob("results/slurm/efficiency_report_*.csv"))
    assert len(reports) == 1, reports
    report = pd.read_csv(reports[0])
    assert {"CPU Efficiency (%)", "Memory Usage (%)"} <= set(report.columns)
    assert len(report) >= len(rows) and report["CPU Efficiency (%)"].notna().all()
    print(f"efficiency report {reports[0].name}: {len(report)} jobs")
    print(report.to_string(max_rows=200))
