"""The panels of the paper's Figure 1 (losskernel.analyses.figure1)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import analyses  # noqa: E402

sm = snakemake  # noqa: F821
analyses.figure1(
    sm.wildcards.experiment, sm.params.figure_seed, sm.params.analysis, sm.params.image_root,
    correlation_path=sm.input.correlation, embedding_path=sm.input.embedding,
    lift_path=sm.input.lift, umap_figure=sm.output.umap, umap_3d_figure=sm.output.umap_3d,
    matrices_figure=sm.output.matrices, insets_figure=sm.output.insets,
    lift_figure=sm.output.lift, record=record,
)
