"""Known answers of the job-sizing plan; the one measurement runs at 32 px and asserts no times."""

import copy
from pathlib import Path

import pandas as pd
import pytest

from losskernel import cli, planning
from losskernel.config import ConfigError
from losskernel.sgld import SGLDConfig

ROOT = Path(__file__).resolve().parents[2]

GIGA = 1e9


def imagenet_settings(**analysis) -> dict:
    """A small ImageNet-shaped experiment: 2 seeds, γ = 100, 3 images per class."""
    return {
        "task": "imagenet",
        "data": {"root": "/nonexistent/imagenet/train", "image_size": 224},
        "model": {"architecture": "googlenet", "source": "pretrained"},
        "training": {"max_steps": 1000, "batch_size": 32},
        "kernel_inputs": {"images_per_class": 3, "selection_seed": 0},
        "sampling": {"seeds": [0, 1], "step_size": 1e-5, "nbeta": 100, "localization": 100,
                     "num_chains": 4, "num_burnin_steps": 10, "num_draws": 50,
                     "num_steps_between_draws": 2, "batch_size": 8, "eval_batch_size": 16},
        "analysis": {"figure_seed": 0, **analysis},
    }


def costs(**changes) -> planning.ImageCosts:
    values = dict(image_size=224, train_batch=8, eval_batch=16, train_seconds_per_image=0.1,
                  eval_seconds_per_image=0.04, train_flops_per_image=9e9,
                  eval_flops_per_image=3e9, device="cpu", threads=2, host="test",
                  torch_version="x", repeats=3)
    return planning.ImageCosts(**{**values, **changes})


def test_main_runs_have_the_known_counts():
    plan = planning.plan_sampling(imagenet_settings(), num_classes=5)
    assert list(plan["run"]) == ["seed0", "seed1"]
    seed0 = plan.iloc[0]
    # 10 burn-in steps + 50 draws × 2 steps = 110 steps per chain, 4 chains; N = 3 × 5 = 15
    assert seed0["steps_per_chain"] == 110
    assert seed0["sgld_steps"] == 440
    assert seed0["draws"] == 200
    assert seed0["train_images"] == 440 * 8
    assert seed0["eval_images"] == 200 * 15
    sgld = SGLDConfig(step_size=1e-5, nbeta=100, localization=100, num_burnin_steps=10,
                      num_draws=50, num_steps_between_draws=2)
    assert seed0["steps_per_chain"] == sgld.num_steps


def test_gamma_equal_to_the_localization_reuses_the_main_run():
    sweep = {"localizations": [10, 100, 1000], "seed": 0}
    plan = planning.plan_sampling(imagenet_settings(gamma_sweep=sweep), num_classes=5)
    assert list(plan["run"]) == ["seed0", "seed1", "gamma10", "gamma1000"]


def test_gamma_sweep_on_an_unsampled_seed_runs_every_gamma():
    sweep = {"localizations": [10, 100, 1000], "seed": 7}
    plan = planning.plan_sampling(imagenet_settings(gamma_sweep=sweep), num_classes=5)
    assert list(plan["run"]) == ["seed0", "seed1", "gamma10", "gamma100", "gamma1000"]
    assert plan.set_index("run").loc["gamma100", "sgld_steps"] == 440


def test_trajectory_runs_take_their_sampling_overrides():
    trajectory = {"num_checkpoints": 3, "seed": 0, "sampling": {"num_draws": 5, "num_chains": 2}}
    plan = planning.plan_sampling(imagenet_settings(trajectory=trajectory), num_classes=5)
    runs = plan.set_index("run")
    assert list(runs.index[2:]) == ["checkpoint0", "checkpoint1", "checkpoint2"]
    assert runs.loc["checkpoint1", "chains"] == 2
    assert runs.loc["checkpoint1", "steps_per_chain"] == 10 + 5 * 2
    assert runs.loc["checkpoint1", "draws"] == 10
    assert runs.loc["checkpoint1", "eval_images"] == 10 * 15
    assert runs.loc["seed0", "draws"] == 200  # the main runs keep their settings


def test_training_row_only_when_the_model_is_trained_here():
    settings = imagenet_settings()
    settings["model"]["source"] = "train"
    plan = planning.plan_sampling(settings, num_classes=5)
    train = plan.set_index("run").loc["train"]
    assert train["rule"] == "train_model"
    assert train["training_steps"] == 1000
    assert train["train_images"] == 1000 * 32
    assert train["eval_images"] == 0 and train["sgld_steps"] == 0
    settings["model_from"] = "another"  # that experiment trains the model
    assert "train" not in set(planning.plan_sampling(settings, num_classes=5)["run"])


