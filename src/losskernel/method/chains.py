"""One SGLD chain from trained weights, recording per-sample losses of the kernel inputs.

A chain takes ``config.num_steps`` SGLD steps (``losskernel.method.sgld``) on minibatches of
the training data. After ``num_burnin_steps`` steps, every ``num_steps_between_draws``-th step
is a draw: the per-sample losses of a fixed set of kernel inputs are evaluated in batches of
``eval_batch_size`` and stored as ``loss[chain, draw, obs_id]``. This evaluation is most of the
cost (for N inputs and batch B it is N / (3B) times the work of a step), so it runs in
inference mode on contiguous slices (of 1024 inputs by default: on a CPU the whole set in one
batch is slower, its activations no longer fit in the cache, and a ``torch.compile``d model
is no faster, see ``benchmarks/RESULTS.md`` 2b), and optionally in bfloat16
(``eval_precision``; in the benchmark the worst of 3.3 million per-sample losses then moved
by about 20% relative, floored at 0.1, and R by at most 0.03, see ``benchmarks/RESULTS.md``).

Chains are independent. Chain ``c`` of a run with seed ``s`` draws its noise and its minibatch
order from ``SeedSequence(s, spawn_key=(c,))``, so sampling a subset of chains (one job per chain)
reproduces exactly the chains of a run that sampled them all. ``losskernel.method.parallel``
runs several chains at once.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from losskernel.method import sgld
from losskernel.method.resume import ProgressSaver, Resumable, restore_progress
from losskernel.method.sgld import SGLDConfig, SGLDState

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss_fn(outputs, targets) -> per-sample losses of shape (batch,)``."""


