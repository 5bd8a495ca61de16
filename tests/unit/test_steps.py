import pytest

from losskernel import steps, traces

DATA = {"modulus": 11, "operations": ["add", "div"], "train_fraction": 0.8, "split_seed": 0}
MODEL = {"architecture": "mlp", "disjoint_by_task": False, "d_model": 4, "num_heads": 1,
         "d_mlp": 8, "embed_std": 0.3, "init_seed": 0}
TRAINING = {"learning_rate": 1e-2, "weight_decay": 0.0, "betas": [0.9, 0.98], "max_steps": 5,
            "target_test_accuracy": 0.99, "patience_steps": 0, "eval_every": 5,
            "num_checkpoints": 3}
SAMPLING = {"step_size": 1e-3, "nbeta": 10.0, "localization": 100.0, "num_chains": 2,
            "num_burnin_steps": 2, "num_draws": 4, "num_steps_between_draws": 1,
            "batch_size": 16, "stratify_by_task": True, "eval_batch_size": 8,
            "preconditioner": "identity"}
INPUTS = {"split": "train", "per_task": 5, "seed": 0}


@pytest.fixture
def trained(tmp_path):
    steps.train("modular_arithmetic", DATA, MODEL, TRAINING, model_path=tmp_path / "model.pt",
                checkpoints_path=tmp_path / "checkpoints.pt",
                history_path=tmp_path / "training.tsv", record={"rule": "test"},
                progress=False)
    return tmp_path / "model.pt"


def test_train_then_sample_writes_traces_of_the_kernel_inputs(trained, tmp_path):
    steps.sample("modular_arithmetic", DATA, INPUTS, SAMPLING, 3, model_path=trained,
                 traces_path=tmp_path / "traces.nc", record={"rule": "test", "seed": 3},
                 progress=False)
    dataset = traces.load_traces(tmp_path / "traces.nc")
    assert dict(dataset["loss"].sizes) == {"chain": 2, "draw": 4, "obs_id": 10}
    assert sorted(set(dataset["task"].values)) == ["add", "div"]
    assert dataset.attrs["sgld_seed"] == 3 and dataset.attrs["rule"] == "test"


def test_sampling_refuses_a_model_trained_on_other_data(trained, tmp_path):
    with pytest.raises(ValueError, match="was trained on data"):
        steps.sample("modular_arithmetic", {**DATA, "split_seed": 1}, INPUTS, SAMPLING, 0,
                     model_path=trained, traces_path=tmp_path / "traces.nc", record={},
                     progress=False)
    assert not (tmp_path / "traces.nc").exists()


def test_a_job_with_two_threads_runs_two_chains_side_by_side_with_the_same_traces(
        trained, tmp_path, monkeypatch):
    import numpy as np
    import torch

    from losskernel import sgld

    chains_at_once = []

    def spy(*args, **kwargs):
        chains_at_once.append((kwargs["parallel_chains"], torch.get_num_threads()))
        return original(*args, **kwargs)

    original = sgld.sample_chains
    monkeypatch.setattr(sgld, "sample_chains", spy)
    threads = torch.get_num_threads()
    paths = {n: tmp_path / f"traces-{n}-threads.nc" for n in (1, 2)}
    try:
        for n, path in paths.items():
            steps.sample("modular_arithmetic", DATA, INPUTS, SAMPLING, 3, model_path=trained,
                         traces_path=path, record={}, progress=False, threads=n)
            assert torch.get_num_threads() == n  # the job's threads, restored after sampling
    finally:
        torch.set_num_threads(threads)
    assert chains_at_once == [(1, 1), (2, 1)]  # (chains at once, torch threads of each)
    one, two = (traces.load_traces(path) for path in paths.values())
    # one thread per chain either way: identical rounding, identical traces
    np.testing.assert_array_equal(one["loss"].values, two["loss"].values)
