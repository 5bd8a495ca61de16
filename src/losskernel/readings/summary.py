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


HEADLINE_COLUMNS = ("experiment", "metric", "value", "model_spread", "models", "seed_spread",
                    "seeds", "diagnostics_passed", "source")
"""The headline table's columns (:func:`model_headline`)."""
COMPARISON_COLUMNS = ("experiment", "kernel", "baseline", "kernel_value", "baseline_value",
                      "difference", "model_spread", "models", "kernel_better_in", "source")
"""The comparisons table's columns (:func:`paired_comparisons`)."""


def model_headline(experiment: str, per_model: Sequence[pd.DataFrame],
                   diagnostics_passed: Mapping[str, bool], source: str) -> pd.DataFrame:
    """The experiment's headline over its trained models, a row per metric (columns
    :data:`HEADLINE_COLUMNS`, metrics in model 0's order).

    ``per_model`` are the models' own headline rows (:func:`headline_rows`, model 0 first;
    a replicate lacks the metrics of model 0's analyses). For each metric, with ``m_i`` model
    i's value (its mean over seeds) and ``s_i`` its spread over seeds:

    - ``value`` is the mean of the finite ``m_i``, ``model_spread`` their standard deviation
      (ddof 1; NaN below two models) and ``models`` their number: the spread that includes
      how training lands on a different model;
    - ``seed_spread`` is the pooled spread over SGLD seeds within a model,
      ``sqrt(mean_i s_i²)`` over the models that have one (NaN when none does), and ``seeds``
      the fewest seeds behind any model's value;
    - ``diagnostics_passed`` says whether every run behind the metric, in every model, passed
      the sampler diagnostics (:func:`runs_pass`).
    """
    rows, indexed = [], [table.set_index("metric") for table in per_model]
    for metric in indexed[0].index:
        found = [table.loc[metric] for table in indexed if metric in table.index]
        value, model_spread, models = finite_mean(np.array([row["value"] for row in found]))
        spreads = np.array([row["spread"] for row in found], dtype=float)
        spreads = spreads[np.isfinite(spreads)]
        rows.append({"experiment": experiment, "metric": metric, "value": value,
                     "model_spread": model_spread, "models": models,
                     "seed_spread": float(np.sqrt(np.mean(spreads**2))) if spreads.size
                     else float("nan"),
                     "seeds": int(min(row["n"] for row in found)),
                     "diagnostics_passed": bool(diagnostics_passed[metric]), "source": source})
    return pd.DataFrame(rows, columns=list(HEADLINE_COLUMNS))


def paired_comparisons(experiment: str, per_model: Sequence[pd.DataFrame],
                       pairs: Sequence[Sequence[str]], source: str) -> pd.DataFrame:
    """Each ``(kernel, baseline)`` metric pair of ``pairs`` compared model by model (columns
    :data:`COMPARISON_COLUMNS`).

    ``per_model`` are the models' summaries (:func:`gather_metrics`). Within model i both
    metrics are averaged over its seeds (:func:`headline_rows`) and differenced,
    ``d_i = kernel_i − baseline_i``; ``difference`` is the mean of the finite ``d_i``,
    ``model_spread`` their standard deviation (ddof 1) and ``models`` their number.
    Pairing by model removes what the two share (the model's own luck), so the spread is that
    of the difference, not of either number. ``kernel_better_in`` counts the models where
    ``d_i > 0`` (every metric compared here is better when higher).
    """
    rows = []
    for kernel, baseline in pairs:
        means = np.array([headline_rows(experiment, summary, [kernel, baseline], source)
                          ["value"].to_numpy() for summary in per_model])
        differences = means[:, 0] - means[:, 1]
        difference, spread, models = finite_mean(differences)
        rows.append({"experiment": experiment, "kernel": kernel, "baseline": baseline,
                     "kernel_value": finite_mean(means[:, 0])[0],
                     "baseline_value": finite_mean(means[:, 1])[0], "difference": difference,
                     "model_spread": spread, "models": models,
                     "kernel_better_in": int((differences > 0).sum()), "source": source})
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


