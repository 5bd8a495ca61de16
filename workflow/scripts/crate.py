"""Pack the run into a Workflow Run RO-Crate, with its preview page for the report.

Rule crate (workflow/rules/crate.smk): losskernel.pipeline.paper.crate.
"""

import sys
from pathlib import Path

# The package is used from this checkout's src/, so a rule's environment needs only the
# third-party packages (envs/*.yaml), and the code that ran is the code of this commit.
CODE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CODE / "src"))

from losskernel.pipeline import run_script  # noqa: E402
from losskernel.pipeline.paper import crate  # noqa: E402

run_script(snakemake, crate, CODE)  # noqa: F821 - snakemake is given by Snakemake
