"""Save the run's whole config, resolved, as the file its hash names.

Rule run_config: losskernel.provenance.save_run_config.
"""

import sys
from pathlib import Path

CODE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CODE / "src"))

from losskernel.provenance import config_sha256, save_run_config  # noqa: E402

sm = snakemake  # noqa: F821 - given by Snakemake
if config_sha256(sm.config) != sm.wildcards.sha256:
    sys.exit(f"{sm.output.config}: this run's config has the hash {config_sha256(sm.config)}; "
             f"ask for that file (rule all does), not for another run's")
save_run_config(sm.config, Path(sm.output.config).parent)
