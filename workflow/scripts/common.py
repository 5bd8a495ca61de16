"""What every script does first: send output to the rule's log and build the provenance record."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The package is used from this checkout's src/, so a rule's environment needs only the
# third-party packages (envs/*.yaml), and the code that ran is the code of this commit.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))


def start(snakemake) -> dict[str, str | int]:
    """Redirect stdout/stderr to the rule's log, size thread pools to the rule's threads (torch
    steps take ``threads`` themselves), and
    return the provenance record (rule, wildcards, params as the config used, seed, inputs)."""
    log = open(snakemake.log[0], "w", buffering=1)
    sys.stdout = sys.stderr = log
    threads = str(snakemake.threads)
    # numpy's OpenBLAS (kernels, CKA) reads its own variable; unset, it takes every core
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "NUMBA_NUM_THREADS"):
        os.environ[variable] = threads
    from threadpoolctl import threadpool_limits  # for BLAS pools loaded before this point

    threadpool_limits(int(threads))

    from losskernel.provenance import collect_provenance

    wildcards = dict(snakemake.wildcards.items())
    params = dict(snakemake.params.items())
    seed = wildcards.get("seed", params.get("run", {}).get("seed"))
    return collect_provenance(
        params,
        rule=snakemake.rule,
        wildcards=wildcards,
        seed=None if seed is None else int(seed),
        inputs=list(snakemake.input),
        workdir=os.path.dirname(__file__),  # the code's repository, not the results directory
    )
