"""The baselines of mislabel detection: losses at the optimum and over training.

Rule mislabel_baselines: losskernel.pipeline.analysis.mislabel_baselines.
"""

import sys
from pathlib import Path

# The package is used from this checkout's src/, so a rule's environment needs only the
# third-party packages (envs/*.yaml), and the code that ran is the code of this commit.
CODE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CODE / "src"))

from losskernel.pipeline import run_script  # noqa: E402
from losskernel.pipeline.analysis import mislabel_baselines  # noqa: E402

run_script(snakemake, mislabel_baselines, CODE)  # noqa: F821 - snakemake is given by Snakemake
