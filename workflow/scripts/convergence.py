"""CKA convergence of one run's kernel (losskernel.analyses.convergence)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import analyses  # noqa: E402

sm = snakemake  # noqa: F821
analyses.convergence(sm.input.traces, sm.params.centring, sm.params.num_points,
                     curve_path=sm.output.curve, metrics_path=sm.output.metrics, record=record)
