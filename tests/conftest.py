"""Shared fixtures. Tests run on CPU with one torch thread, as the workflow's rules do."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def isolated_environment():
    """Restore the environment after each test: a step run in-process (the command line)
    sizes thread pools through variables such as OMP_NUM_THREADS, which must not reach the
    processes later tests start."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)

