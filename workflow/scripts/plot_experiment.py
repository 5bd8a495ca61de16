"""The four figures of one experiment (losskernel.steps.figures)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.figures(
    sm.wildcards.experiment, sm.params.seeds, sm.params.figure_seed, sm.params.knn_k,
    correlation_path=sm.input.correlation, embedding_path=sm.input.embedding,
    scores_paths=list(sm.input.scores), metrics_paths=list(sm.input.metrics),
    heatmap_path=sm.output.heatmap, distributions_path=sm.output.distributions,
    umap_path=sm.output.umap, roc_path=sm.output.roc, record=record,
)
