"""Taxonomic lift of R's neighbours per WordNet depth (losskernel.analyses.taxonomy)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import analyses  # noqa: E402

sm = snakemake  # noqa: F821
analyses.taxonomy(
    sm.params.task, sm.params.knn_k, correlation_path=sm.input.correlation,
    lift_path=sm.output.lift, metrics_path=sm.output.metrics, record=record,
)
