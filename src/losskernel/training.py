"""Training with AdamW (full batch or minibatches) and checkpoints on a log-spaced schedule."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from losskernel.method.chains import (
    IndexedData,
    LossFn,
    TensorData,
    evaluate_per_sample_losses,
    minibatch_indices,
)
from losskernel.schedule import log_spaced_steps

Evaluator = Callable[[nn.Module], Mapping[str, float]]


@dataclass(frozen=True)
class TrainingConfig:
    """AdamW until the stopping rule holds or ``max_steps``.

    ``batch_size`` None trains on the full training set at every step; an integer draws
    minibatches re-shuffled every epoch from ``shuffle_seed``.
    """

    learning_rate: float
    weight_decay: float
    betas: tuple[float, float] = (0.9, 0.98)
    max_steps: int = 10_000
    patience_steps: int = 1000
    eval_every: int = 100
    num_checkpoints: int = 30
    batch_size: int | None = None
    shuffle_seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {self.batch_size}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {self.eval_every}")


@dataclass
class TrainingResult:
    model: nn.Module
    history: pd.DataFrame  # one row per evaluation: step, train_loss, and the evaluator's metrics
    checkpoints: dict[int, dict[str, torch.Tensor]]  # step -> state_dict
    final_step: int
    converged: bool | None = None
    """Whether the target held at the last evaluation; None for a task without one."""

    def outcome(self, max_steps: int) -> dict[str, bool | int | None]:
        """``converged``, ``final_step`` and ``max_steps``: what a model's provenance records."""
        return {"converged": self.converged, "final_step": self.final_step,
                "max_steps": max_steps}


def train_adamw(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: TensorData | IndexedData,
    config: TrainingConfig,
    evaluate: Evaluator,
    is_converged: Callable[[Mapping[str, float]], bool | None],
    progress: bool = True,
    monitor: IndexedData | None = None,
    device: str = "cpu",
) -> TrainingResult:
    """Train ``model`` (a copy) with AdamW, full batch or minibatches (``config.batch_size``).

    Every ``eval_every`` steps ``evaluate(model)`` returns named metrics; once ``is_converged``
    has held for ``patience_steps`` steps in a row, training stops. The result's ``converged``
    is its verdict at the last evaluation (None when it returns None: no target). Checkpoints
    are kept at the log-spaced steps up to ``max_steps`` that are reached, plus the final step.

    ``train_data`` is any indexed data set (``TensorData`` in memory, or images decoded per
    batch). The reported ``train_loss`` is over all of it, or over ``monitor`` when given
    (a training set too large to evaluate at every evaluation). Training runs on ``device``;
    checkpoints are kept on the CPU.
    """
    model = copy.deepcopy(model).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  betas=config.betas, weight_decay=config.weight_decay)
    checkpoint_steps = set(log_spaced_steps(config.max_steps, config.num_checkpoints))
    checkpoints: dict[int, dict[str, torch.Tensor]] = {}
    batches = None if config.batch_size is None else minibatch_indices(
        len(train_data), config.batch_size, np.random.default_rng(config.shuffle_seed))
    rows: list[dict[str, float]] = []
    converged_since: int | None = None
    verdict: bool | None = None
    step = 0
    bar = tqdm(total=config.max_steps, desc="training", file=sys.stderr, mininterval=10.0,
               disable=not progress)
    with bar:
        while True:
            if step in checkpoint_steps:
                checkpoints[step] = _snapshot(model)
            if step % config.eval_every == 0 or step == config.max_steps:
                model.train(False)
                train_loss = _train_loss(model, loss_fn, train_data, monitor, device)
                metrics = dict(evaluate(model))
                rows.append({"step": step, "train_loss": train_loss, **metrics})
                verdict = is_converged(metrics)
                # the first step of the current run of evaluations that met the target
                converged_since = (step if converged_since is None else converged_since
                                   ) if verdict else None
                if converged_since is not None and step - converged_since >= config.patience_steps:
                    break
            if step == config.max_steps:
                break
            _adamw_step(model, optimizer, loss_fn, train_data, batches, config, step, device)
            step += 1
            bar.update()
    model.train(False)
    checkpoints[step] = _snapshot(model)
    return TrainingResult(model, pd.DataFrame(rows), checkpoints, step,
                          None if verdict is None else bool(verdict))


def _train_loss(model: nn.Module, loss_fn: LossFn, train_data: TensorData | IndexedData,
                monitor: IndexedData | None, device: str) -> float:
    """The mean loss over all of ``train_data`` in one batch, or over ``monitor`` in batches."""
    if monitor is None:
        with torch.inference_mode():
            return float(loss_fn(model(train_data.inputs.to(device)),
                                 train_data.targets.to(device)).mean())
    return float(evaluate_per_sample_losses(model, loss_fn, monitor, 256).mean())


def _adamw_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn,
                train_data: TensorData | IndexedData, batches: Iterator[torch.Tensor] | None,
                config: TrainingConfig, step: int, device: str) -> None:
    """One AdamW step on the full training set (``batches`` None) or on the next minibatch."""
    model.train(True)
    optimizer.zero_grad(set_to_none=True)
    inputs, targets = (train_data.inputs, train_data.targets) if batches is None else (
        train_data[next(batches)])
    loss = loss_fn(model(inputs.to(device)), targets.to(device)).mean()
    if not torch.isfinite(loss):
        raise RuntimeError(f"training diverged at step {step} (loss {float(loss)}); "
                           f"lower learning_rate={config.learning_rate}")
    loss.backward()
    optimizer.step()


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True)
            for name, tensor in model.state_dict().items()}


def training_config_from_settings(settings: Mapping[str, object]) -> TrainingConfig:
    """Build a ``TrainingConfig`` from a config section, ignoring keys it does not own."""
    fields = TrainingConfig.__dataclass_fields__
    values = {key: value for key, value in settings.items() if key in fields}
    if "betas" in values:
        values["betas"] = tuple(values["betas"])  # type: ignore[arg-type]
    return TrainingConfig(**values)  # type: ignore[arg-type]
