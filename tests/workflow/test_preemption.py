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

from losskernel import traces

ROOT = Path(__file__).resolve().parents[2]
LOSSKERNEL = [sys.executable, "-m", "losskernel.cli"]


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*LOSSKERNEL, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, **kwargs)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A tiny trained digits model and a config whose chain takes a few seconds to sample."""
    tmp = tmp_path_factory.mktemp("preemption")
    longer = tmp / "longer.yaml"
    longer.write_text(yaml.safe_dump({"experiments": {"digits": {"sampling": {
        "num_draws": 300, "num_steps_between_draws": 1}}}}))
    config = ["--config", str(ROOT / "config/config.yaml"),
              str(ROOT / "tests/smoke/overrides.yaml"), str(longer)]
    trained = run("train", *config, "--experiment", "digits", "--out-dir", str(tmp / "model"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    return tmp, config


@pytest.mark.slow
def test_a_killed_chain_resumes_to_the_traces_of_an_uninterrupted_run(digits):
    tmp, config = digits
    sample = [*config, "--experiment", "digits", "--seed", "0", "--chains", "1",
              "--model", str(tmp / "model/model.pt")]
    reference = run("sample", *sample, "--traces", str(tmp / "reference.nc"))
    assert reference.returncode == 0, reference.stderr[-2000:]

    state_dir, output = tmp / "state", tmp / "resumed.nc"
    state = state_dir / "chain1.state.pt"
    resumable = [*sample, "--traces", str(output), "--state-dir", str(state_dir),
                 "--save-every", "0"]
    job = subprocess.Popen([*LOSSKERNEL, "sample", *resumable], cwd=ROOT,
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

    resumed = run("sample", *resumable)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not state.exists()  # cleaned up once the traces are written
    expected, got = traces.load_traces(tmp / "reference.nc"), traces.load_traces(output)
    for name in traces.TRACE_VARIABLES:
        np.testing.assert_array_equal(got[name].values, expected[name].values, err_msg=name)
    assert list(got["chain"].values) == [1]


def test_progress_of_other_settings_is_refused(tmp_path):
    import torch

    from losskernel.losses import cross_entropy_per_sample
    from losskernel.sgld import Resumable, SGLDConfig, TensorData, sample_chain

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    data = TensorData(torch.randn(16, 4), torch.randint(0, 3, (16,)))
    config = SGLDConfig(step_size=1e-3, nbeta=1, localization=1, num_draws=5, batch_size=4)
    state = tmp_path / "chain0.state.pt"
    stops = iter([False, True])
    with pytest.raises(RuntimeError, match="progress saved"):
        sample_chain(model, cross_entropy_per_sample, data, data, config, 0,
                     resumable=Resumable(state, 1e9, lambda: next(stops)))
    other = SGLDConfig(step_size=2e-3, nbeta=1, localization=1, num_draws=5, batch_size=4)
    with pytest.raises(ValueError, match="holds the progress of another run"):
        sample_chain(model, cross_entropy_per_sample, data, data, other, 0,
                     resumable=Resumable(state))


def test_merged_chain_files_equal_one_run_of_all_chains():
    import torch

    from losskernel.losses import cross_entropy_per_sample
    from losskernel.sgld import SGLDConfig, TensorData, sample_chains

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    data = TensorData(torch.randn(16, 4), torch.randint(0, 3, (16,)))
    config = SGLDConfig(step_size=1e-3, nbeta=1, localization=1, num_chains=3, num_draws=5,
                        batch_size=4)
    ids, init = np.array([f"x{i}" for i in range(16)]), np.zeros(16)

    def dataset(chains):
        sampled = sample_chains(model, cross_entropy_per_sample, data, data, config,
                                chains=chains, progress=False)
        return traces.make_trace_dataset(sampled, init, ids, config)

    whole = dataset(None)
    merged = traces.merge_traces([dataset([2]), dataset([0]), dataset([1])])
    for name in traces.TRACE_VARIABLES:
        np.testing.assert_array_equal(merged[name].values, whole[name].values, err_msg=name)
    with pytest.raises(ValueError, match="repeat a chain"):
        traces.merge_traces([dataset([0]), dataset([0])])
