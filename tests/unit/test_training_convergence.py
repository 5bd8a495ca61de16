"""benchmarks/training_convergence.py on tiny moduli: its table, its replay of the stopping rule."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("training_convergence",
                                              ROOT / "benchmarks/training_convergence.py")
assert SPEC is not None and SPEC.loader is not None
training_convergence = importlib.util.module_from_spec(SPEC)
sys.modules["training_convergence"] = training_convergence
SPEC.loader.exec_module(training_convergence)

COLUMNS = ["modulus", "init_seed", "split_seed", "converged", "steps", "first_target_step",
           "final_train_accuracy", "final_test_accuracy_add", "final_test_accuracy_div",
           "wall_seconds"]


def run(tmp_path: Path, *arguments: str, overrides: str | None = None,
        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The benchmark's table (as returned and as written) and its histories."""
    config = [str(ROOT / "config/config.yaml")]
    if overrides is not None:
        (tmp_path / "overrides.yaml").write_text(overrides)
        config.append(str(tmp_path / "overrides.yaml"))
    output = tmp_path / "convergence.tsv"
    table = training_convergence.main([*arguments, "--output", str(output), "--config", *config])
    written = pd.read_csv(output, sep="\t", comment="#")
    pd.testing.assert_frame_equal(written[COLUMNS[:6]], table[COLUMNS[:6]], check_dtype=False)
    return table, pd.read_csv(tmp_path / "convergence-history.tsv", sep="\t", comment="#")


def test_a_budget_shorter_than_the_patience_never_converges(tmp_path):
    # The recipe's patience is 1000 steps, so 50 steps cannot satisfy the stopping rule,
    # whatever the accuracies: every case runs to the budget and is not converged.
    table, history = run(tmp_path, "--primes", "5,7", "--seeds", "0:0,1:1", "--max-steps", "50")
    assert list(table.columns) == COLUMNS
    assert table[["modulus", "init_seed", "split_seed"]].values.tolist() == [
        [5, 0, 0], [5, 1, 1], [7, 0, 0], [7, 1, 1]]
    assert not table["converged"].any() and (table["steps"] == 50).all()
    assert (history.groupby(["modulus", "init_seed", "split_seed"])["step"].max() == 50).all()


def test_converged_is_the_stopping_rule_replayed_on_the_history(tmp_path):
    # With a test target of 0 the rule is "train accuracy 1 for 100 steps": the tiny training
    # sets are memorized within the budget, so training stops exactly 100 steps after the first
    # evaluation that met the target, and the history's last 100 steps all meet it.
    overrides = ("experiments:\n  modarith:\n    training: {target_test_accuracy: 0.0, "
                 "patience_steps: 100, eval_every: 10}\n")
    table, history = run(tmp_path, "--primes", "5,7", "--seeds", "0:0", "--max-steps", "600",
                         overrides=overrides)
    assert table["converged"].all()
    assert (table["steps"] == table["first_target_step"] + 100).all()
    assert (table["steps"] < 600).all() and (table["final_train_accuracy"] == 1.0).all()
    for row in table.itertuples():
        rows = history[history["modulus"] == row.modulus]
        assert rows["step"].max() == row.steps
        assert (rows.loc[rows["step"] >= row.steps - 100, "train_accuracy"] == 1.0).all()
        assert rows.loc[rows["step"] < row.first_target_step, "train_accuracy"].lt(1.0).all()


def test_the_replay_needs_every_evaluation_of_the_patience_window():
    training = {"target_test_accuracy": 0.99, "patience_steps": 200}

    def history(test_accuracies: list[float]) -> pd.DataFrame:
        return pd.DataFrame({"step": [0, 100, 200, 300], "train_loss": 0.0,
                             "train_accuracy": 1.0, "test_accuracy_add": test_accuracies,
                             "test_accuracy_div": 1.0})

    held = training_convergence.stopping_rule_held
    assert held(history([0.5, 0.99, 1.0, 1.0]), training) == (True, 100)
    assert held(history([0.5, 0.99, 0.98, 1.0]), training) == (False, 100)
    assert held(history([0.5, 0.5, 0.5, 0.5]), training) == (False, None)


def test_seed_pairs_are_parsed_and_bad_ones_named():
    assert training_convergence.parse_seeds("0:0, 1:2") == [(0, 0), (1, 2)]
    with pytest.raises(argparse.ArgumentTypeError, match="'1'"):
        training_convergence.parse_seeds("0:0,1")
