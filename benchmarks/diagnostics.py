"""losskernel's sampling diagnostics against ArviZ on the same traces: time and agreement.

    .venv/bin/python benchmarks/diagnostics.py --quick     # (4, 200, 200), about 15 s
    .venv/bin/python benchmarks/diagnostics.py             # (4, 500, 1347), about 25 s

Synthetic float32 traces ``(chain, draw, N)``: every input an AR(1) chain with its own φ in
[0, 0.95], so that the ESS spans two decades. For split R-hat, bulk ESS and tail ESS, the best
of 3 wall times (``time.perf_counter``) of ``arviz.rhat`` / ``arviz.ess`` on the dataset (their
loop over the inputs) and of ``losskernel.readings.diagnostics`` on the array (vectorized over
the inputs), the ratio ArviZ/ours and the largest absolute difference of the values. Then the
import of each, in a fresh interpreter, which a pipeline job pays once. Needs ArviZ (in the
project's .venv, not in the pipeline's environments).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from losskernel.readings import diagnostics  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    """The traces of one benchmark run (the full run: the digits task's 1347 kernel inputs)."""

    num_chains: int = 4
    num_draws: int = 500
    num_inputs: int = 1347
    rounds: int = 3


QUICK = Sizes(num_draws=200, num_inputs=200)


def autoregressive_traces(sizes: Sizes, seed: int = 0) -> np.ndarray:
    """Float32 ``(chain, draw, N)``: ``x_t = φ_i x_{t−1} + e_t``, e ~ N(0, 1), started at
    stationarity, φ_i evenly spaced in [0, 0.95] over the inputs."""
    rng = np.random.default_rng(seed)
    phi = np.linspace(0.0, 0.95, sizes.num_inputs)
    noise = rng.standard_normal((sizes.num_chains, sizes.num_draws, sizes.num_inputs))
    traces = np.empty_like(noise)
    traces[:, 0] = noise[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, sizes.num_draws):
        traces[:, t] = phi * traces[:, t - 1] + noise[:, t]
    return traces.astype(np.float32)


def best_time(function: Callable[[], np.ndarray], rounds: int) -> tuple[float, np.ndarray]:
    """The shortest of ``rounds`` wall times of ``function()``, and its value."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return min(times), value


def import_time(module: str, rounds: int) -> float:
    """The shortest of ``rounds`` wall times of ``import module`` in a fresh interpreter."""
    code = (f"import time; start = time.perf_counter(); import {module}; "
            f"print(time.perf_counter() - start)")
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return min(float(subprocess.run([sys.executable, "-c", code], check=True, text=True,
                                    capture_output=True, env=environment).stdout)
               for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small traces: about 15 s")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()

    import arviz

    traces = autoregressive_traces(sizes)
    dataset = arviz.convert_to_dataset(traces)  # variable "x", dims (chain, draw, x_dim_0)
    print(f"traces (chain, draw, N) = ({sizes.num_chains}, {sizes.num_draws}, "
          f"{sizes.num_inputs}) float32, best of {sizes.rounds}, ArviZ {arviz.__version__}")
    cases = {
        "split R-hat": (lambda: arviz.rhat(dataset)["x"].values,
                        lambda: diagnostics.split_rhat(traces)),
        "bulk ESS": (lambda: arviz.ess(dataset, method="bulk")["x"].values,
                     lambda: diagnostics.ess_bulk(traces)),
        "tail ESS": (lambda: arviz.ess(dataset, method="tail")["x"].values,
                     lambda: diagnostics.ess_tail(traces)),
    }
    print("| diagnostic | ArviZ s | ours s | ArviZ / ours | max abs difference |")
    print("|---|---|---|---|---|")
    for name, (theirs, ours) in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arviz_seconds, expected = best_time(theirs, sizes.rounds)
        our_seconds, actual = best_time(ours, sizes.rounds)
        difference = float(np.max(np.abs(actual - expected)))
        print(f"| {name} | {arviz_seconds:.3f} | {our_seconds:.3f} | "
              f"{arviz_seconds / our_seconds:.0f}x | {difference:.1e} |", flush=True)
    theirs_import = import_time("arviz", sizes.rounds)
    ours_import = import_time("losskernel.readings.diagnostics", sizes.rounds)
    print(f"| import, fresh interpreter | {theirs_import:.2f} | {ours_import:.2f} | "
          f"{theirs_import / ours_import:.1f}x | |")


if __name__ == "__main__":
    main()
