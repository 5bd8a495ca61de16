import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from tests.needs import require

from losskernel.readings import diagnostics


def autoregressive(rng, shape, phi, start=0.0):
    """AR(1) draws ``x_t = phi x_{t-1} + e_t`` along axis 1, e ~ N(0, 1), x_{-1} = ``start``."""
    noise = rng.normal(size=shape)
    draws = np.empty(shape)
    previous = np.broadcast_to(np.asarray(start, dtype=float), noise[:, 0].shape)
    for t in range(shape[1]):
        previous = draws[:, t] = phi * previous + noise[:, t]
    return draws


def comparison_cases():
    """Draws (chain, draw, *rest) for the comparison with ArviZ, by name."""
    rng = np.random.default_rng(20240601)
    odd = autoregressive(rng, (3, 101, 4), 0.5)
    odd[:, :, 1] = 2.5  # a constant input
    odd[1, 7, 3] = np.nan  # an input with a NaN draw
    return {
        "autocorrelated": autoregressive(rng, (4, 200, 5), 0.7),
        "odd draws, constant and NaN inputs": odd,
        "ties": np.round(autoregressive(rng, (4, 50, 6), 0.3), 1),
        "one chain": autoregressive(rng, (1, 300, 3), 0.8),
        "float32 with ties": np.round(autoregressive(rng, (2, 60, 4), 0.6), 1).astype(np.float32),
        "two trailing dims": autoregressive(rng, (4, 40, 2, 3), 0.2),
        "one input (chain, draw)": autoregressive(rng, (4, 80), 0.4),
    }


ARVIZ_METHODS = {  # ours: (ArviZ function name, keyword arguments)
    "split_rhat": ("rhat", {"method": "rank"}),
    "ess_bulk": ("ess", {"method": "bulk"}),
    "ess_tail": ("ess", {"method": "tail"}),
    "mean_standard_error": ("mcse", {"method": "mean"}),
    "effective_sample_size": ("ess", {"method": "identity"}),
}


