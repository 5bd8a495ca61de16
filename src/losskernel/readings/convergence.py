"""Convergence of the kernel in the number of draws.

Linear CKA between the kernel of the first t draws of every chain and the kernel of all draws,
against t; plus the first half against all draws (``cka_half``, optimistic because the halves
overlap), against the second half (``cka_halves``, disjoint), and, with two chains or more, the
first half of the chains against the second (``cka_chain_halves``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from losskernel.method.kernel import covariance_kernel
from losskernel.readings.similarity import linear_cka


def draw_counts(num_draws: int, num_points: int) -> list[int]:
    """About ``num_points`` log-spaced draws-per-chain counts from ``min(10, num_draws)`` up to
    ``num_draws`` (both included)."""
    counts = np.geomspace(min(10, num_draws), num_draws, num_points)
    return sorted({*np.round(counts).astype(int).tolist(), num_draws})


def convergence(losses: np.ndarray, centring: str,
                num_points: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """CKA of the kernel of the first t draws (of every chain) against the final kernel.

    ``losses (chain, draw, N)`` are read in float64; each kernel is the covariance kernel K with
    ``centring``, at the t of :func:`draw_counts` (about ``num_points``). Returns the curve
    (``draws_per_chain``, ``samples`` = t × chains, ``cka_vs_final``) and the metrics
    ``cka_half``, ``cka_halves`` and, with two chains or more, ``cka_chain_halves``.
    """
    losses = np.asarray(losses).astype(np.float64)
    num_chains, num_draws, _ = losses.shape
    final = covariance_kernel(losses, centring)
    rows = [{"draws_per_chain": t, "samples": t * num_chains,
             "cka_vs_final": linear_cka(covariance_kernel(losses[:, :t], centring), final)}
            for t in draw_counts(num_draws, num_points)]
    half = num_draws // 2
    first = covariance_kernel(losses[:, :half], centring)
    second = covariance_kernel(losses[:, half:], centring)
    values = {"cka_half": linear_cka(first, final), "cka_halves": linear_cka(first, second)}
    if num_chains >= 2:
        split = num_chains // 2
        values["cka_chain_halves"] = linear_cka(covariance_kernel(losses[:split], centring),
                                                covariance_kernel(losses[split:], centring))
    return pd.DataFrame(rows), values
