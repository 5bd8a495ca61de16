"""The covariance or correlation kernel of one trace file (losskernel.steps.kernel)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.kernel(sm.input.traces, sm.wildcards.kind, sm.params.centring,
             kernel_path=sm.output.kernel, record=record)
