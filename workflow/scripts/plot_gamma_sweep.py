"""Figures of the γ sweep (losskernel.analyses.plot_gamma_sweep)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import start

record = start(snakemake)  # noqa: F821 - injected by Snakemake
from losskernel import analyses  # noqa: E402

sm = snakemake  # noqa: F821
analyses.plot_gamma_sweep(
    sm.wildcards.experiment, sm.params.localizations, cka_path=sm.input.cka,
    lift_path=sm.input.lift, convergence_paths=list(sm.input.convergence),
    cka_figure=sm.output.cka, lift_figure=sm.output.lift,
    convergence_figure=sm.output.convergence, record=record,
)