def test_paper_scale_totals_by_hand():
    """10 × 1000 images, 1 seed, 4 chains, 100 + 2000 steps, a 5-γ sweep holding the main γ,
    6 checkpoints at 200 draws."""
    settings = imagenet_settings(
        gamma_sweep={"localizations": [30, 100, 300, 1000, 3000], "seed": 0},
        trajectory={"num_checkpoints": 6, "seed": 0, "sampling": {"num_draws": 200}})
    settings["kernel_inputs"]["images_per_class"] = 10
    settings["sampling"].update(seeds=[0], num_burnin_steps=100, num_draws=2000,
                                num_steps_between_draws=1, batch_size=64)
    original = copy.deepcopy(settings)
    estimate = planning.estimate_hours(planning.plan_sampling(settings, 1000), costs(), 10.0)
    assert settings == original
    assert len(estimate) == 1 + 4 + 6 + 1  # seed0, 4 γ runs, 6 checkpoints, total
    total = estimate.set_index("run").loc["total"]
    assert total["sgld_steps"] == 5 * 4 * 2100 + 6 * 4 * 300
    assert total["draws"] == 5 * 4 * 2000 + 6 * 4 * 200
    assert total["train_images"] == (5 * 4 * 2100 + 6 * 4 * 300) * 64
    assert total["eval_images"] == (5 * 4 * 2000 + 6 * 4 * 200) * 10_000


def test_estimate_hours_arithmetic():
    plan = planning.plan_sampling(imagenet_settings(), num_classes=5)
    estimate = planning.estimate_hours(plan, costs(), gpu_tflops=2.0).set_index("run")
    seed0 = estimate.loc["seed0"]
    # 3520 fwd+bwd images, 3000 forward images
    assert seed0["flops"] == pytest.approx(3520 * 9e9 + 3000 * 3e9)
    assert seed0["hours_here"] == pytest.approx((3520 * 0.1 + 3000 * 0.04) / 3600)
    assert seed0["gpu_hours"] == pytest.approx((3520 * 9e9 + 3000 * 3e9) / 2e12 / 3600)
    assert estimate.loc["total", "gpu_hours"] == pytest.approx(2 * seed0["gpu_hours"])
    assert estimate.loc["total", "eval_images"] == 6000
    assert pd.isna(estimate.loc["total", "batch_size"])
    with pytest.raises(ValueError, match="gpu_tflops"):
        planning.estimate_hours(plan, costs(), gpu_tflops=0)


def test_report_names_every_job_and_the_assumption():
    settings = imagenet_settings(gamma_sweep={"localizations": [10, 100], "seed": 0})
    estimate = planning.estimate_hours(planning.plan_sampling(settings, 5), costs(), 10.0)
    report = planning.format_plan(estimate, costs(), experiment="imagenet",
                                  num_kernel_images=15, classes_note="5 classes")
    jobs = [line for line in report.splitlines() if "runtime=" in line]
    assert [line.split("run=")[1].split()[0] for line in jobs] == ["seed0", "seed1", "gamma10"]
    assert "ASSUMPTION: 10 TFLOP/s" in report
    assert "measured on test (cpu, 2 torch threads" in report


def test_googlenet_forward_flops_match_torchvision_at_224_px():
    """FlopCounterMode counts 2 FLOPs per multiply-add; torchvision's ``_ops`` for GoogLeNet is
    1.498 G multiply-adds, so the forward pass is ≈3.0 GFLOPs."""
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).eval()
    forward, forward_backward = planning.count_flops_per_image(model, 224)
    multiply_adds = torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1.meta["_ops"] * GIGA
    assert multiply_adds == pytest.approx(1.498e9)
    assert forward / 2 == pytest.approx(multiply_adds, rel=0.02)
    assert 2.5 * forward < forward_backward < 3 * forward  # no input gradient at the first conv


def test_measurement_at_a_tiny_size_is_complete():
    import torch

    threads = torch.get_num_threads()
    measured = planning.measure_image_costs(32, train_batch=2, eval_batch=2, threads=1, repeats=1)
    assert torch.get_num_threads() == threads
    assert measured.train_seconds_per_image > 0 and measured.eval_seconds_per_image > 0
    assert 0 < measured.eval_flops_per_image < measured.train_flops_per_image < 3 * 3e9
    assert (measured.image_size, measured.threads, measured.device) == (32, 1, "cpu")
    assert measured.torch_version == torch.__version__


