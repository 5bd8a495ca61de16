"""Localized SGLD around trained weights, recording per-sample losses of the kernel inputs.

The probe distribution is a tempered posterior localized at the trained weights ``w*``:

    p(w) ∝ exp( -nbeta · L(w) - (localization / 2) · ||w - w*||² )

with ``L`` the mean training loss. Every chain starts at ``w*`` and takes SGLD steps

    w ← w - (ε / 2) · G ⊙ [ nbeta · ∇L_batch(w) + localization · (w - w*) ] + sqrt(ε) · sqrt(G) ⊙ ξ

with ``ξ ~ N(0, I)``, ``ε`` the step size and ``G = 1`` (plain SGLD, devinterp's rule) or the
RMSprop preconditioner ``G = 1 / (sqrt(v) + eps)``, ``v ← α v + (1 - α) g²`` (pSGLD without its
Γ correction term; ``v`` starts at the first squared gradient instead of 0, so the first steps
are not inflated by 1/eps).

After ``num_burnin_steps`` steps, every ``num_steps_between_draws``-th step is a draw: the
per-sample losses of a fixed set of kernel inputs are evaluated in batches of
``eval_batch_size`` and stored as ``loss[chain, draw, obs_id]``. This evaluation is most of the
cost (for N inputs and batch B it is N / (3B) times the work of a step), so it runs in
inference mode on contiguous slices, and optionally in bfloat16 (``eval_precision``; in the
benchmark the worst of 3.3 million per-sample losses then moved by about 20% relative, floored
at 0.1, and R by at most 0.03, see ``benchmarks/RESULTS.md``).

Chains are independent. Chain ``c`` of a run with seed ``s`` draws its noise and its minibatch
order from ``SeedSequence(s, spawn_key=(c,))``, so sampling a subset of chains (one job per chain)
reproduces exactly the chains of a run that sampled them all.
"""

from __future__ import annotations

import copy
import math
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

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


EVAL_PRECISIONS = ("float32", "bfloat16")
"""Precisions of the per-draw evaluation: the model's own, or bfloat16 autocast."""


class SamplingDivergedError(RuntimeError):
    """A chain produced a NaN or infinite loss."""


