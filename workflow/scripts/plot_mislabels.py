"""Figures of the mislabel analysis (losskernel.analyses.plot_mislabels)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import analyses  # noqa: E402

sm = snakemake  # noqa: F821
analyses.plot_mislabels(
    sm.wildcards.experiment, sm.params.figure_seed, scores_path=sm.input.scores,
    metrics_path=sm.input.metrics, embedding_path=sm.input.embedding,
    roc_figure=sm.output.roc, histogram_figure=sm.output.self_covariance,
    umap_figure=sm.output.umap, record=record,
)
