"""The neighbour benchmark's own check (benchmarks/neighbours.py) agrees with exact R rows."""

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "neighbours.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("neighbours_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_traces_have_the_requested_shape_and_shared_structure():
    losses = load_benchmark().synthetic_losses(2, 300, 40)
    assert losses.shape == (2, 300, 40) and losses.dtype == np.float32
    correlation = np.corrcoef(losses.reshape(600, 40), rowvar=False)
    # Shared factors give R_ij ~ N(0, about 0.2); independent traces would give |R| ~ 0.03.
    assert np.abs(correlation[np.triu_indices(40, 1)]).mean() > 0.1


def test_the_benchmark_finds_the_exact_neighbours_on_a_small_problem():
    result = load_benchmark().measure(num_inputs=600, num_draws=200, k=5, threads=1)
    assert result["all_valid"]
    assert result["max_similarity_error_on_50_rows"] < 1e-5
    assert result["peak_rss_bytes"] >= result["rss_before_bytes"] > 0
