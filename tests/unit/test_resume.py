"""A chain saves its progress, refuses another run's, and resumes to the uninterrupted trace."""

import os
import signal

import numpy as np
import pytest
import torch

from losskernel.method import traces
from losskernel.method.chains import TensorData, sample_chain
from losskernel.method.losses import cross_entropy_per_sample
from losskernel.method.parallel import sample_chains
from losskernel.method.resume import Resumable, SamplingInterrupted, stop_on_sigterm
from losskernel.method.sgld import SGLDConfig


def test_progress_of_other_settings_is_refused(tmp_path):
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


@pytest.mark.parametrize("preconditioner", ["identity", "rmsprop"])
def test_a_chain_stopped_mid_run_resumes_to_the_uninterrupted_trace(tmp_path, preconditioner):
    """Stopped after step 7 of 3 burn-in + 4 × 2 steps (weights, RMSprop's v, the noise
    generator and the draws of steps 5 and 7 saved), then resumed: every recorded value is
    the same."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    data = TensorData(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    config = SGLDConfig(step_size=1e-3, nbeta=10, localization=10, num_burnin_steps=3,
                        num_draws=4, num_steps_between_draws=2, batch_size=8,
                        preconditioner=preconditioner, seed=2)
    uninterrupted = sample_chain(model, cross_entropy_per_sample, data, data, config, 1)
    state = tmp_path / "chain1.state.pt"
    stops = iter([False] * 6 + [True])
    with pytest.raises(SamplingInterrupted, match="chain 1 stopped after step 7 of 11"):
        sample_chain(model, cross_entropy_per_sample, data, data, config, 1,
                     resumable=Resumable(state, 1e9, lambda: next(stops)))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["chain1.state.pt"]  # renamed
    assert torch.load(state, weights_only=False)["steps_done"] == 7
    resumed = sample_chain(model, cross_entropy_per_sample, data, data, config, 1,
                           resumable=Resumable(state))
    for name in ("loss", "batch_loss", "distance"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(uninterrupted, name),
                                      err_msg=name)


def test_sigterm_asks_the_chains_to_stop():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        should_stop = stop_on_sigterm()
        assert not should_stop()
        os.kill(os.getpid(), signal.SIGTERM)
        assert should_stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
