"""The tiny-config workflow through profiles/slurm on a real single-node SLURM cluster.

The cluster comes from ``../shared/slurm/up.sh`` (slurmctld, slurmd, slurmdbd with MariaDB,
munge; it needs root and installs its Debian packages) and is stopped by ``down.sh``.
"""

from __future__ import annotations

import os
import subprocess
import sys
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
    up = subprocess.run(["bash", str(SLURM_SCRIPTS / "up.sh")], capture_output=True, text=True,
                        env=env, timeout=900)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    yield
    subprocess.run(["bash", str(SLURM_SCRIPTS / "down.sh")], capture_output=True, timeout=300)


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
    # every chain ran as its own SLURM job, and its provenance names that job
    chain_files = sorted(work.glob("results/*/*/chains/chain*.nc"))
    assert chain_files
    job_ids = set()
    for path in chain_files:
        with xr.open_dataset(path) as chain:
            job_ids.add(chain.attrs["slurm_job_id"])
    assert "" not in job_ids and len(job_ids) == len(chain_files)
    accounting = subprocess.run(["sacct", "-X", "-n", "-P", "-j", ",".join(sorted(job_ids)),
                                 "-o", "JobID,State,Account,Partition"],
                                capture_output=True, text=True, timeout=60)
    rows = [line.split("|") for line in accounting.stdout.split()]
    assert len(rows) == len(job_ids)
    assert {state for _, state, _, _ in rows} == {"COMPLETED"}
    assert {(account, partition) for _, _, account, partition in rows} == {("local", "debug")}
