"""Sampling diagnostics of the loss traces: how far the draws behind K can be trusted.

Notation: ``x[c, t]`` is one kernel input's loss at draw ``t`` of chain ``c``, C chains of T
draws. Every per-input function takes ``draws (chain, draw, *rest)`` and returns shape ``rest``,
vectorized over the inputs (an array of the N inputs' losses gives N values).

- **Split R-hat** (rank-normalized, Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021, "Rank-
  normalization, folding, and localization: an improved R-hat", Bayesian Analysis 16(2)). Each
  chain is split in halves (2C chains of n = T // 2). The pooled draws are replaced by their
  normal scores ``z = Φ⁻¹((r − 3/8) / (S + 1/4))`` of their average ranks r among the
  ``S = 2Cn``; with ``B = n var_c(mean_t z)`` and ``W = mean_c var_t(z)``,
  ``R̂ = sqrt((n − 1)/n + B/(nW))``. The reported R-hat is the larger of the bulk R̂ (of z) and
  the tail R̂ (of the normal scores of the folded draws ``|x − median x|``). It compares the
  chains' halves with each other: near 1 when they sample the same distribution.
  **Bound: R̂ ≤ 1.01.**
- **Effective sample size** ``ESS = S / τ̂``, ``τ̂ = −1 + 2 Σ_t ρ̂_t`` over Geyer's initial
  monotone sequence of the autocorrelations ρ̂_t (combined over chains as in Stan). The bulk
  ESS is that of the normal scores of the split chains; the tail ESS the smaller of those of
  the indicators ``x ≤ q_0.05`` and ``x ≤ q_0.95``. **Bound: ESS ≥ 400** in bulk and tail (100
  per chain for 4 chains; Vehtari et al. 2021), so that the Monte-Carlo error of a mean is at
  most 5% of the posterior standard deviation.
- **MCSE of the mean** ``sd(x) / sqrt(ESS)``, the ESS of the raw split chains: the standard
  error of the mean loss from the draws' autocorrelation.
- **Between-chain share** ``var_c(x̄_c) / var(x)``: the fraction of the sum of squares of K(z,z)
  due to the chains sitting apart. Near 1/T for chains that agree, near 1 for chains stuck in
  different places (then K(z,z) measures where the chains started, not the posterior).
- **Stationarity** (Geweke z of the minibatch loss, per chain): after burn-in the first 10% of
  the draws must not differ from the last 50% by more than their Monte-Carlo error.
- **Monte-Carlo error of R** by batch means, and the **seed-to-seed CKA** of the kernels of
  independent runs: how much of the kernel's structure is the sampler's noise.

R-hat, bulk and tail ESS and the MCSE equal ArviZ 0.23's ``rhat(method="rank")``,
``ess(method="bulk" / "tail")`` and ``mcse(method="mean")`` to rounding (tested against it),
including ArviZ's conventions: NaN for an input with a NaN draw, for fewer than 4 draws and,
for R-hat, for fewer than 2 chains (ArviZ does not split a single chain) or a constant input;
the ESS of a constant input is S. ArviZ is not called: it loops over the inputs in Python,
and this vectorized version is 5–6x faster on 4 chains × 500 draws × 1347 inputs; importing
ArviZ takes about 2 s of every job (2.1 s against 0.4 s for this module; both measured by
``benchmarks/diagnostics.py``); and the pipeline does not install it. The normal scores come
from ``statistics.NormalDist`` on the 2S − 1 possible average ranks, not from scipy.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from statistics import NormalDist

import numpy as np
import pandas as pd
import xarray as xr

from losskernel.method.kernel import Precision, constant_inputs, correlation_kernel
from losskernel.method.traces import trace_losses
from losskernel.readings.similarity import linear_cka

MIN_DRAWS = 4
"""Fewer draws per chain give NaN R-hat, ESS and MCSE (ArviZ's minimum)."""

TABLE_COLUMNS = ("obs_id", "rhat", "ess_bulk", "ess_tail", "mcse_mean", "between_chain_share")
"""The columns of the per-input table of :func:`run_diagnostics`."""

_BLOM_OFFSET = 3 / 8  # of the normal scores, as ArviZ (Blom 1958)
_CHUNK_VALUES = 2**22  # draws of the inputs handled at once: bounds the FFT's temporaries


def _per_input(draws: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray],
               min_chains: int = 1, min_draws: int = MIN_DRAWS) -> np.ndarray:
    """``statistic`` of every input of ``draws (chain, draw, *rest)``, shape ``rest``, float64.

    ``statistic`` maps ``(inputs, chain, draw)`` to ``(inputs,)``. It gets a chunk of the
    inputs at a time, contiguous so that sorts and FFTs run along the last axis. As in ArviZ,
    an input with a NaN draw, fewer than ``min_chains`` chains or ``min_draws`` draws is NaN.
    """
    array = np.asarray(draws)
    if array.ndim < 2:
        raise ValueError(f"draws must have dims (chain, draw, ...), got shape {array.shape}")
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    num_chains, num_draws, *rest = array.shape
    columns = array.reshape(num_chains, num_draws, math.prod(rest))
    result = np.full(columns.shape[2], np.nan)
    if num_chains < min_chains or num_draws < min_draws:
        return result.reshape(rest)
    step = max(1, _CHUNK_VALUES // (num_chains * num_draws))
    for start in range(0, columns.shape[2], step):
        chunk = np.ascontiguousarray(np.moveaxis(columns[:, :, start:start + step], 2, 0))
        missing = np.isnan(chunk).any(axis=(1, 2))
        if missing.any():  # computed on zeros (no NaN in the sorts), reported as NaN
            chunk = np.where(missing[:, None, None], 0, chunk)
        values = statistic(chunk)
        values[missing] = np.nan
        result[start:start + step] = values
    return result.reshape(rest)


def _split_chains(columns: np.ndarray) -> np.ndarray:
    """``(inputs, C, T)`` to ``(inputs, 2C, T // 2)``: first halves, then last halves (a middle
    draw of an odd T is dropped)."""
    half = columns.shape[2] // 2
    return np.concatenate([columns[:, :, :half], columns[:, :, columns.shape[2] - half:]],
                          axis=1)


def _doubled_ranks(values: np.ndarray) -> np.ndarray:
    """``2r − 2`` for the average rank r (1-based) of every value among its row of ``values
    (inputs, S)``: twice the 0-based position in sorted order, except that tied values share
    the sum of the first and last positions of their tie (an integer, so ranks stay exact)."""
    order = np.argsort(values, axis=1)
    ordered = np.take_along_axis(values, order, axis=1)
    starts = np.ones(values.shape, dtype=bool)  # a value differs from the one before it
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = np.ones(values.shape, dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    doubled_in_order = np.broadcast_to(2 * np.arange(values.shape[1]), values.shape)
    tied = ~(starts & ends)
    if tied.any():  # few in real traces: fix those up, in row-major order, ties contiguous
        rows, positions = np.nonzero(tied)
        tie = np.cumsum(starts[rows, positions]) - 1
        sums = positions[starts[rows, positions]] + positions[ends[rows, positions]]
        doubled_in_order = doubled_in_order.copy()
        doubled_in_order[rows, positions] = sums[tie]
    doubled = np.empty(values.shape, dtype=np.intp)
    np.put_along_axis(doubled, order, doubled_in_order, axis=1)
    return doubled


@lru_cache(maxsize=8)
def _normal_score_table(size: int) -> np.ndarray:
    """``Φ⁻¹((r − 3/8) / (size + 1/4))`` for the average ranks ``r = 1, 1.5, …, size``, at index
    ``2r − 2``. The quantiles are ArviZ's to the bit; Φ⁻¹ is Wichura's AS241 (stdlib)."""
    ranks = np.arange(2 * size - 1) / 2 + 1
    quantiles = (ranks - _BLOM_OFFSET) / (size - 2 * _BLOM_OFFSET + 1)
    inverse = NormalDist().inv_cdf
    table = np.array([inverse(quantile) for quantile in quantiles.tolist()])
    table.flags.writeable = False
    return table


def _normal_scores(columns: np.ndarray) -> np.ndarray:
    """The normal scores of ``columns (inputs, C, n)`` ranked over each input's C·n draws."""
    flat = columns.reshape(len(columns), -1)
    return _normal_score_table(flat.shape[1])[_doubled_ranks(flat)].reshape(columns.shape)


def _potential_scale_reduction(values: np.ndarray) -> np.ndarray:
    """``R̂ = sqrt((n − 1)/n + B/(nW))`` of ``values (inputs, C, n)``: ``B = n var_c(x̄_c)``,
    ``W = mean_c var_t(x)`` (both ddof 1); NaN where W = B = 0."""
    n = values.shape[2]
    between = n * values.mean(axis=2).var(axis=1, ddof=1)
    within = values.var(axis=2, ddof=1).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _rank_rhat(columns: np.ndarray) -> np.ndarray:
    """The larger of the bulk and the tail R̂ of the split chains of ``columns``."""
    split = _split_chains(columns)  # in the input's dtype, so that the folding ties as ArviZ's
    bulk = _potential_scale_reduction(_normal_scores(split))
    median = np.median(split.reshape(len(split), -1), axis=1)
    tail = _potential_scale_reduction(_normal_scores(np.abs(split - median[:, None, None])))
    return np.where(tail > bulk, tail, bulk)  # ArviZ's max(bulk, tail): a NaN bulk stays NaN


def _next_fast_length(target: int) -> int:
    """The smallest 5-smooth integer ≥ ``target`` (scipy's ``next_fast_len``, as ArviZ pads)."""
    length = target
    while True:
        rest = length
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return length
        length += 1


def _mean_autocovariance(values: np.ndarray) -> np.ndarray:
    """``(1/C) Σ_c γ_c(t)`` of ``values (inputs, C, n)`` for lags ``t < n``, with
    ``γ_c(t) = (1/n) Σ_s (x_cs − x̄_c)(x_c,s+t − x̄_c)``. One FFT per chain, zero-padded to at
    least 2n so that nothing wraps around; the chains' power spectra are averaged before the
    one inverse FFT per input (the transform is linear)."""
    n = values.shape[2]
    length = _next_fast_length(2 * n)
    spectrum = np.fft.rfft(values - values.mean(axis=2, keepdims=True), n=length, axis=2)
    power = (spectrum.real**2 + spectrum.imag**2).mean(axis=1)
    return np.fft.irfft(power, n=length, axis=1)[:, :n] / n


def _geyer_tau(rho: np.ndarray) -> np.ndarray:
    """``τ̂`` from the autocorrelations ``rho (inputs, n)`` (``rho[:, 0] = 1``), ArviZ's loop
    vectorized. With pair sums ``P_k = ρ_2k + ρ_2k+1``: K is the first k with ``P_k ≤ 0``
    (Geyer's initial positive sequence; at most the ``len(range(1, n − 3, 2))`` pairs ArviZ
    visits), ``P̃_k = min_{j ≤ k} P_j`` (initial monotone sequence) and
    ``τ̂ = −1 + 2 Σ_{k<K} P̃_k + ρ_2K``, where ``ρ_2K`` counts only if ``P_K ≥ 0`` or
    ``ρ_2K > 0``."""
    steps = len(range(1, rho.shape[1] - 3, 2))
    even = rho[:, 0:2 * steps + 1:2]
    odd = rho[:, 1:2 * steps + 2:2]
    pairs = even + odd
    stops = np.ones((len(rho), steps + 1), dtype=bool)  # the last column: ArviZ's last step
    stops[:, :steps] = ~(pairs[:, :steps] > 0)
    kept = stops.argmax(axis=1)  # K, the first True
    monotone = np.minimum.accumulate(pairs, axis=1)
    body = np.where(np.arange(steps + 1) < kept[:, None], monotone, 0.0).sum(axis=1)
    rows = np.arange(len(rho))
    last_even, last_pair = even[rows, kept], pairs[rows, kept]
    return -1.0 + 2.0 * body + np.where((last_pair >= 0) | (last_even > 0), last_even, 0.0)


def _ess_columns(values: np.ndarray) -> np.ndarray:
    """ArviZ's ``_ess`` of every input of ``values (inputs, C, n)``: ``S / max(τ̂, 1/log10 S)``
    with ``S = Cn`` and ``ρ̂_t = 1 − (W − γ̄(t)) / var⁺``, where ``W = γ̄(0) n/(n − 1)`` and
    ``var⁺ = W (n − 1)/n + var_c(x̄_c)`` (the last term with 2 chains or more). An input whose
    values span less than float64's resolution (1e-15) has ESS S."""
    values = values.astype(np.float64, copy=False)
    _, num_chains, n = values.shape
    size = num_chains * n
    constant = values.max(axis=(1, 2)) - values.min(axis=(1, 2)) < np.finfo(np.float64).resolution
    autocovariance = _mean_autocovariance(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_var = autocovariance[:, 0] * n / (n - 1.0)
        var_plus = mean_var * (n - 1.0) / n
        if num_chains > 1:
            var_plus += values.mean(axis=2).var(axis=1, ddof=1)
        rho = 1.0 - (mean_var[:, None] - autocovariance) / var_plus[:, None]
        rho[:, 0] = 1.0
        ess = size / np.maximum(_geyer_tau(rho), 1 / np.log10(size))
    ess[np.isnan(rho[:, 1])] = np.nan
    ess[constant] = size
    return ess


def _quantiles(columns: np.ndarray, probabilities: Sequence[float]) -> list[np.ndarray]:
    """Type-7 quantiles of each input's C·T draws, computed as scipy's ``mquantiles`` (the
    float64 interpolation between neighbours in the input's dtype), as ArviZ does."""
    ordered = np.sort(columns.reshape(len(columns), -1), axis=1)
    size = ordered.shape[1]
    quantiles = []
    for probability in probabilities:
        aleph = size * probability + (1.0 + probability * (1.0 - 1.0 - 1.0))
        index = int(np.floor(np.clip(aleph, 1, size - 1)))
        gamma = float(np.clip(aleph - index, 0, 1))
        quantiles.append((1.0 - gamma) * ordered[:, index - 1].astype(np.float64)
                         + gamma * ordered[:, index].astype(np.float64))
    return quantiles


def _tail_ess(columns: np.ndarray) -> np.ndarray:
    """The smaller ESS of the split indicators ``x ≤ q_0.05`` and ``x ≤ q_0.95``."""
    low, high = (_ess_columns(_split_chains(columns <= quantile[:, None, None]))
                 for quantile in _quantiles(columns, (0.05, 0.95)))
    return np.where(high < low, high, low)  # ArviZ's min(low, high)


def _mcse_columns(columns: np.ndarray) -> np.ndarray:
    """``sd(x) / sqrt(ESS)``: sd over all C·T draws (ddof 1), ESS of the raw split chains."""
    ess = _ess_columns(_split_chains(columns))
    return columns.reshape(len(columns), -1).std(axis=1, ddof=1, dtype=np.float64) / np.sqrt(ess)


def _between_share_columns(columns: np.ndarray) -> np.ndarray:
    """``var_c(x̄_c) / var(x)`` (ddof 0, so the share is in [0, 1]); 0 for a constant input."""
    values = columns.astype(np.float64)
    between = values.mean(axis=2).var(axis=1)
    total = values.reshape(len(values), -1).var(axis=1)
    varies = values.max(axis=(1, 2)) > values.min(axis=(1, 2))  # rounding may leave total > 0
    return np.divide(between, total, out=np.zeros_like(total), where=varies & (total > 0))


def split_rhat(draws: np.ndarray) -> np.ndarray:
    """Rank-normalized split R-hat (the larger of bulk and tail) of ``draws (chain, draw, *rest)``,
    shape ``rest``; ``arviz.rhat(method="rank")``. NaN with one chain (as ArviZ) and for a
    constant input (0/0)."""
    return _per_input(draws, _rank_rhat, min_chains=2)


def effective_sample_size(draws: np.ndarray) -> np.ndarray:
    """ESS of ``draws (chain, draw, *rest)`` as given (no splitting or ranking), shape ``rest``:
    ArviZ's ``_ess`` (``arviz.ess(method="identity")``). Needs 2 draws per chain."""
    return _per_input(draws, _ess_columns, min_draws=2)


def ess_bulk(draws: np.ndarray) -> np.ndarray:
    """Bulk ESS of ``draws (chain, draw, *rest)``: of the normal scores of the split chains;
    ``arviz.ess(method="bulk")``."""
    return _per_input(draws, lambda columns: _ess_columns(_normal_scores(_split_chains(columns))))


def ess_tail(draws: np.ndarray) -> np.ndarray:
    """Tail ESS of ``draws (chain, draw, *rest)``: the smaller of the ESS of the 5% and 95%
    quantile indicators; ``arviz.ess(method="tail")``."""
    return _per_input(draws, _tail_ess)


def mean_standard_error(draws: np.ndarray) -> np.ndarray:
    """Monte-Carlo standard error of the mean of ``draws (chain, draw, *rest)``,
    ``sd / sqrt(ESS of the split chains)``; ``arviz.mcse(method="mean")`` (to 1e-8 for
    float32 draws, whose squares ArviZ with numba rounds to float32)."""
    return _per_input(draws, _mcse_columns)


def between_chain_share(losses: np.ndarray) -> np.ndarray:
    """Per input of ``losses (chain, draw, *rest)``, the variance of the chain means over the
    variance pooled over chains and draws (both ddof 0):

        share = (1/C) Σ_c (x̄_c − x̄)² / ((1/CT) Σ_c,t (x_ct − x̄)²)  ∈ [0, 1],

    the share of the sum of squares behind K(z,z) that lies between the chains (the law of
    total variance); about 1/T for chains that agree. 0 for a constant input."""
    return _per_input(losses, _between_share_columns, min_draws=1)


def _variance_of_segment_mean(segment: np.ndarray) -> np.ndarray:
    """``s² / ESS`` per chain of ``segment (chain, draw)``: s² ddof 1, ESS of the chain alone."""
    return segment.var(axis=1, ddof=1) / effective_sample_size(segment.T[None])


def stationarity_z(series: np.ndarray, first: float = 0.1, last: float = 0.5) -> np.ndarray:
    """Geweke's z of each chain of ``series (chain, draw)`` (the minibatch loss), shape (chain,):

        z = (mean A − mean B) / sqrt(se_A² + se_B²),   se² = s² / ESS,

    A the first ``first`` and B the last ``last`` of the draws (at least 2 each). Geweke
    estimates se² from the spectral density at frequency 0; here ``s²/ESS`` with the ESS of
    the segment alone (:func:`effective_sample_size`, Geyer's initial monotone sequence), the
    same quantity, estimated as for the other diagnostics. ``|z|`` above 2–3 says the chain still
    drifts. Where both segments are constant, z is 0 if their means agree, else ±inf.
    """
    series = np.asarray(series, dtype=np.float64)
    if series.ndim != 2:
        raise ValueError(f"series must have dims (chain, draw), got shape {series.shape}")
    num_draws = series.shape[1]
    if not (first > 0 and last > 0 and first + last <= 1):
        raise ValueError(f"need first > 0, last > 0, first + last <= 1; got first={first}, "
                         f"last={last}")
    if num_draws < MIN_DRAWS:
        raise ValueError(f"stationarity needs at least {MIN_DRAWS} draws, got {num_draws} "
                         f"(config: sampling.num_draws)")
    head = series[:, :max(2, round(first * num_draws))]
    tail = series[:, num_draws - max(2, round(last * num_draws)):]
    difference = head.mean(axis=1) - tail.mean(axis=1)
    scale = np.sqrt(_variance_of_segment_mean(head) + _variance_of_segment_mean(tail))
    with np.errstate(divide="ignore", invalid="ignore"):
        infinite = np.where(difference == 0, 0.0, np.sign(difference) * np.inf)
        return np.where(scale > 0, difference / scale, infinite)


def _block_bounds(num_draws: int, batches: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of ``batches`` contiguous blocks of draws, sizes differing by ≤ 1."""
    return [(int(block[0]), int(block[-1]) + 1)
            for block in np.array_split(np.arange(num_draws), batches)]


def correlation_standard_error(losses: np.ndarray, batches: int,
                               precision: Precision = "float32") -> np.ndarray:
    """Batch-means Monte-Carlo standard error of every entry of R, shape (N, N) float64.

    The draws of every chain are cut into ``batches`` = B contiguous blocks; block b's R_b is
    the correlation kernel of its C × (T/B) samples (centred on the block's own means,
    :func:`losskernel.method.kernel.correlation_kernel` in ``precision``). Then

        SE_ij = sqrt((Σ_b R_b,ij² − (Σ_b R_b,ij)² / B) / (B − 1)) / sqrt(B),

    the standard deviation over blocks over sqrt(B): the error of R from all T draws if the
    blocks are about independent. Only the running sums are kept (memory O(N²) whatever B).
    A constant input has R_b = 0 in every block, so SE 0; the diagonal is 0 unless an input
    is constant in some blocks only.
    """
    losses = np.asarray(losses)
    if losses.ndim != 3:
        raise ValueError(f"losses must have dims (chain, draw, obs_id), got shape {losses.shape}")
    num_chains, num_draws, num_inputs = losses.shape
    if batches < 2 or num_chains * (num_draws // batches) < 2:
        raise ValueError(f"need batches >= 2 blocks of >= 2 samples each, got batches={batches} "
                         f"for {num_chains} chains x {num_draws} draws (config: "
                         f"analysis.diagnostics.batches)")
    total = np.zeros((num_inputs, num_inputs))
    squares = np.zeros((num_inputs, num_inputs))
    for start, stop in _block_bounds(num_draws, batches):
        block = correlation_kernel(losses[:, start:stop], precision=precision)
        total += block
        block *= block
        squares += block
    total *= total  # in place from here on: no further N x N temporaries
    total /= batches
    squares -= total
    np.clip(squares, 0.0, None, out=squares)  # rounding leaves −1e-17 where all blocks agree
    squares /= (batches - 1) * batches
    return np.sqrt(squares, out=squares)


def _off_diagonal(matrix: np.ndarray) -> np.ndarray:
    """The N(N − 1) entries of an (N, N) matrix off its diagonal (a view)."""
    size = len(matrix)
    return matrix.reshape(-1)[:-1].reshape(size - 1, size + 1)[:, 1:]


def _ignoring_nan(reduce: Callable[[np.ndarray], float], values: np.ndarray) -> float:
    """``reduce`` over the values that are not NaN (inf counts); NaN if there are none."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    return float(reduce(values)) if values.size else math.nan


def run_diagnostics(traces: xr.Dataset, batches: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """The diagnostics of one run's trace dataset: a row per kernel input and a summary.

    The table has the columns of ``TABLE_COLUMNS`` (split R-hat, bulk and tail ESS, MCSE of
    the mean loss and the between-chain share, of ``loss``). The summary: ``worst_rhat`` and
    ``median_rhat``; median and min of the bulk and tail ESS; ``median_between_chain_share``;
    ``max_abs_stationarity_z`` (over chains, of ``batch_loss``); ``median_correlation_se`` (of
    :func:`correlation_standard_error` with ``batches``) and ``median_abs_correlation``, both
    over the off-diagonal entries of R; ``num_chains``, ``num_draws``, ``num_inputs``, and
    ``constant_inputs``, the inputs whose losses never vary
    (:func:`losskernel.method.kernel.constant_inputs`: a zero row of R).
    Statistics over inputs skip NaN (constant inputs' R-hat; every R-hat with one chain).
    """
    losses = trace_losses(traces)
    num_chains, num_draws, num_inputs = losses.shape
    table = pd.DataFrame({
        "obs_id": traces["obs_id"].values,
        "rhat": split_rhat(losses),
        "ess_bulk": ess_bulk(losses),
        "ess_tail": ess_tail(losses),
        "mcse_mean": mean_standard_error(losses),
        "between_chain_share": between_chain_share(losses),
    }, columns=list(TABLE_COLUMNS))
    stationarity = stationarity_z(traces["batch_loss"].transpose("chain", "draw").values)
    # One N x N matrix at a time: the SE's median is taken before R is computed.
    median_se = _ignoring_nan(np.median, _off_diagonal(
        correlation_standard_error(losses, batches)))
    median_abs_r = _ignoring_nan(np.median, np.abs(_off_diagonal(correlation_kernel(losses))))
    summary = {
        "worst_rhat": _ignoring_nan(np.max, table["rhat"]),
        "median_rhat": _ignoring_nan(np.median, table["rhat"]),
        "median_ess_bulk": _ignoring_nan(np.median, table["ess_bulk"]),
        "min_ess_bulk": _ignoring_nan(np.min, table["ess_bulk"]),
        "median_ess_tail": _ignoring_nan(np.median, table["ess_tail"]),
        "min_ess_tail": _ignoring_nan(np.min, table["ess_tail"]),
        "median_between_chain_share": _ignoring_nan(np.median, table["between_chain_share"]),
        "max_abs_stationarity_z": _ignoring_nan(np.max, np.abs(stationarity)),
        "median_correlation_se": median_se,
        "median_abs_correlation": median_abs_r,
        "num_chains": float(num_chains),
        "num_draws": float(num_draws),
        "num_inputs": float(num_inputs),
        "constant_inputs": float(constant_inputs(losses).sum()),
    }
    return table, summary


def out_of_bounds(table: pd.DataFrame, max_rhat: float, min_ess: float) -> pd.DataFrame:
    """The rows of a :func:`run_diagnostics` table with ``rhat > max_rhat``, ``ess_bulk <
    min_ess`` or ``ess_tail < min_ess``, worst first: by how many times an input exceeds its
    worse bound, ``max((R̂ − 1)/(max_rhat − 1), min_ess / min(ESS bulk, tail))``. A NaN R-hat
    (a constant input, or one chain) or ESS breaks no bound."""
    if not max_rhat > 1:
        raise ValueError(f"max_rhat must be > 1, got {max_rhat} (config: "
                         f"analysis.diagnostics.max_rhat)")
    if not min_ess > 0:
        raise ValueError(f"min_ess must be > 0, got {min_ess} (config: "
                         f"analysis.diagnostics.min_ess)")
    rhat = table["rhat"].to_numpy(dtype=np.float64)
    ess = np.minimum(table["ess_bulk"].to_numpy(dtype=np.float64),
                     table["ess_tail"].to_numpy(dtype=np.float64))
    outside = (rhat > max_rhat) | (ess < min_ess)
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.fmax((rhat - 1) / (max_rhat - 1), min_ess / ess)[outside]
    return table[outside].iloc[np.argsort(-excess, kind="stable")]


def out_of_bounds_message(run_label: str, table: pd.DataFrame, max_rhat: float, min_ess: float,
                          shown: int = 5) -> str | None:
    """One line on the inputs of ``run_label`` outside the bounds, the ``shown`` worst named,
    and what to do; None when every input is within them."""
    flagged = out_of_bounds(table, max_rhat, min_ess)
    if flagged.empty:
        return None
    worst = "; ".join(f"obs {row.obs_id} R-hat {row.rhat:.3f} bulk ESS {row.ess_bulk:.0f} "
                      f"tail ESS {row.ess_tail:.0f}" for row in flagged.head(shown).itertuples())
    more = "; ..." if len(flagged) > shown else ""
    return (f"sampling diagnostics of run {run_label}: {len(flagged)} of {len(table)} inputs "
            f"have R-hat > {max_rhat:g} or ESS < {min_ess:g} (worst: {worst}{more}); raise "
            f"sampling.num_draws or num_chains, or run losskernel calibrate")


def seed_to_seed_cka(kernels: Sequence[np.ndarray]) -> float:
    """The mean linear CKA over all pairs of ``kernels`` (of independent runs); NaN with fewer
    than two. 1 when the runs agree up to scale; the gap to 1 is the sampler's noise."""
    if len(kernels) < 2:
        return math.nan
    return float(np.mean([linear_cka(a, b) for a, b in itertools.combinations(kernels, 2)]))
