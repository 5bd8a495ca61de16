"""Mislabeled points from the kernel's self-covariance, at one seed, beside the baselines.

Rule mislabel_detection: losskernel.pipeline.analysis.mislabel_detection.
"""

import sys
from pathlib import Path

# The package is used from this checkout's src/, so a rule's environment needs only the
# third-party packages (envs/*.yaml), and the code that ran is the code of this commit.
CODE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CODE / "src"))

from losskernel.pipeline import run_script  # noqa: E402
from losskernel.pipeline.analysis import mislabel_detection  # noqa: E402

run_script(snakemake, mislabel_detection, CODE)  # noqa: F821 - snakemake is given by Snakemake
