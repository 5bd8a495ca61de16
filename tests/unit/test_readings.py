"""The readings on in-memory datasets with known answers: convergence, γ sweep, trajectory,
summaries and embeddings (the mislabel readings are in ``test_mislabels.py``)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.metrics import roc_auc_score

from losskernel import readings
from losskernel.method.chains import ChainTrace
from losskernel.method.kernel import kernel_dataset
from losskernel.method.sgld import SGLDConfig
from losskernel.method.traces import make_trace_dataset
from losskernel.readings import convergence, embedding, gamma_sweep, summary
from losskernel.readings import trajectory as development
from losskernel.readings.similarity import linear_cka


def trace_dataset(losses, obs_coords=None, attrs=None):
    """A trace dataset of ``losses (chain, draw, N)`` with ids ``x_0000``, ..."""
    num_chains, num_draws, num_inputs = losses.shape
    config = SGLDConfig(step_size=1e-3, nbeta=1.0, localization=10.0, num_chains=num_chains,
                        num_draws=num_draws)
    chains = {c: ChainTrace(loss=losses[c], batch_loss=losses[c].mean(axis=1),
                            distance=np.ones(num_draws)) for c in range(num_chains)}
    obs_id = np.array([f"x_{i:04d}" for i in range(num_inputs)])
    return make_trace_dataset(chains, losses.mean(axis=(0, 1)), obs_id, config,
                              obs_coords=obs_coords, attrs=attrs)


def kernels(dataset):
    """The covariance and correlation kernel datasets of a trace dataset."""
    return kernel_dataset(dataset, "covariance"), kernel_dataset(dataset, "correlation")


def same_output_edges(inputs, rule):
    """The edge rule of a labelled task: every edge, or pairs of one training label removed."""
    if rule == "none":
        return None
    label = inputs["label"].to_numpy()
    return label[:, None] == label[None, :]


def test_obs_table_and_metrics_table():
    dataset = trace_dataset(np.zeros((1, 3, 2)) + np.arange(3)[None, :, None],
                            obs_coords={"label": np.array([4, 5])})
    pd.testing.assert_frame_equal(readings.obs_table(dataset), pd.DataFrame(
        {"obs_id": ["x_0000", "x_0001"], "label": [4, 5]}), check_dtype=False)
    table = readings.metrics_table({"b": 2.0, "a": 1.0})
    assert list(table.columns) == ["metric", "value"]
    assert list(table["metric"]) == ["b", "a"] and list(table["value"]) == [2.0, 1.0]


def test_linear_cka_known_answers(rng):
    features = rng.normal(size=(30, 5))
    kernel = features @ features.T
    assert linear_cka(kernel, kernel) == pytest.approx(1.0)
    assert linear_cka(kernel, 3.0 * kernel + 2.0) == pytest.approx(1.0)
    other = rng.normal(size=(30, 5))
    value = linear_cka(kernel, other @ other.T)
    assert 0 < value < 0.6


# convergence -----------------------------------------------------------------------------


@pytest.mark.parametrize("num_draws, num_points", [(500, 12), (400, 8), (37, 5), (5, 4)])
def test_draw_counts(num_draws, num_points):
    counts = convergence.draw_counts(num_draws, num_points)
    assert counts == sorted(set(counts))
    assert counts[0] == min(10, num_draws)
    assert counts[-1] == num_draws
    assert len(counts) <= num_points + 1
    assert all(isinstance(count, int) for count in counts)


def test_draw_counts_are_log_spaced():
    assert convergence.draw_counts(1000, 3) == [10, 100, 1000]


def factor_losses(rng, num_chains, num_draws, num_inputs=30, noise=0.3):
    loadings = rng.normal(size=(3, num_inputs))
    factors = rng.normal(size=(num_chains, num_draws, 3))
    return factors @ loadings + noise * rng.normal(size=(num_chains, num_draws, num_inputs))


def run_convergence(losses, num_points=8):
    """The reading on the losses as a trace file holds them (float32)."""
    losses = trace_dataset(losses)["loss"].transpose("chain", "draw", "obs_id").values
    return convergence.convergence(losses, "pooled", num_points)


def test_convergence_of_a_low_rank_kernel(rng):
    curve, values = run_convergence(factor_losses(rng, 2, 400))
    assert list(curve.columns) == ["draws_per_chain", "samples", "cka_vs_final"]
    assert list(curve["draws_per_chain"]) == convergence.draw_counts(400, 8)
    assert list(curve["samples"]) == [2 * t for t in curve["draws_per_chain"]]
    assert curve["cka_vs_final"].iloc[-1] == pytest.approx(1.0)
    assert (curve["cka_vs_final"].iloc[len(curve) // 2:] > 0.9).all()
    assert curve["cka_vs_final"].iloc[0] < curve["cka_vs_final"].iloc[-2]
    assert list(values) == ["cka_half", "cka_halves", "cka_chain_halves"]
    assert values["cka_half"] >= values["cka_halves"] > 0.9
    assert values["cka_chain_halves"] > 0.9


def test_convergence_of_pure_noise_with_few_draws_is_poor(rng):
    curve, values = run_convergence(rng.normal(size=(2, 20, 30)), num_points=4)
    assert curve["cka_vs_final"].iloc[-1] == pytest.approx(1.0)
    assert values["cka_halves"] < 0.7
    assert values["cka_half"] > values["cka_halves"] + 0.1  # the halves overlap


def test_convergence_of_one_chain_has_no_chain_halves(rng):
    _, values = run_convergence(factor_losses(rng, 1, 100), num_points=4)
    assert set(values) == {"cka_half", "cka_halves"}


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


def test_gamma_sweep_cka_table_and_lift_rows(rng):
    coords = sweep_coords(rng)
    localizations = [10.0, 30.0, 100.0]
    loss_sets = [class_losses(rng, coords["true_label"]), class_losses(rng, coords["true_label"]),
                 rng.normal(size=(2, 300, 30))]  # at γ = 100 no structure is left
    pairs = [kernels(trace_dataset(losses, coords)) for losses in loss_sets]
    cka, lift = gamma_sweep.gamma_sweep(
        localizations, [covariance["kernel"].values for covariance, _ in pairs],
        [correlation for _, correlation in pairs], same_output_edges, knn_k=5,
        attributes=["true_label", "ink_bin"])

    assert list(cka.columns) == ["gamma_a", "gamma_b", "cka"]
    cka = cka.pivot(index="gamma_a", columns="gamma_b", values="cka")
    assert list(cka.index) == localizations and list(cka.columns) == localizations
    np.testing.assert_allclose(np.diag(cka), 1.0, rtol=1e-5)
    np.testing.assert_allclose(cka.to_numpy(), cka.to_numpy().T, rtol=1e-5)
    assert cka.loc[10.0, 30.0] > 0.8  # same class structure
    assert cka.loc[10.0, 100.0] < 0.5 and cka.loc[30.0, 100.0] < 0.5

    assert list(lift.columns) == ["gamma", "similarity", "edges", "attribute", "purity",
                                  "chance", "lift"]
    assert set(lift["similarity"]) == {"R"}  # the default
    assert len(lift) == 3 * 2 * 2
    assert set(zip(lift["gamma"], lift["edges"], lift["attribute"], strict=True)) == {
        (gamma, rule, attribute) for gamma in localizations for rule in gamma_sweep.EDGE_RULES
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

STRUCTURE_SCORE = "mislabel ROC-AUC of K(z,z)"


def mislabel_structure_score(covariance, correlation, inputs):
    """The ROC-AUC of K(z, z) for the flipped labels (a task's developmental score)."""
    return float(roc_auc_score(inputs["mislabeled"].to_numpy(), np.diag(covariance)))


def checkpoint_losses(rng, label, flipped, flipped_scale, num_draws=500):
    """A shared per-label mode (the shared logit) plus input noise of scale 1, or
    ``flipped_scale`` for the flipped inputs."""
    label_factor = rng.normal(size=(2, num_draws, label.max() + 1))
    scale = np.where(flipped, flipped_scale, 1.0)
    return label_factor[:, :, label] + scale * rng.normal(size=(2, num_draws, len(label)))


def test_trajectory_gain_of_a_memorizing_network(rng):
    coords = sweep_coords(rng)
    label, flipped = coords["label"], coords["mislabeled"]
    steps = [0, 10, 100]
    pairs = [kernels(trace_dataset(checkpoint_losses(rng, label, flipped, flipped_scale),
                                   coords, attrs={"checkpoint_step": step}))
             for step, flipped_scale in zip(steps, [0.3, 1.0, 4.0], strict=True)]
    table, values = development.trajectory(
        [covariance for covariance, _ in pairs], [correlation for _, correlation in pairs],
        mislabel_structure_score, STRUCTURE_SCORE)

    assert list(table.columns) == ["checkpoint", "step", "structure_score",
                                   "same_output_pair_auc", "structure_score_name"]
    assert list(table["checkpoint"]) == [0, 1, 2]
    assert list(table["step"]) == steps
    assert (table["structure_score_name"] == STRUCTURE_SCORE).all()
    scores = table["structure_score"].to_numpy()
    assert scores[0] == 0.0 and scores[-1] == 1.0
    assert 0.0 < scores[1] < 1.0
    assert (table["same_output_pair_auc"] > 0.9).all()  # shared logits, at every checkpoint
    assert list(values) == ["trajectory_gain", "structure_score_first", "structure_score_last"]
    assert values["structure_score_first"] == 0.0
    assert values["structure_score_last"] == 1.0
    assert values["trajectory_gain"] == pytest.approx(scores[-1] - scores[0])
    assert values["trajectory_gain"] > 0


# summary ---------------------------------------------------------------------------------


def planted_metrics():
    """Three seeds' metrics and one experiment-level table, with hand-computable summaries."""
    per_seed = {
        0: {"roc_auc": 0.9, "cross_task_K": 0.3, "cross_task_K_se": 0.1, "cross_task_z": 3.0},
        1: {"roc_auc": 0.8, "cross_task_K": 0.1, "cross_task_K_se": 0.2, "cross_task_z": 0.5},
        2: {"roc_auc": 0.7, "cross_task_K": -0.1, "cross_task_K_se": 0.2, "cross_task_z": -0.5},
    }
    seed_tables = {seed: [(f"seed{seed}/metrics.tsv", readings.metrics_table(values))]
                   for seed, values in per_seed.items()}
    experiment_tables = [("trajectory/metrics.tsv",
                          readings.metrics_table({"trajectory_gain": 0.25}))]
    return seed_tables, experiment_tables


def test_gather_metrics_stacks_every_table_with_its_seed_and_source():
    gathered = summary.gather_metrics(*planted_metrics())
    assert list(gathered.columns) == ["metric", "seed", "value", "source"]
    assert len(gathered) == 3 * 4 + 1
    assert list(gathered["seed"].iloc[:12]) == [0] * 4 + [1] * 4 + [2] * 4
    assert pd.isna(gathered["seed"].iloc[12])
    assert gathered["source"].iloc[4] == "seed1/metrics.tsv"
    assert gathered.iloc[12].tolist()[::2] == ["trajectory_gain", 0.25]


def test_headline_rows_by_hand():
    gathered = summary.gather_metrics(*planted_metrics())
    rows = summary.headline_rows("toy", gathered, ["roc_auc", "cross_task_z", "trajectory_gain"],
                                 source="toy/summary.tsv")
    assert list(rows.columns) == ["experiment", "metric", "value", "spread", "n", "source"]
    assert list(rows["metric"]) == ["roc_auc", "cross_task_z", "trajectory_gain"]
    assert (rows["experiment"] == "toy").all() and (rows["source"] == "toy/summary.tsv").all()
    assert list(rows["n"]) == [3, 3, 1]
    row = rows.set_index("metric")
    assert row.loc["roc_auc", "value"] == pytest.approx(0.8)
    assert row.loc["roc_auc", "spread"] == pytest.approx(0.1)
    # cross_task_z: mean K 0.1 over the combined SE sqrt(0.1² + 0.2² + 0.2²) / 3 = 0.1, so
    # z = 1; the spread is that of the seeds' own z: deviations 2, -0.5, -1.5 from 1
    assert row.loc["cross_task_z", "value"] == pytest.approx(1.0)
    assert row.loc["cross_task_z", "spread"] == pytest.approx(np.sqrt((4 + 2.25 + 0.25) / 2))
    assert row.loc["trajectory_gain", "value"] == 0.25
    assert np.isnan(row.loc["trajectory_gain", "spread"])
    with pytest.raises(ValueError, match="'cka_half' of toy is in none of the metric tables"):
        summary.headline_rows("toy", gathered, ["cka_half"], source="toy/summary.tsv")


def test_headline_rows_count_only_finite_values():
    seed_tables, experiment_tables = planted_metrics()
    planted = {0: {"roc_auc": 0.9, "cross_task_K": -0.3, "cross_task_K_se": 0.1,
                   "cross_task_z": -3.0},
               1: {"roc_auc": float("nan"), "cross_task_K": -0.1, "cross_task_K_se": 0.2,
                   "cross_task_z": -0.5},
               2: {"roc_auc": 0.7, "cross_task_K": 0.1, "cross_task_K_se": float("nan"),
                   "cross_task_z": float("nan")}}
    seed_tables = {seed: [(f"seed{seed}/metrics.tsv", readings.metrics_table(values))]
                   for seed, values in planted.items()}
    gathered = summary.gather_metrics(seed_tables, experiment_tables)
    row = summary.headline_rows("toy", gathered, ["roc_auc", "cross_task_z"],
                                source="s").set_index("metric")
    # roc_auc over seeds 0 and 2: mean 0.8, std sqrt(2 * 0.1² / 1)
    assert row.loc["roc_auc", ["value", "spread", "n"]].tolist() == pytest.approx(
        [0.8, np.sqrt(0.02), 2])
    # cross_task_z over seeds 0 and 1 (seed 2 has no SE): mean K -0.2 over the combined SE
    # sqrt(0.1² + 0.2²) / 2, signed; spread of -3 and -0.5
    assert row.loc["cross_task_z", ["value", "spread", "n"]].tolist() == pytest.approx(
        [-0.2 / (np.sqrt(0.05) / 2), np.std([-3.0, -0.5], ddof=1), 2])
    no_value = {seed: [(name, table.assign(value=float("nan")))] for seed, [(name, table)]
                in seed_tables.items()}
    empty = summary.headline_rows("toy", summary.gather_metrics(no_value, experiment_tables),
                                  ["roc_auc"], source="s").iloc[0]
    assert np.isnan(empty["value"]) and np.isnan(empty["spread"]) and empty["n"] == 0


def model_rows(values, spreads, ns, metrics=("roc_auc", "trajectory_gain")):
    """A model's headline rows (headline_rows' columns) for these metrics."""
    return pd.DataFrame({"experiment": "toy", "metric": list(metrics), "value": values,
                         "spread": spreads, "n": ns, "source": "s"})


def test_model_headline_by_hand():
    # three models: roc_auc 0.8, 0.9, 1.0 over 3 seeds each, seed spreads 0.1, 0.2, 0.2;
    # trajectory_gain from model 0 only (a replicate leaves the trajectory out)
    per_model = [model_rows([0.8, 0.25], [0.1, float("nan")], [3, 1]),
                 model_rows([0.9], [0.2], [3], metrics=["roc_auc"]),
                 model_rows([1.0], [0.2], [2], metrics=["roc_auc"])]
    rows = summary.model_headline("toy", per_model, {"roc_auc": True, "trajectory_gain": False},
                                  source="a, b, c")
    assert list(rows.columns) == list(summary.HEADLINE_COLUMNS)
    row = rows.set_index("metric")
    assert row.loc["roc_auc", "value"] == pytest.approx(0.9)
    assert row.loc["roc_auc", "model_spread"] == pytest.approx(0.1)  # std of 0.8, 0.9, 1.0
    # pooled within-model spread: sqrt((0.01 + 0.04 + 0.04) / 3) = sqrt(0.03)
    assert row.loc["roc_auc", "seed_spread"] == pytest.approx(np.sqrt(0.03))
    assert row.loc["roc_auc", ["models", "seeds"]].tolist() == [3, 2]  # the fewest seeds
    assert row.loc["trajectory_gain", ["value", "models", "seeds"]].tolist() == [0.25, 1, 1]
    assert np.isnan(row.loc["trajectory_gain", "model_spread"])
    assert np.isnan(row.loc["trajectory_gain", "seed_spread"])
    assert row["diagnostics_passed"].tolist() == [True, False]
    assert (rows["source"] == "a, b, c").all()


def test_model_headline_of_one_model_keeps_its_seed_spread():
    rows = summary.model_headline("toy", [model_rows([0.8, 0.25], [0.1, float("nan")], [3, 1])],
                                  {"roc_auc": True, "trajectory_gain": True}, source="s")
    row = rows.set_index("metric").loc["roc_auc"]
    assert row[["value", "seed_spread", "models", "seeds"]].tolist() == pytest.approx(
        [0.8, 0.1, 1, 3])
    assert np.isnan(row["model_spread"])


def test_paired_comparisons_difference_model_by_model():
    def model_summary(kernel, baseline):
        seed_tables = {seed: [("m.tsv", readings.metrics_table({"auc": k, "base": b}))]
                       for seed, (k, b) in enumerate(zip(kernel, baseline, strict=True))}
        return summary.gather_metrics(seed_tables, [])

    # model means: kernel 0.9, 0.8, 0.7; baseline 0.85, 0.6, 0.8: differences 0.05, 0.2, -0.1.
    # Unpaired, the kernel's own spread across models (0.1) would be the yardstick.
    per_model = [model_summary([0.95, 0.85], [0.85, 0.85]),
                 model_summary([0.8, 0.8], [0.5, 0.7]),
                 model_summary([0.6, 0.8], [0.8, 0.8])]
    rows = summary.paired_comparisons("toy", per_model, [["auc", "base"]], source="s")
    assert list(rows.columns) == list(summary.COMPARISON_COLUMNS)
    row = rows.iloc[0]
    assert row[["kernel", "baseline"]].tolist() == ["auc", "base"]
    assert row["kernel_value"] == pytest.approx(0.8)
    assert row["baseline_value"] == pytest.approx(0.75)
    assert row["difference"] == pytest.approx(0.05)
    assert row["model_spread"] == pytest.approx(np.std([0.05, 0.2, -0.1], ddof=1))
    assert row[["models", "kernel_better_in"]].tolist() == [3, 2]


def test_runs_pass_needs_both_r_hat_and_median_ess():
    table = pd.DataFrame({"run": ["seed0", "seed1", "checkpoint0", "gamma10"],
                          "worst_rhat": [1.05, 1.2, 1.01, float("nan")],
                          "median_ess_bulk": [500.0, 800.0, 20.0, 900.0]})
    passed = summary.runs_pass(table, max_rhat=1.1, min_median_ess=100)
    assert passed.to_dict() == {"seed0": True, "seed1": False, "checkpoint0": False,
                                "gamma10": False}


def test_latex_macros_refuse_two_numbers_of_one_name():
    headline = pd.DataFrame({
        "experiment": ["toy-1", "toy-2"], "metric": ["roc_auc", "roc_auc"], "value": [0.8, 0.9],
        "model_spread": [0.0, 0.0], "models": [1, 1], "seed_spread": [0.1, 0.1],
        "seeds": [2, 2], "diagnostics_passed": [True, True], "source": "s"})
    with pytest.raises(ValueError, match=r"two numbers of macros.tex would both be "
                                         r"\\lkToyRocAuc; rename"):
        summary.latex_macros(headline, pd.DataFrame(columns=summary.COMPARISON_COLUMNS), {},
                             [])


def test_latex_macros_names_and_values():
    headline = pd.DataFrame({
        "experiment": ["toy", "toy", "toy"],
        "metric": ["roc_auc", "trajectory_gain", "median_ess_bulk"],
        "value": [0.81234, 0.25, 1987.6], "model_spread": [0.02, float("nan"), 30.0],
        "models": [3, 1, 3], "seed_spread": [0.1, float("nan"), 120.4], "seeds": [2, 1, 2],
        "diagnostics_passed": [True, False, True], "source": "toy/summary.tsv"})
    comparisons = pd.DataFrame({
        "experiment": ["toy"], "kernel": ["roc_auc"], "baseline": ["baseline_auc"],
        "kernel_value": [0.8], "baseline_value": [0.85], "difference": [-0.05],
        "model_spread": [0.0123], "models": [3], "kernel_better_in": [1], "source": ["s"]})
    text = summary.latex_macros(headline, comparisons, {"toy": {"knn_k": 10, "num_draws": 200}},
                                ["% generated from headline.tsv; do not edit", "% seed: 0"])
    assert text == (
        "% generated from headline.tsv; do not edit\n"
        "% seed: 0\n"
        "\\newcommand{\\lkToyRocAuc}{0.812}\n"
        "\\newcommand{\\lkToyRocAucModelSpread}{0.020}\n"
        "\\newcommand{\\lkToyRocAucModels}{3}\n"
        "\\newcommand{\\lkToyRocAucSeedSpread}{0.100}\n"
        "\\newcommand{\\lkToyRocAucSeeds}{2}\n"
        "\\newcommand{\\lkToyRocAucMark}{}\n"
        "\\newcommand{\\lkToyTrajectoryGain}{0.250}\n"
        "\\newcommand{\\lkToyTrajectoryGainModelSpread}{--}\n"
        "\\newcommand{\\lkToyTrajectoryGainModels}{1}\n"
        "\\newcommand{\\lkToyTrajectoryGainSeedSpread}{--}\n"
        "\\newcommand{\\lkToyTrajectoryGainSeeds}{1}\n"
        "\\newcommand{\\lkToyTrajectoryGainMark}{\\textsuperscript{\\dag}}\n"
        "\\newcommand{\\lkToyMedianEssBulk}{1988}\n"  # from 100 up: no decimals
        "\\newcommand{\\lkToyMedianEssBulkModelSpread}{30.000}\n"
        "\\newcommand{\\lkToyMedianEssBulkModels}{3}\n"
        "\\newcommand{\\lkToyMedianEssBulkSeedSpread}{120}\n"
        "\\newcommand{\\lkToyMedianEssBulkSeeds}{2}\n"
        "\\newcommand{\\lkToyMedianEssBulkMark}{}\n"
        "\\newcommand{\\lkToyRocAucMinusBaselineAuc}{-0.050}\n"
        "\\newcommand{\\lkToyRocAucMinusBaselineAucSpread}{0.012}\n"
        "\\newcommand{\\lkToyRocAucMinusBaselineAucModels}{3}\n"
        "\\newcommand{\\lkToyRocAucMinusBaselineAucBetter}{1}\n"
        "\\newcommand{\\lkToySettingKnnK}{10}\n"
        "\\newcommand{\\lkToySettingNumDraws}{200}\n")
    with pytest.raises(ValueError, match="starting with '%'"):
        summary.latex_macros(headline, comparisons, {}, ["generated"])


# embedding -------------------------------------------------------------------------------


def block_correlation(rng, labels):
    """A kernel dataset of R with one block per label (R ≈ 0.8 inside, ≈ 0 across)."""
    same = (labels[:, None] == labels[None, :]).astype(float)
    noise = rng.normal(scale=0.05, size=same.shape)
    values = np.clip(0.8 * same + (noise + noise.T) / 2, -1, 1)
    np.fill_diagonal(values, 1.0)
    obs_id = [f"x_{i:04d}" for i in range(len(labels))]
    return xr.Dataset({"kernel": (("obs_id", "obs_id_2"), values.astype(np.float32))},
                      coords={"obs_id": obs_id, "obs_id_2": obs_id, "label": ("obs_id", labels)})


@pytest.mark.filterwarnings("ignore:Tensorflow not installed:ImportWarning")  # umap's import
def test_embed_kernels_embeds_the_first_kernel_in_3d_too(rng):
    labels = np.repeat([0, 1, 2], 8)
    rules = []

    def no_edges_removed(inputs, rule):
        rules.append(rule)
        return None

    settings = {"n_neighbors": 5, "min_dist": 0.1, "seed": 0, "excluded_edges": "none",
                "similarity": "R", "dimensions": [2, 3]}
    table = embedding.embed_kernels([("seed0", block_correlation(rng, labels)),
                                     ("seed1", block_correlation(rng, labels))], settings,
                                    no_edges_removed)
    assert set(rules) == {"none"}
    assert list(table["embedding"].unique()) == ["seed0", "seed0-3d", "seed1"]
    assert list(table.columns) == ["obs_id", "label", "embedding", "umap_1", "umap_2", "umap_3"]
    for name, group in table.groupby("embedding"):
        assert len(group) == len(labels)
        assert list(group["obs_id"]) == [f"x_{i:04d}" for i in range(len(labels))]
        assert group[["umap_1", "umap_2"]].notna().all().all()
        assert group["umap_3"].notna().all() == (name == "seed0-3d")
