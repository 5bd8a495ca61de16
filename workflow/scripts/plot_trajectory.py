"""Figures of the developmental trajectory (losskernel.analyses.plot_trajectory)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import analyses  # noqa: E402

sm = snakemake  # noqa: F821
analyses.plot_trajectory(
    sm.wildcards.experiment, table_path=sm.input.table, embedding_path=sm.input.embedding,
    score_figure=sm.output.score, umap_figure=sm.output.umap, record=record,
)
