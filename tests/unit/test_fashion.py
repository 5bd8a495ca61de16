"""Fashion-MNIST against WordNet: the real images, the class mapping and the tree it gives."""

from pathlib import Path

import nltk
import numpy as np
import pandas as pd
import pytest
import torch
from tests.needs import require

from losskernel.readings.hierarchy import lca_depth_matrix
from losskernel.tasks import fashion, load_task
from losskernel.tasks.wordnet import DEBIAN_WORDNET_DIR

FOOTWEAR = ["Sandal", "Sneaker", "Ankle boot"]
GARMENTS = ["T-shirt/top", "Trouser", "Pullover", "Coat", "Shirt"]


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory) -> Path:
    require("wordnet")
    folder = tmp_path_factory.mktemp("fashion")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nltk.data, "path", [])  # Debian's files, not any corpus of this machine
        (data_file,) = fashion.DATA_FILES
        table, notes = data_file.make({"wordnet": {
            "nltk_data": str(folder / "nltk_data"), "debian_dir": str(DEBIAN_WORDNET_DIR)}})
    assert notes["wordnet_version"] == "3.0"
    path = folder / "hierarchy.tsv"
    table.to_csv(path, sep="\t", index=False)
    return path


@pytest.fixture(scope="module")
def data(hierarchy, tmp_path_factory) -> fashion.FashionData:
    require("fashion_mnist")
    return fashion.make_data({"root": fashion.DEBIAN_DIR, "ink_bins": 3,
                              "cache": str(tmp_path_factory.mktemp("cache")),
                              "hierarchy": str(hierarchy)})


def test_the_ten_classes_sit_in_wordnet_with_footwear_and_garments_apart(hierarchy):
    table = pd.read_csv(hierarchy, sep="\t").set_index("name")
    assert list(table["label"]) == list(range(10))
    for name in FOOTWEAR:
        assert ">footwear.n.02>" in table.loc[name, "wordnet_path"]
        assert table.loc[name, "inset_group"] == "footwear"
    for name in GARMENTS:
        assert ">garment.n.01>" in table.loc[name, "wordnet_path"]
    assert ">woman's_clothing.n.01>" in table.loc["Dress", "wordnet_path"]
    assert ">container.n.01>" in table.loc["Bag", "wordnet_path"]
    lca = lca_depth_matrix(table["wordnet_path"].tolist())
    names = list(table.index)
    # footwear and clothes meet at artifact.n.01 (depth 4): depth 5 is the first that parts them
    assert {int(lca[names.index(a), names.index(b)]) for a in FOOTWEAR for b in GARMENTS} == {4}
    assert int(lca[names.index("Sandal"), names.index("Sneaker")]) == 7  # shoe.n.01


def test_make_data_reads_all_70000_images_through_torchvision(data):
    examples = data.examples
    assert len(examples) == 70_000 and data.images.shape == (70_000, 28, 28)
    assert examples["split"].value_counts().to_dict() == {"train": 60_000, "test": 10_000}
    assert examples["obs_id"].iloc[0] == "train_00000" and examples["obs_id"].iloc[-1] == (
        "test_09999")
    assert (examples.groupby("label").size() == 7000).all()
    # the first training image is an ankle boot (label 9), as in the original files
    assert examples["class_name"].iloc[0] == "Ankle boot"
    assert examples["ink"].between(0, 1).all()
    assert examples["ink_bin"].value_counts().min() > 23_000  # terciles of 70,000


def test_the_unpacked_arrays_are_reused(data, hierarchy, tmp_path):
    settings = {"root": fashion.DEBIAN_DIR, "ink_bins": 3, "cache": str(tmp_path),
                "hierarchy": str(hierarchy)}
    fashion.make_data(settings)
    arrays = list(tmp_path.glob("arrays-*.npz"))
    assert len(arrays) == 1
    again = fashion.make_data(settings)
    assert list(tmp_path.glob("arrays-*.npz")) == arrays
    np.testing.assert_array_equal(again.images, data.images)


def test_kernel_inputs_are_a_seeded_choice_per_class_in_hierarchy_order(data):
    settings = {"split": "test", "per_class": 7, "selection_seed": 3}
    inputs = fashion.select_kernel_inputs(data, settings)
    assert len(inputs) == 70 and (inputs.groupby("label").size() == 7).all()
    assert (inputs["split"] == "test").all()
    assert inputs["hierarchy_position"].is_monotonic_increasing
    assert inputs.equals(fashion.select_kernel_inputs(data, settings))
    other = fashion.select_kernel_inputs(data, {**settings, "selection_seed": 4})
    assert set(other["obs_id"]) != set(inputs["obs_id"])
    tensors = data.tensors(inputs)
    assert tensors.inputs.shape == (70, 1, 28, 28) and tensors.inputs.dtype == torch.float32
    assert float(tensors.inputs.max()) <= 1.0


def test_the_network_gives_ten_logits_and_is_seeded(data):
    settings = {"architecture": "strided_cnn", "channels": [4, 8], "hidden": 16, "init_seed": 1}
    inputs = data.tensors(data.examples.head(5)).inputs
    first, second = fashion.build_model(settings), fashion.build_model(settings)
    assert first(inputs).shape == (5, 10)
    torch.testing.assert_close(first(inputs), second(inputs))
    metrics = fashion.evaluate(first, data)
    assert set(metrics) == {"train_accuracy", "test_accuracy"}


def test_a_missing_package_names_the_key_and_the_install_command(tmp_path):
    with pytest.raises(ValueError, match=r"data.root: .*lacks train-images-idx3-ubyte.gz.*"
                                         r"`sudo apt-get install dataset-fashion-mnist`"):
        fashion.check_files({"data": {"root": str(tmp_path)}})
    with pytest.raises(ValueError, match=r"data\.root: is not set"):
        fashion.check_root(None)


def test_thumbnails_are_dark_on_white_rgb(data, hierarchy, tmp_path):
    settings = {"root": fashion.DEBIAN_DIR, "cache": str(tmp_path)}
    (thumbnail,) = fashion.thumbnails(settings, ["train_00000"])
    assert thumbnail.shape == (28, 28, 3) and thumbnail.dtype == np.uint8
    np.testing.assert_array_equal(thumbnail[:, :, 0], 255 - data.images[0])


def test_the_task_is_built_in():
    assert load_task("fashion") is fashion
    assert fashion.count_kernel_inputs({"kernel_inputs": {"per_class": 50}})[0] == 500
