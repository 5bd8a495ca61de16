"""Known answers of the job-sizing plan, built from configs through ``losskernel.plan``; the
measurements run on tiny batches and assert no times beyond being positive."""

import copy
from pathlib import Path

import pandas as pd
import pytest

from losskernel import costs
from losskernel.config import load_config
from losskernel.method.sgld import SGLDConfig
from losskernel.plan import Plan

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
GIGA = 1e9
TRAINING = {"learning_rate": 1e-3, "weight_decay": 0.0, "betas": [0.9, 0.999], "max_steps": 1000,
            "batch_size": 32, "patience_steps": 0, "eval_every": 100, "num_checkpoints": 10}


def imagenet_config(**analysis) -> dict:
    """The ImageNet config made small: 2 seeds, γ = 100, 3 images per class, no γ sweep unless
    given; ``analysis`` keys are laid over the file's."""
    config = load_config([ROOT / "config/config.yaml", ROOT / "config/imagenet.yaml"])
    settings = config["experiments"]["imagenet"]
    settings["kernel_inputs"]["images_per_class"] = 3
    settings["sampling"].update(seeds=[0, 1], localization=100, num_chains=4,
                                num_burnin_steps=10, num_draws=50, num_steps_between_draws=2,
                                batch_size=8, eval_batch_size=16)
    del settings["analysis"]["gamma_sweep"]
    settings["analysis"].update(analysis)
    config["experiments"] = {"imagenet": settings}
    return config


def experiment_of(config: dict, name: str = "imagenet"):
    return Plan.from_config(config, SCHEMA, check_files=False).experiment(name)


def imagenet(**analysis):
    return experiment_of(imagenet_config(**analysis))


def with_checkpoints(config: dict, count: int) -> dict:
    """A pretrained model with ``count`` training checkpoints (the files need not exist)."""
    config["experiments"]["imagenet"]["model"]["checkpoints"] = [
        {"step": step, "path": f"/nonexistent/step{step}.pt"} for step in range(count)]
    return config


def sweep(*gammas: float, seed: int = 0) -> dict:
    return {"localizations": list(gammas), "seed": seed, "knn_k": 10,
            "attributes": ["colour_bin"]}


def input_costs(**changes) -> costs.InputCosts:
    values = dict(input_shape=(3, 224, 224), train_batch=8, eval_batch=16,
                  train_seconds_per_input=0.1, eval_seconds_per_input=0.04,
                  train_flops_per_input=9e9, eval_flops_per_input=3e9, device="cpu", threads=2,
                  host="test", torch_version="x", repeats=3)
    return costs.InputCosts(**{**values, **changes})


def test_main_runs_have_the_known_counts():
    plan = costs.plan_jobs(imagenet(), num_inputs=15)
    assert list(plan["run"]) == ["seed0", "seed1"]  # pretrained: no train row
    seed0 = plan.iloc[0]
    # 10 burn-in steps + 50 draws × 2 steps = 110 steps per chain, 4 chains; N = 15
    assert seed0["rule"] == "sample_chain"
    assert seed0["steps_per_chain"] == 110
    assert seed0["sgld_steps"] == 440
    assert seed0["draws"] == 200
    assert seed0["batch_size"] == 8
    assert seed0["train_inputs"] == 440 * 8
    assert seed0["eval_inputs"] == 200 * 15
    sgld = SGLDConfig(step_size=1e-5, nbeta=100, localization=100, num_burnin_steps=10,
                      num_draws=50, num_steps_between_draws=2)
    assert seed0["steps_per_chain"] == sgld.num_steps


def test_gamma_equal_to_the_localization_reuses_the_main_run():
    plan = costs.plan_jobs(imagenet(gamma_sweep=sweep(10, 100, 1000)), num_inputs=15)
    assert list(plan["run"]) == ["seed0", "seed1", "gamma10", "gamma1000", "gamma100-seed3"]


