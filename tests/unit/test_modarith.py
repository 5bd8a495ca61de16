import numpy as np
import pytest
import torch

from losskernel.experiments import modarith

SETTINGS = {"modulus": 53, "operations": ["add", "div"], "train_fraction": 0.8, "split_seed": 0}


def test_every_example_is_present_and_correct():
    examples = modarith.make_examples(53, ["add", "div"])
    assert (examples["task"] == "add").sum() == 53 * 53
    assert (examples["task"] == "div").sum() == 53 * 52  # b != 0
    add = examples[examples["task"] == "add"]
    assert ((add["a"] + add["b"]) % 53 == add["label"]).all()
    div = examples[examples["task"] == "div"]
    assert ((div["label"] * div["b"]) % 53 == div["a"]).all()  # c · b = a
    assert examples["obs_id"].is_unique


def test_split_and_kernel_inputs_are_seeded_and_balanced():
    data = modarith.make_data(SETTINGS)
    assert (data.examples["split"] == "train").sum() == round(0.8 * len(data.examples))
    again = modarith.make_data(SETTINGS)
    assert data.examples.equals(again.examples)
    inputs = modarith.select_kernel_inputs(data, {"split": "train", "per_task": 500, "seed": 0})
    assert inputs["task"].value_counts().to_dict() == {"add": 500, "div": 500}
    assert (inputs["split"] == "train").all()


def test_models_produce_logits_over_the_outputs():
    data = modarith.make_data(SETTINGS)
    batch = data.tensors(data.examples.head(7))
    for architecture in ("transformer", "mlp"):
        settings = {"architecture": architecture, "disjoint_by_task": False, "d_model": 32,
                    "num_heads": 4, "d_mlp": 128, "embed_std": 0.3, "init_seed": 0}
        assert modarith.build_model(settings, data)(batch.inputs).shape == (7, 53)


def test_transformer_has_the_designed_size():
    data = modarith.make_data(SETTINGS)
    settings = {"architecture": "transformer", "disjoint_by_task": False, "d_model": 32,
                "num_heads": 4, "d_mlp": 128, "embed_std": 0.3, "init_seed": 0}
    model = modarith.build_model(settings, data)
    assert sum(p.numel() for p in model.parameters()) == 16053  # DESIGN §2.1: about 16k
    disjoint = modarith.build_model({**settings, "disjoint_by_task": True}, data)
    assert sum(p.numel() for p in disjoint.parameters()) == 2 * 16053


def test_edge_rules():
    inputs = modarith.make_examples(5, ["add"]).iloc[[0, 1, 6]]  # (0,0)->0, (0,1)->1, (1,1)->2
    assert modarith.excluded_edges(inputs, "none") is None
    same_output = modarith.excluded_edges(inputs, "same_output")
    np.testing.assert_array_equal(same_output, np.eye(3, dtype=bool))
    shared = modarith.excluded_edges(inputs, "shared_token")
    assert shared[0, 1] and shared[1, 2] and not shared[0, 2]


def test_settings_checks_name_the_key():
    settings = {"data": {**SETTINGS, "modulus": 12}, "model": {"architecture": "mlp"},
                "kernel_inputs": {}, "sampling": {}}
    with pytest.raises(ValueError, match=r"^data.modulus: 12 is not prime"):
        modarith.check_settings(settings)
    settings = {"data": SETTINGS, "model": {"architecture": "transformer", "d_model": 30,
                                            "num_heads": 4},
                "kernel_inputs": {"split": "train", "per_task": 10}, "sampling": {}}
    with pytest.raises(ValueError, match=r"^model.num_heads"):
        modarith.check_settings(settings)


def test_accuracy_by_task_reports_each_split_and_task():
    data = modarith.make_data(SETTINGS)
    settings = {"architecture": "mlp", "disjoint_by_task": False, "d_model": 8, "num_heads": 1,
                "d_mlp": 16, "embed_std": 0.1, "init_seed": 0}
    with torch.no_grad():
        metrics = modarith.accuracy_by_task(modarith.build_model(settings, data), data)
    assert set(metrics) == {f"{s}_accuracy{t}" for s in ("train", "test")
                            for t in ("", "_add", "_div")}
    assert not modarith.is_converged(metrics, {"target_test_accuracy": 0.99})
