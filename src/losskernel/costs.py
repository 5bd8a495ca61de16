"""Size an experiment's jobs before running it: inputs through the network, FLOPs and hours.

Every sampling run of :attr:`losskernel.plan.Experiment.runs` with ``num_chains`` chains (one
SLURM job per chain, rule ``sample_chain``) costs

    sgld_steps   = num_chains · (num_burnin_steps + num_draws · num_steps_between_draws)
    train_inputs = sgld_steps · batch_size            (forward + backward, one per SGLD step)
    eval_inputs  = num_chains · num_draws · N         (forward only, the kernel inputs per draw)

with ``N`` kernel inputs (the task's ``count_kernel_inputs``). Training the model here (rule
``train_model``) costs ``max_steps · training.batch_size`` forward+backward inputs; a
full-batch training (``training.batch_size`` null) passes the whole training set at every
step, whose size is not known before the data exists, so its inputs are left unknown (NaN)
and out of the totals. Neglected: the one evaluation of the N inputs at ``w*`` per run (a
fraction 1/draws of the evaluation), the SGLD parameter update, and data loading.

Hours follow from per-input costs: ``seconds = train_inputs · s_train + eval_inputs · s_eval``
with ``s_train``, ``s_eval`` measured here (``measure_input_costs``) on the task's untrained
model, and ``GPU-hours = FLOPs / (gpu_tflops · 1e12) / 3600`` at an *assumed* sustained GPU
throughput.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``: convolutions and matrix
products only, **2 FLOPs per multiply-add** (torchvision's published ``_ops`` count
multiply-adds, so they are half of these). Forward+backward is a little under 3× the forward
pass: the first layer needs no gradient with respect to its input.
"""

from __future__ import annotations

import copy
import math
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import torch
    from torch import nn

    from losskernel.plan import Experiment

DEFAULT_GPU_TFLOPS = 10.0
"""Assumed sustained GPU throughput in TFLOP/s (2 FLOPs per multiply-add). An assumption, not a
measurement: a mid-size convolutional network in fp32/TF32 on an A100 sustains roughly
10–20 TFLOP/s; the low end is taken because SGLD minibatches are small. A network of a few
MFLOPs per input keeps a GPU far below that, so its GPU-hours are a lower bound."""

MEASURE_BATCH_CAP = 64
"""Largest batch ``plan_report`` measures on CPU unless told otherwise."""
TRAIN_RUN = "train"
PLAN_COLUMNS = ("run", "rule", "chains", "steps_per_chain", "sgld_steps", "training_steps",
                "draws", "batch_size", "train_inputs", "eval_inputs")
COUNT_COLUMNS = ("chains", "steps_per_chain", "sgld_steps", "training_steps", "draws",
                 "batch_size", "train_inputs", "eval_inputs")


@dataclass(frozen=True)
class InputCosts:
    """Per-input costs of a model on inputs of one shape, and where they were measured.

    Seconds are medians of timed batches divided by the batch size; FLOPs are counted (2 per
    multiply-add) and do not depend on the batch or the machine.
    """

    input_shape: tuple[int, ...]  # one input, without the batch dimension
    train_batch: int
    eval_batch: int
    train_seconds_per_input: float  # forward + backward (SGLD step without the update)
    eval_seconds_per_input: float  # forward in inference mode
    train_flops_per_input: float
    eval_flops_per_input: float
    device: str
    threads: int
    host: str
    torch_version: str
    repeats: int

    def provenance(self) -> str:
        return (f"measured on {self.host} ({self.device}, {self.threads} torch threads, "
                f"torch {self.torch_version}) on inputs of shape {tuple(self.input_shape)}, "
                f"train batch {self.train_batch}, eval batch {self.eval_batch}, median of "
                f"{self.repeats}")


