"""The step of the kernels: K (covariance) and R (correlation) of one trace file."""

from __future__ import annotations

from losskernel.method.kernel import KERNEL_KINDS, kernel_dataset, save_kernel
from losskernel.method.traces import load_traces
from losskernel.pipeline.io import Files, Record


def compute_kernel(inputs: Files, outputs: Files, *, centring: str, record: Record) -> None:
    """Both kernels of the ``traces`` file, K as ``covariance`` and R as ``correlation``, with
    ``centring`` ``pooled`` or ``per_chain``: one job reads the traces once for both."""
    traces = load_traces(inputs["traces"])
    for kind in KERNEL_KINDS:
        dataset = kernel_dataset(traces, kind, centring)
        dataset.attrs.update(record)
        save_kernel(dataset, outputs[kind])
