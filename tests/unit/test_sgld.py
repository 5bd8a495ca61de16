import re

import numpy as np
import pytest
import torch
from torch import nn

from losskernel.method import chains, kernel, parallel, sgld
from losskernel.method.losses import cross_entropy_per_sample


def tiny_classification(num_samples: int = 32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(num_samples, 5, generator=generator)
    targets = torch.randint(0, 3, (num_samples,), generator=generator)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    return model, chains.TensorData(inputs, targets)


def test_zero_noise_zero_localization_equals_gradient_descent():
    model, data = tiny_classification()
    step_size, nbeta, steps = 0.1, 2.0, 10
    config = sgld.SGLDConfig(step_size=step_size, nbeta=nbeta, localization=0.0, num_chains=1,
                             num_draws=steps, batch_size=len(data), eval_batch_size=7,
                             noise_scale=0.0)
    traces = parallel.sample_chains(model, cross_entropy_per_sample, data, data, config,
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
    data = chains.TensorData(inputs, torch.zeros(6))
    gamma, step_size = 10.0, 0.1
    config = sgld.SGLDConfig(step_size=step_size, nbeta=0.0, localization=gamma, num_chains=4,
                             num_burnin_steps=20, num_draws=5000, num_steps_between_draws=2,
                             batch_size=6, eval_batch_size=6, seed=3)
    linear_loss = lambda outputs, targets: outputs.squeeze(-1).double()  # noqa: E731
    sampled = parallel.sample_chains(model, linear_loss, data, data, config, progress=False)
    losses = np.stack([sampled[c].loss for c in sorted(sampled)])
    variance = 1.0 / (gamma * (1 - step_size * gamma / 4))
    expected = (inputs @ inputs.T).double().numpy() * variance
    np.testing.assert_allclose(kernel.covariance_kernel(losses), expected,
                               atol=0.04 * np.abs(expected).max())


def test_a_subset_of_chains_reproduces_those_chains_exactly():
    model, data = tiny_classification()
    config = sgld.SGLDConfig(step_size=1e-3, nbeta=10.0, localization=100.0, num_chains=3,
                             num_draws=5, batch_size=8, seed=7)
    everything = parallel.sample_chains(model, cross_entropy_per_sample, data, data, config,
                                        progress=False)
    only_chain_2 = parallel.sample_chains(model, cross_entropy_per_sample, data, data, config,
                                          chains=[2], progress=False)
    np.testing.assert_array_equal(everything[2].loss, only_chain_2[2].loss)
    assert not np.array_equal(everything[1].loss, everything[2].loss)


def test_sampling_leaves_the_model_untouched():
    model, data = tiny_classification()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = sgld.SGLDConfig(step_size=1e-2, nbeta=10.0, localization=1.0, num_chains=1,
                             num_draws=3, batch_size=8)
    parallel.sample_chains(model, cross_entropy_per_sample, data, data, config, progress=False)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, before[name])


def test_divergence_stops_with_the_step_size_and_localization_named():
    model, data = tiny_classification()
    config = sgld.SGLDConfig(step_size=1e4, nbeta=1e6, localization=0.5, num_chains=1,
                             num_draws=50, batch_size=8)
    with pytest.raises(chains.SamplingDivergedError,
                       match=r"step_size=10000.0, localization=0.5") as raised:
        parallel.sample_chains(model, cross_entropy_per_sample, data, data, config,
                               progress=False)
    assert "`losskernel calibrate` (or `snakemake --cores all calibrate`)" in str(raised.value)


def test_rmsprop_preconditioner_runs_and_differs_from_plain_sgld():
    model, data = tiny_classification()
    plain = sgld.SGLDConfig(step_size=1e-3, nbeta=10.0, localization=10.0, num_chains=1,
                            num_draws=5, batch_size=8)
    rmsprop = sgld.SGLDConfig(**{**plain.as_dict(), "preconditioner": "rmsprop"})
    run = lambda c: parallel.sample_chains(  # noqa: E731
        model, cross_entropy_per_sample, data, data, c, progress=False)[0].loss
    assert np.isfinite(run(rmsprop)).all()
    assert not np.allclose(run(plain), run(rmsprop))


def test_stratified_minibatches_hold_a_fixed_share_of_each_stratum():
    strata = np.array([0] * 30 + [1] * 10)
    batches = chains.minibatch_indices(40, 8, np.random.default_rng(0), strata)
    first_epoch = [next(batches).numpy() for _ in range(5)]
    for batch in first_epoch:
        assert (strata[batch] == 0).sum() == 6 and (strata[batch] == 1).sum() == 2
    assert sorted(np.concatenate([b[strata[b] == 0] for b in first_epoch])) == list(range(30))


REQUIRED = dict(step_size=1e-3, nbeta=1.0, localization=1.0)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("step_size", 0.0, "step_size must be > 0, got 0.0"),
    ("nbeta", -1.0, "nbeta must be >= 0, got -1.0"),
    ("localization", -1, "localization must be >= 0, got -1"),
    ("num_chains", 0, "num_chains must be >= 1, got 0"),
    ("num_burnin_steps", -1, "num_burnin_steps must be >= 0, got -1"),
    ("num_draws", 0, "num_draws must be >= 1, got 0"),
    ("num_steps_between_draws", 0, "num_steps_between_draws must be >= 1, got 0"),
    ("batch_size", 0, "batch_size must be >= 1, got 0"),
    ("eval_batch_size", 0, "eval_batch_size must be >= 1, got 0"),
    ("rmsprop_alpha", 1.0, "rmsprop_alpha must be in [0, 1), got 1.0"),
    ("rmsprop_alpha", -0.5, "rmsprop_alpha must be in [0, 1), got -0.5"),
    ("rmsprop_eps", 0.0, "rmsprop_eps must be > 0, got 0.0"),
    ("noise_scale", -0.5, "noise_scale must be >= 0, got -0.5"),
    ("seed", -1, "seed must be >= 0, got -1"),
    ("eval_precision", "float16",
     "eval_precision must be one of ('float32', 'bfloat16'), got 'float16'"),
    ("preconditioner", "adam", "preconditioner must be 'identity' or 'rmsprop', got 'adam'"),
])
def test_config_errors_name_the_field_the_rule_and_the_value(field, value, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        sgld.SGLDConfig(**{**REQUIRED, field: value})


def test_config_accepts_every_value_on_its_bounds():
    """The smallest allowed value of each field (and a step size and eps below 1)."""
    config = sgld.SGLDConfig(step_size=0.5, nbeta=0.0, localization=0.0, num_chains=1,
                             num_burnin_steps=0, num_draws=1, num_steps_between_draws=1,
                             batch_size=1, eval_batch_size=1, preconditioner="rmsprop",
                             rmsprop_alpha=0.0, rmsprop_eps=0.5, noise_scale=0.0,
                             eval_precision="bfloat16", seed=0)
    assert config.num_steps == 1


def test_config_defaults_and_step_count():
    """The documented defaults; num_steps = burn-in + draws × steps between draws."""
    assert sgld.SGLDConfig(**REQUIRED).as_dict() == {
        "step_size": 1e-3, "nbeta": 1.0, "localization": 1.0, "num_chains": 4,
        "num_burnin_steps": 0, "num_draws": 100, "num_steps_between_draws": 1,
        "batch_size": 256, "eval_batch_size": 1024, "preconditioner": "identity",
        "rmsprop_alpha": 0.99, "rmsprop_eps": 0.1, "noise_scale": 1.0,
        "eval_precision": "float32", "seed": 0}
    assert sgld.SGLDConfig(**REQUIRED, num_burnin_steps=3, num_draws=4,
                           num_steps_between_draws=5).num_steps == 23


def reference_sgld_step(params, grads, anchors, config, generator, square_avg):
    """The update as a plain loop over parameters with an in-place RMSprop average (the
    implementation before it was fused); returns the average (None for the identity)."""
    if config.preconditioner == "rmsprop":
        alpha = config.rmsprop_alpha
        if square_avg is None:
            square_avg = [g * g for g in grads]
        else:
            for avg, g in zip(square_avg, grads, strict=True):
                avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
        coefs = [1.0 / (avg.sqrt() + config.rmsprop_eps) for avg in square_avg]
    else:
        coefs = [None] * len(params)
    half_step = 0.5 * config.step_size
    noise_std = np.sqrt(config.step_size) * config.noise_scale
    with torch.no_grad():
        for param, grad, anchor, coef in zip(params, grads, anchors, coefs, strict=True):
            drift = grad * config.nbeta
            drift.add_(param - anchor, alpha=config.localization)
            if coef is not None:
                drift.mul_(coef)
            param.add_(drift, alpha=-half_step)
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            if coef is not None:
                noise.mul_(coef.sqrt())
            param.add_(noise, alpha=noise_std)
    return square_avg


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
    state = sgld.init(fused, config)
    square_avg = None
    for step in range(10):
        grads = [torch.randn(shape, generator=torch.Generator().manual_seed(100 + step))
                 for shape in shapes]
        state = sgld.step(state, fused, grads, config, noise_fused)
        square_avg = reference_sgld_step(looped, grads, anchors, config, noise_looped,
                                         square_avg)
    for a, b, anchor in zip(fused, looped, anchors, strict=True):
        assert torch.equal(a, b) and not torch.equal(a, anchor)
    if preconditioner == "rmsprop":
        for a, b in zip(state.square_avg, square_avg, strict=True):
            assert torch.equal(a, b)
    else:
        assert state.square_avg is None


def test_init_copies_the_weights_as_anchors_and_has_no_gradient_average():
    params = [torch.tensor([1.0, -2.0]), torch.tensor([[0.5]])]
    state = sgld.init(params, sgld.SGLDConfig(step_size=0.1, nbeta=1.0, localization=1.0,
                                              preconditioner="rmsprop"))
    params[0].add_(1.0)  # moving the weights leaves w* where it was
    assert torch.equal(state.anchors[0], torch.tensor([1.0, -2.0]))
    assert torch.equal(state.anchors[1], torch.tensor([[0.5]]))
    assert state.square_avg is None


def test_one_plain_sgld_step_by_hand():
    """w ← w - (ε/2) [nbeta g + γ (w - w*)] + sqrt(ε) ξ, with ξ drawn parameter by parameter
    from the generator (ε = 0.01, nbeta = 4, γ = 10)."""
    config = sgld.SGLDConfig(step_size=0.01, nbeta=4.0, localization=10.0)
    params = [torch.tensor([0.5, -1.0, 2.0]), torch.tensor([[3.0, 0.0]])]
    state = sgld.SGLDState(anchors=[torch.tensor([0.0, 0.0, 1.0]), torch.tensor([[3.0, 1.0]])],
                           square_avg=None)
    grads = [torch.tensor([1.0, 2.0, -3.0]), torch.tensor([[-0.5, 0.25]])]
    new_state = sgld.step(state, params, grads, config, torch.Generator().manual_seed(7))

    noise = torch.Generator().manual_seed(7)
    xi = [torch.randn(3, generator=noise), torch.randn(1, 2, generator=noise)]
    # drift nbeta g + γ (w - w*): [4 + 5, 8 - 10, -12 + 10] and [-2 + 0, 1 - 10]
    expected = [torch.tensor([0.5 - 0.005 * 9, -1.0 + 0.005 * 2, 2.0 + 0.005 * 2]) + 0.1 * xi[0],
                torch.tensor([[3.0 + 0.005 * 2, 0.0 + 0.005 * 9]]) + 0.1 * xi[1]]
    for param, value in zip(params, expected, strict=True):
        torch.testing.assert_close(param, value, rtol=1e-6, atol=1e-6)
    assert new_state.anchors is state.anchors and new_state.square_avg is None


def test_the_noise_is_drawn_in_each_parameters_dtype_and_on_its_device():
    """With no drift and sqrt(ε) = 1, one step from w = 0 gives w = ξ exactly: the draws of
    the generator in the parameter's dtype (float64 draws of 16 or more numbers are not the
    float32 ones), on the parameter's device even when the default device is another."""
    config = sgld.SGLDConfig(step_size=1.0, nbeta=0.0, localization=0.0)
    params = [torch.zeros(16, dtype=torch.float64), torch.zeros(2)]
    grads = [torch.ones(16, dtype=torch.float64), torch.ones(2)]
    with torch.device("meta"):  # a default device the parameters are not on
        sgld.step(sgld.init(params, config), params, grads, config,
                  torch.Generator().manual_seed(2))

    noise = torch.Generator().manual_seed(2)
    assert torch.equal(params[0], torch.randn(16, generator=noise, dtype=torch.float64))
    assert torch.equal(params[1], torch.randn(2, generator=noise))


def test_a_gradient_average_for_other_parameters_is_refused():
    """The RMSprop average must hold one tensor per gradient: a shorter one is an error, not
    silently truncated."""
    config = sgld.SGLDConfig(step_size=0.01, nbeta=1.0, localization=1.0,
                             preconditioner="rmsprop")
    params = [torch.zeros(2), torch.zeros(3)]
    state = sgld.SGLDState(anchors=[p.clone() for p in params], square_avg=[torch.ones(2)])
    with pytest.raises(ValueError, match=r"zip\(\) argument 2 is longer than argument 1"):
        sgld.step(state, params, [torch.ones(2), torch.ones(3)], config, torch.Generator())


def test_two_rmsprop_preconditioned_steps_by_hand():
    """v = g² at the first step, then v ← α v + (1 - α) g²; G = 1 / (sqrt(v) + eps) scales the
    drift and sqrt(G) the noise (ε = 0.01, nbeta = 4, γ = 10, α = 0.75, eps = 0.1)."""
    config = sgld.SGLDConfig(step_size=0.01, nbeta=4.0, localization=10.0,
                             preconditioner="rmsprop", rmsprop_alpha=0.75, rmsprop_eps=0.1)
    w_star = torch.tensor([1.0, -2.0], dtype=torch.float64)
    params = [w_star.float()]
    state = sgld.init(params, config)
    generator = torch.Generator().manual_seed(3)
    first = sgld.step(state, params, [torch.tensor([3.0, -4.0])], config, generator)
    after_first = params[0].clone()
    second = sgld.step(first, params, [torch.tensor([1.0, 2.0])], config, generator)

    assert torch.equal(first.square_avg[0], torch.tensor([9.0, 16.0]))
    assert torch.equal(second.square_avg[0], torch.tensor([7.0, 13.0]))  # 0.75 v + 0.25 g²
    assert state.square_avg is None  # earlier states are left as they were
    assert torch.equal(first.square_avg[0], torch.tensor([9.0, 16.0]))

    noise = torch.Generator().manual_seed(3)
    xi = [torch.randn(2, generator=noise).double() for _ in range(2)]

    def by_hand(w, grad, square_avg, xi_step):
        preconditioning = 1.0 / (torch.tensor(square_avg, dtype=torch.float64).sqrt() + 0.1)
        drift = 4.0 * torch.tensor(grad, dtype=torch.float64) + 10.0 * (w - w_star)
        return w - 0.005 * preconditioning * drift + 0.1 * preconditioning.sqrt() * xi_step

    expected_first = by_hand(w_star, [3.0, -4.0], [9.0, 16.0], xi[0])  # w = w*: no pull yet
    expected_second = by_hand(expected_first, [1.0, 2.0], [7.0, 13.0], xi[1])
    torch.testing.assert_close(after_first.double(), expected_first, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(params[0].double(), expected_second, rtol=1e-6, atol=1e-6)


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

    sliced = chains.evaluate_per_sample_losses(model, cross_entropy_per_sample, data, 16)
    gathered = chains.evaluate_per_sample_losses(model, cross_entropy_per_sample, Gathered(), 16)
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
    data = chains.TensorData(inputs, targets)
    full = chains.evaluate_per_sample_losses(model, cross_entropy_per_sample, data, 128)
    low = chains.evaluate_per_sample_losses(model, cross_entropy_per_sample, data, 128, "bfloat16")
    relative = ((low - full).abs() / full.abs().clamp(min=0.1)).max()
    assert 0 < relative < 0.02  # not identical: bfloat16 did run

    settings = dict(step_size=1e-3, nbeta=10.0, localization=10.0, num_chains=2, num_draws=100,
                    batch_size=64, eval_batch_size=400, seed=1)
    kernels = {}
    for precision in sgld.EVAL_PRECISIONS:
        config = sgld.SGLDConfig(**settings, eval_precision=precision)
        sampled = parallel.sample_chains(model, cross_entropy_per_sample, data, data, config,
                                         progress=False)
        kernels[precision] = kernel.compute_kernel(np.stack([sampled[c].loss for c in (0, 1)]))
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
        one_by_one = parallel.sample_chains(model, cross_entropy_per_sample, data, data,
                                            config, progress=False)
        side_by_side = parallel.sample_chains(model, cross_entropy_per_sample, data, data,
                                              config, progress=False, parallel_chains=2,
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
        parallel.sample_chains(model, cross_entropy_per_sample, data, data, config,
                               progress=False, parallel_chains=0)
    with pytest.raises(ValueError, match="parallel_backend"):
        parallel.sample_chains(model, cross_entropy_per_sample, data, data, config,
                               progress=False, parallel_chains=2, parallel_backend="mpi")


def test_a_chain_that_diverges_in_a_worker_process_stops_the_run_with_its_error():
    model, data = tiny_classification()
    config = sgld.SGLDConfig(step_size=1e4, nbeta=1e6, localization=0.5, num_chains=2,
                             num_draws=50, batch_size=8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(chains.SamplingDivergedError,
                           match=r"in chain \d at step .* step_size=10000.0"):
            parallel.sample_chains(model, cross_entropy_per_sample, data, data, config,
                                   progress=False, parallel_chains=2,
                                   parallel_backend="processes")
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
            parallel.sample_chains(model, cross_entropy_per_sample, data, data, config,
                                   progress=False, parallel_chains=2,
                                   parallel_backend="processes")
        # "auto" falls back to threads, and the chains run
        traces = parallel.sample_chains(model, cross_entropy_per_sample, data, data, config,
                                        progress=False, parallel_chains=2)
    finally:
        torch.set_num_threads(threads)
    assert sorted(traces) == [0, 1]


def test_two_rmsprop_steps_on_a_quadratic_model_match_numpy_by_hand():
    """Two steps of a 2-weight linear model with loss l(x, y; w) = ½ (x·w - y)², the gradient
    taken by autograd as the chain loop takes it, against the module docstring's rule written
    out in numpy: g = Xᵀ(Xw - y) / n, v = g² then v ← α v + (1 - α) g², G = 1 / (sqrt(v) + eps),
    w ← w - (ε/2) G [nbeta g + γ (w - w*)] + sqrt(ε) sqrt(G) ξ. The chain starts away from w*,
    so the localization pulls at both steps."""
    step_size, nbeta, gamma, alpha, eps = 0.01, 4.0, 10.0, 0.6, 0.1
    config = sgld.SGLDConfig(step_size=step_size, nbeta=nbeta, localization=gamma,
                             preconditioner="rmsprop", rmsprop_alpha=alpha, rmsprop_eps=eps)
    inputs = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    targets = np.array([1.0, 0.0, 2.0])
    w_star, w_start = np.array([0.5, -1.0]), np.array([0.7, -1.2])
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w_start[None]))
    params = [model.weight]
    state = sgld.SGLDState(anchors=[torch.from_numpy(w_star[None]).float()], square_avg=None)
    x, y = torch.tensor(inputs, dtype=torch.float32), torch.tensor(targets, dtype=torch.float32)
    generator = torch.Generator().manual_seed(11)
    noise = torch.Generator().manual_seed(11)  # the same stream, read by hand

    w, v, squares = w_start, None, []
    for _ in range(2):
        batch_loss = (0.5 * (model(x).squeeze(-1) - y) ** 2).mean()
        state = sgld.step(state, params, torch.autograd.grad(batch_loss, params), config,
                          generator)

        g = inputs.T @ (inputs @ w - targets) / len(targets)
        squares.append(g**2)
        v = g**2 if v is None else alpha * v + (1 - alpha) * g**2
        precondition = 1.0 / (np.sqrt(v) + eps)
        drift = nbeta * g + gamma * (w - w_star)
        xi = torch.randn(1, 2, generator=noise).double().numpy()[0]
        w = (w - step_size / 2 * precondition * drift
             + np.sqrt(step_size) * np.sqrt(precondition) * xi)

        np.testing.assert_allclose(state.square_avg[0].numpy()[0], v, rtol=1e-6)
        np.testing.assert_allclose(model.weight.detach().numpy()[0], w, rtol=0, atol=1e-6)
    # the second v mixes both squared gradients, each far (beyond rtol) from the average
    for square in squares:
        assert (np.abs(v - square) > 0.01 * v).all()
