import numpy as np
import pandas as pd
import pytest
import torch

from losskernel.method.losses import cross_entropy_per_sample
from losskernel.tasks import digits
from losskernel.training import TrainingConfig, train_adamw

SETTINGS = {"train_fraction": 0.75, "split_seed": 0, "label_noise": 0.1, "noise_seed": 0,
            "ink_bins": 3}
MODEL = {"architecture": "cnn", "channels": [4, 8], "hidden": 16, "init_seed": 0}


@pytest.fixture(scope="module")
def data():
    return digits.make_data(SETTINGS)


def test_flip_labels_flips_the_rounded_share_of_candidates_only(rng):
    labels = rng.integers(0, 10, 200)
    candidates = np.sort(rng.choice(200, 50, replace=False))
    flipped_labels, flipped = digits.flip_labels(labels, candidates, 0.3, rng)
    assert flipped.sum() == 15  # round(0.3 · 50)
    assert np.isin(np.flatnonzero(flipped), candidates).all()
    assert (flipped_labels[flipped] != labels[flipped]).all()
    np.testing.assert_array_equal(flipped_labels[~flipped], labels[~flipped])
    assert ((flipped_labels >= 0) & (flipped_labels < 10)).all()


def test_flip_labels_never_keeps_the_class_even_when_every_candidate_flips(rng):
    labels = np.repeat(np.arange(10), 30)
    flipped_labels, flipped = digits.flip_labels(labels, np.arange(300), 1.0, rng)
    assert flipped.all()
    assert (flipped_labels != labels).all()
    assert len(np.unique(flipped_labels - labels)) > 1  # not one fixed shift


def test_flip_labels_is_seeded():
    labels = np.arange(100) % 10
    candidates = np.arange(0, 100, 2)
    first = digits.flip_labels(labels, candidates, 0.2, np.random.default_rng(7))
    again = digits.flip_labels(labels, candidates, 0.2, np.random.default_rng(7))
    other = digits.flip_labels(labels, candidates, 0.2, np.random.default_rng(8))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_make_data_splits_and_flips_training_labels_only(data):
    examples = data.examples
    assert len(examples) == digits.NUM_IMAGES
    assert (examples["split"] == "train").sum() == 1347
    assert (examples["split"] == "test").sum() == 450
    assert examples["mislabeled"].sum() == 135  # round(0.1 · 1347)
    assert (examples.loc[examples["mislabeled"], "split"] == "train").all()
    np.testing.assert_array_equal(examples["label"] != examples["true_label"],
                                  examples["mislabeled"])
    assert examples["obs_id"].is_unique
    assert examples["obs_id"].iloc[42] == "digit_0042"
    assert data.images.shape == (digits.NUM_IMAGES, 8, 8)
    assert data.images.dtype == np.float32
    assert data.images.min() == 0.0 and data.images.max() == 1.0


def test_make_data_split_is_stratified_by_true_label(data):
    examples = data.examples
    share = (examples["split"] == "train").groupby(examples["true_label"]).mean()
    assert sorted(share.index) == list(range(10))
    assert share.to_numpy() == pytest.approx(np.full(10, 0.75), abs=0.01)


def test_ink_bins_are_quantile_bins_of_mean_ink(data):
    examples = data.examples
    np.testing.assert_allclose(examples["ink"], data.images.reshape(-1, 64).mean(axis=1),
                               rtol=1e-6)
    counts = examples["ink_bin"].value_counts()
    assert sorted(counts.index) == [0, 1, 2]
    assert counts.to_numpy() == pytest.approx(np.full(3, digits.NUM_IMAGES / 3), rel=0.05)
    ink_range = examples.groupby("ink_bin")["ink"].agg(["min", "max"])
    assert ink_range.loc[0, "max"] <= ink_range.loc[1, "min"]  # bins ordered by ink
    assert ink_range.loc[1, "max"] <= ink_range.loc[2, "min"]


def test_make_data_is_deterministic_and_seeded(data):
    again = digits.make_data(SETTINGS)
    pd.testing.assert_frame_equal(data.examples, again.examples)
    np.testing.assert_array_equal(data.images, again.images)
    other_noise = digits.make_data({**SETTINGS, "noise_seed": 1})
    assert (other_noise.examples["split"] == data.examples["split"]).all()
    assert not other_noise.examples["mislabeled"].equals(data.examples["mislabeled"])
    other_split = digits.make_data({**SETTINGS, "split_seed": 1})
    assert not other_split.examples["split"].equals(data.examples["split"])


def test_zero_label_noise_flips_nothing():
    examples = digits.make_data({**SETTINGS, "label_noise": 0.0}).examples
    assert not examples["mislabeled"].any()
    assert (examples["label"] == examples["true_label"]).all()


@pytest.mark.parametrize("key, value", [("train_fraction", 0.0), ("train_fraction", 1.0),
                                        ("label_noise", -0.1), ("label_noise", 1.0)])
def test_make_data_rejects_out_of_range_settings(key, value):
    with pytest.raises(ValueError, match=rf"^{key} must be in .*, got {value}$"):
        digits.make_data({**SETTINGS, key: value})


def test_splits_and_kernel_inputs(data):
    assert len(data.split("all")) == digits.NUM_IMAGES
    assert (data.split("test")["split"] == "test").all()
    inputs = digits.select_kernel_inputs(data, {"split": "train"})
    assert len(inputs) == 1347 and (inputs["split"] == "train").all()
    assert list(inputs.index) == list(range(1347))
    with pytest.raises(ValueError, match="split must be"):
        data.split("validation")


