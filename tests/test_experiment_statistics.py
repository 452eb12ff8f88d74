"""The experiment statistics against published worked examples, and by simulation: no
effect is found in A/A tests more often than alpha even when looked at after every patient,
and a true effect lies within the intervals at their nominal rate."""

from __future__ import annotations

import random

import pytest

from evaluation.experiments import (
    compare,
    cumulative_looks,
    newcombe_interval,
    sample_size_per_arm,
    stopping_recommendation,
    two_proportion_p_value,
    wilson_interval,
)


def test_wilson_interval_matches_newcombe_1998_single_proportion_example():
    # Newcombe, Stat Med 1998;17:857-872, example 81/263: 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_difference_interval_matches_newcombe_1998_method_10_example():
    # Newcombe, Stat Med 1998;17:873-890, Table II (a) 56/70 - 48/80: 0.0524 to 0.3339.
    low, high = newcombe_interval(56, 70, 48, 80)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_sample_size_for_ten_versus_fifteen_percent():
    # 10% vs 15%, two-sided alpha 0.05, power 0.8, no continuity correction: 686 per arm.
    assert sample_size_per_arm(0.10, 0.05) == 686


def test_z_test_p_value_by_hand():
    # 30/100 vs 20/100: pooled 0.25, SE sqrt(0.25*0.75*0.02) = 0.0612, z = 1.633.
    assert two_proportion_p_value(30, 100, 20, 100) == pytest.approx(0.1025, abs=1e-3)


def _trial(rng: random.Random, rate: float, control_rate: float, patients: int):
    order = ["arm" if rng.random() < 0.5 else "control" for _ in range(patients)]
    arm = [int(rng.random() < rate) for who in order if who == "arm"]
    control = [int(rng.random() < control_rate) for who in order if who == "control"]
    return cumulative_looks(arm, control, order)


def test_a_a_tests_watched_after_every_patient_find_an_effect_at_most_at_alpha():
    rng = random.Random(2026)
    seeds, alpha = 300, 0.05
    always_valid = naive_peeking = 0
    for _ in range(seeds):
        looks = _trial(rng, 0.3, 0.3, 600)
        always_valid += compare(looks, tau=0.1, alpha=alpha).always_valid_p < alpha
        # What a dashboard showing the fixed-horizon p-value every 20 patients would do.
        naive_peeking += any(
            two_proportion_p_value(lk.events, lk.n, lk.control_events, lk.control_n) < alpha
            for lk in looks[40::20]
        )
    # Binomial(300, 0.05) exceeds 25 with probability < 0.5%.
    assert always_valid / seeds <= 25 / seeds
    assert naive_peeking > always_valid  # peeking at fixed-horizon p-values inflates errors


def test_a_true_effect_lies_in_the_intervals_and_is_detected():
    rng = random.Random(7)
    seeds, true_difference = 200, 0.15
    covered = sequence_covered = detected = 0
    for _ in range(seeds):
        looks = _trial(rng, 0.45, 0.30, 800)
        result = compare(looks, tau=0.1)
        covered += result.ci_low <= true_difference <= result.ci_high
        sequence_covered += result.always_valid_low <= true_difference <= result.always_valid_high
        detected += result.always_valid_p < 0.05
    assert covered / seeds >= 0.90  # nominal 95%
    assert sequence_covered / seeds >= 0.95  # a confidence sequence is conservative
    assert detected / seeds >= 0.8


def test_stopping_recommendation():
    looks = _trial(random.Random(1), 0.6, 0.2, 300)
    strong = compare(looks, tau=0.1)
    assert stopping_recommendation({"variant": strong}, 500, 0.05).startswith("stop: a difference")
    flat = compare(_trial(random.Random(1), 0.3, 0.3, 100), tau=0.1)
    assert stopping_recommendation({"variant": flat}, 500, 0.05).startswith("continue:")
    assert stopping_recommendation({"variant": flat}, 20, 0.05).startswith("stop: the planned")