def test_classes_are_the_wnid_folders_of_the_root(tmp_path):
    for name in ("n01440764", "n01443537", "n15075141", "not_a_wnid", "n123"):
        (tmp_path / name).mkdir()
    (tmp_path / "n99999999").write_text("a file, not a class")
    assert planning.count_classes(tmp_path)[0] == 3
    count, note = planning.count_classes(tmp_path / "missing")
    assert count == 1000 and "assuming 1000" in note
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no wnid directories"):
        planning.count_classes(tmp_path / "empty")


def test_missing_sampling_key_is_named():
    settings = imagenet_settings()
    del settings["sampling"]["num_burnin_steps"]
    with pytest.raises(ConfigError, match=r"sampling\.num_burnin_steps"):
        planning.plan_sampling(settings, num_classes=5)


def test_plan_command_line_parses():
    args = cli.build_parser().parse_args(
        ["plan", "--config", "config/config.yaml", "config/imagenet.yaml",
         "--experiment", "imagenet", "--gpu-tflops", "15", "--threads", "2", "--classes", "10"])
    assert args.step == "plan"
    assert args.config == ["config/config.yaml", "config/imagenet.yaml"]
    assert (args.experiment, args.gpu_tflops, args.threads, args.classes) == (
        "imagenet", 15.0, 2, 10)
    assert args.device == "cpu" and args.repeats == 3
    defaults = cli.build_parser().parse_args(["plan", "--experiment", "imagenet"])
    assert defaults.gpu_tflops is None and defaults.classes is None


def test_plan_command_prints_the_report(monkeypatch, capsys):
    measured = {}

    def fake_measure(image_size, train_batch, eval_batch, threads, device, repeats):
        measured.update(image_size=image_size, train_batch=train_batch, eval_batch=eval_batch,
                        threads=threads)
        return costs(train_batch=train_batch, eval_batch=eval_batch)

    monkeypatch.setattr(cli, "_experiment", lambda args, check_files=True: imagenet_settings())
    monkeypatch.setattr(planning, "measure_image_costs", fake_measure)
    code = cli.main(["plan", "--experiment", "imagenet", "--threads", "2"])
    assert code == 0
    assert measured == {"image_size": 224, "train_batch": 8, "eval_batch": 16, "threads": 2}
    report = capsys.readouterr().out
    assert "N kernel images: 3,000" in report  # 3 per class × 1000 assumed classes
    assert "run=seed1" in report and "assuming 1000 classes" in report


def test_plan_command_caps_the_measured_batches_on_cpu(monkeypatch, capsys):
    measured = []

    def fake_measure(image_size, train_batch, eval_batch, threads, device, repeats):
        measured.append((train_batch, eval_batch))
        return costs(train_batch=train_batch, eval_batch=eval_batch)

    settings = imagenet_settings()
    settings["sampling"].update(batch_size=256, eval_batch_size=500)
    monkeypatch.setattr(cli, "_experiment", lambda args, check_files=True: settings)
    monkeypatch.setattr(planning, "measure_image_costs", fake_measure)
    assert cli.main(["plan", "--experiment", "imagenet"]) == 0
    assert cli.main(["plan", "--experiment", "imagenet", "--train-batch", "100"]) == 0
    assert measured == [(64, 64), (100, 64)]
    assert "train batch 64, eval batch 64" in capsys.readouterr().out


def test_plan_reads_the_imagenet_config_before_data_or_weights_exist():
    args = cli.build_parser().parse_args(
        ["plan", "--config", str(ROOT / "config/config.yaml"), str(ROOT / "config/imagenet.yaml"),
         "--schema", str(ROOT / "workflow/schemas/config.schema.yaml"),
         "--experiment", "imagenet"])
    settings = cli._experiment(args, check_files=False)
    assert settings["data"]["root"] is None  # not set yet, and that is fine for planning
    runs = planning.plan_sampling(settings, num_classes=1000)
    assert list(runs["run"]) == ["seed0", "gamma100", "gamma300", "gamma4000"]
    with pytest.raises(ConfigError, match=r"experiments\.imagenet\.data\.root"):
        cli._experiment(args)