def test_gamma_sweep_on_an_unsampled_seed_runs_every_gamma():
    plan = costs.plan_jobs(imagenet(gamma_sweep=sweep(10, 100, 1000, seed=7)), num_inputs=15)
    assert list(plan["run"]) == ["seed0", "seed1", "gamma10", "gamma100", "gamma1000",
                                 "gamma100-seed10"]
    assert plan.set_index("run").loc["gamma100", "sgld_steps"] == 440


def test_trajectory_runs_take_their_sampling_overrides():
    trajectory = {"num_checkpoints": 3, "seed": 0, "sampling": {"num_draws": 5, "num_chains": 2}}
    config = with_checkpoints(imagenet_config(trajectory=trajectory), 3)
    config["experiments"]["imagenet"]["analysis"]["diagnostics"] = {"batches": 2}  # 5 draws
    experiment = experiment_of(config)
    runs = costs.plan_jobs(experiment, num_inputs=15).set_index("run")
    assert list(runs.index) == ["seed0", "seed1", "checkpoint0", "checkpoint1", "checkpoint2"]
    assert runs.loc["checkpoint1", "chains"] == 2
    assert runs.loc["checkpoint1", "steps_per_chain"] == 10 + 5 * 2
    assert runs.loc["checkpoint1", "draws"] == 10
    assert runs.loc["checkpoint1", "eval_inputs"] == 10 * 15
    assert runs.loc["seed0", "draws"] == 200  # the main runs keep their settings


def test_training_row_only_when_the_model_is_trained_here():
    config = imagenet_config()
    settings = config["experiments"]["imagenet"]
    settings["model"]["source"] = "train"
    settings["training"] = TRAINING
    plan = costs.plan_jobs(experiment_of(config), num_inputs=15)
    assert list(plan["run"]) == ["train", "seed0", "seed1"]
    train = plan.set_index("run").loc["train"]
    assert train["rule"] == "train_model"
    assert train["training_steps"] == 1000
    assert train["batch_size"] == 32
    assert train["train_inputs"] == 1000 * 32
    assert train["eval_inputs"] == 0 and train["sgld_steps"] == 0 and train["chains"] == 0
    # a variant sampling around that model: the other experiment trains it
    config["experiments"]["variant"] = {"based_on": "imagenet", "model_from": "imagenet"}
    variant = experiment_of(config, "variant")
    assert variant.model_source == "imagenet"
    assert "train" not in set(costs.plan_jobs(variant, num_inputs=15)["run"])


def test_full_batch_training_is_reported_unknown_not_guessed():
    """modarith trains on the full training set (training.batch_size null): the train row has
    no batch, unknown inputs, and the report says the totals leave it out."""
    config = load_config([ROOT / "config/config.yaml"])
    experiment = experiment_of(config, "modarith")
    plan = costs.plan_jobs(experiment, num_inputs=1000)
    train = plan.set_index("run").loc["train"]
    assert train["training_steps"] == 15000
    assert pd.isna(train["batch_size"]) and pd.isna(train["train_inputs"])
    estimate = costs.estimate_hours(plan, input_costs(), 10.0)
    sampled = estimate[estimate["rule"] == "sample_chain"]
    total = estimate.set_index("run").loc["total"]
    assert total["train_inputs"] == sampled["train_inputs"].sum()
    assert total["gpu_hours"] == pytest.approx(sampled["gpu_hours"].sum())
    report = costs.format_plan(estimate, input_costs(), experiment="modarith", num_inputs=1000,
                               inputs_note="given")
    assert "NOT COUNTED: run train (train_model) uses the full training set" in report
    train_job = next(line for line in report.splitlines()
                     if line.lstrip().startswith("train_model"))
    assert "nan" not in train_job and train_job.endswith("? h here  runtime=?")


