"""The ImageNet task on a tiny fake tree: data, kernel inputs, colour, weights, config checks,
and the hooks that size jobs before any data exists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torchvision.models import googlenet

from losskernel.method.chains import evaluate_per_sample_losses
from losskernel.method.losses import cross_entropy_per_sample
from losskernel.pipeline.io import checkpoint_steps, load_model
from losskernel.pipeline.models import import_model
from losskernel.tasks import imagenet
from losskernel.tasks.networks import NormalizedClassifier
from losskernel.tasks.protocol import Pretrained

WNIDS = ["n01440764", "n02099601", "n03594945"]  # tench, golden retriever, jeep
MODEL = {"architecture": "googlenet", "source": "train", "weights": None, "checkpoints": [],
         "transform_input": True, "init_seed": 0}


@pytest.fixture
def hierarchy(tmp_path):
    """A hand-made hierarchy table for the three classes (no WordNet needed)."""
    table = pd.DataFrame({
        "label": [0, 207, 609], "wnid": WNIDS, "name": ["tench", "golden retriever", "jeep"],
        "wordnet_path": ["entity>animal>fish>tench", "entity>animal>dog>retriever",
                         "entity>artifact>vehicle>jeep"],
        "depth": [3, 3, 3], "hierarchy_position": [0.5, 0.0, 1.0],
        "inset_group": ["", "dogs", "vehicles"]})
    path = tmp_path / "hierarchy.tsv"
    table.to_csv(path, sep="\t", index=False)
    return path


@pytest.fixture
def settings(tmp_path, hierarchy):
    root = imagenet.make_fake_imagenet(tmp_path / "train", WNIDS, images_per_class=5)
    return {"root": str(root), "image_size": 32, "loader_threads": 1,
            "hierarchy": str(hierarchy)}


def test_data_lists_every_image_with_its_imagenet_label(settings):
    data = imagenet.make_data(settings)
    assert len(data.examples) == 15
    assert data.examples["obs_id"].iloc[0] == "n01440764/n01440764_0.JPEG"
    assert dict(zip(data.examples["wnid"], data.examples["label"], strict=True)) == {
        "n01440764": 0, "n02099601": 207, "n03594945": 609}
    images, labels = imagenet.ImageBatches(data)[torch.tensor([0, 14, 0])]
    assert images.dtype == torch.uint8 and images.shape == (3, 3, 32, 32)
    assert labels.tolist() == [0, 609, 0]
    assert torch.equal(images[0], images[2])
    threaded = imagenet.make_data({**settings, "loader_threads": 3})
    assert torch.equal(imagenet.ImageBatches(threaded)[torch.tensor([0, 14, 0])][0], images)
    assert not data.cache  # minibatches are decoded, not kept


def test_kernel_inputs_are_a_seeded_choice_per_class_in_hierarchy_order(settings):
    data = imagenet.make_data(settings)
    choice = {"images_per_class": 2, "selection_seed": 0, "colour_bins": 6}
    inputs = imagenet.select_kernel_inputs(data, choice)
    assert set(data.cache) == set(inputs["obs_id"])  # decoded once, kept for the tensors
    assert list(inputs["wnid"]) == ["n02099601"] * 2 + ["n01440764"] * 2 + ["n03594945"] * 2
    assert inputs.equals(imagenet.select_kernel_inputs(data, choice))
    other = imagenet.select_kernel_inputs(data, {**choice, "selection_seed": 1})
    assert list(other["obs_id"]) != list(inputs["obs_id"])
    assert set(inputs.columns) >= {"obs_id", *imagenet.INPUT_ATTRIBUTES}
    assert inputs["colour_bin"].between(0, 5).all()
    with pytest.raises(ValueError, match=r"kernel_inputs\.images_per_class: class n01440764 has "
                                         r"only 5 images"):
        imagenet.select_kernel_inputs(data, {**choice, "images_per_class": 6})


def test_a_folder_that_is_not_a_known_wnid_is_refused(settings, tmp_path):
    (tmp_path / "train/n99999999").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "train/n99999999/x.JPEG")
    with pytest.raises(ValueError, match=r"\['n99999999'\] are not ImageNet-1k classes"):
        imagenet.make_data(settings)
    (tmp_path / "train/extras").mkdir()
    with pytest.raises(ValueError, match="is not named by a wnid"):
        imagenet.make_data(settings)


def test_images_are_resized_then_centre_cropped(tmp_path):
    pixels = np.zeros((40, 80, 3), dtype=np.uint8)  # 80 wide: left half red, right half blue
    pixels[:, :40, 0] = 255
    pixels[:, 40:, 2] = 255
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    image = imagenet.load_image(tmp_path / "wide.png", 32)
    assert image.shape == (3, 32, 32) and image.dtype == np.uint8
    # shorter side 40 -> round(32·256/224) = 37, width 74; the centre crop keeps 32 of the
    # middle columns, the boundary in the middle
    assert image[0, :, :10].min() == 255 and image[2, :, :10].max() == 0
    assert image[2, :, -10:].min() == 255 and image[0, :, -10:].max() == 0


@pytest.mark.parametrize(("rgb", "hue"), [((255, 0, 0), 0.0), ((0, 255, 0), 1 / 3),
                                          ((0, 0, 255), 2 / 3), ((128, 128, 128), 0.0)])
def test_mean_hue_of_pure_colours(rgb, hue):
    image = np.broadcast_to(np.array(rgb, dtype=np.uint8)[:, None, None], (3, 4, 4))
    assert imagenet.mean_hue(image) == pytest.approx(hue)


def test_hue_is_a_circular_mean():
    image = np.zeros((3, 2, 2), dtype=np.uint8)
    image[0] = 255
    image[2, 0] = 255  # half red (hue 0), half magenta (hue 5/6): the mean is 11/12, not 5/12
    assert imagenet.mean_hue(image) == pytest.approx(11 / 12)


def test_pretrained_torchvision_weights_import_and_reproduce_torchvision(tmp_path, settings):
    torch.manual_seed(1)
    reference = googlenet(weights=None, aux_logits=True, init_weights=True,
                          transform_input=True).train(False)
    torch.save(reference.state_dict(), tmp_path / "googlenet.pth")  # torchvision's layout
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}},
               tmp_path / "ddp-checkpoint.pt")
    model_settings = {**MODEL, "source": "pretrained", "weights": str(tmp_path / "googlenet.pth"),
                      "checkpoints": [{"step": 100, "path": str(tmp_path / "ddp-checkpoint.pt")}]}
    outputs = {"model": tmp_path / "model.pt", "checkpoints": tmp_path / "checkpoints.pt"}
    import_model({"weights": model_settings["weights"],
                  "training_checkpoints": [str(tmp_path / "ddp-checkpoint.pt")]}, outputs,
                 task="imagenet", settings={"data": settings, "model": model_settings},
                 record={"rule": "t"})

    data = imagenet.make_data(settings)
    inputs = data.tensors(data.examples.head(4))
    mean, std = (torch.tensor(v)[:, None, None]
                 for v in (NormalizedClassifier.MEAN, NormalizedClassifier.STD))
    expected = reference((inputs.inputs.float() / 255 - mean) / std)
    expected_loss = cross_entropy_per_sample(expected, inputs.targets)
    for name, step in (("model", None), ("checkpoints", 100)):
        model = load_model(imagenet, "imagenet", settings, outputs[name], data, step)
        losses = evaluate_per_sample_losses(model, cross_entropy_per_sample, inputs, 2)
        torch.testing.assert_close(losses, expected_loss.detach(), rtol=1e-5, atol=1e-6)
    assert checkpoint_steps(outputs["checkpoints"]) == [100]
    saved = torch.load(outputs["model"], weights_only=False)
    assert (saved["task"], saved["data"], saved["provenance"]) == ("imagenet", settings,
                                                                  {"rule": "t"})


def test_weights_of_another_architecture_are_refused_naming_the_file(tmp_path, settings):
    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "other.pth")
    model_settings = {**MODEL, "source": "pretrained", "weights": str(tmp_path / "other.pth")}
    outputs = {"model": tmp_path / "m.pt", "checkpoints": tmp_path / "c.pt"}
    with pytest.raises(ValueError, match=r"other\.pth does not fit the task's model \(imagenet\)"):
        import_model({"weights": str(tmp_path / "other.pth"), "training_checkpoints": []},
                     outputs, task="imagenet", settings={"data": settings, "model": model_settings},
                     record={})
    assert not outputs["model"].exists() and not outputs["checkpoints"].exists()


def test_same_output_edges_are_pairs_of_one_class():
    inputs = pd.DataFrame({"label": [0, 0, 5]})
    assert imagenet.excluded_edges(inputs, "same_output").tolist() == [
        [True, True, False], [True, True, False], [False, False, True]]
    assert imagenet.excluded_edges(inputs, "none") is None


def test_config_checks_name_the_key_and_the_fix(tmp_path, settings):
    base = {"data": settings, "model": {**MODEL, "source": "pretrained",
                                        "weights": str(tmp_path / "missing.pth")}}
    with pytest.raises(ValueError, match=r"^data.root: is not set\. Set it to an ImageFolder"):
        imagenet.check_files({**base, "data": {**settings, "root": None}})
    with pytest.raises(ValueError, match=r"^model\.weights: .*missing\.pth does not exist"):
        imagenet.check_files(base)
    imagenet.check_settings(base)  # the settings themselves are fine
    trained = {**base, "model": MODEL}
    with pytest.raises(ValueError, match=r"^training: model\.source 'train' needs"):
        imagenet.check_settings(trained)


def test_torch_cache_is_the_file_torchvision_downloads_under_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected = tmp_path / "torch/hub/checkpoints/googlenet-1378be20.pth"  # torch.hub's layout
    assert imagenet.weights_path({"weights": "torch_cache"}) == expected
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert imagenet.weights_path({"weights": "torch_cache"}) == (
        tmp_path / "cache/torch/hub/checkpoints/googlenet-1378be20.pth")


def test_pretrained_names_the_weights_and_checkpoint_steps(tmp_path, monkeypatch):
    assert imagenet.pretrained(MODEL) is None  # source train: trained here
    model_settings = {**MODEL, "source": "pretrained", "weights": str(tmp_path / "w.pth"),
                      "checkpoints": [{"step": 0, "path": "a.pt"}, {"step": 500, "path": "b.pt"}]}
    assert imagenet.pretrained(model_settings) == Pretrained(
        str(tmp_path / "w.pth"), ((0, "a.pt"), (500, "b.pt")))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from_cache = imagenet.pretrained({**model_settings, "weights": "torch_cache",
                                      "checkpoints": []})
    assert from_cache == Pretrained(
        str(tmp_path / "torch/hub/checkpoints/googlenet-1378be20.pth"), ())
    assert imagenet.available_checkpoints({"model": model_settings}) == 2
    trained = {"model": MODEL, "training": {"num_checkpoints": 7, "max_steps": 1000}}
    # the distinct steps training saves: log_spaced_steps(1000, 7) = [0, 3, 15, 62, 250, 1000]
    assert imagenet.available_checkpoints(trained) == 6


def test_classes_are_the_wnid_folders_of_the_root(tmp_path):
    for name in ("n01440764", "n01443537", "n15075141", "not_a_wnid", "n123"):
        (tmp_path / name).mkdir()
    (tmp_path / "n99999999").write_text("a file, not a class")
    count, note = imagenet.count_classes(str(tmp_path))
    assert count == 3 and note == f"3 wnid folders under {tmp_path}"
    count, note = imagenet.count_classes(str(tmp_path / "missing"))
    assert count == 1000 and "assuming 1000" in note
    assert imagenet.count_classes(None)[0] == 1000
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"^data\.root: .*empty holds no wnid folders"):
        imagenet.count_classes(str(tmp_path / "empty"))


def test_kernel_inputs_are_counted_from_the_folders_without_reading_images(settings):
    count, note = imagenet.count_kernel_inputs(
        {"data": settings, "kernel_inputs": {"images_per_class": 2}})
    assert count == 2 * 3  # 3 classes of the fake tree
    assert note.startswith("2 images per class; 3 wnid folders")
    missing = {**settings, "root": None}
    assert imagenet.count_kernel_inputs(
        {"data": missing, "kernel_inputs": {"images_per_class": 10}})[0] == 10_000


def test_timing_example_is_seeded_uint8_images_of_the_configured_size():
    settings = {"data": {"image_size": 32}, "model": MODEL}
    model, images, labels = imagenet.timing_example(settings, 3)
    assert images.shape == (3, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.shape == (3,) and labels.dtype == torch.int64
    assert 0 <= int(labels.min()) and int(labels.max()) < imagenet.NUM_CLASSES
    assert images.float().std() > 50  # random pixels, not a constant image
    _, again, again_labels = imagenet.timing_example(settings, 3)
    assert torch.equal(images, again) and torch.equal(labels, again_labels)
    assert isinstance(model, NormalizedClassifier)
    with torch.no_grad():
        assert model.train(False)(images).shape == (3, imagenet.NUM_CLASSES)
