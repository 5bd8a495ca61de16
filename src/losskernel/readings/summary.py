"""Summaries of an experiment: every metric in one table, the headline rows, the LaTeX macros."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def gather_metrics(seed_tables: Mapping[int, Sequence[tuple[str, pd.DataFrame]]],
                   experiment_tables: Sequence[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Every metric of every seed in one table: columns ``metric, seed, value, source``.

    ``seed_tables`` maps each SGLD seed to its ``(name, metrics table)`` pairs;
    ``experiment_tables`` are ``(name, metrics table)`` pairs of metrics with one value per
    experiment (the trajectory's gain), whose ``seed`` is missing (``pd.NA``). A metrics table
    has columns ``metric, value``; ``source`` is its name (e.g. the file it was read from).
    """
    tables = [table.assign(seed=seed, source=name)
              for seed, named_tables in seed_tables.items() for name, table in named_tables]
    tables += [table.assign(seed=pd.NA, source=name) for name, table in experiment_tables]
    gathered = pd.concat(tables, ignore_index=True)
    return gathered[["metric", "seed", "value", "source"]]


def headline_rows(experiment: str, gathered: pd.DataFrame, headline_metrics: Sequence[str],
                  source: str) -> pd.DataFrame:
    """The experiment's headline rows: ``experiment, metric, value, spread, n, source``.

    ``gathered`` is the table of :func:`gather_metrics` and ``source`` names it. Metrics with
    one value per experiment are reported with ``n = 1`` and no spread (NaN). A per-seed
    headline value is the mean over the seeds whose value is finite, its spread their standard
    deviation (ddof 1; NaN below two) and ``n`` their number: a seed without a finite value
    counts nowhere, and the ``check`` rule names it. ``cross_task_z`` is the exception: the
    seeds' cross-task covariances ``c_s`` are averaged and divided by their combined standard
    error ``sqrt(sum se_s²) / n``; the value is that signed z and the spread is the standard
    deviation of the seeds' own signed z.
    """
    per_seed = gathered.dropna(subset=["seed"])
    wide = per_seed.pivot(index="seed", columns="metric", values="value").astype(float)
    single = gathered[gathered["seed"].isna()].set_index("metric")["value"]
    rows = []
    for metric in headline_metrics:
        if metric in single:
            value, spread, n = float(single[metric]), float("nan"), 1
        elif metric == "cross_task_z":
            value, spread, n = combined_z(wide)
        elif metric in wide:
            value, spread, n = finite_mean(wide[metric].to_numpy())
        else:
            raise ValueError(f"headline metric {metric!r} of {experiment} is in none of the "
                             f"metric tables; they hold {sorted({*wide.columns, *single.index})}")
        rows.append({"experiment": experiment, "metric": metric, "value": value,
                     "spread": spread, "n": n, "source": source})
    return pd.DataFrame(rows)


def finite_mean(values: np.ndarray) -> tuple[float, float, int]:
    """``(mean, standard deviation (ddof 1), n)`` of the finite ``values``; NaN mean without
    any, NaN spread below two."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    mean = float(finite.mean()) if finite.size else float("nan")
    spread = float(finite.std(ddof=1)) if finite.size >= 2 else float("nan")
    return mean, spread, int(finite.size)


def combined_z(wide: pd.DataFrame) -> tuple[float, float, int]:
    """The seeds' pooled cross-task z, the spread of their own z and their number (see
    :func:`headline_rows`), over the seeds whose covariance, standard error and z are all
    finite; ``wide`` has a row per seed and a column per metric."""
    names = ["cross_task_K", "cross_task_K_se", "cross_task_z"]
    if not set(names) <= set(wide.columns):
        return float("nan"), float("nan"), 0
    columns = wide[names]
    usable = columns[np.isfinite(columns.to_numpy()).all(axis=1)]
    n = len(usable)
    if n == 0:
        return float("nan"), float("nan"), 0
    combined_se = np.sqrt((usable["cross_task_K_se"] ** 2).sum()) / n
    _, spread, _ = finite_mean(usable["cross_task_z"].to_numpy())
    return float(usable["cross_task_K"].mean() / combined_se), spread, n


def latex_macros(headline: pd.DataFrame, settings: Mapping[str, Mapping[str, object]],
                 comment_lines: Sequence[str]) -> str:
    """The text of ``macros.tex``: one LaTeX macro per headline number (value, spread and n)
    and per quoted setting, after the caller's ``comment_lines`` (each one line starting with
    ``%``, without its newline).

    ``toy roc_auc`` becomes ``\\lkToyRocAuc`` (value, 3 decimals; none from 100 up),
    ``\\lkToyRocAucSpread`` (``--`` without spread) and ``\\lkToyRocAucN``; the setting
    ``knn_k`` of ``toy`` becomes ``\\lkToySettingKnnK``. Macro names keep letters only.
    """
    for line in comment_lines:
        if not line.startswith("%") or "\n" in line:
            raise ValueError(f"a comment line of macros.tex must be one line starting with '%', "
                             f"got {line!r}")
    lines = [f"{line}\n" for line in comment_lines]
    for row in headline.itertuples():
        name = "lk" + _camel(f"{row.experiment} {row.metric}")
        lines.append(f"\\newcommand{{\\{name}}}{{{_number(row.value)}}}\n")
        spread = "--" if pd.isna(row.spread) else _number(row.spread)
        lines.append(f"\\newcommand{{\\{name}Spread}}{{{spread}}}\n")
        lines.append(f"\\newcommand{{\\{name}N}}{{{int(row.n)}}}\n")
    for experiment, values in settings.items():
        for key, value in values.items():
            name = "lk" + _camel(f"{experiment} setting {key}")
            lines.append(f"\\newcommand{{\\{name}}}{{{value}}}\n")
    return "".join(lines)


def _number(value: float) -> str:
    """3 decimals; from 100 up (an effective sample size) none."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3f}"


def _camel(text: str) -> str:
    words = "".join(c if c.isalpha() else " " for c in text).split()
    return "".join(word[:1].upper() + word[1:] for word in words)