def test_paper_scale_totals_by_hand():
    """10 × 1000 images, 1 seed, 4 chains, 100 + 2000 steps, a 5-γ sweep holding the main γ,
    6 checkpoints at 200 draws."""
    trajectory = {"num_checkpoints": 6, "seed": 0, "sampling": {"num_draws": 200}}
    config = with_checkpoints(imagenet_config(gamma_sweep=sweep(30, 100, 300, 1000, 3000),
                                              trajectory=trajectory), 6)
    settings = config["experiments"]["imagenet"]
    settings["kernel_inputs"]["images_per_class"] = 10
    settings["sampling"].update(seeds=[0], num_burnin_steps=100, num_draws=2000,
                                num_steps_between_draws=1, batch_size=64)
    experiment = experiment_of(config)
    original = copy.deepcopy(dict(experiment.settings))
    num_inputs, note = experiment.task.count_kernel_inputs(experiment.settings)
    assert num_inputs == 10_000 and "assuming 1000 classes" in note  # data.root is not set
    plan = costs.plan_jobs(experiment, num_inputs)
    estimate = costs.estimate_hours(plan, input_costs(), 10.0)
    assert dict(experiment.settings) == original
    assert len(estimate) == 1 + 4 + 1 + 6 + 1  # seed0, 4 γ runs, replica, 6 checkpoints, total
    total = estimate.set_index("run").loc["total"]
    assert total["sgld_steps"] == 6 * 4 * 2100 + 6 * 4 * 300
    assert total["draws"] == 6 * 4 * 2000 + 6 * 4 * 200
    assert total["train_inputs"] == (6 * 4 * 2100 + 6 * 4 * 300) * 64
    assert total["eval_inputs"] == (6 * 4 * 2000 + 6 * 4 * 200) * 10_000


def test_estimate_hours_arithmetic():
    plan = costs.plan_jobs(imagenet(), num_inputs=15)
    before = plan.copy()
    estimate = costs.estimate_hours(plan, input_costs(), gpu_tflops=2.0).set_index("run")
    pd.testing.assert_frame_equal(plan, before)
    seed0 = estimate.loc["seed0"]
    # 3520 fwd+bwd inputs, 3000 forward inputs
    assert seed0["flops"] == pytest.approx(3520 * 9e9 + 3000 * 3e9)
    assert seed0["hours_here"] == pytest.approx((3520 * 0.1 + 3000 * 0.04) / 3600)
    assert seed0["gpu_hours"] == pytest.approx((3520 * 9e9 + 3000 * 3e9) / 2e12 / 3600)
    assert estimate.loc["total", "gpu_hours"] == pytest.approx(2 * seed0["gpu_hours"])
    assert estimate.loc["total", "eval_inputs"] == 6000
    assert pd.isna(estimate.loc["total", "batch_size"])
    with pytest.raises(ValueError, match="gpu_tflops"):
        costs.estimate_hours(plan, input_costs(), gpu_tflops=0)


def test_report_names_every_job_and_the_assumption():
    plan = costs.plan_jobs(imagenet(gamma_sweep=sweep(10, 100)), num_inputs=15)
    estimate = costs.estimate_hours(plan, input_costs(), 10.0)
    report = costs.format_plan(estimate, input_costs(), experiment="imagenet", num_inputs=15,
                               inputs_note="5 classes")
    jobs = [line for line in report.splitlines() if "runtime=" in line]
    assert [line.split("run=")[1].split()[0] for line in jobs] == [
        "seed0", "seed1", "gamma10", "gamma100-seed2"]
    assert all("sample_chain" in line and "chain=0..3" in line for line in jobs)
    assert "N kernel inputs: 15 (5 classes)" in report
    assert "ASSUMPTION: 10 TFLOP/s" in report
    assert "measured on test (cpu, 2 torch threads" in report
    assert "shape (3, 224, 224)" in report
    assert "GoogLeNet" not in report  # the report is generic


def test_googlenet_forward_flops_match_torchvision_at_224_px():
    """FlopCounterMode counts 2 FLOPs per multiply-add; torchvision's ``_ops`` for GoogLeNet is
    1.498 G multiply-adds, so the forward pass is ≈3.0 GFLOPs per image."""
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).eval()
    images, labels = torch.randn(2, 3, 224, 224), torch.tensor([3, 7])
    forward, forward_backward = costs.count_flops_per_input(model, images, labels)
    multiply_adds = torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1.meta["_ops"] * GIGA
    assert multiply_adds == pytest.approx(1.498e9)
    assert forward / 2 == pytest.approx(multiply_adds, rel=0.02)
    assert 2.5 * forward < forward_backward < 3 * forward  # no input gradient at the first conv


