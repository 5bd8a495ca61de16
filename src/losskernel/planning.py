"""Size an experiment's jobs before running it: images through the network, FLOPs and hours.

Every sampling run of ``num_chains`` chains (one SLURM job per chain, rule ``sample_chain``)
costs

    sgld_steps   = num_chains · (num_burnin_steps + num_draws · num_steps_between_draws)
    train_images = sgld_steps · batch_size            (forward + backward, one per SGLD step)
    eval_images  = num_chains · num_draws · N         (forward only, the kernel inputs per draw)

with ``N = images_per_class · num_classes`` kernel images. Training (``model.source: train``,
rule ``train_model``) costs ``max_steps · training.batch_size`` forward+backward images.
Neglected: the one evaluation of the N images at ``w*`` per run (a fraction 1/draws of the
evaluation), the SGLD parameter update, and data loading (JPEG decoding of the minibatches).

Hours follow from per-image costs: ``seconds = train_images · s_train + eval_images · s_eval``
with ``s_train``, ``s_eval`` measured here (``measure_image_costs``), and ``GPU-hours = FLOPs /
(gpu_tflops · 1e12) / 3600`` at an *assumed* sustained GPU throughput.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``: convolutions and matrix
products only, **2 FLOPs per multiply-add**. GoogLeNet's forward pass at 224 px is 3.0 GFLOPs
(= 1.5 G multiply-adds, torchvision's ``_ops``); forward+backward is ≈2.9× that (the first
convolution needs no input gradient).
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from losskernel.config import ConfigError

DEFAULT_GPU_TFLOPS = 10.0
"""Assumed sustained GPU throughput in TFLOP/s (2 FLOPs per multiply-add). An assumption, not a
measurement: GoogLeNet in fp32/TF32 on an A100 sustains roughly 10–20 TFLOP/s; the low end is
taken because SGLD minibatches are small (64 images)."""

DEFAULT_NUM_CLASSES = 1000
MEASURE_BATCH_CAP = 64
"""Largest batch ``losskernel plan`` measures on CPU unless told otherwise."""
WNID = re.compile(r"n\d{8}")
TRAIN_RUN = "train"
PLAN_COLUMNS = ("run", "rule", "chains", "steps_per_chain", "sgld_steps", "training_steps",
                "draws", "batch_size", "train_images", "eval_images")


@dataclass(frozen=True)
class ImageCosts:
    """Per-image costs of GoogLeNet at one image size, and where they were measured.

    Seconds are medians of timed batches divided by the batch size; FLOPs are counted (2 per
    multiply-add) and do not depend on the batch or the machine.
    """

    image_size: int
    train_batch: int
    eval_batch: int
    train_seconds_per_image: float  # forward + backward (SGLD step without the update)
    eval_seconds_per_image: float  # forward in inference mode
    train_flops_per_image: float
    eval_flops_per_image: float
    device: str
    threads: int
    host: str
    torch_version: str
    repeats: int

    def provenance(self) -> str:
        return (f"measured on {self.host} ({self.device}, {self.threads} torch threads, "
                f"torch {self.torch_version}) at {self.image_size} px, train batch "
                f"{self.train_batch}, eval batch {self.eval_batch}, median of {self.repeats}")


def count_flops_per_image(model: Any, image_size: int, device: str = "cpu") -> tuple[float, float]:
    """(forward, forward+backward) FLOPs of one image through ``model``, 2 per multiply-add.

    Backward is ``torch.autograd.grad`` of the mean cross-entropy with respect to all
    parameters, as in an SGLD step; the input needs no gradient.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    image = torch.zeros(1, 3, image_size, image_size, device=device)
    target = torch.zeros(1, dtype=torch.long, device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    with FlopCounterMode(display=False) as forward, torch.inference_mode():
        model(image)
    with FlopCounterMode(display=False) as forward_backward:
        loss = torch.nn.functional.cross_entropy(model(image), target)
        torch.autograd.grad(loss, params)
    return float(forward.get_total_flops()), float(forward_backward.get_total_flops())


def _median_seconds(step: Callable[[], object], repeats: int, device: str) -> float:
    """Median wall time of ``step`` over ``repeats`` calls, after one untimed warm-up call
    (the first call at a new input shape pays oneDNN/cuDNN setup)."""
    import torch

    def synchronize() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)

    step()
    synchronize()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def measure_image_costs(image_size: int, train_batch: int, eval_batch: int, threads: int,
                        device: str = "cpu", repeats: int = 3) -> ImageCosts:
    """Per-image costs of a random-init torchvision GoogLeNet (1000 classes) on ``device``.

    Eval model (batch-norm running statistics), as SGLD uses it. Forward: a batch of
    ``eval_batch`` random images in inference mode. Forward+backward: the mean cross-entropy of
    ``train_batch`` images and its gradient with respect to every parameter. Each is warmed up
    once, then timed ``repeats`` times; the median is divided by the batch size. Torch runs on
    ``threads`` intra-op threads during the measurement (restored afterwards); run it with
    nothing else heavy on the machine, or the times are several-fold too long.
    """
    for name, value in (("image_size", image_size), ("train_batch", train_batch),
                        ("eval_batch", eval_batch), ("threads", threads), ("repeats", repeats)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    import torch
    import torchvision

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = torchvision.models.googlenet(weights=None, aux_logits=False,
                                                 init_weights=True).to(device).eval()
        forward_flops, train_flops = count_flops_per_image(model, image_size, device)
        generator = torch.Generator().manual_seed(0)
        params = [p for p in model.parameters() if p.requires_grad]
        eval_images = torch.randn(eval_batch, 3, image_size, image_size,
                                  generator=generator).to(device)
        train_images = torch.randn(train_batch, 3, image_size, image_size,
                                   generator=generator).to(device)
        targets = torch.randint(0, 1000, (train_batch,), generator=generator).to(device)

        def forward() -> None:
            with torch.inference_mode():
                model(eval_images)

        def forward_backward() -> None:
            loss = torch.nn.functional.cross_entropy(model(train_images), targets)
            torch.autograd.grad(loss, params)

        eval_seconds = _median_seconds(forward, repeats, device)
        train_seconds = _median_seconds(forward_backward, repeats, device)
    finally:
        torch.set_num_threads(previous_threads)
    return ImageCosts(
        image_size=image_size, train_batch=train_batch, eval_batch=eval_batch,
        train_seconds_per_image=train_seconds / train_batch,
        eval_seconds_per_image=eval_seconds / eval_batch,
        train_flops_per_image=train_flops, eval_flops_per_image=forward_flops,
        device=device, threads=threads, host=socket.gethostname(),
        torch_version=torch.__version__, repeats=repeats,
    )


def count_classes(data_root: str | os.PathLike | None) -> tuple[int, str]:
    """(number of classes, how it was found): the wnid directories (``n01440764``-style) of an
    ImageFolder root, or 1000 (ImageNet-1k) when the root is not on this machine."""
    if data_root is None or not Path(data_root).is_dir():
        where = "is not set" if data_root is None else f"{data_root} is not on this machine"
        return DEFAULT_NUM_CLASSES, (f"data.root {where}: assuming {DEFAULT_NUM_CLASSES} "
                                     f"classes (ImageNet-1k); pass --classes to override")
    wnids = [p for p in Path(data_root).iterdir() if p.is_dir() and WNID.fullmatch(p.name)]
    if not wnids:
        raise ConfigError(f"data.root {data_root} holds no wnid directories (n01440764-style): "
                          f"point data.root at the ImageFolder root or pass --classes")
    return len(wnids), f"{len(wnids)} wnid directories under {data_root}"


def _require(section: Mapping, key: str, where: str) -> Any:
    if key not in section:
        raise ConfigError(f"missing config key {where}.{key}: the plan needs it; add it")
    return section[key]


def num_kernel_images(settings: Mapping, num_classes: int) -> int:
    """N = kernel_inputs.images_per_class × num_classes."""
    per_class = _require(_require(settings, "kernel_inputs", "experiment"), "images_per_class",
                         "kernel_inputs")
    return int(per_class) * int(num_classes)


def _sampling_row(run: str, sampling: Mapping, num_images: int, where: str) -> dict[str, Any]:
    chains, burnin, draws, between, batch = (
        int(_require(sampling, key, where)) for key in
        ("num_chains", "num_burnin_steps", "num_draws", "num_steps_between_draws", "batch_size"))
    steps_per_chain = burnin + draws * between  # SGLDConfig.num_steps
    return {"run": run, "rule": "sample_chain", "chains": chains,
            "steps_per_chain": steps_per_chain, "sgld_steps": chains * steps_per_chain,
            "training_steps": 0, "draws": chains * draws, "batch_size": batch,
            "train_images": chains * steps_per_chain * batch,
            "eval_images": chains * draws * num_images}


def sampling_runs(settings: Mapping) -> list[tuple[str, dict]]:
    """(run name, its sampling settings) of every sampling run, as the workflow names them:
    ``seed<S>`` per sampling seed, ``gamma<γ>`` per γ of the sweep unless it is equal to
    ``sampling.localization`` while the sweep's seed is one of the sampling seeds (then the
    sweep reuses that seed's run), ``checkpoint<i>`` per trajectory checkpoint with the
    trajectory's sampling overrides."""
    sampling = dict(_require(settings, "sampling", "experiment"))
    analysis = settings.get("analysis", {})
    seeds = _require(sampling, "seeds", "sampling")
    runs = [(f"seed{seed}", sampling) for seed in seeds]
    sweep = analysis.get("gamma_sweep")
    if sweep:
        reuse = _require(sweep, "seed", "analysis.gamma_sweep") in seeds
        for gamma in _require(sweep, "localizations", "analysis.gamma_sweep"):
            name = f"gamma{gamma:g}"
            if (reuse and gamma == sampling.get("localization")) or name in dict(runs):
                continue
            runs.append((name, {**sampling, "localization": gamma}))
    trajectory = analysis.get("trajectory")
    if trajectory:
        overrides = trajectory.get("sampling", {})
        for index in range(int(_require(trajectory, "num_checkpoints", "analysis.trajectory"))):
            runs.append((f"checkpoint{index}", {**sampling, **overrides}))
    return runs


def plan_sampling(settings: Mapping, num_classes: int) -> pd.DataFrame:
    """One row per job the workflow would run for this experiment (see the module docstring).

    Columns: ``run``, ``rule``, ``chains``, ``steps_per_chain``, ``sgld_steps`` (all chains),
    ``training_steps`` (train row only), ``draws`` (all chains), ``batch_size``,
    ``train_images`` (forward+backward) and ``eval_images`` (forward). The row ``train`` is
    there when ``model.source == "train"`` and the experiment has no ``model_from``.
    """
    images = num_kernel_images(settings, num_classes)
    rows = [_sampling_row(run, sampling, images, "sampling")
            for run, sampling in sampling_runs(settings)]
    model = settings.get("model", {})
    if model.get("source") == "train" and "model_from" not in settings:
        training = _require(settings, "training", "experiment")
        steps = int(_require(training, "max_steps", "training"))
        batch = int(_require(training, "batch_size", "training"))
        rows.insert(0, {"run": TRAIN_RUN, "rule": "train_model", "chains": 0,
                        "steps_per_chain": 0, "sgld_steps": 0, "training_steps": steps,
                        "draws": 0, "batch_size": batch, "train_images": steps * batch,
                        "eval_images": 0})
    return pd.DataFrame(rows, columns=list(PLAN_COLUMNS))


def estimate_hours(plan: pd.DataFrame, costs: ImageCosts,
                   gpu_tflops: float = DEFAULT_GPU_TFLOPS) -> pd.DataFrame:
    """The plan with ``flops``, ``hours_here`` and ``gpu_hours`` per row, and a ``total`` row.

    flops      = train_images · train_flops_per_image + eval_images · eval_flops_per_image
    hours_here = (train_images · train_seconds_per_image
                  + eval_images · eval_seconds_per_image) / 3600      (on the measuring device)
    gpu_hours  = flops / (gpu_tflops · 1e12) / 3600

    ``gpu_tflops`` is an assumed sustained throughput, not a measurement (default
    ``DEFAULT_GPU_TFLOPS``). In the total row ``steps_per_chain`` and ``batch_size`` are empty.
    """
    if gpu_tflops <= 0:
        raise ValueError(f"gpu_tflops must be > 0, got {gpu_tflops}")
    table = plan.copy()
    table["flops"] = (table["train_images"] * costs.train_flops_per_image
                      + table["eval_images"] * costs.eval_flops_per_image)
    table["hours_here"] = (table["train_images"] * costs.train_seconds_per_image
                           + table["eval_images"] * costs.eval_seconds_per_image) / 3600
    table["gpu_hours"] = table["flops"] / (gpu_tflops * 1e12) / 3600
    additive = [c for c in table.columns if c not in ("run", "rule", "steps_per_chain",
                                                      "batch_size")]
    total = {"run": "total", "rule": "", **{column: table[column].sum() for column in additive}}
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    table[["steps_per_chain", "batch_size"]] = table[["steps_per_chain", "batch_size"]].astype(
        "Int64")
    return table


def _count(value: float) -> str:
    return f"{value:,.0f}"


def format_plan(estimate: pd.DataFrame, costs: ImageCosts, *, experiment: str,
                num_kernel_images: int, classes_note: str, gpu_tflops: float = DEFAULT_GPU_TFLOPS,
                runtime_margin: float = 2.0) -> str:
    """A readable report of ``estimate_hours``: kernel images, per-run table, totals, the
    measurement's provenance, and one line per SLURM job with a ``runtime`` (minutes) of
    ``runtime_margin`` × the GPU estimate."""
    rows = estimate[estimate["run"] != "total"]
    total = estimate[estimate["run"] == "total"].iloc[0]
    sampling = rows[rows["rule"] == "sample_chain"]
    shown = estimate.drop(columns=["rule"]).copy()
    for column in ("chains", "steps_per_chain", "sgld_steps", "training_steps", "draws",
                   "batch_size", "train_images", "eval_images"):
        shown[column] = [("" if pd.isna(v) else _count(v)) for v in shown[column]]
    shown["flops"] = [f"{v:.3g}" for v in shown["flops"]]
    shown["hours_here"] = [f"{v:,.1f}" for v in shown["hours_here"]]
    shown["gpu_hours"] = [f"{v:,.2f}" for v in shown["gpu_hours"]]
    here = f"{costs.device}, {costs.threads} threads"
    lines = [
        f"Plan for experiment {experiment!r}",
        f"N kernel images: {_count(num_kernel_images)} ({classes_note})",
        f"Per image at {costs.image_size} px: forward {costs.eval_seconds_per_image * 1e3:.1f} ms"
        f" and {costs.eval_flops_per_image / 1e9:.3f} GFLOPs; forward+backward "
        f"{costs.train_seconds_per_image * 1e3:.1f} ms and "
        f"{costs.train_flops_per_image / 1e9:.3f} GFLOPs (2 FLOPs per multiply-add)",
        f"  {costs.provenance()}",
        "",
        shown.to_string(index=False),
        "",
        "Totals:",
        f"  sampling runs: {len(sampling)}, chains: {_count(sampling['chains'].sum())}, "
        f"SGLD steps: {_count(total['sgld_steps'])}, draws: {_count(total['draws'])}",
        *([f"  training steps: {_count(total['training_steps'])}"]
          if total["training_steps"] else []),
        f"  images through the network: {_count(total['train_images'])} forward+backward, "
        f"{_count(total['eval_images'])} forward (kernel evaluation)",
        f"  FLOPs: {total['flops']:.3g}",
        f"  hours on this machine ({here}): {total['hours_here']:,.1f}",
        f"  GPU-hours at {gpu_tflops:g} TFLOP/s sustained: {total['gpu_hours']:,.1f}",
        f"  ASSUMPTION: {gpu_tflops:g} TFLOP/s is an assumed sustained GPU throughput, not a "
        f"measurement (GoogLeNet fp32/TF32 on an A100: roughly 10-20); pass --gpu-tflops to "
        f"change it. Data loading and the SGLD update are not counted.",
        "",
        f"SLURM jobs (one per chain of a run; runtime in minutes = {runtime_margin:g} × the "
        f"GPU estimate):",
    ]
    for row in rows.itertuples():
        jobs = max(1, int(row.chains)) if row.rule == "sample_chain" else 1
        gpu_hours, hours_here = row.gpu_hours / jobs, row.hours_here / jobs
        minutes = max(1, round(gpu_hours * 60 * runtime_margin))
        chains = f" chain=0..{jobs - 1}" if row.rule == "sample_chain" else ""
        lines.append(f"  {row.rule:<13} experiment={experiment} run={row.run:<12}{chains:<12} "
                     f"{gpu_hours:8.2f} GPU-h each  {hours_here:10,.1f} h here  "
                     f"runtime={minutes}")
    return "\n".join(lines)


def _capped(value: int, cap: int | None) -> int:
    return value if cap is None else min(value, cap)


def plan_report(settings: Mapping, experiment: str, *, num_classes: int | None = None,
                threads: int = 1, device: str = "cpu", repeats: int = 3,
                gpu_tflops: float = DEFAULT_GPU_TFLOPS, train_batch: int | None = None,
                eval_batch: int | None = None) -> str:
    """Count classes, plan the runs, measure per-image costs at the config's image size, and
    format the report (what ``losskernel plan`` prints).

    The measurement's batch sizes default to the config's ``sampling.batch_size`` and
    ``eval_batch_size``, capped at ``MEASURE_BATCH_CAP`` on CPU: per-image CPU costs barely
    depend on the batch, and a forward+backward batch of 256 images at 224 px needs ≈20 GB.
    """
    if num_classes is None:
        num_classes, classes_note = count_classes(_require(settings, "data", "experiment")
                                                  .get("root"))
    else:
        classes_note = f"{num_classes} classes from --classes"
    images = num_kernel_images(settings, num_classes)
    classes_note = (f"{images // num_classes} per class × {num_classes} classes; "
                    f"{classes_note}")
    plan = plan_sampling(settings, num_classes)
    sampling = settings["sampling"]
    cap = MEASURE_BATCH_CAP if device == "cpu" else None
    if train_batch is None:
        train_batch = _capped(int(_require(sampling, "batch_size", "sampling")), cap)
    if eval_batch is None:
        eval_batch = _capped(int(_require(sampling, "eval_batch_size", "sampling")), cap)
    costs = measure_image_costs(int(settings["data"].get("image_size", 224)),
                                train_batch=train_batch, eval_batch=eval_batch,
                                threads=threads, device=device, repeats=repeats)
    estimate = estimate_hours(plan, costs, gpu_tflops)
    return format_plan(estimate, costs, experiment=experiment, num_kernel_images=images,
                       classes_note=classes_note, gpu_tflops=gpu_tflops)

