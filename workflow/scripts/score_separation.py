"""Task-separation readings of one seed's kernel (losskernel.steps.separation)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.separation(
    sm.params.task,
    {"knn_k": sm.params.knn_k, "standard_error_batches": sm.params.standard_error_batches},
    correlation_path=sm.input.correlation, traces_path=sm.input.traces,
    metrics_path=sm.output.metrics, scores_path=sm.output.scores, record=record,
)
