"""Steps of the summaries: an experiment's metrics and headline rows, the headline table, the
paper's LaTeX macros."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from losskernel.pipeline.io import Files, Record, read_tsv
from losskernel.provenance import atomic_path, write_tsv
from losskernel.readings.summary import gather_metrics, headline_rows, latex_macros


def summarize_experiment(inputs: Files, outputs: Files, *, experiment: str, seeds: Sequence[int],
                         headline_metrics: Sequence[str], record: Record) -> None:
    """Every metric of every seed in one table (``summary``) and the experiment's headline
    rows (``headline``; see ``losskernel.readings.summary.headline_rows``).

    ``seed_metrics`` are the per-seed metric tables, seed by seed in the order of ``seeds``,
    the same readings for each; ``experiment_metrics`` hold one value per experiment.
    """
    paths = list(inputs["seed_metrics"])
    per_seed = len(paths) // len(seeds)
    seed_tables = {seed: [(str(path), read_tsv(path))
                          for path in paths[index * per_seed:(index + 1) * per_seed]]
                   for index, seed in enumerate(seeds)}
    gathered = gather_metrics(seed_tables, [(str(path), read_tsv(path))
                                            for path in inputs["experiment_metrics"]])
    write_tsv(gathered, outputs["summary"], record)
    write_tsv(headline_rows(experiment, gathered, headline_metrics, str(outputs["summary"])),
              outputs["headline"], record)


def headline_table(inputs: Files, outputs: Files, *, record: Record) -> None:
    """The experiments' headline rows (``fragments``) in one ``table``."""
    table = pd.concat([read_tsv(path) for path in inputs["fragments"]], ignore_index=True)
    write_tsv(table, outputs["table"], record)


def paper_macros(inputs: Files, outputs: Files, *,
                 settings: Mapping[str, Mapping[str, object]], record: Record) -> None:
    """One LaTeX macro per headline number of ``headline`` and per quoted setting, as
    ``macros`` (see ``losskernel.readings.summary.latex_macros``)."""
    comments = [f"% generated from {inputs['headline']}; do not edit",
                *(f"% {key}: {value}" for key, value in record.items() if key != "config")]
    with atomic_path(outputs["macros"]) as partial:
        partial.write_text(latex_macros(read_tsv(inputs["headline"]), settings, comments))
