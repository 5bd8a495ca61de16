"""The result gates on planted tables: each check passes on good input and fails, naming the
experiment, the check and the config key, on the planted fault."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from losskernel.readings import checks


def headline(**values: tuple[float, float, int]) -> pd.DataFrame:
    return pd.DataFrame([{"experiment": "toy", "metric": metric, "value": value,
                          "spread": spread, "n": n, "source": "results/toy/summary.tsv"}
                         for metric, (value, spread, n) in values.items()])


def summary(values: dict[str, dict[int, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"metric": metric, "seed": seed, "value": value, "source": "x.tsv"}
                         for metric, by_seed in values.items() for seed, value in by_seed.items()],
                        columns=["metric", "seed", "value", "source"])


def failed(rows) -> list[str]:
    table = checks.checks_table(rows)
    return list(table.loc[~table["passed"], "reason"])


def test_a_non_finite_headline_value_or_spread_fails():
    good = headline(roc_auc=(0.9, 0.01, 3), trajectory_gain=(0.3, math.nan, 1))
    assert failed(checks.finite_headline("toy", good)) == []
    bad = headline(roc_auc=(math.nan, math.nan, 0), cka=(0.9, math.nan, 3))
    reasons = failed(checks.finite_headline("toy", bad))
    assert len(reasons) == 2
    assert "headline roc_auc is nan" in reasons[0] and "results/toy/summary.tsv" in reasons[0]


def test_a_seed_without_a_finite_value_fails_naming_it():
    table = summary({"roc_auc": {0: 0.9, 1: math.nan, 2: 0.8}, "gain": {}})
    reasons = failed(checks.every_seed("toy", table, ["roc_auc"], [0, 1, 2]))
    assert reasons == ["roc_auc has no finite value at seeds [1] of [0, 1, 2]: the headline "
                       "would average fewer seeds than configured (sampling.seeds)"]
    absent = summary({"roc_auc": {0: 0.9, 2: 0.8}})  # seed 1's table was never read
    assert "at seeds [1]" in failed(checks.every_seed("toy", absent, ["roc_auc"], [0, 1, 2]))[0]
    assert failed(checks.every_seed("toy", absent, ["roc_auc"], [0, 2])) == []


@pytest.mark.parametrize(("outcome", "allowed", "passes", "phrase"), [
    ({"converged": True, "final_step": 4200, "max_steps": 15000}, False, True, "step 4200"),
    ({"converged": False, "final_step": 15000, "max_steps": 15000}, False, False,
     "training.allow_unconverged: true"),
    ({"converged": False, "final_step": 15000, "max_steps": 15000}, True, True,
     "allowed by training.allow_unconverged"),
    ({"converged": None, "final_step": 30, "max_steps": 30}, False, True, "no convergence target"),
])
def test_an_unconverged_model_fails_unless_allowed(outcome, allowed, passes, phrase):
    [row] = checks.converged("toy", "results/toy/model.pt", True, json.dumps(outcome), allowed)
    assert row["passed"] is passes and phrase in row["reason"]


def test_a_trained_model_without_the_record_fails_and_an_imported_one_passes():
    [row] = checks.converged("toy", "m.pt", True, None, False)
    assert not row["passed"] and "delete it and rerun" in row["reason"]
    [row] = checks.converged("toy", "m.pt", False, None, False)
    assert row["passed"]


def test_rhat_above_the_bound_fails_naming_the_run():
    runs = pd.DataFrame({"run": ["seed0", "seed1", "checkpoint0"],
                         "worst_rhat": [1.02, 1.3, 2.0]})
    reasons = failed(checks.rhat_within_bound("toy", runs, ["seed0", "seed1"], 1.1))
    assert reasons == ["run seed1: worst R-hat 1.3 > analysis.checks.max_rhat = 1.1: its chains "
                       "disagree; raise sampling.num_draws or num_chains, or run losskernel "
                       "calibrate"]  # the checkpoint run is not a main run


def control_summary(cross_task_k: float, entry_z2: tuple[float, float]) -> pd.DataFrame:
    """Two seeds with SE 0.1 and 0.2: the pooled SE is sqrt(0.01 + 0.04) / 2 = 0.1118."""
    return summary({"cross_task_K": {0: cross_task_k, 1: cross_task_k},
                    "cross_task_K_se": {0: 0.1, 1: 0.2},
                    "cross_task_z": {0: cross_task_k / 0.1, 1: cross_task_k / 0.2},
                    "cross_task_entry_z2": dict(enumerate(entry_z2))})


def test_positive_control_fails_on_the_mean_or_on_the_entries():
    assert failed(checks.positive_control("toy", control_summary(0.1, (1.3, 1.2)), 3, 2)) == []
    # mean K -0.5 over the pooled SE 0.1118: z = -4.47
    [reason] = failed(checks.positive_control("toy", control_summary(-0.5, (1.3, 1.2)), 3, 2))
    assert "-4.47 standard errors" in reason and "analysis.checks.max_control_z = 3" in reason
    [reason] = failed(checks.positive_control("toy", control_summary(0.1, (1.3, 3.1)), 3, 2))
    assert reason.startswith("seed 1: mean z² over the cross-task entries is 3.1 > "
                             "analysis.checks.max_control_entry_z2 = 2")
    reasons = failed(checks.positive_control("toy", summary({}), 3, 2))
    assert reasons[0].startswith("no seed has a finite cross_task_K") and len(reasons) == 2


def test_failures_lists_every_failed_check_in_one_message():
    rows = [*checks.finite_headline("toy", headline(a=(math.nan, math.nan, 0))),
            *checks.converged("toy", "m.pt", True, json.dumps(
                {"converged": False, "final_step": 9, "max_steps": 9}), False)]
    message = checks.failures(checks.checks_table(rows))
    assert message.splitlines()[0] == "2 check(s) failed:"
    assert message.splitlines()[1].startswith("toy: finite_headline of a: headline a is nan")
    assert message.splitlines()[2].startswith("toy: converged of m.pt: m.pt did not meet")
    assert checks.failures(checks.checks_table(checks.finite_headline(
        "toy", headline(a=(1.0, 0.1, 3))))) is None
