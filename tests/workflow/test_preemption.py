"""A sampling job killed mid-run (SIGTERM, as SLURM preempts) resumes to identical traces."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from tests.workflow.conftest import own_process, snakemake

from losskernel.config import load_config
from losskernel.job import Job
from losskernel.method import traces
from losskernel.params import job_params
from losskernel.plan import Plan

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [ROOT / "config/config.yaml", ROOT / "tests/smoke/overrides.yaml",
           ROOT / "tests/smoke/one-chain-per-job.yaml"]


def sample_chain(config: list[Path], work: Path, traces_file: str,
                 save_every_seconds: float) -> subprocess.Popen:
    """Chain 1 of digits' run seed0 as the rule sample_chain runs it, in a process of its own
    (without Snakemake: the test sets how often the chain saves its progress)."""
    plan = Plan.from_config(load_config(config), ROOT / "workflow/schemas/config.schema.yaml")
    wildcards = {"experiment": "digits", "run": "seed0", "chain": "1"}
    arguments = {**job_params(plan, "sample_chain", wildcards),
                 "state_dir": str(work / "results/digits/seed0/chains"),
                 "save_every_seconds": save_every_seconds}
    job = Job("sample_chain", "sample_chain", wildcards,
              {"model": str(work / "results/digits/model.pt")}, {"traces": traces_file},
              arguments)
    runner = work / f"runner-{Path(traces_file).stem}"
    runner.mkdir(exist_ok=True)
    return subprocess.Popen(own_process(job, {"rule": "sample_chain"}, runner), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A tiny trained digits model in a work directory, and a config whose chain takes a few
    seconds to sample."""
    tmp = tmp_path_factory.mktemp("preemption")
    longer = tmp / "longer.yaml"
    longer.write_text(yaml.safe_dump({"experiments": {"digits": {"sampling": {
        "num_draws": 300, "num_steps_between_draws": 1}}}}))
    config = [*CONFIGS, longer]
    trained = snakemake("results/digits/model.pt", "--directory", str(tmp), "--cores", "1",
                        "--configfile", *map(str, config))
    assert trained.returncode == 0, trained.stderr[-2000:]
    return tmp, config


@pytest.mark.slow
def test_a_killed_chain_resumes_to_the_traces_of_an_uninterrupted_run(digits):
    tmp, config = digits
    reference = sample_chain(config, tmp, str(tmp / "reference.nc"), 60)
    _, stderr = reference.communicate(timeout=600)
    assert reference.returncode == 0, stderr[-2000:]

    state = tmp / "results/digits/seed0/chains/chain1.state.pt"
    output = tmp / "results/digits/seed0/chains/chain1.nc"
    job = sample_chain(config, tmp, str(output), 0)  # a save after every step
    deadline = time.monotonic() + 300
    while not state.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.poll() is None, "the chain finished before it could be killed: lengthen it"
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode != 0 and "progress saved" in stderr, stderr[-2000:]
    assert state.exists() and not output.exists()
    killed_at = int(__import__("torch").load(state, weights_only=False)["steps_done"])
    assert 0 < killed_at < 5 + 300  # stopped mid-run: burn-in 5, then 300 draws

    resumed = sample_chain(config, tmp, str(output), 0)
    _, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-2000:]
    assert not state.exists()  # cleaned up once the traces are written
    expected, got = traces.load_traces(tmp / "reference.nc"), traces.load_traces(output)
    for name in traces.TRACE_VARIABLES:
        np.testing.assert_array_equal(got[name].values, expected[name].values, err_msg=name)
    assert list(got["chain"].values) == [1]
