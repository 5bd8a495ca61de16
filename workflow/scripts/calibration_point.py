"""Short SGLD chains at one setting of the calibration grid.

Rule calibration_point: losskernel.pipeline.diagnostics.calibration_point.
"""

import sys
from pathlib import Path

# The package is used from this checkout's src/, so a rule's environment needs only the
# third-party packages (envs/*.yaml), and the code that ran is the code of this commit.
CODE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CODE / "src"))

from losskernel.pipeline import run_script  # noqa: E402
from losskernel.pipeline.diagnostics import calibration_point  # noqa: E402

run_script(snakemake, calibration_point, CODE)  # noqa: F821 - snakemake is given by Snakemake
