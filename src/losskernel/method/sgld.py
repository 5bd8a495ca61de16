"""Localized SGLD around trained weights: the update rule, as ``init`` and ``step``.

The probe distribution is a tempered posterior localized at the trained weights ``w*``:

    p(w) ∝ exp( -nbeta · L(w) - (localization / 2) · ||w - w*||² )

with ``L`` the mean training loss. Every chain starts at ``w*`` and takes SGLD steps

    w ← w - (ε / 2) · G ⊙ [ nbeta · ∇L_batch(w) + localization · (w - w*) ] + sqrt(ε) · sqrt(G) ⊙ ξ

with ``ξ ~ N(0, I)``, ``ε`` the step size and ``G = 1`` (plain SGLD, devinterp's rule) or the
RMSprop preconditioner ``G = 1 / (sqrt(v) + eps)``, ``v ← α v + (1 - α) g²`` (pSGLD without its
Γ correction term; ``v`` starts at the first squared gradient instead of 0, so the first steps
are not inflated by 1/eps).

``init(params, config)`` gives the state the update carries besides the weights (``w*`` and
``v``); ``step(state, params, grads, config, generator)`` moves the weights in place and returns
the next state. The chain loop around them is ``losskernel.method.chains``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

import torch

EVAL_PRECISIONS = ("float32", "bfloat16")
"""Precisions of the per-draw evaluation: the model's own, or bfloat16 autocast."""


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


class SGLDState(NamedTuple):
    """What the update carries besides the weights, one tensor per parameter in each list."""

    anchors: list[torch.Tensor]
    """``w*``: copies of the weights the chain started from."""
    square_avg: list[torch.Tensor] | None
    """RMSprop's running average ``v`` of the squared gradients; None before the first step
    and always with the identity preconditioner."""


def init(params: Sequence[torch.Tensor], config: SGLDConfig) -> SGLDState:
    """The state of a chain that starts at ``w* = params`` (copied; ``params`` are untouched).

    Neither preconditioner needs ``config`` here: RMSprop's ``v`` starts at the first squared
    gradient, in ``step``.
    """
    return SGLDState(anchors=[param.detach().clone() for param in params], square_avg=None)


def step(
    state: SGLDState,
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    config: SGLDConfig,
    generator: torch.Generator,
) -> SGLDState:
    """One SGLD update of ``params`` in place (see the module docstring for the rule), with
    ``grads`` the minibatch gradients ∇L_batch(w); returns the state with ``v`` advanced.

    The arithmetic runs as multi-tensor (``torch._foreach_*``) operations, a few kernel launches
    for all parameters instead of several per parameter; element by element it performs the
    same float operations in the same order as the plain per-parameter loop
    (``tests/unit/test_sgld.py`` checks bit equality). The noise is drawn parameter by
    parameter, in order, so the random stream is that of the loop.
    """
    square_avg = _advance_square_avg(state.square_avg, grads, config)
    coefs = (None if square_avg is None
             else [1.0 / (avg.sqrt() + config.rmsprop_eps) for avg in square_avg])
    half_step = 0.5 * config.step_size
    noise_std = math.sqrt(config.step_size) * config.noise_scale
    params, grads = list(params), list(grads)
    with torch.no_grad():
        drifts = torch._foreach_mul(grads, config.nbeta)
        if config.localization:
            torch._foreach_add_(drifts, torch._foreach_sub(params, state.anchors),
                                alpha=config.localization)
        if coefs is not None:
            torch._foreach_mul_(drifts, coefs)
        torch._foreach_add_(params, drifts, alpha=-half_step)
        if noise_std:
            noises = [torch.randn(param.shape, generator=generator, dtype=param.dtype,
                                  device=param.device) for param in params]
            if coefs is not None:
                torch._foreach_mul_(noises, torch._foreach_sqrt(coefs))
            torch._foreach_add_(params, noises, alpha=noise_std)
    return SGLDState(state.anchors, square_avg)


def _advance_square_avg(
    square_avg: list[torch.Tensor] | None, grads: Sequence[torch.Tensor], config: SGLDConfig,
) -> list[torch.Tensor] | None:
    """``v ← α v + (1 - α) g²`` (``v = g²`` at the first step), as new tensors; None for the
    identity preconditioner."""
    if config.preconditioner == "identity":
        return None
    if square_avg is None:
        return [g * g for g in grads]
    alpha = config.rmsprop_alpha
    return [torch.addcmul(avg * alpha, g, g, value=1 - alpha)
            for avg, g in zip(square_avg, grads, strict=True)]


def distance_from_anchors(params: Sequence[torch.Tensor], anchors: Sequence[torch.Tensor]) -> float:
    """``||w - w*||`` over all parameters, in float64 from per-parameter float32 norms."""
    with torch.no_grad():
        norms = torch._foreach_norm(torch._foreach_sub(list(params), list(anchors)))
    return math.sqrt(float(torch.stack(norms).double().pow(2).sum()))
