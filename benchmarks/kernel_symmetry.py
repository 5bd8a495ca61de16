"""The cost of an exactly symmetric kernel: ``compute_kernel`` before and after the mirror of
the diagonal blocks (issue 24), side by side in one process.

    .venv/bin/python benchmarks/kernel_symmetry.py             # N = 10000, S = 2000, about 1 min
    .venv/bin/python benchmarks/kernel_symmetry.py --quick     # N = 2000, S = 800

"Before" is the product of commit 519b2ed, kept below as the baseline: each block row from the
diagonal rightwards in one general matrix product, the blocks below the diagonal copied from
their transposes, the diagonal block as BLAS returned it. "After" is
``losskernel.method.kernel._gram``, which also mirrors each diagonal block's upper triangle onto
its lower one. Both run through ``compute_kernel`` (R and K, float32, the pipeline's default) on
the same synthetic traces, after one untimed call of each, in rounds that alternate which goes
first; the script prints the median time of each, the ratio after/before, and how many entries
differ from their mirror (``K != K.T``) in each.
BLAS threads: numpy's default (both cores here); set ``OPENBLAS_NUM_THREADS`` to change it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from losskernel.method import kernel  # noqa: E402


def gram_before(columns: np.ndarray, block_inputs: int = 512) -> np.ndarray:
    """``kernel._gram`` as of 519b2ed: symmetric off the diagonal blocks only."""
    num_inputs = columns.shape[1]
    gram = np.empty((num_inputs, num_inputs), dtype=columns.dtype)
    for start in range(0, num_inputs, block_inputs):
        stop = start + block_inputs
        np.matmul(columns[:, start:stop].T, columns[:, start:], out=gram[start:stop, start:])
        gram[stop:, start:stop] = gram[start:stop, stop:].T
    return gram


def synthetic_losses(num_inputs: int, num_samples: int, seed: int = 0) -> np.ndarray:
    """Float32 ``(4, S / 4, N)`` losses: an offset, per-input scales and a shared component."""
    rng = np.random.default_rng(seed)
    shape = (4, num_samples // 4, num_inputs)
    scales = 10.0 ** rng.uniform(-2, 1, num_inputs)
    shared = rng.standard_normal((*shape[:2], 1))
    return (5.0 + scales * (rng.standard_normal(shape) + 0.5 * shared)).astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 2000, S = 800")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    num_inputs, num_samples = (2000, 800) if args.quick else (10_000, 2_000)
    losses = synthetic_losses(num_inputs, num_samples)
    print(f"compute_kernel, N = {num_inputs}, S = {num_samples}, float32, "
          f"median of {args.rounds} alternating rounds after one untimed round")
    print("| kind | before s | after s | after / before | K != K.T before | after |")
    print("|---|---|---|---|---|---|")
    for kind in ("correlation", "covariance"):
        for gram in (gram_before, kernel._gram):  # untimed: the first products warm up
            with mock.patch.object(kernel, "_gram", gram):
                kernel.compute_kernel(losses, kind)
        times: dict[str, list[float]] = {"before": [], "after": []}
        asymmetric: dict[str, int] = {}
        for round_ in range(args.rounds):
            # the order alternates too (ABBA): the first product of a pair pays for more pages
            for version in ("before", "after")[:: 1 if round_ % 2 == 0 else -1]:
                with mock.patch.object(kernel, "_gram",
                                       gram_before if version == "before" else kernel._gram):
                    start = time.perf_counter()
                    result = kernel.compute_kernel(losses, kind)
                    times[version].append(time.perf_counter() - start)
                asymmetric[version] = int(np.count_nonzero(result != result.T))
                del result
        before, after = (statistics.median(times[v]) for v in ("before", "after"))
        print(f"| {kind} | {before:.3f} | {after:.3f} | {after / before:.3f}x | "
              f"{asymmetric['before']} | {asymmetric['after']} |", flush=True)


if __name__ == "__main__":
    main()
