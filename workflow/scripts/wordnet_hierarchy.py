"""The WordNet place of every ImageNet-1k class (losskernel.steps.wordnet_hierarchy)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.wordnet_hierarchy(
    sm.params.wordnet["nltk_data"], sm.params.wordnet["debian_dir"],
    output_path=sm.output.table, record=record,
)
