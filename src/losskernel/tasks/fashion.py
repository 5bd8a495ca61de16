"""Fashion-MNIST against WordNet: Figure 1 of the paper on real images, on a laptop.

The 70,000 original 28×28 greyscale images (60,000 training, 10,000 test) are read by
torchvision's ``FashionMNIST`` from the idx files of Debian's ``dataset-fashion-mnist``
(``data.root``): they are unpacked once into ``data.cache`` in torchvision's layout, so nothing is
downloaded. The ten classes are WordNet 3.0 nouns (:data:`CLASS_SYNSETS`), so the kernel can be
read against a real hypernym tree by the code of the ImageNet branch
(``losskernel.tasks.figure1``): footwear (sandal, sneaker, ankle boot) under
``covering.n.02``, garments under ``clothing.n.01``, the bag under ``container.n.01``; the
footwear and the clothes part below ``artifact.n.01`` (depth 4).

The model is a small all-convolutional network (strided 4×4 convolutions instead of pooling,
which on a CPU costs a third of the time for the same accuracy), trained here with AdamW on the
training images. The kernel inputs are ``per_class`` images of every class from
``kernel_inputs.split``, drawn with ``selection_seed``.

Per-input columns: ``obs_id`` (``test_00042`` = image 42 of the test file), ``split``,
``label``, ``class_name``, the class's place in WordNet (``wordnet_path``, ``depth``,
``hierarchy_position``, ``inset_group``; ``losskernel.tasks.wordnet.hierarchy_table``),
``ink`` (mean intensity in [0, 1]) and ``ink_bin`` (its quantile bin over all 70,000 images,
the low-level attribute of the γ sweep).
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from losskernel.manifest import stat_stamp
from losskernel.tasks import figure1
from losskernel.tasks.defaults import *  # noqa: F403 - the default hooks of the contract
from losskernel.tasks.figure1 import (  # noqa: F401 - hooks of the contract, shared
    STRUCTURE_SCORE,
    excluded_edges,
    structure_score,
)
from losskernel.tasks.protocol import DataSource
from losskernel.tasks.schema import load_schema
from losskernel.tasks.splits import check_neighbour_counts, select_split

if TYPE_CHECKING:  # torch is imported where models are built: the analysis steps never need it
    from torch import nn

    from losskernel.method.chains import TensorData

NUM_CLASSES = 10
IMAGE_SIZE = 28
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MONITOR_IMAGES = 5000

CLASS_SYNSETS: tuple[tuple[str, str], ...] = (
    # (Fashion-MNIST class name, WordNet 3.0 noun) in label order. Our mapping: "T-shirt/top"
    # is jersey.n.03 ("a close-fitting pullover shirt", WordNet's T-shirt), which WordNet puts
    # under shirt.n.01; "Sneaker" is gym_shoe.n.01; "Ankle boot" is boot.n.01 (WordNet has no
    # ankle boot); "Bag" is bag.n.04, the hand-carried bag (not the luggage sense).
    ("T-shirt/top", "jersey.n.03"), ("Trouser", "trouser.n.01"), ("Pullover", "pullover.n.01"),
    ("Dress", "dress.n.01"), ("Coat", "coat.n.01"), ("Sandal", "sandal.n.01"),
    ("Shirt", "shirt.n.01"), ("Sneaker", "gym_shoe.n.01"), ("Bag", "bag.n.04"),
    ("Ankle boot", "boot.n.01"),
)
INSET_GROUPS: dict[str, str] = {
    # Figure 1's neighbourhood insets: a class belongs to the first group whose synset is its
    # ancestor (losskernel.tasks.wordnet.hierarchy_table).
    "footwear": "footwear.n.02", "tops": "shirt.n.01", "sweaters": "sweater.n.01",
    "coats": "overgarment.n.01", "trousers": "trouser.n.01", "dresses": "woman's_clothing.n.01",
    "bags": "container.n.01",
}

INPUT_ATTRIBUTES = ("split", "label", "class_name", *figure1.HIERARCHY_COLUMNS, "ink", "ink_bin")
"""Per-input columns besides ``obs_id`` (and so coordinates of traces and kernels)."""


@dataclass(frozen=True)
class FashionData:
    """Every image with its split, label, class and ink (``examples``, one row per image, the
    training images first) and the pixels: ``images[i]`` is the row with ``image_index == i``."""

    examples: pd.DataFrame
    images: np.ndarray  # (70000, 28, 28) uint8

    def tensors(self, rows: pd.DataFrame) -> TensorData:
        """The rows' images as float32 in [0, 1], shape (n, 1, 28, 28), and their labels."""
        import torch

        from losskernel.method.chains import TensorData

        pixels = torch.from_numpy(self.images[rows["image_index"].to_numpy()])
        return TensorData(pixels.unsqueeze(1).float().div_(255.0),
                          torch.tensor(rows["label"].to_numpy(dtype=np.int64)))

    def split(self, name: str) -> pd.DataFrame:
        return select_split(self.examples, name)


