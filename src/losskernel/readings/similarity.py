"""Similarity of two kernels."""

from __future__ import annotations

import numpy as np


def linear_cka(kernel_a: np.ndarray, kernel_b: np.ndarray) -> float:
    """Linear CKA between two N x N kernels.

        CKA(K1, K2) = <H K1 H, H K2 H>_F / (||H K1 H||_F ||H K2 H||_F),   H = I - 11^T / N

    1 for kernels equal up to a positive scale; invariant to adding a constant to either kernel.
    """
    def double_centre(kernel: np.ndarray) -> np.ndarray:
        kernel = np.asarray(kernel, dtype=np.float64)
        return (kernel - kernel.mean(axis=0, keepdims=True) - kernel.mean(axis=1, keepdims=True)
                + kernel.mean())

    centred_a, centred_b = double_centre(kernel_a), double_centre(kernel_b)
    denominator = np.linalg.norm(centred_a) * np.linalg.norm(centred_b)
    if denominator == 0:
        raise ValueError("linear CKA is undefined for a constant kernel")
    return float(np.sum(centred_a * centred_b) / denominator)


def cosine_similarity(features: np.ndarray) -> np.ndarray:
    """``S_ij = <f_i, f_j> / (|f_i| |f_j|)`` between the rows of ``features``, (N, N) float64;
    a zero row has similarity 0 with every row."""
    features = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = features / np.where(norms > 0, norms, 1.0)
    return unit @ unit.T
