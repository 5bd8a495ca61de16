"""CKA and neighbour lift across γ (losskernel.analyses.gamma_sweep)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import analyses  # noqa: E402

sm = snakemake  # noqa: F821
sweep = sm.params.gamma_sweep
analyses.gamma_sweep(
    sm.params.task, sweep["localizations"], sweep,
    covariance_paths=list(sm.input.covariance), correlation_paths=list(sm.input.correlation),
    cka_path=sm.output.cka, lift_path=sm.output.lift, record=record,
)
