"""Neighbours of R for many inputs without the N x N matrix: time and peak memory.

    python benchmarks/neighbours.py N S k threads      # prints one JSON line

Run by ``run.py`` in a fresh process, so that the peak resident memory the kernel records
for it (``VmHWM``, reset by exec, unlike ``ru_maxrss``, which a child inherits from the parent
that forked it) covers this computation alone. Imports numpy only.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def synthetic_losses(num_chains: int, num_draws: int, num_inputs: int, seed: int = 0,
                     ) -> np.ndarray:
    """Float32 traces ``(chain, draw, N)`` with kernel structure: 20 shared factors plus noise."""
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((num_chains, num_draws, 20), dtype=np.float32)
    loadings = rng.standard_normal((20, num_inputs), dtype=np.float32)
    losses = factors @ loadings
    for chain in losses:  # noise a chain at a time: no second full-size temporary
        chain += rng.standard_normal(chain.shape, dtype=np.float32)
    losses += 2.0
    return losses


def peak_resident_bytes() -> int:
    """The process's peak resident memory so far: ``VmHWM`` on Linux, else ``ru_maxrss``."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(num_inputs: int, num_draws: int, k: int, threads: int) -> dict[str, float | bool]:
    """Blockwise top-k of R from synthetic traces, ten inputs per class, same-class pairs
    excluded; then 50 random rows checked against R computed exactly for those rows."""
    from losskernel.method.kernel import centre_losses
    from losskernel.readings.neighbours import correlation_neighbours

    losses = synthetic_losses(4, num_draws // 4, num_inputs)
    labels = np.arange(num_inputs) // 10
    before = peak_resident_bytes()
    start = time.perf_counter()
    _, similarity, valid = correlation_neighbours(losses, k, exclude_same=labels,
                                                  threads=threads)
    seconds = time.perf_counter() - start
    peak = peak_resident_bytes()

    rows = np.random.default_rng(1).choice(num_inputs, 50, replace=False)
    centred = centre_losses(losses)
    standardized = centred / np.linalg.norm(centred, axis=0)
    exact = standardized[:, rows].T @ standardized
    exact[labels[rows][:, None] == labels[None, :]] = -np.inf
    expected = -np.sort(-exact, axis=1)[:, :k]
    error = float(np.max(np.abs(similarity[rows] - expected)))
    return {"seconds": seconds, "peak_rss_bytes": peak, "rss_before_bytes": before,
            "max_similarity_error_on_50_rows": error, "all_valid": bool(valid.all())}


if __name__ == "__main__":
    num_inputs, num_draws, k, threads = map(int, sys.argv[1:5])
    print(json.dumps(measure(num_inputs, num_draws, k, threads)))