def unpack_idx_files(root: Path, cache: Path) -> Path:
    """Debian's gzipped idx files of ``root`` unpacked into ``<cache>/FashionMNIST/raw/``,
    where torchvision's ``FashionMNIST(cache, download=False)`` finds them. Idempotent; each
    file is written under a temporary name and renamed, so a killed job leaves no half file."""
    raw = Path(cache) / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:
        target = raw / name
        if target.is_file():
            continue
        partial = raw / f"{name}.partial-{os.getpid()}"
        with gzip.open(Path(root) / f"{name}.gz") as source, open(partial, "wb") as unpacked:
            shutil.copyfileobj(source, unpacked)
        partial.replace(target)
    return Path(cache)


def read_images(root: Path, cache: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (images (n, 28, 28) uint8, labels (n,) int64)}`` for ``train`` and ``test``.

    torchvision's ``FashionMNIST`` reads the unpacked idx files once; its arrays are kept in
    ``<cache>/arrays-<stamp>.npz``, the stamp a hash of the source files' paths, sizes and
    modification times (importing torchvision alone takes seconds, in every SGLD job).
    """
    sources = [Path(root).resolve() / f"{name}.gz" for name in IDX_FILES]
    stamp = stat_stamp((str(path), path.stat()) for path in sources)[:16]
    arrays = Path(cache) / f"arrays-{stamp}.npz"
    if not arrays.is_file():
        from torchvision.datasets import FashionMNIST

        unpack_idx_files(root, cache)
        found = {}
        for split in ("train", "test"):
            dataset = FashionMNIST(str(cache), train=split == "train", download=False)
            found |= {f"{split}_images": dataset.data.numpy(),
                      f"{split}_labels": dataset.targets.numpy().astype(np.int64)}
        partial = arrays.with_name(f"{arrays.stem}.partial-{os.getpid()}.npz")
        np.savez(partial, **found)
        partial.replace(arrays)
    with np.load(arrays) as saved:
        return {split: (saved[f"{split}_images"], saved[f"{split}_labels"])
                for split in ("train", "test")}


def make_data(settings: Mapping) -> FashionData:
    """Both splits (:func:`read_images`), with each class's place in WordNet
    (``data.hierarchy``, the table of :data:`DATA_FILES`) and the ink bins (section ``data``)."""
    check_root(settings["root"])
    splits = read_images(Path(settings["root"]), Path(settings["cache"]))
    images = np.concatenate([images for images, _ in splits.values()])
    labels = np.concatenate([labels for _, labels in splits.values()])
    split = np.concatenate([[name] * len(found[1]) for name, found in splits.items()])
    index = np.concatenate([np.arange(len(found[1])) for found in splits.values()])
    ink = images.reshape(len(images), -1).mean(axis=1) / 255.0
    edges = np.quantile(ink, np.linspace(0, 1, settings["ink_bins"] + 1)[1:-1])
    examples = pd.DataFrame({
        "obs_id": np.char.add(np.char.add(split.astype(str), "_"),
                              np.char.zfill(index.astype(str), 5)),
        "image_index": np.arange(len(images)), "split": split, "label": labels,
        "ink": ink, "ink_bin": np.searchsorted(edges, ink, side="right"),
    })
    hierarchy = pd.read_csv(settings["hierarchy"], sep="\t", comment="#")
    columns = ["label", "name", *figure1.HIERARCHY_COLUMNS]
    examples = examples.merge(hierarchy[columns].rename(columns={"name": "class_name"}),
                              on="label", how="left", validate="many_to_one")
    examples["inset_group"] = examples["inset_group"].fillna("")
    return FashionData(examples, images)


def select_kernel_inputs(data: FashionData, settings: Mapping) -> pd.DataFrame:
    """``per_class`` images of every class from ``split`` (``selection_seed``), ordered by
    place in the hierarchy."""
    rng = np.random.default_rng(settings["selection_seed"])
    per_class, chosen = settings["per_class"], []
    for _, rows in data.split(settings["split"]).groupby("label", sort=True):
        chosen.append(rows.iloc[np.sort(rng.choice(len(rows), per_class, replace=False))])
    inputs = pd.concat(chosen).sort_values(["hierarchy_position", "obs_id"])
    return inputs.reset_index(drop=True)


def build_model(settings: Mapping, data: FashionData | None = None) -> nn.Module:
    """An all-convolutional network from a ``model`` config section (``init_seed``):

        conv 4×4 stride 2 (1 → c₁) · ReLU      28×28 → 14×14
        conv 4×4 stride 2 (c₁ → c₂) · ReLU     14×14 → 7×7
        linear (49 c₂ → hidden) · ReLU · linear (hidden → 10)
    """
    import torch
    from torch import nn

    if settings["architecture"] != "strided_cnn":
        raise ValueError(f"model.architecture must be 'strided_cnn', got "
                         f"{settings['architecture']!r}")
    first, second = settings["channels"]
    torch.manual_seed(settings["init_seed"])
    return nn.Sequential(
        nn.Conv2d(1, first, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(first, second, 4, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(second * (IMAGE_SIZE // 4) ** 2, settings["hidden"]), nn.ReLU(),
        nn.Linear(settings["hidden"], NUM_CLASSES),
    )


def evaluate(model: nn.Module, data: FashionData) -> dict[str, float]:
    """Accuracy on the monitor set (the first 5000 training images) and on the test split."""
    import torch

    metrics = {}
    for name, rows in (("train_accuracy", data.split("train").head(MONITOR_IMAGES)),
                       ("test_accuracy", data.split("test"))):
        tensors = data.tensors(rows)
        with torch.inference_mode():
            predicted = torch.cat([model(tensors.inputs[start:start + 2000]).argmax(1)
                                   for start in range(0, len(rows), 2000)])
        metrics[name] = float((predicted == tensors.targets).float().mean())
    return metrics


def monitor_set(data: FashionData) -> TensorData:
    """The first 5000 training images: what training reports its loss on."""
    return data.tensors(data.split("train").head(MONITOR_IMAGES))


def training_split(data: FashionData) -> tuple[TensorData, None]:
    """The 60,000 training images; SGLD minibatches are not stratified."""
    return data.tensors(data.split("train")), None


def is_converged(metrics: Mapping[str, float], training_settings: Mapping) -> None:
    """No target: training runs ``training.max_steps`` (a fixed number of epochs); the history
    shows the test accuracy's plateau."""
    return None


