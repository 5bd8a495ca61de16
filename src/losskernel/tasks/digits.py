"""The vision stand-in: scikit-learn's 8×8 handwritten digits with flipped training labels.

``load_digits`` ships 1797 real images (8×8, intensities 0..16, ten classes). A stratified
train/test split is drawn, and a fraction ``label_noise`` of the training labels is flipped to a
different class chosen uniformly at random. A small CNN trained to 100 % training accuracy has
then memorized every flipped label, which is what the mislabel analysis detects (paper
appendix: per-sample loss variance K(z, z) separates mislabeled inputs).

Per-input columns: ``obs_id`` (``digit_0042`` = row 42 of ``load_digits``), ``split``, ``label``
(the training label, flipped or not), ``true_label``, ``mislabeled``, ``ink`` (mean intensity in
[0, 1]) and ``ink_bin`` (its quantile bin, the low-level attribute of the γ sweep).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from losskernel.tasks.defaults import *  # noqa: F403 - the default hooks of the contract
from losskernel.tasks.protocol import DataSource
from losskernel.tasks.schema import load_schema
from losskernel.tasks.splits import check_neighbour_counts, same_label_edges, select_split

if TYPE_CHECKING:  # torch is imported where models are built: the analysis steps never need it
    from torch import nn

    from losskernel.method.chains import TensorData

NUM_CLASSES = 10
IMAGE_SIZE = 8
NUM_IMAGES = 1797  # len(load_digits().target); checks use it without loading the data


INPUT_ATTRIBUTES = ("split", "label", "true_label", "mislabeled", "ink", "ink_bin")
"""Per-input columns besides ``obs_id`` (and so coordinates of traces and kernels)."""


@dataclass(frozen=True)
class DigitsData:
    """Every image with its split, labels and attributes (``examples``, one row per image) and
    the pixels: ``images[i]`` is the image of the row with ``image_index == i``."""

    examples: pd.DataFrame
    images: np.ndarray  # (n, 8, 8) float32 in [0, 1]

    def tensors(self, rows: pd.DataFrame) -> TensorData:
        import torch

        from losskernel.method.chains import TensorData

        images = torch.from_numpy(self.images[rows["image_index"].to_numpy()]).unsqueeze(1)
        return TensorData(images, torch.tensor(rows["label"].to_numpy(dtype=np.int64)))

    def split(self, name: str) -> pd.DataFrame:
        return select_split(self.examples, name)


def flip_labels(labels: np.ndarray, candidates: np.ndarray, fraction: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Flip ``round(fraction · len(candidates))`` of the labels at ``candidates`` to another class.

    Returns the new labels and a mask of the flipped entries. The new class is uniform over the
    nine others (shift by 1..9 modulo 10), so a flipped label never equals the true one.
    """
    flipped = np.zeros(len(labels), dtype=bool)
    chosen = rng.choice(candidates, round(fraction * len(candidates)), replace=False)
    flipped[chosen] = True
    shifted = labels.copy()
    shifted[chosen] = (labels[chosen] + rng.integers(1, NUM_CLASSES, len(chosen))) % NUM_CLASSES
    return shifted, flipped


def data_sources(settings: Mapping) -> tuple[DataSource, ...]:
    """The digits file scikit-learn ships, which ``load_digits`` reads (found without
    importing scikit-learn, which takes a second)."""
    import importlib.util
    from importlib import metadata

    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return ()
    digits = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return (DataSource(name="sklearn-digits", files=(str(digits),),
                       origin=f"Python package scikit-learn {metadata.version('scikit-learn')}",
                       fix="reinstall scikit-learn (bash setup.sh)"),)