def test_tensors_hold_the_rows_images_and_training_labels(data):
    rows = data.examples[data.examples["mislabeled"]].head(5)
    tensors = data.tensors(rows)
    assert tuple(tensors.inputs.shape) == (5, 1, 8, 8)
    np.testing.assert_array_equal(tensors.inputs[:, 0].numpy(),
                                  data.images[rows["image_index"].to_numpy()])
    np.testing.assert_array_equal(tensors.targets.numpy(), rows["label"].to_numpy())
    assert (tensors.targets.numpy() != rows["true_label"].to_numpy()).all()


def test_cnn_gives_ten_logits_and_is_seeded(data):
    rows = data.examples.head(7)
    inputs = data.tensors(rows).inputs
    model = digits.build_model(MODEL, data)
    with torch.no_grad():
        logits = model(inputs)
        assert logits.shape == (7, digits.NUM_CLASSES)
        torch.testing.assert_close(digits.build_model(MODEL, data)(inputs), logits)
        assert not torch.allclose(digits.build_model({**MODEL, "init_seed": 1}, data)(inputs),
                                  logits)
    with pytest.raises(ValueError, match=r"model\.architecture must be 'cnn'"):
        digits.build_model({**MODEL, "architecture": "mlp"}, data)


def test_evaluate_reports_clean_and_flipped_training_accuracy(data):
    with torch.no_grad():
        metrics = digits.evaluate(digits.build_model(MODEL, data), data)
    assert set(metrics) == {"train_accuracy", "test_accuracy", "train_accuracy_clean",
                            "train_accuracy_mislabeled"}
    assert all(0 <= value <= 1 for value in metrics.values())
    # the train accuracy is the 1212 clean and 135 flipped inputs' accuracies, weighted
    combined = (1212 * metrics["train_accuracy_clean"]
                + 135 * metrics["train_accuracy_mislabeled"]) / 1347
    assert metrics["train_accuracy"] == pytest.approx(combined)
    assert digits.is_converged({"train_accuracy": 1.0}, {"target_train_accuracy": 1.0})
    assert not digits.is_converged({"train_accuracy": 0.99}, {"target_train_accuracy": 1.0})


def test_training_split_is_the_training_set_with_its_flipped_labels(data):
    train_data, strata = digits.training_split(data)
    assert strata is None
    assert len(train_data) == 1347
    train = data.split("train")
    np.testing.assert_array_equal(train_data.targets.numpy(), train["label"].to_numpy())


def test_a_few_adamw_steps_lower_the_training_loss(data):
    subset = data.tensors(data.split("train").head(64))
    result = train_adamw(
        digits.build_model(MODEL, data), cross_entropy_per_sample, subset,
        TrainingConfig(learning_rate=1e-2, weight_decay=0.0, max_steps=30, eval_every=30,
                       num_checkpoints=3),
        evaluate=lambda model: {}, is_converged=lambda metrics: False, progress=False)
    losses = result.history["train_loss"].to_numpy()
    assert list(result.history["step"]) == [0, 30]
    assert losses[-1] < 0.8 * losses[0]


def test_edge_rules():
    inputs = pd.DataFrame({"label": [3, 1, 3, 0], "true_label": [3, 1, 1, 0]})
    assert digits.excluded_edges(inputs, "none") is None
    expected = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(digits.excluded_edges(inputs, "same_output"), expected)
    with pytest.raises(ValueError, match="'shared_token'"):
        digits.excluded_edges(inputs, "shared_token")


def test_structure_score_is_the_mislabel_auc_of_the_self_covariance(rng):
    mislabeled = np.arange(20) < 5
    inputs = pd.DataFrame({"mislabeled": mislabeled})
    base = rng.normal(scale=0.1, size=(20, 20))
    variance = np.where(mislabeled, 4.0, 1.0) + rng.uniform(0, 0.5, 20)
    planted = (base + base.T) / 2 + np.diag(variance)
    assert digits.structure_score(planted, planted, inputs, {}) == 1.0
    reversed_ = (base + base.T) / 2 + np.diag(5.0 - variance)
    assert digits.structure_score(reversed_, reversed_, inputs, {}) == 0.0
    # only the diagonal counts: off-diagonal structure among flipped inputs changes nothing
    coupled = planted + 10.0 * np.outer(mislabeled, mislabeled) * (1 - np.eye(20))
    assert digits.structure_score(coupled, coupled, inputs, {}) == 1.0


def settings(**changes):
    base = {"data": dict(SETTINGS), "sampling": {"batch_size": 64},
            "kernel_inputs": {"split": "train"},
            "analysis": {"mislabels": {"noise_scales": [0.01]}}}
    for section, values in changes.items():
        base[section] = {**base[section], **values}
    return base


def test_default_like_settings_pass_the_checks():
    digits.check_settings(settings())
    digits.check_settings(settings(kernel_inputs={"split": "all"}))
    # without the mislabel analysis, clean labels and test inputs are fine
    no_mislabels = {**settings(data={"label_noise": 0.0}, kernel_inputs={"split": "test"}),
                    "analysis": {}}
    digits.check_settings(no_mislabels)


def test_settings_checks_name_the_key():
    with pytest.raises(ValueError, match=r"^sampling\.batch_size: 2000 exceeds"):
        digits.check_settings(settings(sampling={"batch_size": 2000}))
    with pytest.raises(ValueError, match=r"^data\.label_noise: "):
        digits.check_settings(settings(data={"label_noise": 0.0}))
    with pytest.raises(ValueError, match=r"^kernel_inputs\.split: "):
        digits.check_settings(settings(kernel_inputs={"split": "test"}))


def test_batch_size_of_the_whole_training_set_passes():
    digits.check_settings(settings(sampling={"batch_size": 1347}))


def test_batch_size_one_above_the_training_set_is_refused():
    with pytest.raises(ValueError, match=r"^sampling\.batch_size: 1348 exceeds"):
        digits.check_settings(settings(sampling={"batch_size": 1348}))
