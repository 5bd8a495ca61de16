"""The experiment's headline over its trained models, and its comparisons paired by model.

Rule summarize_models: losskernel.pipeline.paper.summarize_models.
"""

import sys
from pathlib import Path

# The package is used from this checkout's src/, so a rule's environment needs only the
# third-party packages (envs/*.yaml), and the code that ran is the code of this commit.
CODE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CODE / "src"))

from losskernel.pipeline import run_script  # noqa: E402
from losskernel.pipeline.paper import summarize_models  # noqa: E402

run_script(snakemake, summarize_models, CODE)  # noqa: F821 - snakemake is given by Snakemake
