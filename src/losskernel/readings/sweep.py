"""A sweep: experiments that differ in one setting (model size, say), their headline readings
side by side against one of their own metrics (the number of parameters)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

SWEEP_COLUMNS = ("sweep", "experiment", "x_metric", "x", "label_metric", "label", "panel",
                 "metric", "value", "model_spread", "models", "seed_spread", "seeds",
                 "diagnostics_passed")
"""The sweep table's columns (:func:`sweep_table`)."""
HEADLINE_COPIED = ("value", "model_spread", "models", "seed_spread", "seeds",
                   "diagnostics_passed")
"""The columns of a headline row (``losskernel.readings.summary.HEADLINE_COLUMNS``) that the
sweep table copies."""


def sweep_metrics(x_metric: str, label_metric: str | None,
                  panels: Mapping[str, Sequence[str]]) -> list[str]:
    """Every headline metric a sweep reads, each once: the axis, the label, the panels'."""
    return list(dict.fromkeys([x_metric, *([label_metric] if label_metric else []),
                               *(metric for metrics in panels.values() for metric in metrics)]))


def sweep_table(sweep: str, headlines: Mapping[str, pd.DataFrame], x_metric: str,
                panels: Mapping[str, Sequence[str]], label_metric: str | None = None
                ) -> pd.DataFrame:
    """The sweep's table (columns :data:`SWEEP_COLUMNS`): for every experiment of
    ``headlines`` (its headline rows, ``losskernel.readings.summary.model_headline``, in sweep
    order) and every metric of every panel, the headline row with the experiment's value of
    ``x_metric`` (``x``) and of ``label_metric`` (``label``, NaN without one) beside it.

    A metric the sweep names that an experiment's headline lacks is an error that names both.
    """
    rows, wanted = [], sweep_metrics(x_metric, label_metric, panels)
    for experiment, headline in headlines.items():
        indexed = headline.set_index("metric")
        missing = [metric for metric in wanted if metric not in indexed.index]
        if missing:
            raise ValueError(f"sweep {sweep}: the headline of {experiment} lacks {missing}; add "
                             f"them to its headline_metrics")
        x = float(indexed.loc[x_metric, "value"])
        label = float(indexed.loc[label_metric, "value"]) if label_metric else float("nan")
        for panel, metrics in panels.items():
            for metric in metrics:
                row = indexed.loc[metric]
                rows.append({"sweep": sweep, "experiment": experiment, "x_metric": x_metric,
                             "x": x, "label_metric": label_metric or "", "label": label,
                             "panel": panel, "metric": metric,
                             **{column: row[column] for column in HEADLINE_COPIED}})
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))