def count_flops_per_input(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor
                          ) -> tuple[float, float]:
    """(forward, forward+backward) FLOPs of one input through ``model``, 2 per multiply-add:
    the counts of the batch ``inputs`` divided by its length.

    Backward is ``torch.autograd.grad`` of the mean cross-entropy with respect to all
    parameters, as in an SGLD step; the inputs need no gradient. The model runs as it is
    given (put it in eval mode first, as SGLD does).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    params = [p for p in model.parameters() if p.requires_grad]
    with FlopCounterMode(display=False) as forward, torch.inference_mode():
        model(inputs)
    with FlopCounterMode(display=False) as forward_backward:
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        torch.autograd.grad(loss, params)
    return (forward.get_total_flops() / len(inputs),
            forward_backward.get_total_flops() / len(inputs))


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


def _batch(tensor: torch.Tensor, size: int, device: str) -> torch.Tensor:
    """``size`` rows of ``tensor``, repeated cyclically or cut, on ``device``."""
    import torch

    return tensor[torch.arange(size) % len(tensor)].to(device)


def measure_input_costs(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, *,
                        train_batch: int, eval_batch: int, threads: int, device: str = "cpu",
                        repeats: int = 3) -> InputCosts:
    """Per-input costs of ``model`` on inputs like ``inputs`` (a batch; ``targets`` are their
    class indices), on ``device``.

    A copy of the model runs in eval mode (batch-norm running statistics), as SGLD uses it.
    Forward: ``eval_batch`` inputs in inference mode. Forward+backward: the mean cross-entropy
    of ``train_batch`` inputs and its gradient with respect to every parameter. The inputs are
    repeated or cut to these batch sizes. Each is warmed up once, then timed ``repeats`` times;
    the median is divided by the batch size. FLOPs are counted on the first input. Torch runs
    on ``threads`` intra-op threads during the measurement (restored afterwards); run it with
    nothing else heavy on the machine, or the times are several-fold too long. Neither the
    model nor the tensors are modified.
    """
    for name, value in (("train_batch", train_batch), ("eval_batch", eval_batch),
                        ("threads", threads), ("repeats", repeats), ("inputs", len(inputs))):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if len(targets) != len(inputs):
        raise ValueError(f"inputs and targets must have one row each per input, got "
                         f"{len(inputs)} inputs and {len(targets)} targets")
    import torch

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        timed = copy.deepcopy(model).to(device).eval()
        params = [p for p in timed.parameters() if p.requires_grad]
        forward_flops, train_flops = count_flops_per_input(
            timed, _batch(inputs, 1, device), _batch(targets, 1, device))
        eval_inputs = _batch(inputs, eval_batch, device)
        train_inputs = _batch(inputs, train_batch, device)
        train_targets = _batch(targets, train_batch, device)

        def forward() -> None:
            with torch.inference_mode():
                timed(eval_inputs)

        def forward_backward() -> None:
            loss = torch.nn.functional.cross_entropy(timed(train_inputs), train_targets)
            torch.autograd.grad(loss, params)

        eval_seconds = _median_seconds(forward, repeats, device)
        train_seconds = _median_seconds(forward_backward, repeats, device)
    finally:
        torch.set_num_threads(previous_threads)
    return InputCosts(
        input_shape=tuple(inputs.shape[1:]), train_batch=train_batch, eval_batch=eval_batch,
        train_seconds_per_input=train_seconds / train_batch,
        eval_seconds_per_input=eval_seconds / eval_batch,
        train_flops_per_input=train_flops, eval_flops_per_input=forward_flops,
        device=device, threads=threads, host=socket.gethostname(),
        torch_version=torch.__version__, repeats=repeats,
    )


def _sampling_row(run: str, sampling: dict[str, Any], num_inputs: int) -> dict[str, Any]:
    chains, burnin, draws, between, batch = (
        int(sampling[key]) for key in
        ("num_chains", "num_burnin_steps", "num_draws", "num_steps_between_draws", "batch_size"))
    steps_per_chain = burnin + draws * between  # SGLDConfig.num_steps
    return {"run": run, "rule": "sample_chain", "chains": chains,
            "steps_per_chain": steps_per_chain, "sgld_steps": chains * steps_per_chain,
            "training_steps": 0, "draws": chains * draws, "batch_size": batch,
            "train_inputs": chains * steps_per_chain * batch,
            "eval_inputs": chains * draws * num_inputs}


def _training_row(training: dict[str, Any]) -> dict[str, Any]:
    """The ``train_model`` job: ``max_steps`` steps of ``batch_size`` inputs; a full batch
    (``batch_size`` null) leaves the batch empty and the inputs unknown (NaN)."""
    steps, batch = int(training["max_steps"]), training.get("batch_size")
    return {"run": TRAIN_RUN, "rule": "train_model", "chains": 0, "steps_per_chain": 0,
            "sgld_steps": 0, "training_steps": steps, "draws": 0,
            "batch_size": pd.NA if batch is None else int(batch),
            "train_inputs": math.nan if batch is None else steps * int(batch),
            "eval_inputs": 0}


def plan_jobs(experiment: Experiment, num_inputs: int) -> pd.DataFrame:
    """One row per job of the experiment (see the module docstring), for ``num_inputs``
    kernel inputs.

    Columns: ``run``, ``rule``, ``chains``, ``steps_per_chain``, ``sgld_steps`` (all chains),
    ``training_steps`` (train row only), ``draws`` (all chains), ``batch_size`` (nullable),
    ``train_inputs`` (forward+backward) and ``eval_inputs`` (forward). The rows ``sample_chain``
    are ``experiment.runs`` in order; a first row ``train`` (rule ``train_model``) is there when
    the experiment trains its own model (``Experiment.trains_model``).
    """
    if num_inputs < 1:
        raise ValueError(f"num_inputs must be >= 1, got {num_inputs}")
    rows = [_sampling_row(run.name, dict(run.sampling), num_inputs)
            for run in experiment.runs.values()]
    if experiment.trains_model:
        rows.insert(0, _training_row(dict(experiment.settings["training"])))
    plan = pd.DataFrame(rows, columns=list(PLAN_COLUMNS))
    plan["batch_size"] = plan["batch_size"].astype("Int64")
    return plan


def estimate_hours(plan: pd.DataFrame, costs: InputCosts,
                   gpu_tflops: float = DEFAULT_GPU_TFLOPS) -> pd.DataFrame:
    """The plan with ``flops``, ``hours_here`` and ``gpu_hours`` per row, and a ``total`` row::

        flops      = train_inputs · train_flops_per_input + eval_inputs · eval_flops_per_input
        hours_here = (train_inputs · train_seconds_per_input
                      + eval_inputs · eval_seconds_per_input) / 3600  (on the measuring device)
        gpu_hours  = flops / (gpu_tflops · 1e12) / 3600

    ``gpu_tflops`` is an assumed sustained throughput, not a measurement (default
    ``DEFAULT_GPU_TFLOPS``). In the total row ``steps_per_chain`` and ``batch_size`` are empty;
    its sums leave out unknown (NaN) values, i.e. a full-batch training.
    """
    if gpu_tflops <= 0:
        raise ValueError(f"gpu_tflops must be > 0, got {gpu_tflops}")
    table = plan.copy()
    table["flops"] = (table["train_inputs"] * costs.train_flops_per_input
                      + table["eval_inputs"] * costs.eval_flops_per_input)
    table["hours_here"] = (table["train_inputs"] * costs.train_seconds_per_input
                           + table["eval_inputs"] * costs.eval_seconds_per_input) / 3600
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


def _si(value: float, unit: str) -> str:
    """``value`` with an SI prefix and 3 significant figures: ``3 GFLOPs``, ``49.1 µs``."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""),
                           (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _shown_table(estimate: pd.DataFrame) -> str:
    """The estimate as text: counts with thousands separators, unknown values as ``?``
    (empty where a column has no meaning: a total's batch size)."""
    shown = estimate.drop(columns=["rule"]).copy()
    for column in COUNT_COLUMNS:
        blank = "" if column in ("steps_per_chain", "batch_size") else "?"
        shown[column] = [blank if pd.isna(v) else _count(v) for v in shown[column]]
    for column, fmt in (("flops", "{:.3g}"), ("hours_here", "{:,.1f}"),
                        ("gpu_hours", "{:,.2f}")):
        shown[column] = ["?" if pd.isna(v) else fmt.format(v) for v in shown[column]]
    return shown.to_string(index=False)


def _totals(estimate: pd.DataFrame, costs: InputCosts, gpu_tflops: float) -> list[str]:
    rows = estimate[estimate["run"] != "total"]
    total = estimate[estimate["run"] == "total"].iloc[0]
    sampling = rows[rows["rule"] == "sample_chain"]
    unknown = rows[rows["train_inputs"].isna()]
    return [
        "Totals:",
        f"  sampling runs: {len(sampling)}, chains: {_count(sampling['chains'].sum())}, "
        f"SGLD steps: {_count(total['sgld_steps'])}, draws: {_count(total['draws'])}",
        *([f"  training steps: {_count(total['training_steps'])}"]
          if total["training_steps"] else []),
        f"  inputs through the network: {_count(total['train_inputs'])} forward+backward, "
        f"{_count(total['eval_inputs'])} forward (kernel evaluation)",
        *([f"  NOT COUNTED: run {', '.join(unknown['run'])} (train_model) uses the full "
           f"training set at every step (training.batch_size null), whose size is unknown "
           f"before the data exists; its inputs, FLOPs and hours are '?' and left out of "
           f"these totals"] if len(unknown) else []),
        f"  FLOPs: {total['flops']:.3g}",
        f"  hours on this machine ({costs.device}, {costs.threads} threads): "
        f"{total['hours_here']:,.1f}",
        f"  GPU-hours at {gpu_tflops:g} TFLOP/s sustained: {total['gpu_hours']:,.1f}",
        f"  ASSUMPTION: {gpu_tflops:g} TFLOP/s is an assumed sustained GPU throughput, not a "
        f"measurement (a mid-size convolutional network in fp32/TF32 on an A100: roughly "
        f"10-20; a network of a few MFLOPs per input reaches far less, so its GPU-hours are a "
        f"lower bound); pass --gpu-tflops to change it. Data loading and the SGLD update are "
        f"not counted.",
    ]


def _job_lines(rows: pd.DataFrame, experiment: str, runtime_margin: float) -> list[str]:
    """One line per SLURM job pattern: a ``sample_chain`` job per chain of a run, one
    ``train_model`` job; ``runtime`` in minutes, ``?`` when the cost is unknown."""
    lines = []
    for row in rows.itertuples():
        jobs = max(1, int(row.chains)) if row.rule == "sample_chain" else 1
        gpu_hours, hours_here = row.gpu_hours / jobs, row.hours_here / jobs
        known = not math.isnan(gpu_hours)
        minutes = max(1, round(gpu_hours * 60 * runtime_margin)) if known else "?"
        gpu_text, here_text = (f"{gpu_hours:8.2f}", f"{hours_here:10,.1f}") if known else (
            f"{'?':>8}", f"{'?':>10}")
        chains = f" chain=0..{jobs - 1}" if row.rule == "sample_chain" else ""
        lines.append(f"  {row.rule:<13} experiment={experiment} run={row.run:<12}{chains:<12} "
                     f"{gpu_text} GPU-h each  {here_text} h here  runtime={minutes}")
    return lines


def format_plan(estimate: pd.DataFrame, costs: InputCosts, *, experiment: str, num_inputs: int,
                inputs_note: str, gpu_tflops: float = DEFAULT_GPU_TFLOPS,
                runtime_margin: float = 2.0) -> str:
    """A readable report of ``estimate_hours``: kernel inputs, per-run table, totals, the
    measurement's provenance, and one line per SLURM job with a ``runtime`` (minutes) of
    ``runtime_margin`` × the GPU estimate."""
    rows = estimate[estimate["run"] != "total"]
    return "\n".join([
        f"Plan for experiment {experiment!r}",
        f"N kernel inputs: {_count(num_inputs)} ({inputs_note})",
        f"Per input of shape {tuple(costs.input_shape)}: forward "
        f"{_si(costs.eval_seconds_per_input, 's')} and {_si(costs.eval_flops_per_input, 'FLOPs')};"
        f" forward+backward {_si(costs.train_seconds_per_input, 's')} and "
        f"{_si(costs.train_flops_per_input, 'FLOPs')} (2 FLOPs per multiply-add)",
        f"  {costs.provenance()}",
        "",
        _shown_table(estimate),
        "",
        *_totals(estimate, costs, gpu_tflops),
        "",
        f"SLURM jobs (one per chain of a run; runtime in minutes = {runtime_margin:g} × the "
        f"GPU estimate):",
        *_job_lines(rows, experiment, runtime_margin),
    ])


def _capped(value: int, cap: int | None) -> int:
    return value if cap is None else min(value, cap)


def plan_report(experiment: Experiment, *, num_inputs: int | None = None, threads: int = 1,
                device: str = "cpu", repeats: int = 3, gpu_tflops: float = DEFAULT_GPU_TFLOPS,
                train_batch: int | None = None, eval_batch: int | None = None) -> str:
    """Count the kernel inputs, plan the jobs, measure per-input costs of the task's untrained
    model, and format the report (what ``losskernel plan`` prints).

    N is the task's ``count_kernel_inputs`` unless ``num_inputs`` is given. The measurement's
    batch sizes default to the config's ``sampling.batch_size`` and ``eval_batch_size``,
    capped at ``MEASURE_BATCH_CAP`` on CPU: per-input CPU costs barely depend on the batch,
    and a forward+backward batch of 256 large images needs tens of GB.
    """
    import torch

    settings = experiment.settings
    if num_inputs is None:
        num_inputs, inputs_note = experiment.task.count_kernel_inputs(settings)
    else:
        inputs_note = "given (--inputs)"
    plan = plan_jobs(experiment, num_inputs)
    cap = MEASURE_BATCH_CAP if device == "cpu" else None
    if train_batch is None:
        train_batch = _capped(int(settings["sampling"]["batch_size"]), cap)
    if eval_batch is None:
        eval_batch = _capped(int(settings["sampling"]["eval_batch_size"]), cap)
    with torch.random.fork_rng(devices=[]):  # the task seeds its model; keep the caller's RNG
        model, inputs, targets = experiment.task.timing_example(
            settings, max(train_batch, eval_batch))
    costs = measure_input_costs(model, inputs, targets, train_batch=train_batch,
                                eval_batch=eval_batch, threads=threads, device=device,
                                repeats=repeats)
    estimate = estimate_hours(plan, costs, gpu_tflops)
    return format_plan(estimate, costs, experiment=experiment.name, num_inputs=num_inputs,
                       inputs_note=inputs_note, gpu_tflops=gpu_tflops)
