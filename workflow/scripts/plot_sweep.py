"""A sweep's figure: every panel's metrics against the swept size.

Rule plot_sweep: losskernel.pipeline.figures.plot_sweep.
"""

import sys
from pathlib import Path

# The package is used from this checkout's src/, so a rule's environment needs only the
# third-party packages (envs/*.yaml), and the code that ran is the code of this commit.
CODE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CODE / "src"))

from losskernel.pipeline import run_script  # noqa: E402
from losskernel.pipeline.figures import plot_sweep  # noqa: E402

run_script(snakemake, plot_sweep, CODE)  # noqa: F821 - snakemake is given by Snakemake
