"""The promotion gate: symmetric, paired, patient-clustered comparisons of champion and
challenger; refusals name the failing check with its numbers; a miscalibrated champion
raises an alert."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.gate import GatePolicy, decide
from evaluation.metrics import cluster_bootstrap_indices

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


def _overconfident(risk):
    logit = np.log(risk / (1 - risk))
    return 1 / (1 + np.exp(-(2.5 * (logit + 2.2) - 2.2)))


def test_a_better_challenger_is_promoted_and_with_the_roles_swapped_refused(population):
    y, truth, champion, sex = population
    forward = decide(y, champion, truth, {"sex": list(sex)}, POLICY)
    assert forward.promote, forward.reasons
    assert forward.auroc_gain.low > 0
    assert set(forward.subgroup_gains) == {"sex=female", "sex=male"}
    backward = decide(y, truth, champion, {"sex": list(sex)}, POLICY)
    assert not backward.promote
    assert _checks(backward)["better than the champion"] is False
    # The same resamples, roles swapped: every difference and its interval mirror.
    for there, back in (
        (forward.auroc_gain, backward.auroc_gain),
        (forward.calibration_gain, backward.calibration_gain),
    ):
        assert back.value == pytest.approx(-there.value)
        assert (back.low, back.high) == pytest.approx((-there.high, -there.low))


def test_the_decision_is_the_same_for_the_same_seed(population):
    y, truth, champion, sex = population
    first = decide(y, champion, truth, {"sex": list(sex)}, POLICY)
    again = decide(y, champion, truth, {"sex": list(sex)}, POLICY)
    assert first.reasons == again.reasons


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


def test_an_overconfident_challenger_is_refused_and_a_recalibrated_one_promoted(population):
    """Same ranking, different calibration: the gate decides on calibration alone, both ways."""
    y, truth, _, sex = population
    overconfident = _overconfident(truth)
    refused = decide(y, truth, overconfident, {"sex": list(sex)}, POLICY)
    assert not refused.promote
    assert refused.auroc_gain.value == pytest.approx(0.0)
    assert _checks(refused)["calibration not worse than the champion's"] is False
    assert _checks(refused)["AUROC not worse than the champion's"] is True
    promoted = decide(y, overconfident, truth, {"sex": list(sex)}, POLICY)
    assert promoted.promote, promoted.reasons
    assert promoted.calibration_gain.low > 0


def test_a_miscalibrated_champion_raises_an_alert(population):
    y, truth, _, _ = population
    assert decide(y, truth, truth, {}, POLICY).champion_alerts == []
    alerts = decide(y, _overconfident(truth), truth, {}, POLICY).champion_alerts
    assert any("slope" in alert for alert in alerts)


def test_the_bootstrap_resamples_patients_with_all_their_discharges():
    groups = [f"p{i // 3}" for i in range(30)]  # ten patients, three discharges each
    for sample in cluster_bootstrap_indices(groups, rounds=20, seed=4):
        assert len(sample) == 30
        drawn = [groups[i] for i in sample]
        assert all(drawn.count(g) % 3 == 0 for g in set(drawn))
    assert [s.tolist() for s in cluster_bootstrap_indices(groups, 3, 9)] == [
        s.tolist() for s in cluster_bootstrap_indices(groups, 3, 9)
    ]


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
    women_gain = decision.subgroup_gains["sex=female"]
    assert women_gain.high < 0  # the loss is established by its interval
    assert women_gain.low <= women_gain.value <= women_gain.high


def test_subgroup_checks_judge_intervals_and_list_groups_too_small_to_judge(population):
    """A subgroup's AUROC change carries an interval from the gate's patient resamples;
    a group with too few events is named among the reasons, not dropped."""
    y, truth, champion, sex = population
    rng = np.random.default_rng(8)
    site = np.where(rng.uniform(size=y.size) < 0.5, "north", "south").astype(object)
    events = np.flatnonzero(y == 1)
    small = np.zeros(y.size, dtype=bool)
    small[events[: POLICY.subgroup_min_events - 1]] = True  # four events only
    small[np.flatnonzero(y == 0)[:40]] = True
    site[small] = "island"
    decision = decide(y, champion, truth, {"sex": list(sex), "site": list(site)}, POLICY)
    assert decision.promote, decision.reasons
    assert set(decision.subgroup_gains) == {"sex=female", "sex=male", "site=north", "site=south"}
    for gain in decision.subgroup_gains.values():
        assert gain.low < gain.value < gain.high
    assert decision.unjudged_subgroups == ["site=island (4 events, 40 non-events)"]
    assert "not judged: subgroup site=island (4 events, 40 non-events)" in decision.reasons

    # A small loss in one subgroup whose interval lies wholly below zero is refused, although
    # its point estimate is within the tolerance a point-estimate check allowed.
    south = site == "south"
    blurred = truth.copy()
    blurred[south] = 1 / (
        1
        + np.exp(
            -(np.log(truth[south] / (1 - truth[south])) + rng.normal(scale=0.6, size=south.sum()))
        )
    )
    refused = decide(y, truth, blurred, {"site": list(site)}, POLICY)
    loss = refused.subgroup_gains["site=south"]
    assert -POLICY.subgroup_tolerance < loss.value and loss.high < 0, loss
    assert _checks(refused)["no loss in subgroup site=south"] is False


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


def test_threshold_metrics_by_group_have_intervals_and_small_groups_are_listed_not_judged():
    from evaluation.fairness import equal_opportunity_gap, threshold_performance

    def group(name, events, flagged_events, non_events, flagged_non_events):
        return (
            [name] * (events + non_events),
            [1] * events + [0] * non_events,
            [True] * flagged_events
            + [False] * (events - flagged_events)
            + [True] * flagged_non_events
            + [False] * (non_events - flagged_non_events),
        )

    parts = [group("a", 10, 5, 20, 2), group("b", 10, 8, 20, 0), group("c", 2, 2, 3, 0)]
    groups = [g for part in parts for g in part[0]]
    y = np.array([v for part in parts for v in part[1]], dtype=float)
    flagged = [f for part in parts for f in part[2]]
    rows = {r.group: r for r in threshold_performance("site", groups, y, flagged)}
    a, b, c = rows["a"], rows["b"], rows["c"]
    assert (a.flag_rate.value, a.sensitivity.value, a.ppv.value) == pytest.approx(
        (7 / 30, 0.5, 5 / 7)
    )
    assert b.ppv.value == 1.0 and b.number_needed_to_evaluate == 1.0
    for row in (a, b, c):
        for estimate in (row.flag_rate, row.sensitivity, row.ppv):
            assert estimate.low <= estimate.value <= estimate.high
    assert a.judged and b.judged and not c.judged
    # Equal opportunity: sensitivity 0.8 against 0.5; the small group (1.0) is left out.
    assert equal_opportunity_gap(list(rows.values())) == pytest.approx(0.3)


def test_a_challenger_favoured_only_by_the_treatment_feedback_loop_is_refused_on_the_untreated():
    """The champion's card is acted on for its high-risk patients and the intervention
    prevents most of their outcomes. A challenger fit to what practice then observes learns
    that those patients do well: on every discharge it looks better (it predicts the treated
    outcomes), on the untreated (the window retraining gates on: learning/retraining.py
    leaves out every discharge whose card, or another card of the call, was accepted) it
    has nothing to offer, and the gate refuses it."""
    rng = np.random.default_rng(5)
    n = 3000
    truth = 1 / (1 + np.exp(-(-2.0 + 1.3 * rng.normal(size=n))))  # the champion is the world
    treated = truth >= 0.3
    observed_risk = np.where(treated, 0.2 * truth, truth)  # the intervention's effect
    y = (rng.uniform(size=n) < observed_risk).astype(float)
    challenger = observed_risk  # learnt from outcomes that treatment changed
    patients = [f"patient-{i}" for i in range(n)]

    on_everything = decide(y, truth, challenger, {}, POLICY, patients=patients)
    assert on_everything.promote  # the trap: the loop makes the challenger look better

    untreated = ~treated
    on_untreated = decide(
        y[untreated],
        truth[untreated],
        challenger[untreated],
        {},
        POLICY,
        patients=[p for p, keep in zip(patients, untreated, strict=True) if keep],
    )
    assert not on_untreated.promote
    assert on_untreated.auroc_gain.value == pytest.approx(0.0, abs=1e-12)
