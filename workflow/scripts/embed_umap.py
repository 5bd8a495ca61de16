"""UMAP coordinates of one experiment's kernels from R (losskernel.steps.embed)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.embed({"umap": sm.params.umap}, sm.params.task,
            correlation_paths=list(sm.input.correlation), embedding_path=sm.output.embedding,
            record=record)