def test_measurement_of_a_tiny_model_is_complete():
    """A 12-16-3 MLP: forward 2·(12·16 + 16·3) = 480 FLOPs per input; backward adds the weight
    gradients of both layers (480) and the input gradient of the second only (2·16·3 = 96)."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 3))
    state = copy.deepcopy(model.state_dict())
    inputs, targets = torch.randn(5, 3, 4), torch.tensor([0, 1, 2, 0, 1])
    threads = torch.get_num_threads()
    measured = costs.measure_input_costs(model, inputs, targets, train_batch=8, eval_batch=3,
                                         threads=1, repeats=1)
    assert torch.get_num_threads() == threads
    assert model.training  # measured on a copy in eval mode; the model is untouched
    assert all(torch.equal(state[key], value) for key, value in model.state_dict().items())
    assert measured.train_seconds_per_input > 0 and measured.eval_seconds_per_input > 0
    assert (measured.eval_flops_per_input, measured.train_flops_per_input) == (480, 1056)
    assert (measured.input_shape, measured.train_batch, measured.eval_batch) == ((3, 4), 8, 3)
    assert (measured.threads, measured.device, measured.repeats) == (1, "cpu", 1)
    assert measured.torch_version == torch.__version__
    assert "shape (3, 4), train batch 8, eval batch 3, median of 1" in measured.provenance()
    with pytest.raises(ValueError, match="train_batch must be >= 1, got 0"):
        costs.measure_input_costs(model, inputs, targets, train_batch=0, eval_batch=3,
                                  threads=1)


def test_report_caps_the_measured_batches_on_cpu(monkeypatch):
    measured = []

    def fake_measure(model, inputs, targets, *, train_batch, eval_batch, threads, device,
                     repeats):
        measured.append((len(inputs), train_batch, eval_batch, threads))
        return input_costs(train_batch=train_batch, eval_batch=eval_batch)

    config = imagenet_config()
    config["experiments"]["imagenet"]["sampling"].update(batch_size=256, eval_batch_size=500)
    experiment = experiment_of(config)
    monkeypatch.setattr(costs, "measure_input_costs", fake_measure)
    report = costs.plan_report(experiment, threads=2)
    costs.plan_report(experiment, num_inputs=20, train_batch=100)
    assert measured == [(64, 64, 64, 2), (100, 100, 64, 1)]
    assert "N kernel inputs: 3,000" in report  # 3 per class × 1000 assumed classes
    assert "assuming 1000 classes" in report
    assert "train batch 64, eval batch 64" in report


def test_digits_experiment_gets_a_full_report():
    """The default config's digits experiment, end to end: N from the data (1347 training
    images), the task's own model timed, 2 seeds + 5 γ + 5 checkpoints + training (model 0's
    jobs: the replicates are sized on their own)."""
    experiment = experiment_of(load_config([ROOT / "config/config.yaml"]), "digits")
    report = costs.plan_report(experiment, threads=1, repeats=1, train_batch=4, eval_batch=8)
    assert "N kernel inputs: 1,347 (counted from the data)" in report
    assert "shape (1, 8, 8)" in report
    jobs = [line.split() for line in report.splitlines() if "runtime=" in line]
    assert [(job[0], job[2]) for job in jobs] == [
        ("train_model", "run=train"),
        *(("sample_chain", f"run={run}") for run in (
            "seed0", "seed1", "gamma10", "gamma30", "gamma100", "gamma300", "gamma1000",
            "gamma100-seed5", *(f"checkpoint{i}" for i in range(5))))]
    assert all(job[-1] != "runtime=?" for job in jobs)
    assert "sampling runs: 13, chains: 30" in report
    assert "training steps: 6,000" in report
    assert "NOT COUNTED" not in report
