"""Saving a chain's progress and resuming from it: preemption (SIGTERM) and wall-time saves.

A chain's state between two steps is its completed step count, its weights, the SGLD state
besides ``w*`` (RMSprop's ``v``; ``w*`` is the model the chain starts from, so it is not saved),
its noise generator and its draws so far. The minibatch order is not saved: it is replayed from
the chain's seed.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from losskernel.method.sgld import SGLDConfig, SGLDState

if TYPE_CHECKING:  # the chain loop imports this module
    from losskernel.method.chains import ChainTrace


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


def stop_on_sigterm() -> Callable[[], bool]:
    """Install a SIGTERM handler that asks running chains to save and stop; return the check
    to pass as ``Resumable.should_stop``."""
    requested: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: requested.append(signum))
    return lambda: bool(requested)


def save_progress(path: Path, config: SGLDConfig, chain: int, steps_done: int,
                  params: Sequence[torch.Tensor], state: SGLDState,
                  generator: torch.Generator, trace: ChainTrace) -> None:
    """Write the chain's state to ``path`` atomically (a killed write leaves the old state)."""
    saved = {
        "config": config.as_dict(), "chain": chain, "steps_done": steps_done,
        "params": [p.detach().cpu().clone() for p in params],
        "square_avg": (None if state.square_avg is None
                       else [a.cpu().clone() for a in state.square_avg]),
        "generator": generator.get_state(),
        "loss": trace.loss, "batch_loss": trace.batch_loss, "distance": trace.distance,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".writing")
    torch.save(saved, partial)
    os.replace(partial, path)


def restore_progress(path: Path, config: SGLDConfig, chain: int, params: Sequence[torch.Tensor],
                     state: SGLDState, generator: torch.Generator,
                     trace: ChainTrace) -> tuple[int, SGLDState]:
    """Load a saved state into the chain's ``params``, ``generator`` and ``trace``; returns the
    number of steps it had completed and its SGLD state (``state`` with ``v`` restored)."""
    saved = torch.load(path, weights_only=False)
    if saved["config"] != config.as_dict() or saved["chain"] != chain:
        raise ValueError(f"{path} holds the progress of another run (chain {saved['chain']}, "
                         f"settings {saved['config']}); delete it to start this chain afresh")
    with torch.no_grad():
        for param, value in zip(params, saved["params"], strict=True):
            param.copy_(value)
    if saved["square_avg"] is not None:
        device = params[0].device
        state = state._replace(square_avg=[avg.to(device) for avg in saved["square_avg"]])
    generator.set_state(saved["generator"])
    trace.loss[:] = saved["loss"]
    trace.batch_loss[:] = saved["batch_loss"]
    trace.distance[:] = saved["distance"]
    return int(saved["steps_done"]), state


class ProgressSaver:
    """Saves one resumable chain's progress when due, and stops the chain when asked."""

    def __init__(self, resumable: Resumable, config: SGLDConfig, chain: int) -> None:
        self.resumable = resumable
        self.config = config
        self.chain = chain
        self.last_save = time.monotonic()

    def after_step(self, steps_done: int, params: Sequence[torch.Tensor], state: SGLDState,
                   generator: torch.Generator, trace: ChainTrace) -> None:
        """Save if ``every_seconds`` have passed since the last save or a stop is requested;
        then, on a stop, raise ``SamplingInterrupted``."""
        stop = self.resumable.should_stop()
        if stop or time.monotonic() - self.last_save >= self.resumable.every_seconds:
            save_progress(self.resumable.path, self.config, self.chain, steps_done, params, state,
                          generator, trace)
            self.last_save = time.monotonic()
        if stop:
            raise SamplingInterrupted(
                f"chain {self.chain} stopped after step {steps_done} of "
                f"{self.config.num_steps}; progress saved to {self.resumable.path}; "
                f"run it again to resume")
