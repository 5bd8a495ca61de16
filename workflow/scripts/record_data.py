"""Write the manifest of a data source: each file's size, sha256 and origin.

Rule record_data (workflow/rules/data.smk): losskernel.pipeline.models.record_data.
"""

import sys
from pathlib import Path

# The package is used from this checkout's src/, so a rule's environment needs only the
# third-party packages (envs/*.yaml), and the code that ran is the code of this commit.
CODE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CODE / "src"))

from losskernel.pipeline import run_script  # noqa: E402
from losskernel.pipeline.models import record_data  # noqa: E402

run_script(snakemake, record_data, CODE)  # noqa: F821 - snakemake is given by Snakemake
