"""paper/generated/macros.tex from the headline table (losskernel.steps.latex_macros)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.latex_macros(sm.input.headline, sm.params.settings, output_path=sm.output.macros,
                   record=record)
