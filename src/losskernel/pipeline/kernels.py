"""The step of the kernels: K (covariance) or R (correlation) of one trace file."""

from __future__ import annotations

from losskernel.method.kernel import kernel_dataset, save_kernel
from losskernel.method.traces import load_traces
from losskernel.pipeline.io import Files, Record


def compute_kernel(inputs: Files, outputs: Files, *, kind: str, centring: str,
                   record: Record) -> None:
    """The ``kind`` kernel (``covariance`` or ``correlation``) of the ``traces`` file as
    ``kernel``, with ``centring`` ``pooled`` or ``per_chain``."""
    dataset = kernel_dataset(load_traces(inputs["traces"]), kind, centring)
    dataset.attrs.update(record)
    save_kernel(dataset, outputs["kernel"])
