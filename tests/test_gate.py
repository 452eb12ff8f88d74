"""The promotion gate refuses a worse, miscalibrated or subgroup-harming challenger and
promotes a better one; each check reports its numbers."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.gate import GatePolicy, decide

POLICY = GatePolicy(bootstrap_rounds=150, seed=1)


@pytest.fixture(scope="module")
def population():
    """Outcomes from a known risk; a champion that sees part of the signal."""
    rng = np.random.default_rng(11)
    n = 2000
    signal = rng.normal(size=n)
    noise = rng.normal(size=n)
    truth = 1 / (1 + np.exp(-(-2.2 + 1.4 * signal)))
    y = (rng.uniform(size=n) < truth).astype(float)
    champion = 1 / (1 + np.exp(-(-2.2 + 0.9 * (0.6 * signal + 0.8 * noise))))
    sex = np.where(rng.uniform(size=n) < 0.5, "female", "male")
    return y, truth, champion, sex


def _checks(decision):
    return {c.name: c.passed for c in decision.checks}


def test_a_better_calibrated_challenger_is_promoted(population):
    y, truth, champion, sex = population
    decision = decide(y, champion, truth, {"sex": list(sex)}, POLICY)
    assert decision.promote, decision.reasons
    assert decision.auroc_gain.low > 0
    assert set(decision.subgroup_gains) == {"sex=female", "sex=male"}


def test_a_worse_challenger_is_refused_on_auroc(population):
    y, truth, champion, sex = population
    rng = np.random.default_rng(3)
    worse = 1 / (
        1 + np.exp(-(-2.2 + 0.9 * rng.normal(size=y.size) + 0.2 * np.log(truth / (1 - truth))))
    )
    decision = decide(y, champion, worse, {"sex": list(sex)}, POLICY)
    assert not decision.promote
    assert _checks(decision)["AUROC not worse than the champion's"] is False
    assert any(r.startswith("FAIL: AUROC") for r in decision.reasons)


def test_an_overconfident_challenger_is_refused_on_calibration(population):
    y, truth, champion, sex = population
    logit = np.log(truth / (1 - truth))
    overconfident = 1 / (1 + np.exp(-(2.5 * (logit + 2.2) - 2.2)))
    decision = decide(y, champion, overconfident, {"sex": list(sex)}, POLICY)
    assert not decision.promote
    assert _checks(decision)["calibration slope within bounds"] is False
    # Its ranking is as good as the truth's: only calibration stops it.
    assert _checks(decision)["AUROC not worse than the champion's"] is True


def test_a_challenger_that_harms_one_subgroup_is_refused(population):
    y, truth, champion, sex = population
    rng = np.random.default_rng(5)
    harmed = truth.copy()
    women = sex == "female"
    harmed[women] = rng.permutation(truth[women])  # no information left for women
    decision = decide(y, champion, harmed, {"sex": list(sex)}, POLICY)
    assert not decision.promote
    checks = _checks(decision)
    assert checks["no loss in subgroup sex=female"] is False
    assert checks["no loss in subgroup sex=male"] is True
    assert decision.subgroup_gains["sex=female"] < -POLICY.subgroup_tolerance


def test_fairness_gaps_are_the_largest_differences_between_groups():
    from evaluation.fairness import SubgroupPerformance, fairness_gaps

    rows = [
        SubgroupPerformance("sex", "female", 100, 10, 0.10, 0.12, 0.70, None),
        SubgroupPerformance("sex", "male", 100, 20, 0.20, 0.15, 0.80, None),
        SubgroupPerformance("age band", "0-17", 30, 1, 0.03, 0.05, None, None),  # too few events
        SubgroupPerformance("age band", "65+", 80, 9, 0.11, 0.11, 0.75, None),
    ]
    gaps = fairness_gaps(rows)
    assert gaps["sex"]["auroc_gap"] == pytest.approx(0.10)
    # Errors: female +0.02, male -0.05 -> gap 0.07.
    assert gaps["sex"]["calibration_in_the_large_gap"] == pytest.approx(0.07)
    assert "age band" not in gaps  # one group left after the event filter
