"""The yardsticks of benchmarks/run.py compute what they claim to (their timings are compared)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("run_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def small(run):
    sizes = run.Sizes(num_points=300, num_draws=3, batch_size=32)
    return run.make_task(sizes.num_points), sizes


def losses_at_w_star(run, task):
    with torch.no_grad():
        return run.per_sample_cross_entropy(task.model(task.inputs), task.targets).numpy()


def test_the_bare_loop_without_steps_evaluates_the_trained_model_at_every_draw(run, small):
    task, sizes = small
    losses = run.bare_chain(task, sizes, step=False, eval_batch_size=128)
    assert losses.shape == (3, 300)
    for draw in losses:
        np.testing.assert_allclose(draw, losses_at_w_star(run, task), rtol=1e-5, atol=1e-7)


def test_the_bare_loop_moves_the_weights_and_leaves_the_model_untouched(run, small):
    task, sizes = small
    before = losses_at_w_star(run, task)
    losses = run.bare_chain(task, sizes, eval_batch_size=128)
    assert np.isfinite(losses).all()
    assert np.abs(losses - before).max() > 1e-4  # SGLD moved the weights at every draw
    np.testing.assert_array_equal(losses_at_w_star(run, task), before)


def test_two_chains_at_once_in_vmap_give_each_chains_own_losses(run, small):
    task, sizes = small
    together = run.evaluations_over_chains_at_once(task, sizes, num_chains=2,
                                                    eval_batch_size=128)
    assert together.shape == (3, 2, 300)
    for chain in range(2):
        np.testing.assert_allclose(together[:, chain], np.broadcast_to(
            losses_at_w_star(run, task), (3, 300)), rtol=1e-5, atol=1e-7)


def test_off_diagonal_rms_ignores_the_diagonal(run):
    matrix = np.array([[100.0, 3.0], [-4.0, 100.0]])
    assert run.off_diagonal_rms(matrix) == pytest.approx(np.sqrt((9 + 16) / 2))
