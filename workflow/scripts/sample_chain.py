"""One SGLD chain of a run, resumable after a kill (losskernel.steps.sample)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import steps  # noqa: E402

sm = snakemake  # noqa: F821
run = sm.params.run
steps.sample(
    sm.params.task, sm.params.data, sm.params.kernel_inputs, run["sampling"], run["seed"],
    model_path=sm.input.model, traces_path=sm.output.traces, record=record,
    checkpoint=run["checkpoint"], threads=sm.threads, chains=[sm.params.chain],
    state_dir=sm.params.state_dir,
)
