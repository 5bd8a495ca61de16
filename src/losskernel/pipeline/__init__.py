"""The pipeline's steps: load files, call the method and the readings, write with provenance.

One function per step, named after its workflow rule; the rules of the tasks' declarations
share three (``make_data_file``, ``score_reading``, ``plot_figures``). A step takes the job's
input and output files as mappings (name -> path, or a list of paths), its arguments by
keyword, and the provenance record every output carries. :func:`run_step` runs a
:class:`losskernel.job.Job`; :func:`run_script` runs the job of a rule's script with its step.

=================  =============================================================
module             steps
=================  =============================================================
``models``         train_model, accept_model, describe_model, import_model,
                   make_data_file, record_data
``sampling``       sample_chain, merge_chains
``kernels``        compute_kernel
``analysis``       convergence, mislabel_baselines, mislabel_detection, gamma_sweep,
                   trajectory, embed_umap, input_features, score_reading
``diagnostics``    diagnose_run, diagnostics, calibration_point, calibrate_experiment
``checks``         check_experiment
``paper``          summarize_experiment, summarize_models, headline_table, paper_macros,
                   summarize_sweep, crate
``figures``        plot_gamma_sweep, plot_mislabels, plot_trajectory, plot_diagnostics,
                   plot_figures, plot_sweep
=================  =============================================================
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from losskernel.job import Job, paths, script_job
from losskernel.pipeline import (
    analysis,
    checks,
    diagnostics,
    figures,
    kernels,
    models,
    paper,
    sampling,
)
from losskernel.pipeline.io import Record

STEPS: dict[str, Callable[..., None]] = {step.__name__: step for step in (
    models.train_model, models.accept_model, models.describe_model, models.import_model,
    models.make_data_file, models.record_data,
    sampling.sample_chain, sampling.merge_chains, kernels.compute_kernel,
    analysis.convergence, analysis.mislabel_baselines, analysis.mislabel_detection,
    analysis.gamma_sweep, analysis.trajectory, analysis.embed_umap, analysis.input_features,
    analysis.score_reading,
    diagnostics.diagnose_run, diagnostics.diagnostics, diagnostics.calibration_point,
    diagnostics.calibrate_experiment, checks.check_experiment,
    paper.summarize_experiment, paper.summarize_models, paper.headline_table,
    paper.paper_macros, paper.summarize_sweep, paper.crate,
    figures.plot_gamma_sweep, figures.plot_mislabels, figures.plot_trajectory,
    figures.plot_diagnostics, figures.plot_figures, figures.plot_sweep,
)}
"""Every step by name."""


def run_step(job: Job, record: Record, threads: int = 1) -> None:
    """Run a job's step; torch steps also get the job's ``threads``."""
    step = STEPS[job.step]
    extra = {"threads": threads} if "threads" in inspect.signature(step).parameters else {}
    step(job.inputs, job.outputs, **job.arguments, record=record, **extra)


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMBA_NUM_THREADS")
"""Thread pools sized to a job's threads: numpy's OpenBLAS (kernels, CKA) and numba (UMAP)
read their own variable and, unset, take every core."""


def run_script(snakemake: Any, step: Callable[..., None], code_dir: str | os.PathLike) -> None:
    """Run the job of a rule's script (``workflow/scripts/<rule>.py``) with ``step``: the
    script's ``snakemake`` object gives the job's files, wildcards, params, log, threads and
    the run's whole config (:func:`losskernel.job.script_job`); ``code_dir`` is the checkout
    whose git state the provenance records."""
    job = script_job(snakemake, step.__name__)
    run_logged(job, snakemake.log[0], snakemake.threads, code_dir, run_config=snakemake.config)


def run_logged(job: Job, log: str | os.PathLike, threads: int, code_dir: str | os.PathLike,
               run_config: Mapping | None = None) -> None:
    """Run a job as a workflow rule does: its output to ``log``, its thread pools sized to
    ``threads``, and its outputs stamped with :func:`job_record` (``run_config`` is the run's
    whole config, which rule ``run_config`` saves under its hash)."""
    handle = open(log, "w", buffering=1)
    sys.stdout = sys.stderr = handle
    set_thread_pools(threads)
    run_step(job, job_record(job, code_dir, run_config=run_config), threads)


def job_record(job: Job, code_dir: str | os.PathLike,
               run_config: Mapping | None = None) -> dict[str, str | int]:
    """The provenance record of a job's outputs: its arguments as its settings, the hash of
    ``run_config`` (the run's whole config) as its config, its rule, wildcards, seed and
    inputs, the fingerprint of its code, and the git state of ``code_dir``, the code's
    repository."""
    from losskernel.provenance import collect_provenance

    seed = job.wildcards.get("seed", job.arguments.get("seed"))
    return collect_provenance(
        job.arguments, run_config=run_config, rule=job.rule, wildcards=job.wildcards,
        seed=None if seed is None else int(seed), inputs=paths(job.inputs), code=job.code,
        workdir=code_dir)


def set_thread_pools(threads: int) -> None:
    """Size OpenMP, MKL, OpenBLAS and numba to ``threads`` (torch steps size torch itself)."""
    from threadpoolctl import threadpool_limits  # for BLAS pools loaded before this point

    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    threadpool_limits(int(threads))