class IndexedData(Protocol):
    """A data set that returns a whole batch for a tensor of indices."""

    def __len__(self) -> int: ...

    def __getitem__(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class TensorData:
    """In-memory inputs and targets; indexing with a tensor of indices returns a batch."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.targets):
            raise ValueError(
                f"inputs and targets differ in length: {len(self.inputs)} != {len(self.targets)}"
            )

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, indices: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[indices], self.targets[indices]


class SamplingDivergedError(RuntimeError):
    """A chain produced a NaN or infinite loss."""


def chain_seeds(seed: int, chain: int) -> tuple[int, int]:
    """Independent (noise, minibatch-order) seeds of a chain: ``SeedSequence(seed, (chain,))``."""
    noise_seed, order_seed = np.random.SeedSequence(seed, spawn_key=(chain,)).generate_state(2)
    return int(noise_seed), int(order_seed)


def minibatch_indices(
    num_samples: int,
    batch_size: int,
    rng: np.random.Generator,
    strata: np.ndarray | None = None,
) -> Iterator[torch.Tensor]:
    """Endless minibatches of indices, re-shuffled every epoch; incomplete batches are dropped.

    With ``strata`` (one label per sample), every batch holds a fixed number of samples of each
    stratum, proportional to its size, each stratum cycling through its own shuffled order. With
    disjoint per-task parameters this keeps the tasks' gradient noise independent (a random
    task mix per batch would anti-correlate the two tasks' drift).
    """
    if strata is None:
        strata = np.zeros(num_samples, dtype=np.int64)
    if len(strata) != num_samples:
        raise ValueError(f"strata has {len(strata)} labels for {num_samples} samples")
    groups = [np.flatnonzero(strata == value) for value in np.unique(strata)]
    counts = [max(1, round(batch_size * len(g) / num_samples)) for g in groups]
    for group, count in zip(groups, counts, strict=True):
        if count > len(group):
            raise ValueError(f"batch_size {batch_size} exceeds the {len(group)} samples available")

    def endless(group: np.ndarray, count: int) -> Iterator[np.ndarray]:
        while True:
            order = rng.permutation(group)
            for start in range(0, len(order) - count + 1, count):
                yield order[start : start + count]

    streams = [endless(g, c) for g, c in zip(groups, counts, strict=True)]
    while True:
        yield torch.from_numpy(np.concatenate([next(s) for s in streams]))


def evaluate_per_sample_losses(
    model: nn.Module, loss_fn: LossFn, data: IndexedData, batch_size: int,
    precision: Literal["float32", "bfloat16"] = "float32",
) -> torch.Tensor:
    """Per-sample losses of every item of ``data`` at the model's current weights, shape (N,),
    on the CPU; batches are moved to the model's device.

    ``precision="bfloat16"`` runs the forward pass under bfloat16 autocast (about twice as fast
    on CPUs with bf16 matrix units and on GPUs); the loss is then taken on float32 outputs.
    """
    device = next(model.parameters()).device
    low_precision = precision == "bfloat16"
    losses = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                enabled=low_precision):
        for start in range(0, len(data), batch_size):
            stop = min(start + batch_size, len(data))
            # in-memory data is sliced (a view), not gathered: no copy of the inputs per draw
            in_memory = isinstance(data, TensorData)
            batch = slice(start, stop) if in_memory else torch.arange(start, stop)
            inputs, targets = data[batch]
            outputs = model(inputs.to(device))
            if low_precision:
                outputs = outputs.float()
            losses.append(loss_fn(outputs, targets.to(device)).cpu())
    return torch.cat(losses)


@dataclass
class ChainTrace:
    """What one chain records at its draws.

    The per-sample losses are kept in float32, as the trace file keeps them
    (``losskernel.method.traces``): half the memory of float64, and the kernel loses nothing
    it could use. The kernel is a covariance over draws, ``K_ij = Cov_s(l_i, l_j)``, centred
    in float64 (``losskernel.method.kernel``). Storing ``l`` in float32 moves each value by at
    most ``2^-24 l`` (and ``cross_entropy_per_sample`` in float32 by at most about
    ``1e-5 l``), which changes ``K_ij`` by about that fraction of ``mean(l_i) mean(l_j)``:
    negligible against ``K_ij`` itself unless an input's losses vary across draws by less
    than ~1e-5 of their mean, i.e. it is constant to within the forward pass's own float32
    rounding, where ``kernel.constant_inputs`` (which reads the dtype's epsilon) sets its R to
    0. A loss function that returns float64 is rounded to float32 here.
    """

    loss: np.ndarray  # (draw, obs_id) per-sample losses of the kernel inputs, float32
    batch_loss: np.ndarray  # (draw,) minibatch loss of the step that made the draw
    distance: np.ndarray  # (draw,) ||w - w*||

    @classmethod
    def empty(cls, num_draws: int, num_inputs: int) -> ChainTrace:
        """A trace of ``num_draws`` draws of ``num_inputs`` losses, to be filled in."""
        return cls(loss=np.empty((num_draws, num_inputs), dtype=np.float32),
                   batch_loss=np.empty(num_draws, dtype=np.float64),
                   distance=np.empty(num_draws, dtype=np.float64))


def sample_chain(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: IndexedData,
    kernel_inputs: IndexedData,
    config: SGLDConfig,
    chain: int,
    strata: np.ndarray | None = None,
    progress: tqdm | None = None,
    device: str = "cpu",
    resumable: Resumable | None = None,
) -> ChainTrace:
    """Run chain ``chain`` from the model's current weights ``w*``; ``model`` is not modified.

    The chain runs on ``device`` (its noise comes from a generator there, so a chain on a GPU
    is reproducible on that GPU but differs from the same chain on the CPU). With
    ``resumable``, it saves its progress and resumes from it (see ``Resumable``).
    """
    noise_seed, order_seed = chain_seeds(config.seed, chain)
    generator = torch.Generator(device=device).manual_seed(noise_seed)
    batches = minibatch_indices(
        len(train_data), config.batch_size, np.random.default_rng(order_seed), strata
    )
    chain_model = copy.deepcopy(model).to(device)
    chain_model.train(False)
    params = [p for p in chain_model.parameters() if p.requires_grad]
    state = sgld.init(params, config)
    trace = ChainTrace.empty(config.num_draws, len(kernel_inputs))
    first_step = 0
    if resumable is not None and resumable.path.exists():
        first_step, state = restore_progress(resumable.path, config, chain, params, state,
                                             generator, trace)
        for _ in range(first_step):  # replay the minibatch order (indices only, no compute)
            next(batches)
        if progress is not None:
            progress.update(first_step)
    saver = None if resumable is None else ProgressSaver(resumable, config, chain)
    for step in range(first_step, config.num_steps):
        state, batch_loss = _sgld_step(chain_model, loss_fn, train_data[next(batches)], params,
                                       state, config, generator, device, chain, step)
        if progress is not None:
            progress.update()
        draw = _draw_made_by(step, config)
        if draw is not None:
            trace.loss[draw] = _kernel_input_losses(chain_model, loss_fn, kernel_inputs, config,
                                                    chain, step)
            trace.batch_loss[draw] = batch_loss
            trace.distance[draw] = sgld.distance_from_anchors(params, state.anchors)
        if saver is not None and step + 1 < config.num_steps:
            saver.after_step(step + 1, params, state, generator, trace)
    return trace


def _sgld_step(model: nn.Module, loss_fn: LossFn, batch: tuple[torch.Tensor, torch.Tensor],
               params: list[torch.Tensor], state: SGLDState, config: SGLDConfig,
               generator: torch.Generator, device: str, chain: int,
               step: int) -> tuple[SGLDState, float]:
    """SGLD step ``step`` (from 0) of ``chain`` on a minibatch: moves ``params`` in place and
    returns the next SGLD state and the minibatch loss before the move."""
    inputs, targets = batch
    batch_loss = loss_fn(model(inputs.to(device)), targets.to(device)).mean()
    # checked on the host: torch.isfinite on a scalar costs several small kernels per step
    batch_loss_value = batch_loss.item()
    if not math.isfinite(batch_loss_value):
        _raise_diverged(config, chain, step, "minibatch loss")
    grads = torch.autograd.grad(batch_loss, params)
    return sgld.step(state, params, grads, config, generator), batch_loss_value


def _draw_made_by(step: int, config: SGLDConfig) -> int | None:
    """The index of the draw that step ``step`` (from 0) makes, or None if it makes none."""
    draw, offset = divmod(step + 1 - config.num_burnin_steps, config.num_steps_between_draws)
    return draw - 1 if step + 1 > config.num_burnin_steps and offset == 0 else None


def _kernel_input_losses(model: nn.Module, loss_fn: LossFn, kernel_inputs: IndexedData,
                         config: SGLDConfig, chain: int, step: int) -> np.ndarray:
    """The per-sample losses of the kernel inputs at a draw, checked to be finite."""
    losses = evaluate_per_sample_losses(model, loss_fn, kernel_inputs, config.eval_batch_size,
                                        config.eval_precision).numpy()
    if not np.isfinite(losses).all():
        _raise_diverged(config, chain, step, "kernel-input losses")
    return losses


def _raise_diverged(config: SGLDConfig, chain: int, step: int, what: str) -> None:
    raise SamplingDivergedError(
        f"SGLD diverged: non-finite {what} in chain {chain} at step {step + 1} with "
        f"step_size={config.step_size}, localization={config.localization}, "
        f"nbeta={config.nbeta}. Lower the step size or raise the localization: "
        f"`losskernel calibrate` (or `snakemake --cores all calibrate`) tries a grid of "
        f"settings on short chains and suggests one that passes."
    )
