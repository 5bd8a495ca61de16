"""Mislabel scores that need no SGLD (losskernel.analyses.mislabel_baselines)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import analyses  # noqa: E402

sm = snakemake  # noqa: F821
analyses.mislabel_baselines(
    sm.params.task, sm.params.data, sm.params.kernel_inputs, sm.params.mislabels,
    model_path=sm.input.model, checkpoints_path=sm.input.checkpoints,
    output_path=sm.output.scores, record=record, threads=sm.threads,
)
