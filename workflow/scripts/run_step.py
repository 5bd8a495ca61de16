"""Run one job of the workflow: its rule's step of losskernel.pipeline, logged, with provenance.

Every rule runs this script. Its params carry the step's name and the job's arguments, its
input and output files are the job's files, all from the plan (losskernel.dag), so the job is
the one `losskernel <rule>` runs outside Snakemake. The provenance of its outputs names the
run's whole resolved config (snakemake.config, not a param: a param would rerun every job when
any setting changed) by its hash, saved under results/provenance/configs/.
"""

import sys
from pathlib import Path

# The package is used from this checkout's src/, so a rule's environment needs only the
# third-party packages (envs/*.yaml), and the code that ran is the code of this commit.
CODE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CODE / "src"))

from losskernel.job import Job  # noqa: E402
from losskernel.pipeline import run_logged  # noqa: E402

sm = snakemake  # noqa: F821 - injected by Snakemake


def files(named) -> dict:
    """Snakemake's named files as a dict: name -> path, or a list of paths."""
    return {name: value if isinstance(value, str) else list(value)
            for name, value in named.items()}


job = Job(rule=sm.rule, step=sm.params.step, wildcards=dict(sm.wildcards.items()),
          inputs=files(sm.input), outputs=files(sm.output), arguments=sm.params.arguments)
run_logged(job, sm.log[0], sm.threads, code_dir=CODE, run_config=sm.config)
