"""The method: localized SGLD, per-sample loss traces and the loss kernel.

``sgld`` is the update (``init``/``step``), ``chains`` one chain's loop and its draws,
``parallel`` several chains at once, ``resume`` saving and resuming a chain, ``losses`` the
per-sample loss, ``traces`` the trace file and ``kernel`` the kernel of the traces.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# The torch-free parts are imported here; the torch-using names load on first access
# (``__getattr__`` below): importing any submodule runs this file first, and the analysis
# jobs import ``losskernel.method.kernel`` and ``losskernel.method.traces`` without torch.
from losskernel.method.kernel import compute_kernel, correlation_kernel, covariance_kernel
from losskernel.method.traces import load_traces, make_trace_dataset, save_traces

if TYPE_CHECKING:
    from losskernel.method.chains import (
        ChainTrace,
        SamplingDivergedError,
        TensorData,
        evaluate_per_sample_losses,
        sample_chain,
    )
    from losskernel.method.losses import cross_entropy_per_sample
    from losskernel.method.parallel import sample_chains
    from losskernel.method.resume import Resumable, SamplingInterrupted
    from losskernel.method.sgld import SGLDConfig

_TORCH_NAMES = {
    "SGLDConfig": "losskernel.method.sgld",
    "TensorData": "losskernel.method.chains",
    "ChainTrace": "losskernel.method.chains",
    "SamplingDivergedError": "losskernel.method.chains",
    "evaluate_per_sample_losses": "losskernel.method.chains",
    "sample_chain": "losskernel.method.chains",
    "sample_chains": "losskernel.method.parallel",
    "Resumable": "losskernel.method.resume",
    "SamplingInterrupted": "losskernel.method.resume",
    "cross_entropy_per_sample": "losskernel.method.losses",
}

__all__ = [
    "ChainTrace",
    "Resumable",
    "SGLDConfig",
    "SamplingDivergedError",
    "SamplingInterrupted",
    "TensorData",
    "compute_kernel",
    "correlation_kernel",
    "covariance_kernel",
    "cross_entropy_per_sample",
    "evaluate_per_sample_losses",
    "load_traces",
    "make_trace_dataset",
    "sample_chain",
    "sample_chains",
    "save_traces",
]


def __getattr__(name: str) -> object:
    if name in _TORCH_NAMES:
        return getattr(importlib.import_module(_TORCH_NAMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