def check_root(root: str | None) -> None:
    """``data.root`` holds the four gzipped idx files, or a ValueError names the fix."""
    missing = [name for name in IDX_FILES
               if root is None or not (Path(root) / f"{name}.gz").is_file()]
    if missing:
        found = "is not set" if root is None else (
            f"{root!r} lacks {', '.join(f'{name}.gz' for name in missing)}")
        raise ValueError(
            f"data.root: {found}. Install Debian's Fashion-MNIST (`sudo apt-get install "
            f"{DEBIAN_PACKAGE}`, files in {DEBIAN_DIR}), or point data.root at a directory "
            f"holding the four original idx .gz files")


def check_files(settings: Mapping) -> None:
    """The idx files exist, so a missing package stops the dry run, before any job."""
    check_root(settings["data"]["root"])


def data_sources(settings: Mapping) -> tuple[DataSource, ...]:
    """The four gzipped idx files under ``data.root`` (Debian's, by default)."""
    root = settings["data"]["root"]
    if root is None:
        return ()
    root = Path(root).resolve()
    return (DataSource(name="fashion-mnist", origin=f"config data.root = {root}",
                       files=tuple(str(root / f"{name}.gz") for name in IDX_FILES),
                       fix=f"sudo apt-get install {DEBIAN_PACKAGE}, or point data.root at a "
                           f"directory holding the four original idx .gz files"),)


def check_settings(settings: Mapping) -> None:
    """Checks of an experiment's settings that a schema cannot express.

    Raises ``ValueError("<key.path>: <problem and fix>")`` with the key relative to the experiment.
    """
    check_neighbour_counts(settings["analysis"], count_kernel_inputs(settings)[0],
                           "raise kernel_inputs.per_class")


def count_kernel_inputs(settings: Mapping) -> tuple[int, str]:
    """``per_class`` × 10 classes."""
    per_class = settings["kernel_inputs"]["per_class"]
    return per_class * NUM_CLASSES, f"{per_class} images per class × {NUM_CLASSES} classes"


def wordnet_classes(reader) -> pd.DataFrame:
    """The ten classes in label order: ``label``, ``name`` and the ``wnid`` of their synset."""
    return pd.DataFrame({
        "label": range(NUM_CLASSES), "name": [name for name, _ in CLASS_SYNSETS],
        "wnid": [f"n{reader.synset(synset).offset():08d}" for _, synset in CLASS_SYNSETS]})


def thumbnails(data_settings: Mapping, obs_ids: Sequence[str]) -> list[np.ndarray]:
    """The images of ``obs_ids`` as 28 × 28 × 3 uint8 thumbnails, inverted to dark on white."""
    splits = read_images(Path(data_settings["root"]), Path(data_settings["cache"]))
    images = [splits[obs_id.split("_")[0]][0][int(obs_id.split("_")[1])] for obs_id in obs_ids]
    return [np.repeat(255 - image[:, :, None], 3, axis=2) for image in images]


SETTINGS_SCHEMA = load_schema(__file__)
HIERARCHY_TABLE = "results/wordnet/fashion-mnist-hierarchy.tsv"
DATA_FILES = (figure1.hierarchy_data_file(HIERARCHY_TABLE, "fashion_hierarchy", wordnet_classes,
                                          INSET_GROUPS),)
READINGS = (figure1.HIERARCHY_READING,)
FIGURES = (figure1.FIGURE_SET,)
