"""Step of the gates: an experiment's results checked before they reach the headline table."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from losskernel.errors import CheckFailed
from losskernel.pipeline.io import Files, Record, read_tsv, warn
from losskernel.provenance import read_provenance, write_tsv


def check_experiment(inputs: Files, outputs: Files, *, experiment: str, seeds: Sequence[int],
                     main_runs: Sequence[str], checks: Mapping[str, Any], trained: bool,
                     allow_unconverged: bool, record: Record) -> None:
    """The experiment's gates (``losskernel.readings.checks``) as the table ``checks``; raises
    ``CheckFailed`` naming every failed one.

    Inputs: ``headline`` and ``summary`` (the experiment's), ``model`` (its model file, whose
    provenance says whether training met its target, when ``trained`` here) and, when it has
    diagnostics,
    ``diagnostics`` (a row per run). ``checks`` are the bounds of ``analysis.checks``.
    """
    from losskernel.readings import checks as gates

    headline, summary = read_tsv(inputs["headline"]), read_tsv(inputs["summary"])
    model = str(inputs["model"])
    rows = [*gates.finite_headline(experiment, headline),
            *gates.every_seed(experiment, summary, list(headline["metric"]), seeds),
            *gates.converged(experiment, model, trained, read_provenance(model).get("training"),
                             allow_unconverged)]
    if "diagnostics" in inputs:
        rows += gates.rhat_within_bound(experiment, read_tsv(inputs["diagnostics"]), main_runs,
                                        checks["max_rhat"])
    if checks["positive_control"]:
        rows += gates.positive_control(experiment, summary, checks["max_control_z"],
                                       checks["max_control_entry_z2"])
    table = gates.checks_table(rows)
    write_tsv(table, outputs["checks"], record)
    print(table.to_string(index=False))
    message = gates.failures(table)
    if message is not None:
        if sys.stdout is not sys.__stdout__:  # in a rule's log: say it on the terminal too
            warn(message, label="CHECK FAILED")
        raise CheckFailed(message)
