import numpy as np
import pytest
import torch
from torch import nn

from losskernel import kernel, sgld
from losskernel.losses import cross_entropy_per_sample


def tiny_classification(num_samples: int = 32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(num_samples, 5, generator=generator)
    targets = torch.randint(0, 3, (num_samples,), generator=generator)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    return model, sgld.TensorData(inputs, targets)


def test_zero_noise_zero_localization_equals_gradient_descent():
    model, data = tiny_classification()
    step_size, nbeta, steps = 0.1, 2.0, 10
    config = sgld.SGLDConfig(step_size=step_size, nbeta=nbeta, localization=0.0, num_chains=1,
                             num_draws=steps, batch_size=len(data), eval_batch_size=7,
                             noise_scale=0.0)
    traces = sgld.sample_chains(model, cross_entropy_per_sample, data, data, config,
                                progress=False)

    reference = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    reference.load_state_dict(model.state_dict())
    optimizer = torch.optim.SGD(reference.parameters(), lr=step_size * nbeta / 2)
    expected = []
    for _ in range(steps):
        optimizer.zero_grad()
        cross_entropy_per_sample(reference(data.inputs), data.targets).mean().backward()
        optimizer.step()
        with torch.no_grad():
            expected.append(cross_entropy_per_sample(reference(data.inputs), data.targets).numpy())
    np.testing.assert_allclose(traces[0].loss, np.stack(expected), rtol=1e-5, atol=1e-7)
    assert not np.allclose(traces[0].loss[0], traces[0].loss[-1])  # it did move


def test_pure_localization_gives_the_known_gaussian_kernel():
    """With nbeta = 0 the chain samples w ~ N(w*, s² I) with s² = 1 / (γ (1 - εγ/4)) exactly
    (the stationary law of the discretized Ornstein-Uhlenbeck update), so for the linear
    "loss" l(z; w) = w · x_z the kernel is K = X Xᵀ s²."""
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(6, 4, generator=generator)
    model = nn.Linear(4, 1, bias=False)
    data = sgld.TensorData(inputs, torch.zeros(6))
    gamma, step_size = 10.0, 0.1
    config = sgld.SGLDConfig(step_size=step_size, nbeta=0.0, localization=gamma, num_chains=4,
                             num_burnin_steps=20, num_draws=5000, num_steps_between_draws=2,
                             batch_size=6, eval_batch_size=6, seed=3)
    linear_loss = lambda outputs, targets: outputs.squeeze(-1).double()  # noqa: E731
    chains = sgld.sample_chains(model, linear_loss, data, data, config, progress=False)
    losses = np.stack([chains[c].loss for c in sorted(chains)])
    variance = 1.0 / (gamma * (1 - step_size * gamma / 4))
    expected = (inputs @ inputs.T).double().numpy() * variance
    np.testing.assert_allclose(kernel.covariance_kernel(losses), expected,
                               atol=0.04 * np.abs(expected).max())


def test_a_subset_of_chains_reproduces_those_chains_exactly():
    model, data = tiny_classification()
    config = sgld.SGLDConfig(step_size=1e-3, nbeta=10.0, localization=100.0, num_chains=3,
                             num_draws=5, batch_size=8, seed=7)
    everything = sgld.sample_chains(model, cross_entropy_per_sample, data, data, config,
                                    progress=False)
    only_chain_2 = sgld.sample_chains(model, cross_entropy_per_sample, data, data, config,
                                      chains=[2], progress=False)
    np.testing.assert_array_equal(everything[2].loss, only_chain_2[2].loss)
    assert not np.array_equal(everything[1].loss, everything[2].loss)


def test_sampling_leaves_the_model_untouched():
    model, data = tiny_classification()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = sgld.SGLDConfig(step_size=1e-2, nbeta=10.0, localization=1.0, num_chains=1,
                             num_draws=3, batch_size=8)
    sgld.sample_chains(model, cross_entropy_per_sample, data, data, config, progress=False)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, before[name])


def test_divergence_stops_with_the_step_size_and_localization_named():
    model, data = tiny_classification()
    config = sgld.SGLDConfig(step_size=1e4, nbeta=1e6, localization=0.5, num_chains=1,
                             num_draws=50, batch_size=8)
    with pytest.raises(sgld.SamplingDivergedError, match=r"step_size=10000.0, localization=0.5"):
        sgld.sample_chains(model, cross_entropy_per_sample, data, data, config, progress=False)


def test_rmsprop_preconditioner_runs_and_differs_from_plain_sgld():
    model, data = tiny_classification()
    plain = sgld.SGLDConfig(step_size=1e-3, nbeta=10.0, localization=10.0, num_chains=1,
                            num_draws=5, batch_size=8)
    rmsprop = sgld.SGLDConfig(**{**plain.as_dict(), "preconditioner": "rmsprop"})
    run = lambda c: sgld.sample_chains(model, cross_entropy_per_sample, data, data, c,  # noqa: E731
                                       progress=False)[0].loss
    assert np.isfinite(run(rmsprop)).all()
    assert not np.allclose(run(plain), run(rmsprop))


def test_stratified_minibatches_hold_a_fixed_share_of_each_stratum():
    strata = np.array([0] * 30 + [1] * 10)
    batches = sgld.minibatch_indices(40, 8, np.random.default_rng(0), strata)
    first_epoch = [next(batches).numpy() for _ in range(5)]
    for batch in first_epoch:
        assert (strata[batch] == 0).sum() == 6 and (strata[batch] == 1).sum() == 2
    assert sorted(np.concatenate([b[strata[b] == 0] for b in first_epoch])) == list(range(30))


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"localization must be >= 0, got -1"):
        sgld.SGLDConfig(step_size=1e-3, nbeta=1.0, localization=-1)
    with pytest.raises(ValueError, match=r"step_size must be > 0"):
        sgld.SGLDConfig(step_size=0.0, nbeta=1.0, localization=1.0)