@dataclass(frozen=True)
class SGLDConfig:
    """Settings of one sampling run (all chains). Names follow devinterp's vocabulary."""

    step_size: float
    nbeta: float
    localization: float
    num_chains: int = 4
    num_burnin_steps: int = 0
    num_draws: int = 100
    num_steps_between_draws: int = 1
    batch_size: int = 256
    eval_batch_size: int = 1024
    preconditioner: Literal["identity", "rmsprop"] = "identity"
    rmsprop_alpha: float = 0.99
    rmsprop_eps: float = 0.1
    noise_scale: float = 1.0
    eval_precision: Literal["float32", "bfloat16"] = "float32"
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("step_size", self.step_size > 0, "> 0"),
            ("nbeta", self.nbeta >= 0, ">= 0"),
            ("localization", self.localization >= 0, ">= 0"),
            ("num_chains", self.num_chains >= 1, ">= 1"),
            ("num_burnin_steps", self.num_burnin_steps >= 0, ">= 0"),
            ("num_draws", self.num_draws >= 1, ">= 1"),
            ("num_steps_between_draws", self.num_steps_between_draws >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("eval_batch_size", self.eval_batch_size >= 1, ">= 1"),
            ("rmsprop_alpha", 0 <= self.rmsprop_alpha < 1, "in [0, 1)"),
            ("rmsprop_eps", self.rmsprop_eps > 0, "> 0"),
            ("noise_scale", self.noise_scale >= 0, ">= 0"),
            ("seed", self.seed >= 0, ">= 0"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"{name} must be {rule}, got {getattr(self, name)!r}")
        if self.eval_precision not in EVAL_PRECISIONS:
            raise ValueError(f"eval_precision must be one of {EVAL_PRECISIONS}, "
                             f"got {self.eval_precision!r}")
        if self.preconditioner not in ("identity", "rmsprop"):
            raise ValueError(
                f"preconditioner must be 'identity' or 'rmsprop', got {self.preconditioner!r}"
            )

    @property
    def num_steps(self) -> int:
        """SGLD steps per chain: burn-in, then one draw every ``num_steps_between_draws``."""
        return self.num_burnin_steps + self.num_draws * self.num_steps_between_draws

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


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


class _Preconditioner:
    """Per-parameter drift and noise coefficients G and sqrt(G) (identity or RMSprop)."""

    def __init__(self, config: SGLDConfig, params: Sequence[torch.Tensor]) -> None:
        self.config = config
        self.square_avg: list[torch.Tensor] | None = None
        self.num_params = len(params)

    def coefficients(self, grads: Sequence[torch.Tensor]) -> list[torch.Tensor | None]:
        if self.config.preconditioner == "identity":
            return [None] * self.num_params
        alpha = self.config.rmsprop_alpha
        if self.square_avg is None:
            self.square_avg = [g * g for g in grads]
        else:
            for avg, g in zip(self.square_avg, grads, strict=True):
                avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
        return [1.0 / (avg.sqrt() + self.config.rmsprop_eps) for avg in self.square_avg]


def sgld_step(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    anchors: Sequence[torch.Tensor],
    config: SGLDConfig,
    generator: torch.Generator,
    preconditioning: Sequence[torch.Tensor | None],
) -> None:
    """One in-place SGLD update of ``params`` (see the module docstring for the rule).

    The arithmetic runs as multi-tensor (``torch._foreach_*``) operations, a few kernel launches
    for all parameters instead of several per parameter; element by element it performs the
    same float operations in the same order as the plain per-parameter loop
    (``tests/unit/test_sgld.py`` checks bit equality). The noise is drawn parameter by
    parameter, in order, so the random stream is that of the loop.
    """
    half_step = 0.5 * config.step_size
    noise_std = math.sqrt(config.step_size) * config.noise_scale
    params, grads = list(params), list(grads)
    with torch.no_grad():
        drifts = torch._foreach_mul(grads, config.nbeta)
        if config.localization:
            torch._foreach_add_(drifts, torch._foreach_sub(params, list(anchors)),
                                alpha=config.localization)
        coefs = list(preconditioning)
        if coefs[0] is not None:
            torch._foreach_mul_(drifts, coefs)
        torch._foreach_add_(params, drifts, alpha=-half_step)
        if noise_std:
            noises = [torch.randn(param.shape, generator=generator, dtype=param.dtype,
                                  device=param.device) for param in params]
            if coefs[0] is not None:
                torch._foreach_mul_(noises, torch._foreach_sqrt(coefs))
            torch._foreach_add_(params, noises, alpha=noise_std)


def distance_from_anchors(params: Sequence[torch.Tensor], anchors: Sequence[torch.Tensor]) -> float:
    """``||w - w*||`` over all parameters, in float64 from per-parameter float32 norms."""
    with torch.no_grad():
        norms = torch._foreach_norm(torch._foreach_sub(list(params), list(anchors)))
    return math.sqrt(float(torch.stack(norms).double().pow(2).sum()))


@dataclass
class ChainTrace:
    """What one chain records at its draws."""

    loss: np.ndarray  # (draw, obs_id) per-sample losses of the kernel inputs
    batch_loss: np.ndarray  # (draw,) minibatch loss of the step that made the draw
    distance: np.ndarray  # (draw,) ||w - w*||


@dataclass(frozen=True)
class Resumable:
    """Where a chain saves its progress, and when.

    The chain's state (completed steps, weights, preconditioner, noise generator and the draws
    so far) is written to ``path`` at most every ``every_seconds`` of wall time, atomically,
    and when ``should_stop()`` turns true (a SIGTERM from SLURM's preemption, say), after
    which the chain raises ``SamplingInterrupted``. A chain started with a state file at
    ``path`` resumes from it; the minibatch order is replayed, so on the CPU the finished
    trace equals that of an uninterrupted run bit for bit.
    """

    path: Path
    every_seconds: float = 60.0
    should_stop: Callable[[], bool] = lambda: False


class SamplingInterrupted(RuntimeError):
    """The chain stopped on request after saving its progress; run it again to resume."""


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
    anchors = [p.detach().clone() for p in params]
    preconditioner = _Preconditioner(config, params)

    num_inputs = len(kernel_inputs)
    trace = ChainTrace(
        loss=np.empty((config.num_draws, num_inputs), dtype=np.float64),
        batch_loss=np.empty(config.num_draws, dtype=np.float64),
        distance=np.empty(config.num_draws, dtype=np.float64),
    )
    first_step = 0
    if resumable is not None and resumable.path.exists():
        first_step = _restore(resumable.path, config, chain, params, preconditioner, generator,
                              trace)
        for _ in range(first_step):  # replay the minibatch order (indices only, no compute)
            next(batches)
        if progress is not None:
            progress.update(first_step)
    last_save = time.monotonic()
    for step in range(first_step, config.num_steps):
        inputs, targets = train_data[next(batches)]
        batch_loss = loss_fn(chain_model(inputs.to(device)), targets.to(device)).mean()
        # checked on the host: torch.isfinite on a scalar costs several small kernels per step
        batch_loss_value = batch_loss.item()
        if not math.isfinite(batch_loss_value):
            _raise_diverged(config, chain, step, "minibatch loss")
        grads = torch.autograd.grad(batch_loss, params)
        sgld_step(params, grads, anchors, config, generator, preconditioner.coefficients(grads))
        if progress is not None:
            progress.update()

        draw, offset = divmod(step + 1 - config.num_burnin_steps, config.num_steps_between_draws)
        if step + 1 > config.num_burnin_steps and offset == 0:
            losses = evaluate_per_sample_losses(
                chain_model, loss_fn, kernel_inputs, config.eval_batch_size,
                config.eval_precision,
            ).numpy()
            if not np.isfinite(losses).all():
                _raise_diverged(config, chain, step, "kernel-input losses")
            trace.loss[draw - 1] = losses
            trace.batch_loss[draw - 1] = batch_loss_value
            trace.distance[draw - 1] = distance_from_anchors(params, anchors)
        if resumable is not None and step + 1 < config.num_steps:
            stop = resumable.should_stop()
            if stop or time.monotonic() - last_save >= resumable.every_seconds:
                _save(resumable.path, config, chain, step + 1, params, preconditioner, generator,
                      trace)
                last_save = time.monotonic()
            if stop:
                raise SamplingInterrupted(f"chain {chain} stopped after step {step + 1} of "
                                          f"{config.num_steps}; progress saved to "
                                          f"{resumable.path}; run it again to resume")
    return trace


def _save(path: Path, config: SGLDConfig, chain: int, steps_done: int,
          params: Sequence[torch.Tensor], preconditioner: _Preconditioner,
          generator: torch.Generator, trace: ChainTrace) -> None:
    """Write the chain's state to ``path`` atomically (a killed write leaves the old state)."""
    state = {
        "config": config.as_dict(), "chain": chain, "steps_done": steps_done,
        "params": [p.detach().cpu().clone() for p in params],
        "square_avg": (None if preconditioner.square_avg is None
                       else [a.cpu().clone() for a in preconditioner.square_avg]),
        "generator": generator.get_state(),
        "loss": trace.loss, "batch_loss": trace.batch_loss, "distance": trace.distance,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".writing")
    torch.save(state, partial)
    os.replace(partial, path)


def _restore(path: Path, config: SGLDConfig, chain: int, params: Sequence[torch.Tensor],
             preconditioner: _Preconditioner, generator: torch.Generator,
             trace: ChainTrace) -> int:
    """Load a saved state into the chain; returns the number of steps it had completed."""
    state = torch.load(path, weights_only=False)
    if state["config"] != config.as_dict() or state["chain"] != chain:
        raise ValueError(f"{path} holds the progress of another run (chain {state['chain']}, "
                         f"settings {state['config']}); delete it to start this chain afresh")
    with torch.no_grad():
        for param, saved in zip(params, state["params"], strict=True):
            param.copy_(saved)
    if state["square_avg"] is not None:
        device = params[0].device
        preconditioner.square_avg = [avg.to(device) for avg in state["square_avg"]]
    generator.set_state(state["generator"])
    trace.loss[:] = state["loss"]
    trace.batch_loss[:] = state["batch_loss"]
    trace.distance[:] = state["distance"]
    return int(state["steps_done"])


def _raise_diverged(config: SGLDConfig, chain: int, step: int, what: str) -> None:
    raise SamplingDivergedError(
        f"SGLD diverged: non-finite {what} in chain {chain} at step {step + 1} with "
        f"step_size={config.step_size}, localization={config.localization}, "
        f"nbeta={config.nbeta}. Lower the step size or raise the localization."
    )


ParallelBackend = Literal["auto", "processes", "threads"]
PARALLEL_BACKENDS = ("auto", "processes", "threads")

_FORK_LOCK = threading.Lock()
_forked_chain: Callable[[int], ChainTrace] | None = None
"""The chain runner that forked worker processes inherit (set only while their pool exists)."""


def _run_forked_chain(chain: int) -> tuple[int, ChainTrace]:
    if _forked_chain is None:  # a worker forked outside sample_chains
        raise RuntimeError("forked chain worker started without a chain to run")
    torch.set_num_threads(1)
    return chain, _forked_chain(chain)


def _why_not_processes(device: str, resumable: object) -> str | None:
    """Why forked worker processes cannot run the chains here, or None if they can."""
    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return f"processes are forked, which needs Linux (this is {sys.platform})"
    if device != "cpu":
        return f"forked processes cannot share the {device!r} device's context"
    if torch.get_num_threads() != 1:
        # GNU OpenMP (torch's intra-op pool) hangs in a forked child that starts more than one
        # thread after the parent used its pool.
        return (f"each chain must get one torch thread (torch.set_num_threads(1)), "
                f"got {torch.get_num_threads()}")
    if resumable is not None:
        return "resumable chains stop on their process's own signal; run them in threads"
    return None


def sample_chains(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: IndexedData,
    kernel_inputs: IndexedData,
    config: SGLDConfig,
    chains: Sequence[int] | None = None,
    strata: np.ndarray | None = None,
    progress: bool = True,
    device: str = "cpu",
    resumable: Callable[[int], Resumable] | None = None,
    parallel_chains: int = 1,
    parallel_backend: ParallelBackend = "auto",
) -> dict[int, ChainTrace]:
    """Run the given chains (default: all ``config.num_chains``) on ``device``;
    ``resumable(chain)`` gives each chain's ``Resumable`` (none by default).

    ``parallel_chains`` chains run at once. Give them the cores between them:
    ``torch.set_num_threads(cores // parallel_chains)``. With one torch thread per chain on a
    Linux CPU, the chains run in forked worker processes (``parallel_backend="processes"``,
    what ``"auto"`` picks there): each inherits the model and data without a copy, and none
    waits for another's Python (the GIL), which every SGLD step holds for part of its time.
    Otherwise they run in threads of this process (``"threads"``; torch releases the GIL
    inside its kernels). On a 2-core CPU, 2 chains of 1 thread beat 1 chain of 2 threads by
    about a quarter, and processes beat threads by 1-5% (``benchmarks/RESULTS.md``); with
    more cores, more threads would wait for the GIL (not measured here). Each chain's trace is
    the same whichever way it runs.
    """
    from concurrent.futures import ThreadPoolExecutor

    global _forked_chain
    if parallel_chains < 1:
        raise ValueError(f"parallel_chains must be >= 1, got {parallel_chains}")
    if parallel_backend not in PARALLEL_BACKENDS:
        raise ValueError(f"parallel_backend must be one of {PARALLEL_BACKENDS}, "
                         f"got {parallel_backend!r}")
    chains = list(range(config.num_chains)) if chains is None else list(chains)
    why_not_processes = _why_not_processes(device, resumable)
    if parallel_backend == "processes" and why_not_processes is not None:
        raise ValueError(f"parallel_backend='processes' is not possible here: "
                         f"{why_not_processes}; use 'threads' or 'auto'")
    use_processes = parallel_backend != "threads" and why_not_processes is None
    workers = min(parallel_chains, len(chains))
    bar = tqdm(
        total=len(chains) * config.num_steps, desc="SGLD steps", file=sys.stderr,
        mininterval=10.0, disable=not progress,
    )

    def run(chain: int, progress_bar: tqdm | None = bar) -> ChainTrace:
        return sample_chain(model, loss_fn, train_data, kernel_inputs, config, chain, strata,
                            progress_bar, device, None if resumable is None else resumable(chain))

    with bar:
        if workers == 1:
            return {chain: run(chain) for chain in chains}
        if not use_processes:
            with ThreadPoolExecutor(workers) as pool:
                return dict(zip(chains, pool.map(run, chains), strict=True))
        traces: dict[int, ChainTrace] = {}
        with _FORK_LOCK:  # one pool at a time: its workers inherit _forked_chain at the fork
            _forked_chain = partial(run, progress_bar=None)  # a forked bar would not update ours
            try:
                with multiprocessing.get_context("fork").Pool(workers) as pool:
                    for chain, trace in pool.imap_unordered(_run_forked_chain, chains):
                        traces[chain] = trace
                        bar.update(config.num_steps)
            finally:
                _forked_chain = None
        return {chain: traces[chain] for chain in chains}
