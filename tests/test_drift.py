"""Drift (PSI) and performance over time against hand-computed values."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from evaluation.drift import performance_by_year, population_stability_index


def test_psi_of_a_binary_feature_matches_the_formula():
    expected = np.array([0] * 50 + [1] * 50)
    actual = np.array([0] * 70 + [1] * 30)
    by_hand = (0.7 - 0.5) * math.log(0.7 / 0.5) + (0.3 - 0.5) * math.log(0.3 / 0.5)
    assert population_stability_index(expected, actual) == pytest.approx(by_hand)  # 0.1695


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=5000)
    assert population_stability_index(reference, rng.normal(size=5000)) < 0.01
    assert population_stability_index(reference, rng.normal(1.0, 1.0, 5000)) > 0.25


def test_performance_by_year():
    times = [datetime(2020, 5, 1, tzinfo=UTC)] * 4 + [datetime(2021, 2, 1, tzinfo=UTC)] * 2
    y = np.array([1, 0, 0, 1, 0, 0])
    p = np.array([0.9, 0.2, 0.4, 0.3, 0.1, 0.2])
    (y2020, y2021) = performance_by_year(y, p, times)
    assert (y2020.period, y2020.n, y2020.events, y2020.observed_rate) == ("2020", 4, 2, 0.5)
    # Pairs (positive, negative): (0.9>0.2), (0.9>0.4), (0.3>0.2), (0.3<0.4) -> 3 of 4.
    assert y2020.auroc == pytest.approx(0.75)
    assert y2020.mean_predicted == pytest.approx(0.45)
    assert y2021.auroc is None and y2021.events == 0
