"""A trained model's size and final accuracies.

Rule describe_model: losskernel.pipeline.models.describe_model.
"""

import sys
from pathlib import Path

# The package is used from this checkout's src/, so a rule's environment needs only the
# third-party packages (envs/*.yaml), and the code that ran is the code of this commit.
CODE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CODE / "src"))

from losskernel.pipeline import run_script  # noqa: E402
from losskernel.pipeline.models import describe_model  # noqa: E402

run_script(snakemake, describe_model, CODE)  # noqa: F821 - snakemake is given by Snakemake
