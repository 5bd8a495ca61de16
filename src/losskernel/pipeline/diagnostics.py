"""Steps of the sampler's diagnostics: each run's draws judged (R-hat, ESS, stationarity,
Monte-Carlo error of R), an experiment's runs in one table, and the calibration of the SGLD
settings over a grid of short runs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from losskernel.method.kernel import load_kernel
from losskernel.method.traces import load_traces
from losskernel.pipeline.io import Files, Record, read_tsv, warn, write_metrics
from losskernel.provenance import write_tsv


def diagnose_run(inputs: Files, outputs: Files, *, run_label: str, bounds: Mapping[str, Any],
                 record: Record) -> None:
    """Diagnostics of one run's ``traces``: a row per kernel input (``table``: split R-hat,
    bulk and tail ESS, MCSE of the mean loss, between-chain share of K(z,z)) and the run's
    summary (``summary``, with ``inputs_out_of_bounds``). Inputs outside ``bounds``
    (``max_rhat``, ``min_ess``) and a non-stationary minibatch loss are warned about."""
    from losskernel.readings.diagnostics import (
        out_of_bounds,
        out_of_bounds_message,
        run_diagnostics,
    )

    table, summary = run_diagnostics(load_traces(inputs["traces"]), bounds["batches"])
    flagged = out_of_bounds(table, bounds["max_rhat"], bounds["min_ess"])
    summary["inputs_out_of_bounds"] = len(flagged)
    summary["share_out_of_bounds"] = len(flagged) / len(table)
    message = out_of_bounds_message(run_label, table, bounds["max_rhat"], bounds["min_ess"])
    if message is not None:
        warn(message)
    if summary["constant_inputs"] > 0:
        warn(f"run {run_label}: {int(summary['constant_inputs'])} of {len(table)} inputs have "
             f"losses that never vary; they get zero rows in R and neutral votes")
    if summary["max_abs_stationarity_z"] > bounds["max_stationarity_z"]:
        warn(f"sampling diagnostics of run {run_label}: the minibatch loss is not stationary "
             f"(|Geweke z| = {summary['max_abs_stationarity_z']:.2f} > "
             f"{bounds['max_stationarity_z']}); raise sampling.num_burnin_steps")
    write_tsv(table, outputs["table"], record)
    write_metrics(summary, outputs["summary"], record)


def diagnostics(inputs: Files, outputs: Files, *, runs: Sequence[str], main_runs: Sequence[str],
                record: Record) -> None:
    """An experiment's runs in one ``table`` (a row per run, in order ``runs``), and its
    ``metrics``: the worst R-hat over the main runs, the median of their median bulk ESS, and
    the seed-to-seed CKA of their kernels K (``seed_to_seed_cka``; of R beside it)."""
    from losskernel.readings.diagnostics import seed_to_seed_cka

    table = pd.DataFrame([read_tsv(path).set_index("metric")["value"].rename(run)
                          for run, path in zip(runs, inputs["summaries"], strict=True)])
    table.index.name = "run"
    main = table.loc[list(main_runs)]
    values = {
        "worst_rhat": float(main["worst_rhat"].max()),
        "median_ess_bulk": float(main["median_ess_bulk"].median()),
        "seed_to_seed_cka": seed_to_seed_cka(
            [load_kernel(path)["kernel"].values for path in inputs["covariance"]]),
        "seed_to_seed_cka_R": seed_to_seed_cka(
            [load_kernel(path)["kernel"].values for path in inputs["correlation"]]),
    }
    write_tsv(table.reset_index(), outputs["table"], record)
    write_metrics(values, outputs["metrics"], record)


def calibration_point(inputs: Files, outputs: Files, *, task: str, settings: Mapping[str, Any],
                      seed: int, sampling: Mapping[str, Any], record: Record,
                      threads: int = 1) -> None:
    """One setting of the calibration grid: its short chains sampled in this process, their
    ``summary`` (:func:`losskernel.readings.calibration.point_summary`) with the setting. A
    sampler that diverges is recorded as diverged, not raised."""
    from losskernel.method.chains import SamplingDivergedError
    from losskernel.pipeline.sampling import sample_traces
    from losskernel.readings.calibration import SETTING, point_summary

    setting = {key: float(sampling[key]) for key in SETTING}
    try:
        traces, num_classes = sample_traces(inputs, task=task, settings=settings, seed=seed,
                                            sampling=sampling, threads=threads)
        summary = point_summary(traces, chance_loss=math.log(num_classes))
    except SamplingDivergedError as error:
        print(f"diverged: {error}")
        summary = {"finite": 0.0, "diverged": 1.0}
    write_metrics({**setting, **summary}, outputs["summary"], record)


def calibrate_experiment(inputs: Files, outputs: Files, *, experiment: str,
                         configured: Mapping[str, float], bounds: Mapping[str, Any],
                         main_draws: int, calibration_draws: int, record: Record) -> None:
    """The calibration ``table`` (a row per setting: its summary, ``status`` and ``reason``)
    and ``figure``; prints the suggested setting. The main runs' R-hat and ESS bounds are
    carried to the calibration's shorter chains
    (:func:`losskernel.readings.calibration.bounds_for_draws`)."""
    from losskernel.plotting.calibration import plot_calibration
    from losskernel.readings.calibration import (
        Bounds,
        bounds_for_draws,
        classify,
        is_configured,
        suggest,
    )

    rows = [read_tsv(path).set_index("metric")["value"] for path in inputs["points"]]
    max_rhat, min_ess = bounds_for_draws(bounds["max_rhat"], bounds["min_ess"], main_draws,
                                         calibration_draws)
    table = classify(pd.DataFrame(rows).reset_index(drop=True), Bounds(
        max_rhat=max_rhat, min_ess=min_ess, max_stationarity_z=bounds["max_stationarity_z"],
        min_control_z=bounds["min_control_z"]))
    suggestion = suggest(table)
    table["configured"] = is_configured(table, configured)
    table["suggested"] = False
    if suggestion is not None:
        table.loc[suggestion.name, "suggested"] = True
    write_tsv(table, outputs["table"], record)
    plot_calibration(table, configured, outputs["figure"], record)
    print(calibration_verdict(experiment, table))


def calibration_verdict(experiment: str, table: pd.DataFrame) -> str:
    """What the calibration says, in a few lines: every setting's status (the nβ = 0 controls
    left out), then the configured setting's and the suggestion."""
    def setting(row) -> str:
        return (f"step_size {row.step_size:g}, nbeta {row.nbeta:g}, localization "
                f"{row.localization:g}: {row.status}"
                + (f" ({row.reason})" if isinstance(row.reason, str) and row.reason else ""))

    graded = table[table["status"] != "control"]
    lines = [f"calibration of {experiment}: {int((table['status'] == 'pass').sum())} of "
             f"{len(graded)} settings pass",
             *(f"  {setting(row)}" for row in graded.itertuples())]
    for label, column in (("configured", "configured"), ("suggested", "suggested")):
        lines += [f"  {label}: {setting(row)}" for row in table[table[column]].itertuples()]
    if not table["suggested"].any():
        lines.append("  no setting passes: widen the grid (analysis.calibration)")
    return "\n".join(lines)