def runs_pass(diagnostics: pd.DataFrame, max_rhat: float, min_median_ess: float) -> pd.Series:
    """Whether each run of a diagnostics table (a row per run, with ``worst_rhat`` and
    ``median_ess_bulk``) passed: its worst split R-hat at most ``max_rhat`` (the gate of the
    ``check`` rule) and the median input's bulk ESS at least ``min_median_ess``. A NaN fails."""
    table = diagnostics.set_index("run")
    return ((table["worst_rhat"] <= max_rhat)
            & (table["median_ess_bulk"] >= min_median_ess)).rename("passed")


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


def latex_macros(headline: pd.DataFrame, comparisons: pd.DataFrame,
                 settings: Mapping[str, Mapping[str, object]],
                 comment_lines: Sequence[str]) -> str:
    """The text of ``macros.tex``: LaTeX macros for every headline number, every comparison
    and every quoted setting, after the caller's ``comment_lines`` (each one line starting
    with ``%``, without its newline).

    The headline row ``toy roc_auc`` (:func:`model_headline`) becomes ``\\lkToyRocAuc`` (the
    value, 3 decimals; none from 100 up), ``\\lkToyRocAucModelSpread`` and
    ``\\lkToyRocAucSeedSpread`` (``--`` without one), ``\\lkToyRocAucModels`` and
    ``\\lkToyRocAucSeeds`` (the counts), and ``\\lkToyRocAucMark``: empty when the
    diagnostics passed, else a dagger that the text explains. The comparison ``toy a`` minus
    ``b`` (:func:`paired_comparisons`) becomes ``\\lkToyAMinusB`` (the mean difference),
    ``...Spread`` (across models), ``...Models`` and ``...Better`` (models where the kernel
    wins). The setting ``knn_k`` of ``toy`` becomes ``\\lkToySettingKnnK``. Macro names
    keep letters only.
    """
    for line in comment_lines:
        if not line.startswith("%") or "\n" in line:
            raise ValueError(f"a comment line of macros.tex must be one line starting with '%', "
                             f"got {line!r}")
    lines = [f"{line}\n" for line in comment_lines]
    defined: set[str] = set()

    def define(name: str, text: object) -> None:
        if name in defined:  # names keep letters only: fashion-c2 and fashion-c4 would meet
            raise ValueError(f"two numbers of macros.tex would both be \\{name}; rename an "
                             f"experiment or a metric so that their letters differ")
        defined.add(name)
        lines.append(f"\\newcommand{{\\{name}}}{{{text}}}\n")

    for row in headline.itertuples():
        name = macro_name(f"{row.experiment} {row.metric}")
        define(name, _number(row.value))
        define(f"{name}ModelSpread", _spread(row.model_spread))
        define(f"{name}Models", int(row.models))
        define(f"{name}SeedSpread", _spread(row.seed_spread))
        define(f"{name}Seeds", int(row.seeds))
        define(f"{name}Mark", "" if _passed(row.diagnostics_passed) else "\\textsuperscript{\\dag}")
    for row in comparisons.itertuples():
        name = macro_name(f"{row.experiment} {row.kernel} minus {row.baseline}")
        define(name, _number(row.difference))
        define(f"{name}Spread", _spread(row.model_spread))
        define(f"{name}Models", int(row.models))
        define(f"{name}Better", int(row.kernel_better_in))
    for experiment, values in settings.items():
        for key, value in values.items():
            define(macro_name(f"{experiment} setting {key}"), value)
    return "".join(lines)


def _passed(value: object) -> bool:
    """A ``diagnostics_passed`` cell as read back from a TSV (a bool or the text True)."""
    return str(value) == "True"


def _spread(value: float) -> str:
    return "--" if pd.isna(value) else _number(value)


def _number(value: float) -> str:
    """3 decimals; from 100 up (an effective sample size) none."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3f}"


def macro_name(text: str) -> str:
    """The LaTeX macro of a headline row, comparison or setting: ``lk`` and the words of
    ``text`` capitalized, letters only (``toy roc_auc`` -> ``lkToyRocAuc``)."""
    return "lk" + _camel(text)


def _camel(text: str) -> str:
    words = "".join(c if c.isalpha() else " " for c in text).split()
    return "".join(word[:1].upper() + word[1:] for word in words)
