"""Print each experiment's calibration verdict: every setting's pass/fail and the suggestion.

Target calibrate: losskernel.pipeline.diagnostics.calibration_verdict of each table.
"""

import sys
from pathlib import Path

CODE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CODE / "src"))

from losskernel.pipeline.diagnostics import calibration_verdict  # noqa: E402
from losskernel.pipeline.io import read_tsv  # noqa: E402

sm = snakemake  # noqa: F821 - given by Snakemake
verdicts = [calibration_verdict(experiment, read_tsv(table))
            for experiment, table in zip(sm.params.experiments, sm.input.tables, strict=True)]
print(*verdicts, sep="\n", flush=True)
Path(sm.log[0]).write_text("\n".join(verdicts) + "\n")
