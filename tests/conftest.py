"""Shared fixtures. Tests run on CPU with one torch thread, as the workflow's rules do, and
in a home of their own."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch
from hypothesis import settings
from threadpoolctl import ThreadpoolController

torch.set_num_threads(1)

# Property tests try the same examples on every run and keep no example database (it would be
# state left by an earlier run, in the working directory); `--hypothesis-profile=thorough`
# tries ten times as many random ones.
settings.register_profile("losskernel", database=None, derandomize=True, deadline=None)
settings.register_profile("thorough", database=None, max_examples=1000, deadline=None)
settings.load_profile("losskernel")

USER_STATE_VARIABLES = ("TORCH_HOME", "NLTK_DATA", "MPLCONFIGDIR", "SNAKEMAKE_PROFILE",
                        "SNAKEMAKE_OUTPUT_CACHE", "XDG_RUNTIME_DIR")
"""Variables that point a library at the user's own files; the tests unset them."""
HOME_KEY = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """Give the whole run, and every process it starts, an empty home of its own.

    What a library keeps under the user's home or cache must not decide whether a test passes:
    ArviZ warns once a day, remembered in ``~/.cache/arviz``; torch looks for weights in
    ``~/.cache/torch``, nltk for corpora in ``~/nltk_data``, matplotlib for a ``matplotlibrc``,
    and snakemake for profiles in ``~/.config/snakemake``. So ``HOME`` and the XDG base
    directories point into a new temporary directory before any test module is imported,
    removed when the run ends. Set at configure time, before collection, so that the
    libraries that read them on import see them too.
    """
    home = Path(tempfile.mkdtemp(prefix="losskernel-tests-home-"))
    config.stash[HOME_KEY] = home
    for variable in USER_STATE_VARIABLES:
        os.environ.pop(variable, None)
    os.environ.update({
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        # hypothesis caches the constants of the code under test in the working directory
        "HYPOTHESIS_STORAGE_DIRECTORY": str(home / ".hypothesis"),
    })


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(HOME_KEY, None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def restored_thread_counts() -> Iterator[None]:
    """Put torch's thread count and every loaded BLAS/OpenMP pool's back as they were: a step
    run in-process sizes them to its ``threads`` (``pipeline.io``, ``threadpool_limits``), and
    a later test must not run with another test's pools. A pool first loaded inside is left."""
    torch_threads = torch.get_num_threads()
    pools = {pool.filepath: pool.num_threads for pool in ThreadpoolController().lib_controllers}
    try:
        yield
    finally:
        for pool in ThreadpoolController().lib_controllers:
            if pool.filepath in pools and pool.num_threads != pools[pool.filepath]:
                pool.set_num_threads(pools[pool.filepath])
        torch.set_num_threads(torch_threads)  # last: torch's OpenMP pool is one of the above


@pytest.fixture(autouse=True)
def isolated_environment():
    """Restore the environment and the thread pools after each test: a step run in-process
    (the command line) sizes thread pools, directly and through variables such as
    OMP_NUM_THREADS, which must reach neither later tests nor the processes they start."""
    saved = dict(os.environ)
    with restored_thread_counts():
        yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)

