"""One experiment's metrics and headline rows (losskernel.steps.summarize)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.summarize(
    sm.wildcards.experiment, {int(seed): paths for seed, paths in sm.params.seed_metrics.items()},
    list(sm.params.experiment_metrics), sm.params.headline_metrics,
    summary_path=sm.output.summary, headline_path=sm.output.headline, record=record,
)
