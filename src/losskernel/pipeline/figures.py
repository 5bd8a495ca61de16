"""Steps of the figures: they only draw, from computed tables and kernels, so restyling a
figure never re-samples. Each figure's PNG metadata carries the provenance record, and names
the step that ran and the function that drew it (``step``, ``draw``: the paper's captions
quote them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from losskernel.pipeline.io import Files, Record, load_inputs, read_tsv
from losskernel.tasks import load_task
from losskernel.tasks.protocol import resolve_callable


def save_figures(figures: Mapping[str, Any], outputs: Files, record: Record, *,
                 step: Callable, draw: Callable) -> None:
    """Save each figure to the output of the same name; a missing or extra one is an error.

    Each figure's record adds ``step`` and ``draw``, the dotted names of the pipeline step
    that ran and of the function that drew the figures (``module.qualname``)."""
    from losskernel.plotting import save_figure

    if set(figures) != set(outputs):
        raise ValueError(f"the figures drawn ({sorted(figures)}) are not the rule's outputs "
                         f"({sorted(outputs)})")
    record = {**record, "step": dotted_name(step), "draw": dotted_name(draw)}
    for name, figure in figures.items():
        save_figure(figure, outputs[name], record)


def dotted_name(function: Callable) -> str:
    """``module.qualname`` of a function, e.g. ``losskernel.pipeline.figures.plot_mislabels``
    (of its class for another callable)."""
    named = function if hasattr(function, "__qualname__") else type(function)
    return f"{named.__module__}.{named.__qualname__}"


def plot_gamma_sweep(inputs: Files, outputs: Files, *, experiment: str,
                     localizations: Sequence[float], record: Record) -> None:
    """The γ sweep: CKA matrix and its noise ceiling (``cka``), lift against γ (``lift``),
    CKA convergence per γ (``convergence``)."""
    from losskernel.plotting.figures import gamma_sweep_figures

    save_figures(gamma_sweep_figures(
        experiment, localizations, read_tsv(inputs["cka"]), read_tsv(inputs["lift"]),
        [read_tsv(path) for path in inputs["convergence"]], read_tsv(inputs["ceiling"])),
        outputs, record, step=plot_gamma_sweep, draw=gamma_sweep_figures)


def plot_diagnostics(inputs: Files, outputs: Files, *, experiment: str,
                     main_runs: Sequence[str], bounds: Mapping[str, Any],
                     record: Record) -> None:
    """The sampler diagnostics of an experiment (``diagnostics``): per-input R-hat, ESS and
    between-chain share of the main runs (``inputs``), and every run's summary (``runs``)."""
    from losskernel.plotting.diagnostics import diagnostics_figure

    per_input = {run: read_tsv(path) for run, path in zip(main_runs, inputs["inputs"],
                                                           strict=True)}
    save_figures({"diagnostics": diagnostics_figure(experiment, per_input,
                                                    read_tsv(inputs["runs"]), bounds)},
                 outputs, record, step=plot_diagnostics, draw=diagnostics_figure)


def plot_mislabels(inputs: Files, outputs: Files, *, experiment: str, figure_seed: int,
                   record: Record) -> None:
    """The mislabel analysis at the figure seed: ROC curves of K(z, z) and every baseline
    (``roc``), the K(z, z) histograms (``self_covariance``), the UMAP with flipped labels
    marked (``umap``)."""
    from losskernel.plotting.figures import mislabel_figures

    save_figures(mislabel_figures(
        experiment, figure_seed, read_tsv(inputs["scores"]), read_tsv(inputs["metrics"]),
        read_tsv(inputs["embedding"])), outputs, record, step=plot_mislabels,
        draw=mislabel_figures)


def plot_trajectory(inputs: Files, outputs: Files, *, experiment: str, record: Record) -> None:
    """The development: structure scores per checkpoint (``score``), UMAPs of R at every
    checkpoint (``umap``)."""
    from losskernel.plotting.figures import trajectory_figures

    save_figures(trajectory_figures(experiment, read_tsv(inputs["table"]),
                                    read_tsv(inputs["embedding"])), outputs, record,
                 step=plot_trajectory, draw=trajectory_figures)


def plot_figures(inputs: Files, outputs: Files, *, experiment: str, task: str, figures: str,
                 settings: Mapping[str, Any], record: Record) -> None:
    """A task's own figure set (a :class:`~losskernel.tasks.protocol.FigureSet`), drawn from
    its declared inputs."""
    module = load_task(task)
    declaration = next(f for f in module.FIGURES if f.name == figures)
    draw = resolve_callable(declaration.draw)
    drawn = draw(experiment, module, settings, **load_inputs(inputs))
    save_figures(drawn, outputs, record, step=plot_figures, draw=draw)


def plot_sweep(inputs: Files, outputs: Files, *, sweep: str, record: Record) -> None:
    """A sweep's figure (``sweep``): every panel's metrics against the swept size, from its
    ``table``."""
    from losskernel.plotting.sweep import sweep_figure

    save_figures({"sweep": sweep_figure(read_tsv(inputs["table"]))}, outputs, record,
                 step=plot_sweep, draw=sweep_figure)
