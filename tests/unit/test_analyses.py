import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from losskernel import analyses, metrics, traces
from losskernel import kernel as kernels
from losskernel.experiments import digits
from losskernel.provenance import write_tsv
from losskernel.sgld import ChainTrace, SGLDConfig
from losskernel.steps import read_tsv

RECORD = {"rule": "test", "seed": 0}


def trace_dataset(losses, obs_coords=None, attrs=None):
    """A trace dataset of ``losses (chain, draw, N)`` with ids ``digit_0000``, ..."""
    num_chains, num_draws, num_inputs = losses.shape
    config = SGLDConfig(step_size=1e-3, nbeta=1.0, localization=10.0, num_chains=num_chains,
                        num_draws=num_draws)
    chains = {c: ChainTrace(loss=losses[c], batch_loss=losses[c].mean(axis=1),
                            distance=np.ones(num_draws)) for c in range(num_chains)}
    obs_id = np.array([f"digit_{i:04d}" for i in range(num_inputs)])
    return traces.make_trace_dataset(chains, losses.mean(axis=(0, 1)), obs_id, config,
                                     obs_coords=obs_coords, attrs=attrs)


def save_kernels(dataset, directory):
    """The covariance and correlation kernel files of a trace dataset."""
    paths = []
    for kind in ("covariance", "correlation"):
        path = directory / f"{kind}.nc"
        kernels.save_kernel(kernels.kernel_dataset(dataset, kind), path)
        paths.append(path)
    return paths


def metric_values(path):
    return read_tsv(path).set_index("metric")["value"]


# neighbour lift ---------------------------------------------------------------------------


def block_kernel(groups, rng):
    same = (groups[:, None] == groups[None, :]).astype(float)
    noise = rng.normal(scale=0.05, size=same.shape)
    return same + (noise + noise.T) / 2


def test_neighbour_lift_of_perfect_clusters(rng):
    groups = np.repeat([0, 1, 2], [5, 7, 8])
    purity, chance, lift = metrics.neighbour_lift(block_kernel(groups, rng), groups, k=4)
    assert purity == 1.0
    assert chance == pytest.approx((5 * 4 + 7 * 6 + 8 * 7) / (20 * 19))
    assert lift == pytest.approx(20 * 19 / (5 * 4 + 7 * 6 + 8 * 7))


def test_neighbour_lift_of_a_random_kernel_is_about_one(rng):
    noise = rng.normal(size=(300, 300))
    attribute = rng.integers(0, 3, 300)
    _, chance, lift = metrics.neighbour_lift((noise + noise.T) / 2, attribute, k=10)
    assert chance == pytest.approx(1 / 3, abs=0.02)
    assert lift == pytest.approx(1.0, abs=0.15)


def test_excluded_edges_leave_chance_and_purity(rng):
    groups = np.repeat([0, 1, 2], 4)
    in_first = groups == 0
    excluded = np.outer(in_first, in_first)  # group 0 may not neighbour itself
    purity, chance, lift = metrics.neighbour_lift(block_kernel(groups, rng), groups, k=3,
                                                  excluded_edges=excluded)
    # candidates: 12·11 - 4·3 = 120 pairs, 2 · 4·3 = 24 of them same-group; groups 1 and 2
    # keep pure neighbours (24 pairs), group 0 has none of its own left (12 pairs)
    assert chance == pytest.approx(24 / 120)
    assert purity == pytest.approx(24 / 36)
    assert lift == pytest.approx(10 / 3)


def test_neighbour_lift_is_undefined_without_same_attribute_candidates(rng):
    groups = np.repeat([0, 1], 5)
    excluded = groups[:, None] == groups[None, :]
    purity, chance, lift = metrics.neighbour_lift(block_kernel(groups, rng), groups, k=3,
                                                  excluded_edges=excluded)
    assert purity == 0.0 and chance == 0.0
    assert np.isnan(lift)


# convergence -----------------------------------------------------------------------------


@pytest.mark.parametrize("num_draws, num_points", [(500, 12), (400, 8), (37, 5), (5, 4)])
def test_draw_counts(num_draws, num_points):
    counts = analyses.draw_counts(num_draws, num_points)
    assert counts == sorted(set(counts))
    assert counts[0] == min(10, num_draws)
    assert counts[-1] == num_draws
    assert len(counts) <= num_points + 1
    assert all(isinstance(count, int) for count in counts)