@pytest.mark.parametrize("name", list(comparison_cases()))
@pytest.mark.parametrize("ours", list(ARVIZ_METHODS))
def test_diagnostics_equal_arviz(name, ours):
    require("arviz")
    import arviz
    draws = comparison_cases()[name]
    function, keywords = ARVIZ_METHODS[ours]
    per_input = draws.reshape(*draws.shape[:2], -1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # ArviZ's 0/0 for the constant input
        expected = [float(np.squeeze(getattr(arviz, function)(per_input[..., i], **keywords)))
                    for i in range(per_input.shape[2])]
    actual = getattr(diagnostics, ours)(draws)
    assert actual.shape == draws.shape[2:]
    # ArviZ (with numba) squares float32 draws in float32 for the MCSE's sd; ours in float64.
    rtol = 1e-8 if ours == "mean_standard_error" and draws.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(actual.ravel(), expected, rtol=rtol, atol=0)


def test_arviz_conventions_for_one_chain_and_constant_inputs():
    draws = comparison_cases()["odd draws, constant and NaN inputs"]
    assert np.isnan(diagnostics.split_rhat(draws[:1])).all()  # ArviZ does not split one chain
    assert np.isnan(diagnostics.split_rhat(draws)[[1, 3]]).all()  # constant; NaN draw
    assert diagnostics.ess_bulk(draws)[1] == diagnostics.ess_tail(draws)[1] == 3 * 100
    assert diagnostics.mean_standard_error(draws)[1] == 0


def test_importing_the_diagnostics_does_not_import_arviz():
    code = ("import sys, losskernel.readings.diagnostics; "
            "assert 'arviz' not in sys.modules and 'scipy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_independent_draws_pass_with_the_known_ess_and_standard_error():
    rng = np.random.default_rng(1)
    sigma = np.array([0.5, 1.0, 2.0])
    draws = sigma * rng.normal(size=(4, 1000, 3))
    assert (diagnostics.split_rhat(draws) < 1.01).all()
    np.testing.assert_allclose(diagnostics.ess_bulk(draws), 4000, rtol=0.2)
    np.testing.assert_allclose(diagnostics.ess_tail(draws), 4000, rtol=0.2)
    np.testing.assert_allclose(diagnostics.mean_standard_error(draws), sigma / math.sqrt(4000),
                               rtol=0.1)
    assert (diagnostics.between_chain_share(draws) < 0.01).all()  # expected (C−1)/(CT−1)


def test_autoregressive_chain_has_ess_n_times_one_minus_phi_over_one_plus_phi():
    phi, num_draws = 0.9, 20_000
    draws = autoregressive(np.random.default_rng(2), (1, num_draws, 2), phi)
    expected = num_draws * (1 - phi) / (1 + phi)
    np.testing.assert_allclose(diagnostics.effective_sample_size(draws), expected, rtol=0.25)
    np.testing.assert_allclose(diagnostics.ess_bulk(draws), expected, rtol=0.25)


def test_chains_stuck_apart_or_drifting_in_from_afar_fail_rhat():
    rng = np.random.default_rng(3)
    stuck = np.arange(4.0)[:, None, None] + 0.01 * rng.normal(size=(4, 500, 2))
    starts = np.array([-100.0, -50.0, 50.0, 100.0])[:, None]
    drifting = autoregressive(rng, (4, 500, 2), 0.99, start=starts)  # 0.99^500 = 0.007
    assert (diagnostics.split_rhat(stuck) > 1.1).all()
    assert (diagnostics.split_rhat(drifting) > 1.1).all()
    assert (diagnostics.between_chain_share(stuck) > 0.99).all()


def test_between_chain_share_is_zero_for_a_constant_input():
    losses = np.full((3, 20, 1), 0.1)  # 0.1 is not exact: the float mean may leave a residue
    assert diagnostics.between_chain_share(losses)[0] == 0


def test_stationarity_z_is_small_for_noise_and_large_for_a_trend():
    rng = np.random.default_rng(4)
    noise = rng.normal(size=(4, 1000))
    trend = np.linspace(0, 3, 1000) + rng.normal(size=(4, 1000))
    assert (np.abs(diagnostics.stationarity_z(noise)) < 3).all()
    assert (diagnostics.stationarity_z(trend) < -5).all()  # the start lies below the end
    np.testing.assert_array_equal(diagnostics.stationarity_z(np.ones((2, 10))), [0, 0])


def correlated_losses(rng, rho, num_chains, num_draws):
    """Independent draws of 4 inputs: inputs 0 and 1 with correlation ``rho``, input 2
    independent of both, input 3 constant."""
    first, second, third = rng.normal(size=(3, num_chains, num_draws))
    correlated = rho * first + math.sqrt(1 - rho**2) * second
    return np.stack([first, correlated, third, np.full_like(first, 1.5)], axis=-1)


def test_correlation_standard_error_is_the_known_sampling_error_of_r():
    rho, num_chains, num_draws = 0.6, 4, 5000
    losses = correlated_losses(np.random.default_rng(5), rho, num_chains, num_draws)
    error = diagnostics.correlation_standard_error(losses, batches=50)
    samples = num_chains * num_draws
    np.testing.assert_allclose(error[0, 1], (1 - rho**2) / math.sqrt(samples), rtol=0.3)
    np.testing.assert_allclose(error[[0, 1], 2], 1 / math.sqrt(samples), rtol=0.3)
    assert (error[3] == 0).all() and (error[:, 3] == 0).all() and (np.diag(error) == 0).all()
    np.testing.assert_array_equal(error, error.T)


def test_correlation_standard_error_equals_the_naive_per_block_computation():
    losses = correlated_losses(np.random.default_rng(6), 0.3, 3, 203)
    batches = 7
    blocks = np.array_split(np.arange(203), batches)  # sizes 29
    per_block = np.stack([np.corrcoef(losses[:, block, :3].reshape(-1, 3), rowvar=False)
                          for block in blocks])
    naive = per_block.std(axis=0, ddof=1) / math.sqrt(batches)
    streamed = diagnostics.correlation_standard_error(losses, batches, precision="float64")
    np.testing.assert_allclose(streamed[:3, :3], naive, rtol=1e-9, atol=1e-12)
    default = diagnostics.correlation_standard_error(losses, batches)  # float32 blocks
    np.testing.assert_allclose(default[:3, :3], naive, rtol=1e-4, atol=1e-6)


def test_correlation_standard_error_rejects_blocks_too_small():
    with pytest.raises(ValueError, match=r"analysis\.diagnostics\.batches"):
        diagnostics.correlation_standard_error(np.zeros((1, 10, 2)), batches=6)


def diagnostics_table(rhat, ess_bulk, ess_tail):
    return pd.DataFrame({"obs_id": list("abcd"), "rhat": rhat, "ess_bulk": ess_bulk,
                         "ess_tail": ess_tail, "mcse_mean": 0.0, "between_chain_share": 0.0})


def test_out_of_bounds_lists_the_worst_input_first_and_the_message_names_it():
    table = diagnostics_table(rhat=[1.0, 1.05, 1.002, np.nan], ess_bulk=[1000, 300, 1000, 4000],
                              ess_tail=[900, 500, 100, 4000])
    flagged = diagnostics.out_of_bounds(table, max_rhat=1.01, min_ess=400)
    assert list(flagged["obs_id"]) == ["b", "c"]  # R-hat 5x its bound over ESS 4x under
    message = diagnostics.out_of_bounds_message("digits/seed0", table, 1.01, 400)
    assert message == (
        "sampling diagnostics of run digits/seed0: 2 of 4 inputs have R-hat > 1.01 or ESS < "
        "400 (worst: obs b R-hat 1.050 bulk ESS 300 tail ESS 500; obs c R-hat 1.002 bulk ESS "
        "1000 tail ESS 100); raise sampling.num_draws or num_chains, or run losskernel "
        "calibrate")
    shortened = diagnostics.out_of_bounds_message("digits/seed0", table, 1.01, 400, shown=1)
    assert "obs b" in shortened and "obs c" not in shortened and "; ...)" in shortened


def test_out_of_bounds_message_is_none_within_bounds():
    table = diagnostics_table(rhat=[1.0, 1.005, np.nan, 1.009], ess_bulk=[1000, 400, 4000, 500],
                              ess_tail=[900, 450, 4000, 401])
    assert diagnostics.out_of_bounds(table, 1.01, 400).empty
    assert diagnostics.out_of_bounds_message("digits/seed0", table, 1.01, 400) is None


def test_seed_to_seed_cka():
    kernel = np.cov(np.random.default_rng(7).normal(size=(5, 30)))
    assert diagnostics.seed_to_seed_cka([kernel, 2 * kernel, kernel]) == pytest.approx(1.0)
    assert math.isnan(diagnostics.seed_to_seed_cka([kernel]))


def test_run_diagnostics_table_and_summary():
    rng = np.random.default_rng(8)
    losses = rng.normal(size=(2, 40, 5)).astype(np.float32)
    losses[:, :, 4] = 0.0  # an input whose float32 loss underflows to 0 at every draw
    traces = xr.Dataset(
        {"loss": (("chain", "draw", "obs_id"), losses),
         "init_loss": (("obs_id",), np.zeros(5, np.float32)),
         "batch_loss": (("chain", "draw"), rng.normal(size=(2, 40)).astype(np.float32)),
         "distance": (("chain", "draw"), np.ones((2, 40), np.float32))},
        coords={"chain": [0, 1], "draw": np.arange(40), "obs_id": [f"z{i}" for i in range(5)]})
    table, summary = diagnostics.run_diagnostics(traces, batches=4)
    assert list(table.columns) == list(diagnostics.TABLE_COLUMNS)
    assert list(table["obs_id"]) == [f"z{i}" for i in range(5)]
    np.testing.assert_allclose(table["rhat"][:4], diagnostics.split_rhat(losses)[:4])
    assert np.isnan(table["rhat"][4]) and table["between_chain_share"][4] == 0
    assert summary["worst_rhat"] == table["rhat"].max()  # pandas skips the NaN too
    assert summary["min_ess_tail"] == table["ess_tail"].min()
    assert (summary["num_chains"], summary["num_draws"], summary["num_inputs"]) == (2, 40, 5)
    assert set(summary) == {
        "worst_rhat", "median_rhat", "median_ess_bulk", "min_ess_bulk", "median_ess_tail",
        "min_ess_tail", "median_between_chain_share", "max_abs_stationarity_z", "constant_inputs",
        "median_correlation_se", "median_abs_correlation", "num_chains", "num_draws",
        "num_inputs"}
    assert all(math.isfinite(value) for value in summary.values())