def make_data(settings: Mapping) -> DigitsData:
    """Digits with a stratified split and flipped training labels (config section ``data``)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    fraction, noise = settings["train_fraction"], settings["label_noise"]
    if not 0 < fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {fraction}")
    if not 0 <= noise < 1:
        raise ValueError(f"label_noise must be in [0, 1), got {noise}")
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    true_label = digits.target.astype(np.int64)
    index = np.arange(len(true_label))
    train_index, _ = train_test_split(index, train_size=fraction, stratify=true_label,
                                      random_state=settings["split_seed"])
    is_train = np.isin(index, train_index)
    label, mislabeled = flip_labels(true_label, np.sort(train_index), noise,
                                    np.random.default_rng(settings["noise_seed"]))
    ink = images.reshape(len(images), -1).mean(axis=1)
    edges = np.quantile(ink, np.linspace(0, 1, settings["ink_bins"] + 1)[1:-1])
    examples = pd.DataFrame({
        "obs_id": [f"digit_{i:04d}" for i in index], "image_index": index,
        "split": np.where(is_train, "train", "test"), "label": label, "true_label": true_label,
        "mislabeled": mislabeled, "ink": ink.astype(np.float64),
        "ink_bin": np.searchsorted(edges, ink, side="right"),
    })
    return DigitsData(examples, images)


def select_kernel_inputs(data: DigitsData, settings: Mapping) -> pd.DataFrame:
    """Every input of ``split`` (the training split holds the mislabeled inputs)."""
    return data.split(settings["split"]).reset_index(drop=True)


def build_model(settings: Mapping, data: DigitsData | None) -> nn.Module:
    """A small CNN from a ``model`` config section, initialized from ``init_seed``.

        conv 3×3 (1 → c₁) · ReLU · max-pool 2      8×8 → 4×4
        conv 3×3 (c₁ → c₂) · ReLU · max-pool 2     4×4 → 2×2
        linear (4 c₂ → hidden) · ReLU · linear (hidden → 10)
    """
    import torch
    from torch import nn

    if settings["architecture"] != "cnn":
        raise ValueError(f"model.architecture must be 'cnn', got {settings['architecture']!r}")
    first, second = settings["channels"]
    torch.manual_seed(settings["init_seed"])
    return nn.Sequential(
        nn.Conv2d(1, first, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(first, second, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(second * (IMAGE_SIZE // 4) ** 2, settings["hidden"]), nn.ReLU(),
        nn.Linear(settings["hidden"], NUM_CLASSES),
    )


def evaluate(model: nn.Module, data: DigitsData) -> dict[str, float]:
    """Training accuracy on the given labels (all, clean, flipped) and test accuracy."""
    import torch

    metrics = {}
    with torch.inference_mode():
        for split in ("train", "test"):
            rows = data.split(split)
            tensors = data.tensors(rows)
            correct = (model(tensors.inputs).argmax(1) == tensors.targets).numpy()
            metrics[f"{split}_accuracy"] = float(correct.mean())
            if split == "train":
                flipped = rows["mislabeled"].to_numpy()
                metrics["train_accuracy_clean"] = float(correct[~flipped].mean())
                if flipped.any():
                    metrics["train_accuracy_mislabeled"] = float(correct[flipped].mean())
    return metrics


def training_split(data: DigitsData) -> tuple[TensorData, np.ndarray | None]:
    """The training set with its (partly flipped) labels; SGLD minibatches are not stratified."""
    return data.tensors(data.split("train")), None


def is_converged(metrics: Mapping[str, float], training_settings: Mapping) -> bool:
    """Training accuracy (flipped labels included) at least ``target_train_accuracy``."""
    return metrics["train_accuracy"] >= training_settings["target_train_accuracy"]


def excluded_edges(inputs: pd.DataFrame, rule: str) -> np.ndarray | None:
    """Same-label pairs (``same_output``) or no pair (``none``): see ``same_label_edges``."""
    return same_label_edges(inputs, rule, "digits")


def structure_score(covariance: np.ndarray, correlation: np.ndarray, inputs: pd.DataFrame,
                    analysis_settings: Mapping) -> float:
    """The developmental structure score: ROC-AUC of K(z, z) for the flipped labels.

    It counts no pair of inputs, so the shared-logit co-movement of same-label pairs (present
    already at initialization) cannot inflate it; it rises as the network memorizes.
    """
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(inputs["mislabeled"].to_numpy(), np.diag(covariance)))


STRUCTURE_SCORE = "mislabel ROC-AUC of K(z,z)"


def check_settings(settings: Mapping) -> None:
    """Checks of an experiment's settings that a schema cannot express.

    Raises ``ValueError("<key.path>: <problem and fix>")`` with the key relative to the experiment.
    """
    data = settings["data"]
    num_train = math.floor(data["train_fraction"] * NUM_IMAGES)  # as train_test_split rounds
    if settings["sampling"]["batch_size"] > num_train:
        raise ValueError(f"sampling.batch_size: {settings['sampling']['batch_size']} exceeds the "
                         f"{num_train} training images; lower it")
    analysis = settings["analysis"]
    if "mislabels" in analysis and data["label_noise"] == 0:
        raise ValueError("data.label_noise: the mislabel analysis needs flipped labels; set it "
                         "above 0 (e.g. 0.1) or remove analysis.mislabels")
    if "mislabels" in analysis and settings["kernel_inputs"]["split"] == "test":
        raise ValueError("kernel_inputs.split: the mislabeled inputs are in the training split; "
                         "use 'train' or 'all'")
    split = settings["kernel_inputs"]["split"]
    num_inputs = {"train": num_train, "test": NUM_IMAGES - num_train, "all": NUM_IMAGES}[split]
    check_neighbour_counts(analysis, num_inputs, "choose a larger kernel_inputs.split")


SETTINGS_SCHEMA = load_schema(__file__)
DATA_FILES = ()
READINGS = ()
FIGURES = ()