def test_draw_counts_are_log_spaced():
    assert analyses.draw_counts(1000, 3) == [10, 100, 1000]


def factor_losses(rng, num_chains, num_draws, num_inputs=30, noise=0.3):
    loadings = rng.normal(size=(3, num_inputs))
    factors = rng.normal(size=(num_chains, num_draws, 3))
    return factors @ loadings + noise * rng.normal(size=(num_chains, num_draws, num_inputs))


def run_convergence(losses, tmp_path, num_points=8):
    traces.save_traces(trace_dataset(losses), tmp_path / "traces.nc")
    analyses.convergence(tmp_path / "traces.nc", "pooled", num_points,
                         curve_path=tmp_path / "curve.tsv", metrics_path=tmp_path / "metrics.tsv",
                         record=RECORD)
    return read_tsv(tmp_path / "curve.tsv"), metric_values(tmp_path / "metrics.tsv")


def test_convergence_of_a_low_rank_kernel(rng, tmp_path):
    curve, values = run_convergence(factor_losses(rng, 2, 400), tmp_path)
    assert list(curve["draws_per_chain"]) == analyses.draw_counts(400, 8)
    assert list(curve["samples"]) == [2 * t for t in curve["draws_per_chain"]]
    assert curve["cka_vs_final"].iloc[-1] == pytest.approx(1.0)
    assert (curve["cka_vs_final"].iloc[len(curve) // 2:] > 0.9).all()
    assert curve["cka_vs_final"].iloc[0] < curve["cka_vs_final"].iloc[-2]
    assert set(values.index) == {"cka_half", "cka_halves", "cka_chain_halves"}
    assert values["cka_half"] >= values["cka_halves"] > 0.9
    assert values["cka_chain_halves"] > 0.9


def test_convergence_of_pure_noise_with_few_draws_is_poor(rng, tmp_path):
    curve, values = run_convergence(rng.normal(size=(2, 20, 30)), tmp_path, num_points=4)
    assert curve["cka_vs_final"].iloc[-1] == pytest.approx(1.0)
    assert values["cka_halves"] < 0.7
    assert values["cka_half"] > values["cka_halves"] + 0.1  # the halves overlap


def test_convergence_of_one_chain_has_no_chain_halves(rng, tmp_path):
    _, values = run_convergence(factor_losses(rng, 1, 100), tmp_path, num_points=4)
    assert set(values.index) == {"cka_half", "cka_halves"}


# mislabels -------------------------------------------------------------------------------


def mislabel_traces(rng, num_inputs=40, num_flipped=8, num_draws=200):
    """Losses whose variance and mean are larger for the flipped inputs (the first ones)."""
    flipped = np.arange(num_inputs) < num_flipped
    scale = np.where(flipped, 3.0, 1.0)
    mean = np.where(flipped, 5.0, 0.5)
    losses = mean + scale * rng.normal(size=(2, num_draws, num_inputs))
    return trace_dataset(losses, obs_coords={"mislabeled": flipped}), flipped


def baselines_table(rng, dataset, flipped):
    table = pd.DataFrame({
        "obs_id": dataset["obs_id"].values,
        "flag": flipped.astype(float),
        "reversed": 1.0 - flipped,
        "random": rng.normal(size=len(flipped)),
    })
    return table.sample(frac=1.0, random_state=0)  # rows out of the kernel's order


def run_mislabels(tmp_path, dataset, baselines):
    traces.save_traces(dataset, tmp_path / "traces.nc")
    covariance_path, _ = save_kernels(dataset, tmp_path)
    write_tsv(baselines, tmp_path / "baselines.tsv", RECORD)
    analyses.mislabels(covariance_path=covariance_path, traces_path=tmp_path / "traces.nc",
                       baselines_path=tmp_path / "baselines.tsv",
                       metrics_path=tmp_path / "metrics.tsv", scores_path=tmp_path / "scores.tsv",
                       record=RECORD)
    return metric_values(tmp_path / "metrics.tsv"), read_tsv(tmp_path / "scores.tsv")


def test_mislabels_scores_self_covariance_and_baselines(rng, tmp_path):
    dataset, flipped = mislabel_traces(rng)
    baselines = baselines_table(rng, dataset, flipped)
    values, scores = run_mislabels(tmp_path, dataset, baselines)
    diagonal = np.diag(kernels.load_kernel(tmp_path / "covariance.nc")["kernel"].values)
    assert values["mislabel_roc_auc"] == 1.0
    assert values["self_cov_mislabeled"] == pytest.approx(diagonal[flipped].mean(), rel=1e-5)
    assert values["self_cov_normal"] == pytest.approx(diagonal[~flipped].mean(), rel=1e-5)
    assert values["self_cov_mislabeled"] == pytest.approx(9.0, rel=0.15)
    assert values["self_cov_normal"] == pytest.approx(1.0, rel=0.15)
    assert values["self_cov_ratio"] == pytest.approx(
        values["self_cov_mislabeled"] / values["self_cov_normal"], rel=1e-5)
    assert values["baseline_roc_auc_flag"] == 1.0
    assert values["baseline_roc_auc_reversed"] == 0.0
    random = baselines.set_index("obs_id").loc[dataset["obs_id"].values, "random"]
    assert values["baseline_roc_auc_random"] == pytest.approx(roc_auc_score(flipped, random),
                                                              abs=1e-6)
    assert values["baseline_roc_auc_posterior_mean_loss"] == 1.0
    assert list(scores["obs_id"]) == list(dataset["obs_id"].values)
    assert list(scores.columns) == ["obs_id", "mislabeled", "self_cov", "posterior_mean_loss",
                                    "flag", "reversed", "random"]
    np.testing.assert_allclose(scores["self_cov"], diagonal, rtol=1e-5)
    np.testing.assert_array_equal(scores["flag"], flipped.astype(float))
    np.testing.assert_allclose(scores["posterior_mean_loss"],
                               dataset["loss"].mean(dim=("chain", "draw")).values, rtol=1e-5)


def test_mislabels_refuses_baselines_that_miss_an_input(rng, tmp_path):
    dataset, flipped = mislabel_traces(rng)
    baselines = baselines_table(rng, dataset, flipped)
    baselines = baselines[baselines["obs_id"] != "digit_0003"]
    with pytest.raises(ValueError, match="does not cover the kernel inputs"):
        run_mislabels(tmp_path, dataset, baselines)
    assert not (tmp_path / "metrics.tsv").exists()


# γ sweep ---------------------------------------------------------------------------------


def sweep_coords(rng):
    true_label = np.repeat([0, 1, 2], 10)
    label = true_label.copy()
    label[[0, 10, 20]] = [1, 2, 0]  # three flipped labels
    return {"label": label, "true_label": true_label, "ink_bin": rng.integers(0, 3, 30),
            "mislabeled": label != true_label}


def class_losses(rng, true_label, num_draws=300):
    """Losses that co-move within each true class: R is near 1 inside a class, near 0 across."""
    class_factor = rng.normal(size=(2, num_draws, 3))
    return class_factor[:, :, true_label] + 0.3 * rng.normal(size=(2, num_draws, len(true_label)))


def test_gamma_sweep_cka_table_and_lift_rows(rng, tmp_path):
    coords = sweep_coords(rng)
    localizations = [10.0, 30.0, 100.0]
    loss_sets = [class_losses(rng, coords["true_label"]), class_losses(rng, coords["true_label"]),
                 rng.normal(size=(2, 300, 30))]  # at γ = 100 no structure is left
    covariance_paths, correlation_paths = [], []
    for gamma, losses in zip(localizations, loss_sets, strict=True):
        directory = tmp_path / f"gamma{gamma:g}"
        directory.mkdir()
        covariance, correlation = save_kernels(trace_dataset(losses, coords), directory)
        covariance_paths.append(covariance)
        correlation_paths.append(correlation)
    analyses.gamma_sweep("digits", localizations, {"knn_k": 5, "attributes": ["true_label",
                                                                             "ink_bin"]},
                         covariance_paths=covariance_paths, correlation_paths=correlation_paths,
                         cka_path=tmp_path / "cka.tsv", lift_path=tmp_path / "lift.tsv",
                         record=RECORD)

    cka = read_tsv(tmp_path / "cka.tsv").pivot(index="gamma_a", columns="gamma_b", values="cka")
    assert list(cka.index) == localizations and list(cka.columns) == localizations
    np.testing.assert_allclose(np.diag(cka), 1.0, rtol=1e-5)
    np.testing.assert_allclose(cka.to_numpy(), cka.to_numpy().T, rtol=1e-5)
    assert cka.loc[10.0, 30.0] > 0.8  # same class structure
    assert cka.loc[10.0, 100.0] < 0.5 and cka.loc[30.0, 100.0] < 0.5

    lift = read_tsv(tmp_path / "lift.tsv")
    assert len(lift) == 3 * 2 * 2
    assert set(zip(lift["gamma"], lift["edges"], lift["attribute"], strict=True)) == {
        (gamma, rule, attribute) for gamma in localizations for rule in analyses.EDGE_RULES
        for attribute in ("true_label", "ink_bin")}
    row = lift.set_index(["gamma", "edges", "attribute"])
    chance_all = 3 * 10 * 9 / (30 * 29)
    assert row.loc[(10.0, "none", "true_label"), "purity"] == 1.0
    assert row.loc[(10.0, "none", "true_label"), "chance"] == pytest.approx(chance_all, rel=1e-5)
    assert row.loc[(10.0, "none", "true_label"), "lift"] == pytest.approx(1 / chance_all,
                                                                          rel=1e-5)
    # same-output edges removed: candidates are pairs with different training labels
    label, true_label = coords["label"], coords["true_label"]
    candidates = label[:, None] != label[None, :]
    same = true_label[:, None] == true_label[None, :]
    chance_strict = (candidates & same).sum() / candidates.sum()
    assert row.loc[(10.0, "same_output", "true_label"), "chance"] == pytest.approx(
        chance_strict, rel=1e-5)
    assert row.loc[(100.0, "none", "true_label"), "lift"] < 2.0
    np.testing.assert_allclose(lift["lift"], lift["purity"] / lift["chance"], rtol=1e-5)


# trajectory ------------------------------------------------------------------------------


def checkpoint_losses(rng, label, flipped, flipped_scale, num_draws=500):
    """A shared per-label mode (the shared logit) plus input noise of scale 1, or
    ``flipped_scale`` for the flipped inputs."""
    label_factor = rng.normal(size=(2, num_draws, label.max() + 1))
    scale = np.where(flipped, flipped_scale, 1.0)
    return label_factor[:, :, label] + scale * rng.normal(size=(2, num_draws, len(label)))


def test_trajectory_gain_of_a_memorizing_network(rng, tmp_path):
    coords = sweep_coords(rng)
    label, flipped = coords["label"], coords["mislabeled"]
    steps = [0, 10, 100]
    covariance_paths, correlation_paths = [], []
    for step, flipped_scale in zip(steps, [0.3, 1.0, 4.0], strict=True):
        dataset = trace_dataset(checkpoint_losses(rng, label, flipped, flipped_scale), coords,
                                attrs={"checkpoint_step": step})
        directory = tmp_path / f"checkpoint{step}"
        directory.mkdir()
        covariance, correlation = save_kernels(dataset, directory)
        covariance_paths.append(covariance)
        correlation_paths.append(correlation)
    analyses.trajectory("digits", {}, covariance_paths=covariance_paths,
                        correlation_paths=correlation_paths, table_path=tmp_path / "table.tsv",
                        metrics_path=tmp_path / "metrics.tsv", record=RECORD)

    table = read_tsv(tmp_path / "table.tsv")
    assert list(table["checkpoint"]) == [0, 1, 2]
    assert list(table["step"]) == steps
    assert (table["structure_score_name"] == digits.STRUCTURE_SCORE).all()
    scores = table["structure_score"].to_numpy()
    assert scores[0] == 0.0 and scores[-1] == 1.0
    assert 0.0 < scores[1] < 1.0
    assert (table["same_output_pair_auc"] > 0.9).all()  # shared logits, at every checkpoint
    values = metric_values(tmp_path / "metrics.tsv")
    assert values["structure_score_first"] == 0.0
    assert values["structure_score_last"] == 1.0
    assert values["trajectory_gain"] == pytest.approx(scores[-1] - scores[0])
    assert values["trajectory_gain"] > 0
