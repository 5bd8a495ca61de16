"""The chains of a run in one trace file (losskernel.steps.merge_chains)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.merge_chains(list(sm.input.chains), traces_path=sm.output.traces, record=record)
