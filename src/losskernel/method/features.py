"""What the trained network and the raw inputs say of the kernel inputs, without any SGLD:
the cheap similarities a loss-kernel claim must beat.

For every kernel input, in one pass of the model at w*:

- ``pixels``: the input itself, flattened (images larger than ``max_side`` on a side are
  average-pooled down to it first, so ImageNet's 224×224 images give 32×32×3 = 3072 values);
- ``activations``: the input of the network's last ``nn.Linear`` (the penultimate
  representation, read by a forward pre-hook, so any classifier ending in a linear layer works);
- ``probabilities``: the softmax of the outputs.

Their cosine similarities (``losskernel.readings.similarity.cosine_similarity``) stand
beside R in the hierarchy readings.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from losskernel.method.chains import IndexedData

FEATURES: tuple[str, ...] = ("pixels", "activations", "probabilities")


def last_linear(model: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` registered in ``model`` (its output layer in a classifier)."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer, so no penultimate "
                         f"activations to compare the kernel with")
    return linears[-1]


def input_features(model: nn.Module, data: IndexedData, batch_size: int, max_side: int = 32,
                   device: str = "cpu") -> dict[str, np.ndarray]:
    """``{name: (N, features) float32}`` for each of :data:`FEATURES` (module docstring)."""
    captured: list[torch.Tensor] = []
    hook = last_linear(model).register_forward_pre_hook(
        lambda module, args: captured.append(args[0].detach().flatten(1).float().cpu()))
    pixels, probabilities = [], []
    model = model.to(device).train(False)
    try:
        with torch.inference_mode():
            for start in range(0, len(data), batch_size):
                inputs, _ = data[torch.arange(start, min(start + batch_size, len(data)))]
                probabilities.append(F.softmax(model(inputs.to(device)).float(), dim=1).cpu())
                pixels.append(_pixels(inputs.float(), max_side))
    finally:
        hook.remove()
    return {"pixels": torch.cat(pixels).numpy(), "activations": torch.cat(captured).numpy(),
            "probabilities": torch.cat(probabilities).numpy()}


def _pixels(inputs: torch.Tensor, max_side: int) -> torch.Tensor:
    """Inputs flattened; images (B, C, H, W) pooled to at most ``max_side`` on a side."""
    if inputs.dim() == 4 and max(inputs.shape[-2:]) > max_side:
        inputs = F.adaptive_avg_pool2d(inputs, (min(inputs.shape[-2], max_side),
                                                min(inputs.shape[-1], max_side)))
    return inputs.flatten(1)

