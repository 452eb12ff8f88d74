"""EARS C1/C2/C3, the improved Farrington algorithm and their evaluation on injected outbreaks.

Expected values are computed by hand in the comments (means, sample SDs with divisor
n - 1 as R's sd() used by surveillance::earsC, statistics, thresholds) or follow from
closed forms (Poisson GLM maximum likelihood = group means) and from the definitions of
the methods (nominal alpha), never from running the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.outbreak_detection import (
    Alarm,
    DetectionPerformance,
    _fit_poisson_glm,
    _outbreak_weights,
    _reference_weeks,
    _season_levels,
    _upper_quantile,
    detection_performance,
    ears_c1,
    ears_c2,
    ears_c3,
    farrington_flexible,
    farrington_series,
    simulate_series,
)

WEEKS = 52

# --------------------------------------------------------------------------------------
# EARS
# --------------------------------------------------------------------------------------

# Days 0-6: 1 3 1 3 1 3 2 -> mean 14/7 = 2, squared deviations 1+1+1+1+1+1+0 = 6,
# sample variance 6/6 = 1, SD 1. This 7-day block (and its rotations below) is the
# baseline of most hand-computed points.
BLOCK = [1, 3, 1, 3, 1, 3, 2]


def _by_index(alarms: list[Alarm]) -> dict[int, Alarm]:
    return {a.index: a for a in alarms}


def test_c1_hand_computed_including_a_tie_at_the_threshold():
    counts = [*BLOCK, 5, 9]
    alarms = ears_c1(counts)
    # Only days with a full 7-day baseline are evaluated: days 7 and 8.
    assert [a.index for a in alarms] == [7, 8]

    # Day 7: baseline days 0-6, mean 2, SD 1; C1 = (5 - 2) / 1 = 3, not > 3: no alarm.
    # Upper bound 2 + 3 * 1 = 5 (the count equals it: earsC alarms on observed > bound).
    day7 = alarms[0]
    assert day7.expected == pytest.approx(2.0)
    assert day7.statistic == pytest.approx(3.0)
    assert day7.threshold == pytest.approx(5.0)
    assert day7.alarm is False

    # Day 8: baseline days 1-7 = 3 1 3 1 3 2 5: sum 18, mean 18/7 = 2.571429;
    # sum of squares 9+1+9+1+9+4+25 = 58, SS = 58 - 18^2/7 = 11.714286, variance
    # 11.714286 / 6 = 1.952381, SD 1.397276; C1 = (9 - 2.571429) / 1.397276 = 4.60079.
    day8 = alarms[1]
    mean = 18 / 7
    sd = math.sqrt((58 - 18**2 / 7) / 6)
    assert day8.expected == pytest.approx(mean)
    assert sd == pytest.approx(1.397276, abs=1e-6)
    assert day8.statistic == pytest.approx(4.60079, abs=1e-5)
    assert day8.threshold == pytest.approx(mean + 3 * sd)
    assert day8.alarm is True


# Series for C2 and C3: days 7 and 8 continue the rotation of BLOCK so that the baselines
# of days 9, 10 and 11 (days 0-6, 1-7, 2-8) all have mean 2 and SD 1:
#   days 1-7 = 3 1 3 1 3 2 1 (sum 14, squared deviations 1+1+1+1+1+0+1 = 6)
#   days 2-8 = 1 3 1 3 2 1 3 (sum 14, squared deviations 6)
# Then days 9-12 = 4 4 3 6.
C2_SERIES = [*BLOCK, 1, 3, 4, 4, 3, 6]


def test_c2_hand_computed_with_the_two_day_guard_band():
    alarms = ears_c2(C2_SERIES)
    # Baseline of day t is days t-9 .. t-3: first evaluable day is 9.
    assert [a.index for a in alarms] == [9, 10, 11, 12]
    by_day = _by_index(alarms)
    # Days 9, 10, 11: mean 2, SD 1 -> C2 = (4-2)/1 = 2, (4-2)/1 = 2, (3-2)/1 = 1.
    assert [by_day[d].statistic for d in (9, 10, 11)] == pytest.approx([2.0, 2.0, 1.0])
    assert by_day[9].threshold == pytest.approx(2 + 3 * 1)
    # Day 12: baseline days 3-9 = 3 1 3 2 1 3 4: sum 17, mean 17/7 = 2.428571;
    # sum of squares 9+1+9+4+1+9+16 = 49, SS = 49 - 289/7 = 7.714286, variance 1.285714,
    # SD 1.133893; C2 = (6 - 2.428571) / 1.133893 = 3.14970 > 3: alarm.
    assert by_day[12].expected == pytest.approx(17 / 7)
    assert by_day[12].statistic == pytest.approx(3.14970, abs=1e-5)
    assert [by_day[d].alarm for d in (9, 10, 11, 12)] == [False, False, False, True]


def test_c3_hand_computed_sum_of_the_last_three_c2_excesses():
    alarms = ears_c3(C2_SERIES)
    # C3 needs C2 on days t-2, t-1, t: first evaluable day is 11.
    assert [a.index for a in alarms] == [11, 12]
    day11, day12 = alarms
    # Day 11: max(0, 2-1) + max(0, 2-1) + max(0, 1-1) = 1 + 1 + 0 = 2, not > 2: no alarm.
    # Its upper bound: the earlier days contribute L = 2, so today's C2 must exceed
    # 1 + (2 - 2) = 1: count > mean + 1 * SD = 2 + 1 = 3 (the count 3 is not above).
    assert day11.statistic == pytest.approx(2.0)
    assert day11.threshold == pytest.approx(3.0)
    assert day11.alarm is False
    # Day 12: max(0, 2-1) + max(0, 1-1) + max(0, 3.14970-1) = 1 + 0 + 2.14970 = 3.14970
    # > 2: alarm. Upper bound with L = 1: 17/7 + 1.133893 * (1 + 2 - 1) = 4.696358.
    assert day12.statistic == pytest.approx(3.14970, abs=1e-5)
    assert day12.threshold == pytest.approx(4.696358, abs=1e-6)
    assert day12.alarm is True


def test_zero_standard_deviation_as_in_earsC():
    # Baseline of days 7 and 8 is seven 2s: mean 2, SD 0. With earsC's default
    # minSigma = 0 the upper bound is the mean itself: a count of 2 does not alarm, a
    # count of 3 does (statistic +inf), a count of 1 does not (statistic -inf).
    flat = [2] * 7
    same, above = ears_c1([*flat, 2, 3])
    assert (same.statistic, same.threshold, same.alarm) == (0.0, 2.0, False)
    assert (above.statistic, above.threshold, above.alarm) == (math.inf, 2.0, True)
    (below,) = ears_c1([*flat, 1])
    assert (below.statistic, below.alarm) == (-math.inf, False)

    # With minSigma = 0.5 (Burkom's suggestion for sparse data in the earsC help):
    # day 8: C1 = (3 - 2) / 0.5 = 2, bound 2 + 3 * 0.5 = 3.5: no alarm;
    # a count of 4: C1 = (4 - 2) / 0.5 = 4 > 3: alarm.
    _, floored = ears_c1([*flat, 2, 3], min_sigma=0.5)
    assert (floored.statistic, floored.threshold, floored.alarm) == (2.0, 3.5, False)
    (four,) = ears_c1([*flat, 4], min_sigma=0.5)
    assert (four.statistic, four.alarm) == (4.0, True)

    # C2 and C3 on twelve 2s then a 3: C2 of day 12 (baseline days 3-9, all 2) is +inf,
    # so C3 = 0 + 0 + inf alarms; days 11 (C3 = 0) does not. The bound is the mean, 2.
    c3 = _by_index(ears_c3([2] * 12 + [3]))
    assert (c3[11].statistic, c3[11].alarm) == (0.0, False)
    assert (c3[12].statistic, c3[12].threshold, c3[12].alarm) == (math.inf, 2.0, True)


def test_ears_rejects_bad_input_and_short_series_give_no_points():
    assert ears_c1([1, 2, 3]) == []
    assert ears_c3([1] * 11) == []
    with pytest.raises(ValueError):
        ears_c1([1, -1, 2])
    with pytest.raises(ValueError):
        ears_c2([1] * 10, min_sigma=-1)


# --------------------------------------------------------------------------------------
# IRLS helper
# --------------------------------------------------------------------------------------


def test_irls_intercept_only_is_log_of_the_mean():
    y = np.array([1.0, 2, 3, 4, 10])
    fit = _fit_poisson_glm(np.ones((5, 1)), y)
    assert fit.converged
    # Poisson MLE of a common mean is the sample mean, 4.
    assert fit.coef[0] == pytest.approx(math.log(4.0))
    # Pearson dispersion: sum (y - 4)^2 / 4 / (5 - 1) = (9+4+1+0+36) / 4 / 4 = 3.125.
    assert fit.dispersion == pytest.approx(3.125)
    # Hat values with a single intercept: mu * (n mu)^-1 = 1/n.
    assert fit.hat == pytest.approx(np.full(5, 0.2))


def test_irls_binary_covariate_gives_log_group_means():
    y = np.array([1.0, 2, 3, 7, 8, 9])
    design = np.column_stack([np.ones(6), [0, 0, 0, 1, 1, 1]])
    fit = _fit_poisson_glm(design, y)
    # Group means 2 and 8: intercept log 2, effect log(8/2) = log 4.
    assert fit.coef == pytest.approx([math.log(2.0), math.log(4.0)])
    assert fit.df_residual == 4


def test_irls_prior_weights_give_a_weighted_mean():
    # Weighted Poisson score sum w (y - mu) = 0 -> mu = sum(w y) / sum(w)
    # = (1*2 + 1*4 + 2*9) / 4 = 24 / 4 = 6.
    fit = _fit_poisson_glm(np.ones((3, 1)), np.array([2.0, 4, 9]), np.array([1.0, 1, 2]))
    assert fit.coef[0] == pytest.approx(math.log(6.0))


# --------------------------------------------------------------------------------------
# Farrington building blocks
# --------------------------------------------------------------------------------------


def test_reweighting_weights_as_farrington_1996():
    # Residuals 0.5, 3.0, 1.0, 4.0 with threshold 2.58: raw weights 1, 1/9, 1, 1/16,
    # sum 2.173611; gamma = 4 / 2.173611 = 1.840256; weights sum to 4.
    weights = _outbreak_weights(np.array([0.5, 3.0, 1.0, 4.0]), 2.58)
    gamma = 4 / (2 + 1 / 9 + 1 / 16)
    assert weights == pytest.approx([gamma, gamma / 9, gamma, gamma / 16])
    assert weights.sum() == pytest.approx(4.0)


def test_seasonal_levels_ten_periods():
    # One year back, w = 3: reference weeks 60 and 8. Window around 8: weeks 5-11 (level
    # 10); between 12 and 60 - 3 - 1 = 56 there are 45 weeks -> 9 blocks of 5:
    # 12-16 level 1, 17-21 level 2, ..., 52-56 level 9; current window 57-60 level 10.
    levels = _season_levels(70, [60, 8], window=3, n_periods=10)
    assert levels[:5].tolist() == [0] * 5
    assert levels[5:12].tolist() == [10] * 7
    for block in range(9):
        start = 12 + 5 * block
        assert levels[start : start + 5].tolist() == [block + 1] * 5
    assert levels[57:61].tolist() == [10] * 4
    assert levels[61:].tolist() == [0] * 9
    # 46 weeks between windows (a 53-week year): 46 = 9 * 5 + 1, the first block is 6 long.
    uneven = _season_levels(70, [61, 8], window=3, n_periods=10)
    assert uneven[12:18].tolist() == [1] * 6
    assert uneven[18:23].tolist() == [2] * 5


def test_reference_weeks_follow_the_week_number_across_a_week_53():
    # Weeks 1..52, then a year with weeks 1..53, then 1..52 again.
    weeks = np.array(list(range(1, 53)) + list(range(1, 54)) + list(range(1, 53)))
    index = 52 + 53 + 9  # week 10 of the third year
    assert weeks[index] == 10
    # 52 weeks back (index 62) is week 11 of the 53-week year; the week before it (61) is
    # week 10 and is used. 52 weeks before that (index 9) is week 10 of the first year.
    references = _reference_weeks(weeks, index, 2)
    assert [int(weeks[r]) for r in references] == [10, 10, 10]
    assert references == [index, index - 53, index - 53 - 52]


def test_negative_binomial_plug_in_quantile():
    # Poisson(10): P(X <= 14) = 0.9165, P(X <= 15) = 0.9513 -> 95% quantile 15.
    assert _upper_quantile(10.0, 1.0, 0.05) == 15
    # phi = 2: negative binomial with size 10 / (2 - 1) = 10 and prob 1/2 (mean 10,
    # variance 20); its 95% quantile from the pmf C(x + 9, x) 0.5^(10 + x).
    cdf, x = 0.0, -1
    while cdf < 0.95:
        x += 1
        cdf += math.comb(x + 9, x) * 0.5 ** (10 + x)
    assert _upper_quantile(10.0, 2.0, 0.05) == x


# --------------------------------------------------------------------------------------
# Farrington end to end
# --------------------------------------------------------------------------------------


def _weeks(n: int) -> list[int]:
    return [i % WEEKS + 1 for i in range(n)]


def test_farrington_on_a_constant_series():
    # Every week 10: the GLM fits 10 everywhere, dispersion 0 -> phi = 1, all weights
    # equal, threshold = Poisson(10) 95% quantile = 15. 16 alarms, 15 does not.
    index = 5 * WEEKS + 10
    counts = [10] * (index + 1)
    weeks = _weeks(index + 1)
    counts[index] = 16
    alarm = farrington_flexible(counts, weeks, index)
    assert alarm.expected == pytest.approx(10.0)
    assert alarm.threshold == 15
    assert alarm.statistic == pytest.approx(16 / 15)
    assert alarm.alarm is True
    counts[index] = 15
    assert farrington_flexible(counts, weeks, index).alarm is False


def test_farrington_needs_five_cases_in_four_weeks():
    # Every baseline week 1: threshold = Poisson(1) 95% quantile = 3 (P(X <= 2) = 0.9197,
    # P(X <= 3) = 0.9810). Last four weeks 0 0 0 4: 4 > 3 but only 4 < 5 cases: no alarm;
    # 0 0 1 4: 5 cases: alarm. (The last 27 weeks are not in the baseline.)
    index = 5 * WEEKS + 10
    weeks = _weeks(index + 1)
    counts = [1] * (index + 1)
    counts[index - 3 : index + 1] = [0, 0, 0, 4]
    quiet = farrington_flexible(counts, weeks, index)
    assert quiet.expected == pytest.approx(1.0)
    assert quiet.threshold == 3
    assert quiet.alarm is False
    counts[index - 1] = 1
    assert farrington_flexible(counts, weeks, index).alarm is True


def test_farrington_all_zero_baseline_is_not_evaluated_like_r():
    # The Poisson log-mean of all-zero counts diverges; R's glm stops unconverged after
    # 25 iterations and farringtonFlexible returns NA: here NaN and no alarm.
    index = 5 * WEEKS + 10
    counts = [0] * (index + 1)
    counts[index - 1 : index + 1] = [3, 9]
    result = farrington_flexible(counts, _weeks(index + 1), index)
    assert math.isnan(result.threshold)
    assert result.alarm is False


def test_farrington_down_weights_a_past_outbreak():
    # Constant 10 with a 3-week outbreak of 70 around the reference week one year back;
    # the trend is switched off (p < 0 never holds) to isolate the reweighting.
    index = 5 * WEEKS + 10
    counts = [10] * (index + 1)
    for week in (index - WEEKS - 1, index - WEEKS, index - WEEKS + 1):
        counts[week] = 70
    weeks = _weeks(index + 1)
    # Without reweighting the window level's fitted mean is its sample mean (Poisson MLE
    # with a factor): 5 years x 7 weeks = 35 weeks, 3 of them 60 higher:
    # 10 + 3 * 60 / 35 = 15.142857.
    plain = farrington_flexible(
        counts, weeks, index, reweight_threshold=math.inf, p_threshold_trend=0.0
    )
    assert plain.expected == pytest.approx(10 + 180 / 35)
    # With reweighting (threshold 2.58) the outbreak weeks get Anscombe residuals of
    # about 6 (weight ~ gamma / 38), so the level mean falls to about
    # (32 * 10 + 3 * 70 / 38) / (32 + 3 / 38) = 10.15.
    robust = farrington_flexible(counts, weeks, index, p_threshold_trend=0.0)
    assert robust.expected < 11
    assert robust.expected < plain.expected


def test_farrington_false_alarm_rate_without_outbreaks_is_below_alpha():
    # Poisson(10) weekly counts, 8 seeded series, every week after the first 5 years.
    # The NB/Poisson 95% quantile leaves at most alpha = 0.05 above it for a known mean.
    alarms = 0
    evaluated = 0
    for seed in range(8):
        series = simulate_series(8 * WEEKS, seed=seed, theta=math.log(10))
        results = farrington_series(series.counts, series.step_of_year, 5 * WEEKS + 3)
        alarms += sum(a.alarm for a in results)
        evaluated += len(results)
    assert evaluated == 8 * (3 * WEEKS - 3)
    assert alarms / evaluated < 0.05


def test_farrington_alarms_during_a_large_outbreak():
    start = 6 * WEEKS + 10
    series = simulate_series(
        7 * WEEKS, seed=11, theta=math.log(10), outbreak_starts=[start], outbreak_k=20
    )
    ((first, stop),) = series.outbreaks
    assert first == start
    results = [
        farrington_flexible(series.counts, series.step_of_year, i) for i in range(first, stop)
    ]
    assert any(a.alarm for a in results)


def test_farrington_threshold_follows_the_season():
    # mu(t) = 10 exp(0.6 cos(2 pi t / 52)), t = index + 1: peak at index 52k + 51
    # (mu = 10 e^0.6 = 18.2), trough at index 52k + 25 (mu = 10 e^-0.6 = 5.5).
    series = simulate_series(7 * WEEKS, seed=3, theta=math.log(10), gamma1=0.6)
    peak = farrington_flexible(series.counts, series.step_of_year, 6 * WEEKS + 51)
    trough = farrington_flexible(series.counts, series.step_of_year, 6 * WEEKS + 25)
    assert peak.threshold > trough.threshold
    # Each expected value rests on ~35 window weeks: relative SE ~ 1/sqrt(35 mu) <= 7%.
    assert peak.expected == pytest.approx(10 * math.exp(0.6), rel=0.25)
    assert trough.expected == pytest.approx(10 * math.exp(-0.6), rel=0.25)


def test_farrington_rejects_an_index_without_enough_history():
    counts = [5] * 300
    with pytest.raises(ValueError):
        farrington_flexible(counts, _weeks(300), 200)


# --------------------------------------------------------------------------------------
# Evaluation helpers
# --------------------------------------------------------------------------------------


def test_detection_performance_hand_computed():
    alarm_days = {3, 6, 7, 14, 16}
    alarms = [Alarm(i, 0.0, 0.0, 0.0, 0.0, i in alarm_days) for i in range(20)]
    # Outbreak 5-7: first alarm 6 (1 step late); 12-14: alarm 14 (2 late); 18-19: none.
    # (30, 32) has no evaluated step and is left out.
    outbreaks = [(5, 8), (12, 15), (18, 20), (30, 32)]
    result = detection_performance(alarms, outbreaks, steps_per_year=365)
    # Outside outbreaks: 20 - 3 - 3 - 2 = 12 steps with alarms on days 3 and 16.
    assert result == DetectionPerformance(
        sensitivity=pytest.approx(2 / 3),
        false_alarms_per_year=pytest.approx(2 / 12 * 365),
        median_days_to_detection=1.5,
    )


def test_simulated_series_is_seeded_and_has_the_right_moments():
    kwargs = {"seed": 5, "theta": math.log(10), "dispersion": 3.0}
    first = simulate_series(20_000, **kwargs)
    assert first == simulate_series(20_000, **kwargs)
    counts = np.array(first.counts)
    # Negative binomial with mean 10 and variance 3 * 10 = 30; standard errors of the
    # sample mean and variance are ~0.04 and ~0.5, so these bounds are > 5 SE wide.
    assert counts.mean() == pytest.approx(10, abs=0.25)
    assert counts.var() == pytest.approx(30, abs=3)


def test_simulated_outbreaks_start_where_asked_and_last_at_most_20_steps():
    series = simulate_series(
        400, seed=1, theta=math.log(50), outbreak_starts=[100, 250], outbreak_k=10
    )
    # Poisson(10 * sqrt(50)) = Poisson(70.7) cases: practically never 0.
    assert [start for start, _ in series.outbreaks] == [100, 250]
    assert all(0 < stop - start <= 20 for start, stop in series.outbreaks)
    assert all(cases > 0 for cases in series.outbreak_cases)


# --------------------------------------------------------------------------------------
# Performance table on simulated series with injected outbreaks
# --------------------------------------------------------------------------------------

OUTBREAK_K = 10  # outbreak size in baseline standard deviations (Noufaily's design)


def _pooled(runs: list[tuple[list[Alarm], tuple[tuple[int, int], ...]]], steps_per_year: int):
    """Score several series at once by shifting each to its own index range."""
    alarms: list[Alarm] = []
    outbreaks: list[tuple[int, int]] = []
    for offset, (series_alarms, series_outbreaks) in enumerate(runs):
        shift = offset * 100_000
        alarms += [
            Alarm(a.index + shift, a.observed, a.expected, a.threshold, a.statistic, a.alarm)
            for a in series_alarms
        ]
        outbreaks += [(start + shift, stop + shift) for start, stop in series_outbreaks]
    return detection_performance(alarms, outbreaks, steps_per_year), len(outbreaks)


def test_performance_table_on_injected_outbreaks():
    rows = {}
    # Daily counts, Poisson mean 10, two years, an outbreak every 60 days, 5 seeds.
    daily = [
        simulate_series(
            2 * 365,
            seed=100 + seed,
            steps_per_year=365,
            theta=math.log(10),
            outbreak_starts=range(40, 700, 60),
            outbreak_k=OUTBREAK_K,
        )
        for seed in range(5)
    ]
    for name, method in (("EARS C1", ears_c1), ("EARS C2", ears_c2), ("EARS C3", ears_c3)):
        rows[name] = _pooled([(method(s.counts), s.outbreaks) for s in daily], 365)
    # Weekly counts, mean 10 with seasonality, eight years, 6 outbreaks in the last three.
    weekly = [
        simulate_series(
            8 * WEEKS,
            seed=200 + seed,
            theta=math.log(10),
            gamma1=0.4,
            gamma2=0.5,
            outbreak_starts=range(270, 410, 25),
            outbreak_k=OUTBREAK_K,
        )
        for seed in range(4)
    ]
    rows["Farrington (Noufaily)"] = _pooled(
        [(farrington_series(s.counts, s.step_of_year, 5 * WEEKS + 3), s.outbreaks) for s in weekly],
        WEEKS,
    )

    print(f"\nInjected outbreaks of {OUTBREAK_K} baseline SDs (lognormal profile)")
    print(f"{'method':<24}{'outbreaks':>10}{'sensitivity':>13}{'false/yr':>10}{'median delay':>14}")
    for name, (performance, n) in rows.items():
        delay = performance.median_days_to_detection
        print(
            f"{name:<24}{n:>10}{performance.sensitivity:>13.2f}"
            f"{performance.false_alarms_per_year:>10.1f}"
            f"{'-' if delay is None else f'{delay:.1f}':>14}"
        )

    # Floors and ceilings. An outbreak of 10 SDs puts about half its cases on its first
    # step (lognormal(0, 0.5): P(X < 1) = 0.5), i.e. ~5 SDs above the baseline, so every
    # method should catch most outbreaks.
    for name, (performance, _) in rows.items():
        assert performance.sensitivity >= 0.7, name
        assert performance.median_days_to_detection is not None
        assert performance.median_days_to_detection <= 2, name
    # C1/C2 on normal counts: (Y - mean)/S ~ sqrt(1 + 1/7) t_6, so
    # 365 * P(t_6 > 3 / 1.069) = 365 * 0.0154 = 5.6 false alarms a year; Poisson counts
    # are right-skewed, so allow up to 10.
    assert rows["EARS C1"][0].false_alarms_per_year <= 10
    assert rows["EARS C2"][0].false_alarms_per_year <= 10
    # C3 is the most sensitive and least specific of the three (Hutwagner et al. 2005:
    # specificity 95.4% vs 97.0%); at most 10% of days.
    assert rows["EARS C3"][0].false_alarms_per_year <= 36.5
    # Farrington: at most the nominal alpha = 0.05 per week, 2.6 a year.
    assert rows["Farrington (Noufaily)"][0].false_alarms_per_year <= 0.05 * WEEKS
