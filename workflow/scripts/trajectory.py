"""Structure scores over training checkpoints (losskernel.analyses.trajectory)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import analyses  # noqa: E402

sm = snakemake  # noqa: F821
analyses.trajectory(
    sm.params.task, {"knn_k": sm.params.knn_k},
    covariance_paths=list(sm.input.covariance), correlation_paths=list(sm.input.correlation),
    table_path=sm.output.table, metrics_path=sm.output.metrics, record=record,
)
