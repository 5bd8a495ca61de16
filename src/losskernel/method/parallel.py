"""Several chains at once: in forked worker processes or in threads of this process."""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from losskernel.method.chains import ChainTrace, IndexedData, LossFn, sample_chain
from losskernel.method.resume import Resumable
from losskernel.method.sgld import SGLDConfig

ParallelBackend = Literal["auto", "processes", "threads"]
PARALLEL_BACKENDS = ("auto", "processes", "threads")

_FORK_LOCK = threading.Lock()
_forked_chain: Callable[[int], ChainTrace] | None = None
"""The chain runner that forked worker processes inherit (set only while their pool exists)."""


def sample_chains(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: IndexedData,
    kernel_inputs: IndexedData,
    config: SGLDConfig,
    chains: Sequence[int] | None = None,
    strata: np.ndarray | None = None,
    progress: bool = True,
    device: str = "cpu",
    resumable: Callable[[int], Resumable] | None = None,
    parallel_chains: int = 1,
    parallel_backend: ParallelBackend = "auto",
) -> dict[int, ChainTrace]:
    """Run the given chains (default: all ``config.num_chains``) on ``device``;
    ``resumable(chain)`` gives each chain's ``Resumable`` (none by default).

    ``parallel_chains`` chains run at once. Give them the cores between them:
    ``torch.set_num_threads(cores // parallel_chains)``. With one torch thread per chain on a
    Linux CPU, the chains run in forked worker processes (``parallel_backend="processes"``,
    what ``"auto"`` picks there): each inherits the model and data without a copy, and none
    waits for another's Python (the GIL), which every SGLD step holds for part of its time.
    Otherwise they run in threads of this process (``"threads"``; torch releases the GIL
    inside its kernels). On a 2-core CPU, 2 chains of 1 thread beat 1 chain of 2 threads by
    about a quarter, and processes beat threads by 1-5% (``benchmarks/RESULTS.md``); with
    more cores, more threads would wait for the GIL (not measured here). Each chain's trace is
    the same whichever way it runs.
    """
    use_processes = _use_processes(parallel_chains, parallel_backend, device, resumable)
    chains = list(range(config.num_chains)) if chains is None else list(chains)
    workers = min(parallel_chains, len(chains))
    bar = tqdm(
        total=len(chains) * config.num_steps, desc="SGLD steps", file=sys.stderr,
        mininterval=10.0, disable=not progress,
    )

    def run(chain: int, progress_bar: tqdm | None = bar) -> ChainTrace:
        return sample_chain(model, loss_fn, train_data, kernel_inputs, config, chain, strata,
                            progress_bar, device, None if resumable is None else resumable(chain))

    with bar:
        if workers == 1:
            return {chain: run(chain) for chain in chains}
        if not use_processes:
            with ThreadPoolExecutor(workers) as pool:
                return dict(zip(chains, pool.map(run, chains), strict=True))
        # a forked bar would not update ours: the workers run without one, ours counts chains
        traces = _run_in_forked_processes(partial(run, progress_bar=None), chains, workers,
                                          on_done=lambda: bar.update(config.num_steps))
        return {chain: traces[chain] for chain in chains}


def _use_processes(parallel_chains: int, parallel_backend: ParallelBackend, device: str,
                   resumable: object) -> bool:
    """Whether the chains run in forked processes; refuses impossible settings."""
    if parallel_chains < 1:
        raise ValueError(f"parallel_chains must be >= 1, got {parallel_chains}")
    if parallel_backend not in PARALLEL_BACKENDS:
        raise ValueError(f"parallel_backend must be one of {PARALLEL_BACKENDS}, "
                         f"got {parallel_backend!r}")
    why_not_processes = _why_not_processes(device, resumable)
    if parallel_backend == "processes" and why_not_processes is not None:
        raise ValueError(f"parallel_backend='processes' is not possible here: "
                         f"{why_not_processes}; use 'threads' or 'auto'")
    return parallel_backend != "threads" and why_not_processes is None


def _why_not_processes(device: str, resumable: object) -> str | None:
    """Why forked worker processes cannot run the chains here, or None if they can."""
    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return f"processes are forked, which needs Linux (this is {sys.platform})"
    if device != "cpu":
        return f"forked processes cannot share the {device!r} device's context"
    if torch.get_num_threads() != 1:
        # GNU OpenMP (torch's intra-op pool) hangs in a forked child that starts more than one
        # thread after the parent used its pool.
        return (f"each chain must get one torch thread (torch.set_num_threads(1)), "
                f"got {torch.get_num_threads()}")
    if resumable is not None:
        return "resumable chains stop on their process's own signal; run them in threads"
    return None


def _run_in_forked_processes(run: Callable[[int], ChainTrace], chains: list[int], workers: int,
                             on_done: Callable[[], object]) -> dict[int, ChainTrace]:
    """``run(chain)`` for every chain in a pool of ``workers`` forked processes, which inherit
    ``run`` (and the model and data it holds) without a copy; ``on_done()`` after each chain."""
    global _forked_chain
    traces: dict[int, ChainTrace] = {}
    with _FORK_LOCK:  # one pool at a time: its workers inherit _forked_chain at the fork
        _forked_chain = run
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for chain, trace in pool.imap_unordered(_run_forked_chain, chains):
                    traces[chain] = trace
                    on_done()
        finally:
            _forked_chain = None
    return traces


def _run_forked_chain(chain: int) -> tuple[int, ChainTrace]:
    if _forked_chain is None:  # a worker forked outside sample_chains
        raise RuntimeError("forked chain worker started without a chain to run")
    torch.set_num_threads(1)
    return chain, _forked_chain(chain)
