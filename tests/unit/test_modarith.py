import numpy as np
import pytest
import torch

from losskernel.tasks import modarith

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


def experiment(**changes):
    """Settings of a small, valid experiment; ``changes`` replace keys of its sections."""
    base = {"data": dict(SETTINGS), "model": {"architecture": "mlp"},
            "kernel_inputs": {"split": "train", "per_task": 10}, "sampling": {"batch_size": 64},
            "analysis": {"knn_k": 5}}
    return {section: {**values, **changes.get(section, {})} for section, values in base.items()}


def test_small_settings_pass_the_checks():
    modarith.check_settings(experiment())
    modarith.check_settings(experiment(model={"architecture": "transformer", "d_model": 32,
                                              "num_heads": 4}))


def test_settings_checks_name_the_key():
    with pytest.raises(ValueError, match=r"^data.modulus: 12 is not prime"):
        modarith.check_settings(experiment(data={"modulus": 12}))
    with pytest.raises(ValueError, match=r"^model.num_heads"):
        modarith.check_settings(experiment(model={"architecture": "transformer", "d_model": 30,
                                                  "num_heads": 4}))


def test_kernel_inputs_and_batch_size_must_fit_the_smallest_task():
    # p = 53, 80 % train: 2809 add and 2756 div examples, the split leaves each about 0.8 of them
    test_div = int((modarith.make_data(SETTINGS).split("test")["task"] == "div").sum())
    with pytest.raises(ValueError, match=rf"^kernel_inputs.per_task: {test_div + 1} exceeds the "
                                         rf"{test_div} examples"):
        modarith.check_settings(experiment(kernel_inputs={"split": "test",
                                                          "per_task": test_div + 1}))
    modarith.check_settings(experiment(kernel_inputs={"split": "test", "per_task": test_div}))
    train = modarith.make_data(SETTINGS).split("train")["task"].value_counts().min()
    with pytest.raises(ValueError, match=r"^sampling.batch_size: "):
        modarith.check_settings(experiment(sampling={"batch_size": 2 * train + 2}))
    modarith.check_settings(experiment(sampling={"batch_size": 2 * train}))


def test_knn_k_must_be_below_the_number_of_kernel_inputs():
    # 10 per task, two tasks: 20 kernel inputs, so k = 19 is the largest
    modarith.check_settings(experiment(analysis={"knn_k": 19}))
    with pytest.raises(ValueError, match=r"^analysis.knn_k: 20 must be smaller than the 20 "
                                         r"kernel inputs"):
        modarith.check_settings(experiment(analysis={"knn_k": 20}))


def test_evaluate_reports_the_accuracy_of_each_split_and_task():
    data = modarith.make_data(SETTINGS)
    settings = {"architecture": "mlp", "disjoint_by_task": False, "d_model": 8, "num_heads": 1,
                "d_mlp": 16, "embed_std": 0.1, "init_seed": 0}
    with torch.no_grad():
        metrics = modarith.evaluate(modarith.build_model(settings, data), data)
    assert set(metrics) == {f"{s}_accuracy{t}" for s in ("train", "test")
                            for t in ("", "_add", "_div")}
    assert not modarith.is_converged(metrics, {"target_test_accuracy": 0.99})
