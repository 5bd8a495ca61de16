"""Train one experiment's model (losskernel.steps.train)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.train(
    sm.params.task, sm.params.data, sm.params.model, sm.params.training,
    model_path=sm.output.model, checkpoints_path=sm.output.checkpoints,
    history_path=sm.output.history, record=record, threads=sm.threads,
)
