"""Pretrained weights and checkpoints as model files (losskernel.steps.import_pretrained)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.import_pretrained(
    sm.params.task, sm.params.data, sm.params.model,
    model_path=sm.output.model, checkpoints_path=sm.output.checkpoints, record=record,
)
