"""results/tables/headline.tsv from the experiments' headline rows (losskernel.steps.headline)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.headline(list(sm.input.fragments), output_path=sm.output.table, record=record)
