"""K(z,z) against flipped labels for one seed (losskernel.analyses.mislabels)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import analyses  # noqa: E402

sm = snakemake  # noqa: F821
analyses.mislabels(
    covariance_path=sm.input.covariance, traces_path=sm.input.traces,
    baselines_path=sm.input.baselines, metrics_path=sm.output.metrics,
    scores_path=sm.output.scores, record=record,
)
