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


def reference_sgld_step(params, grads, anchors, config, generator, preconditioning):
    """The update as a plain loop over parameters (the implementation before it was fused)."""
    half_step = 0.5 * config.step_size
    noise_std = np.sqrt(config.step_size) * config.noise_scale
    with torch.no_grad():
        for param, grad, anchor, coef in zip(params, grads, anchors, preconditioning, strict=True):
            drift = grad * config.nbeta
            drift.add_(param - anchor, alpha=config.localization)
            if coef is not None:
                drift.mul_(coef)
            param.add_(drift, alpha=-half_step)
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            if coef is not None:
                noise.mul_(coef.sqrt())
            param.add_(noise, alpha=noise_std)


@pytest.mark.parametrize("preconditioner", ["identity", "rmsprop"])
def test_fused_step_equals_the_per_parameter_loop_bit_for_bit(preconditioner):
    config = sgld.SGLDConfig(step_size=1e-3, nbeta=30.0, localization=100.0,
                             preconditioner=preconditioner)
    shapes = [(64, 5), (64,), (3, 64), (3,)]
    fused = [torch.randn(shape, generator=torch.Generator().manual_seed(i))
             for i, shape in enumerate(shapes)]
    looped = [p.clone() for p in fused]
    anchors = [p.clone() for p in fused]
    noise_fused, noise_looped = (torch.Generator().manual_seed(5) for _ in range(2))
    precondition_fused = sgld._Preconditioner(config, fused)
    precondition_looped = sgld._Preconditioner(config, looped)
    for step in range(10):
        grads = [torch.randn(shape, generator=torch.Generator().manual_seed(100 + step))
                 for shape in shapes]
        sgld.sgld_step(fused, grads, anchors, config, noise_fused,
                       precondition_fused.coefficients(grads))
        reference_sgld_step(looped, grads, anchors, config, noise_looped,
                            precondition_looped.coefficients(grads))
    for a, b, anchor in zip(fused, looped, anchors, strict=True):
        assert torch.equal(a, b) and not torch.equal(a, anchor)


def test_distance_from_anchors_is_the_euclidean_norm_over_all_parameters():
    params = [torch.full((2, 2), 3.0), torch.full((5,), 1.0)]
    anchors = [torch.ones(2, 2), torch.zeros(5)]
    assert sgld.distance_from_anchors(params, anchors) == pytest.approx(np.sqrt(4 * 4 + 5))


def test_sliced_evaluation_equals_gathered_evaluation():
    model, data = tiny_classification(num_samples=50)

    class Gathered:  # an IndexedData that is not TensorData: evaluated by index tensors
        def __len__(self):
            return len(data)

        def __getitem__(self, indices):
            return data.inputs[indices], data.targets[indices]

    sliced = sgld.evaluate_per_sample_losses(model, cross_entropy_per_sample, data, 16)
    gathered = sgld.evaluate_per_sample_losses(model, cross_entropy_per_sample, Gathered(), 16)
    assert sliced.shape == (50,)
    torch.testing.assert_close(sliced, gathered, rtol=0, atol=0)


def test_bfloat16_evaluation_is_close_to_float32_and_its_kernel_to_the_float32_kernel():
    """The stated tolerances of the optional bfloat16 evaluation: per-sample losses within 2%
    (bfloat16 keeps 8 bits of mantissa), and a correlation kernel from bfloat16 draws within
    0.05 of the float32 one for inputs whose losses move by more than the rounding."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(400, 16, generator=generator)
    targets = torch.randint(0, 4, (400,), generator=generator)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    data = sgld.TensorData(inputs, targets)
    full = sgld.evaluate_per_sample_losses(model, cross_entropy_per_sample, data, 128)
    low = sgld.evaluate_per_sample_losses(model, cross_entropy_per_sample, data, 128, "bfloat16")
    relative = ((low - full).abs() / full.abs().clamp(min=0.1)).max()
    assert 0 < relative < 0.02  # not identical: bfloat16 did run

    settings = dict(step_size=1e-3, nbeta=10.0, localization=10.0, num_chains=2, num_draws=100,
                    batch_size=64, eval_batch_size=400, seed=1)
    kernels = {}
    for precision in sgld.EVAL_PRECISIONS:
        config = sgld.SGLDConfig(**settings, eval_precision=precision)
        chains = sgld.sample_chains(model, cross_entropy_per_sample, data, data, config,
                                    progress=False)
        kernels[precision] = kernel.compute_kernel(np.stack([chains[c].loss for c in (0, 1)]))
    difference = np.abs(kernels["bfloat16"] - kernels["float32"])
    assert 0 < difference.max() < 0.05


@pytest.mark.parametrize("backend", ["processes", "threads"])
def test_chains_run_side_by_side_give_the_traces_of_chains_run_one_by_one(backend):
    model, data = tiny_classification(num_samples=64)
    config = sgld.SGLDConfig(step_size=1e-3, nbeta=10.0, localization=100.0, num_chains=3,
                             num_draws=20, batch_size=16, eval_batch_size=32, seed=4)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same intra-op threads in both runs: identical rounding
    try:
        one_by_one = sgld.sample_chains(model, cross_entropy_per_sample, data, data, config,
                                        progress=False)
        side_by_side = sgld.sample_chains(model, cross_entropy_per_sample, data, data, config,
                                          progress=False, parallel_chains=2,
                                          parallel_backend=backend)
    finally:
        torch.set_num_threads(threads)
    assert list(side_by_side) == [0, 1, 2]
    for chain in range(3):
        np.testing.assert_array_equal(side_by_side[chain].loss, one_by_one[chain].loss)
        np.testing.assert_array_equal(side_by_side[chain].distance, one_by_one[chain].distance)
        np.testing.assert_array_equal(side_by_side[chain].batch_loss,
                                      one_by_one[chain].batch_loss)
    with pytest.raises(ValueError, match="parallel_chains"):
        sgld.sample_chains(model, cross_entropy_per_sample, data, data, config, progress=False,
                           parallel_chains=0)
    with pytest.raises(ValueError, match="parallel_backend"):
        sgld.sample_chains(model, cross_entropy_per_sample, data, data, config, progress=False,
                           parallel_chains=2, parallel_backend="mpi")


def test_a_chain_that_diverges_in_a_worker_process_stops_the_run_with_its_error():
    model, data = tiny_classification()
    config = sgld.SGLDConfig(step_size=1e4, nbeta=1e6, localization=0.5, num_chains=2,
                             num_draws=50, batch_size=8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(sgld.SamplingDivergedError,
                           match=r"in chain \d at step .* step_size=10000.0"):
            sgld.sample_chains(model, cross_entropy_per_sample, data, data, config,
                               progress=False, parallel_chains=2, parallel_backend="processes")
    finally:
        torch.set_num_threads(threads)


def test_processes_refuse_more_than_one_thread_per_chain_before_any_chain_runs():
    """GNU OpenMP hangs in a forked child that starts threads after its parent used them."""
    model, data = tiny_classification()
    config = sgld.SGLDConfig(step_size=1e-3, nbeta=1.0, localization=1.0, num_chains=2,
                             num_draws=2, batch_size=8)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(ValueError, match=r"torch.set_num_threads\(1\)\), got 2"):
            sgld.sample_chains(model, cross_entropy_per_sample, data, data, config,
                               progress=False, parallel_chains=2, parallel_backend="processes")
        # "auto" falls back to threads, and the chains run
        traces = sgld.sample_chains(model, cross_entropy_per_sample, data, data, config,
                                    progress=False, parallel_chains=2)
    finally:
        torch.set_num_threads(threads)
    assert sorted(traces) == [0, 1]
