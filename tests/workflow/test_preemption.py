"""A sampling job killed mid-run (SIGTERM, as SLURM preempts) resumes to identical traces."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from losskernel.method import traces

ROOT = Path(__file__).resolve().parents[2]
LOSSKERNEL = [sys.executable, "-m", "losskernel.cli"]


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*LOSSKERNEL, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, **kwargs)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A tiny trained digits model in a work directory, and a config whose chain takes a few
    seconds to sample."""
    tmp = tmp_path_factory.mktemp("preemption")
    longer = tmp / "longer.yaml"
    longer.write_text(yaml.safe_dump({"experiments": {"digits": {"sampling": {
        "num_draws": 300, "num_steps_between_draws": 1}}}}))
    config = ["--config", str(ROOT / "config/config.yaml"),
              str(ROOT / "tests/smoke/overrides.yaml"),
              str(ROOT / "tests/smoke/one-chain-per-job.yaml"), str(longer),
              "--directory", str(tmp)]
    trained = run("train_model", *config, "--experiment", "digits")
    assert trained.returncode == 0, trained.stderr[-2000:]
    return tmp, config


@pytest.mark.slow
def test_a_killed_chain_resumes_to_the_traces_of_an_uninterrupted_run(digits):
    tmp, config = digits
    sample = ["sample_chain", *config, "--experiment", "digits", "--run", "seed0", "--chain", "1"]
    reference = run(*sample, "--output", f"traces={tmp / 'reference.nc'}")
    assert reference.returncode == 0, reference.stderr[-2000:]

    state = tmp / "results/digits/seed0/chains/chain1.state.pt"
    output = tmp / "results/digits/seed0/chains/chain1.nc"
    resumable = [*sample, "--save-every", "0"]
    job = subprocess.Popen([*LOSSKERNEL, *resumable], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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

    resumed = run(*resumable)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not state.exists()  # cleaned up once the traces are written
    expected, got = traces.load_traces(tmp / "reference.nc"), traces.load_traces(output)
    for name in traces.TRACE_VARIABLES:
        np.testing.assert_array_equal(got[name].values, expected[name].values, err_msg=name)
    assert list(got["chain"].values) == [1]
