"""The p-chart against a published worked example and hand-computed run-rule cases."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from evaluation.plots import p_chart_plot
from evaluation.spc import (
    BEYOND_LIMITS,
    CITATIONS,
    RUN_OF_EIGHT,
    TREND_OF_SIX,
    TWO_OF_THREE,
    PChart,
    Period,
    p_chart,
    version_changes,
)


def _periods(counts: list[int | tuple[int, int]], n: int = 100) -> list[Period]:
    """Periods W00, W01, ...; an int is `events` out of `n`, a tuple is (events, n)."""
    return [
        Period(f"W{i:02d}", *(c if isinstance(c, tuple) else (c, n))) for i, c in enumerate(counts)
    ]


def _flagged(chart: PChart, rule: str) -> set[int]:
    return {i for i, point in enumerate(chart.points) if rule in point.signals}


# Most cases: n = 100 throughout and a one-period baseline of 50/100, so p-bar = 0.5,
# sigma = sqrt(0.5 * 0.5 / 100) = 0.05, 2-sigma band 0.40..0.60, 3-sigma limits 0.35..0.65;
# in events out of 100: 2 sigma = 10 events, 3 sigma = 15 events.


def test_montgomery_example_7_1_orange_juice_cans() -> None:
    # Montgomery, Introduction to SQC 7th ed., Example 7.1: 30 samples of n = 50 cans.
    counts = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22]
    counts += [8, 10, 5, 13, 11, 20, 18, 24, 15, 9, 12, 7, 13, 9, 6]
    assert sum(counts) == 347
    chart = p_chart(_periods(counts, n=50))
    assert chart.center == pytest.approx(0.2313, abs=5e-4)
    for point in chart.points:
        assert point.upper == pytest.approx(0.4102, abs=5e-4)
        assert point.lower == pytest.approx(0.0524, abs=5e-4)
    # Published: samples 15 and 23 (1-based) are out of control.
    assert _flagged(chart, BEYOND_LIMITS) == {15 - 1, 23 - 1}


@pytest.mark.parametrize("above", [True, False])
def test_run_of_eight_flags_the_eighth_and_further_points(above: bool) -> None:
    # Indices 1..9 are on one side (alternating 2 and 4 events away, so no trend,
    # all within 2 sigma); the 8th of them is index 8, the 9th index 9; index 10 is
    # on the other side and ends the run.
    offsets = [0, 2, 4, 2, 4, 2, 4, 2, 4, 2, -2]
    sign = 1 if above else -1
    chart = p_chart(_periods([50 + sign * d for d in offsets]), baseline=1)
    assert chart.center == 0.5
    assert _flagged(chart, RUN_OF_EIGHT) == {8, 9}
    assert all(p.signals in ((), (RUN_OF_EIGHT,)) for p in chart.points)


def test_run_of_eight_skips_empty_periods() -> None:
    # Above the center at indices 1-4 and 6-9 (8 points); index 5 has n = 0 and is skipped.
    chart = p_chart(_periods([50, 52, 54, 52, 54, (0, 0), 52, 54, 52, 54, 48]), baseline=1)
    assert _flagged(chart, RUN_OF_EIGHT) == {9}
    empty = chart.points[5]
    assert (empty.proportion, empty.lower, empty.upper, empty.signals) == (None, None, None, ())


def test_a_point_on_the_center_breaks_a_run() -> None:
    # Above at 1-4, exactly on the center (50/100 = 0.5) at 5, then above at 6-13:
    # without the break index 8 would already be the 8th; with it, 13 is the first.
    counts = [50, 52, 54, 52, 54, 50, 52, 54, 52, 54, 52, 54, 52, 54]
    chart = p_chart(_periods(counts), baseline=1)
    assert _flagged(chart, RUN_OF_EIGHT) == {13}


def test_trend_of_six_increasing() -> None:
    # 50 -> 41 falls; 41, 43, 45, 47, 49, 51, 53 (indices 1-7) rise: index 6 is the 6th
    # point of the rise, 7 the 7th; 52 at index 8 falls and ends it. 41 is 1.8 sigma below.
    chart = p_chart(_periods([50, 41, 43, 45, 47, 49, 51, 53, 52]), baseline=1)
    assert _flagged(chart, TREND_OF_SIX) == {6, 7}
    assert {i for i, p in enumerate(chart.points) if p.signals} == {6, 7}


def test_trend_of_six_decreasing_skipping_an_empty_period() -> None:
    # 50 -> 59 rises; 59, 57, 55, 53, 51, 49 fall (index 3 has n = 0, skipped): the 6th
    # falling point is index 7.
    chart = p_chart(_periods([50, 59, 57, (0, 0), 55, 53, 51, 49]), baseline=1)
    assert _flagged(chart, TREND_OF_SIX) == {7}


def test_a_tie_breaks_a_trend() -> None:
    # 41, 43, 45 rise (3 points), 45 again is a tie, then 45, 47, 49, 51 is only 4.
    chart = p_chart(_periods([50, 41, 43, 45, 45, 47, 49, 51]), baseline=1)
    assert _flagged(chart, TREND_OF_SIX) == set()


def test_two_of_three_beyond_two_sigma_on_the_same_side() -> None:
    # 62 is z = +2.4, 38 is z = -2.4 (beyond 2 sigma, inside 3 sigma); 50 is z = 0.
    #  idx 1: 62, nothing before beyond      -> no
    #  idx 3: 62, idx 1 (62) among 1..2      -> yes
    #  idx 6: 62, idx 4, 5 are 50            -> no
    #  idx 7: 38, idx 6 is on the other side -> no
    #  idx 8: 62, idx 6 (62) among 6..7      -> yes
    #  idx 9: 38, idx 7 (38) among 7..8      -> yes
    #  idx 10: 38, idx 9 (38)                -> yes
    chart = p_chart(_periods([50, 62, 50, 62, 50, 50, 62, 38, 62, 38, 38]), baseline=1)
    assert _flagged(chart, TWO_OF_THREE) == {3, 8, 9, 10}
    assert {i for i, p in enumerate(chart.points) if p.signals} == {3, 8, 9, 10}
    assert chart.signals == [chart.points[i] for i in (3, 8, 9, 10)]


def test_limits_vary_with_n_and_are_clipped() -> None:
    # p-bar = 0.5. n = 25: sigma = sqrt(0.25 / 25) = 0.1, limits 0.2..0.8, and 15/25 = 0.6
    # is z = 1, inside. n = 400: sigma = 0.025, limits 0.425..0.575, and 240/400 = 0.6 is
    # z = 4, beyond. n = 4: sigma = 0.25, 0.5 -+ 0.75 clipped to 0..1. 100/400 = 0.25 is
    # z = -10, below.
    chart = p_chart(_periods([50, (15, 25), (240, 400), (2, 4), (100, 400)]), baseline=1)
    small, large, tiny, low = chart.points[1:]
    assert (small.lower, small.upper) == pytest.approx((0.2, 0.8))
    assert (large.lower, large.upper) == pytest.approx((0.425, 0.575))
    assert (tiny.lower, tiny.upper) == (0.0, 1.0)
    assert small.signals == ()
    assert large.signals == (BEYOND_LIMITS,)
    assert low.signals == (BEYOND_LIMITS,)
    assert tiny.signals == ()


def test_limits_for_another_center() -> None:
    # Baseline 20/100 -> p-bar 0.2; n = 64: sigma = sqrt(0.2 * 0.8 / 64) = 0.05, limits 0.05..0.35.
    chart = p_chart(_periods([20, (16, 64)]), baseline=1)
    assert chart.center == pytest.approx(0.2)
    assert (chart.points[1].lower, chart.points[1].upper) == pytest.approx((0.05, 0.35))


def test_baseline_defaults_to_all_periods() -> None:
    # (10 + 30) / (100 + 100) = 0.2 with all periods; 10/100 = 0.1 with the first only.
    periods = _periods([10, 30])
    assert p_chart(periods).center == pytest.approx(0.2)
    assert p_chart(periods, baseline=1).center == pytest.approx(0.1)


def test_center_at_zero_gives_no_limits_based_signals_but_runs_still_count() -> None:
    # Baseline 0/50 -> p-bar 0, sigma 0, limits collapse onto 0: 1/50 and 2/50 are not
    # "beyond limits", but indices 1..8 are 8 in a row above the center.
    chart = p_chart(_periods([0, 1, 2, 1, 2, 1, 2, 1, 2], n=50), baseline=1)
    assert chart.center == 0.0
    assert all((p.lower, p.upper) == (0.0, 0.0) for p in chart.points)
    assert _flagged(chart, BEYOND_LIMITS) == _flagged(chart, TWO_OF_THREE) == set()
    assert _flagged(chart, RUN_OF_EIGHT) == {8}


def test_center_at_one_gives_no_limits_based_signals() -> None:
    chart = p_chart(_periods([50, 40, 30], n=50), baseline=1)
    assert chart.center == 1.0
    assert chart.signals == []


def test_no_data_means_no_center() -> None:
    assert p_chart([]) == PChart(center=None, points=())
    chart = p_chart(_periods([(0, 0), (5, 10)]), baseline=1)
    assert chart.center is None
    assert chart.points[1].proportion == 0.5
    assert (chart.points[1].lower, chart.points[1].upper, chart.points[1].signals) == (
        None,
        None,
        (),
    )


@pytest.mark.parametrize(("events", "n"), [(-1, 5), (1, -1), (6, 5)])
def test_invalid_counts_are_rejected(events: int, n: int) -> None:
    with pytest.raises(ValueError):
        Period("W01", events, n)


@pytest.mark.parametrize("baseline", [0, -1, 3])
def test_invalid_baseline_is_rejected(baseline: int) -> None:
    with pytest.raises(ValueError, match="baseline"):
        p_chart(_periods([1, 2]), baseline=baseline)


def test_version_changes() -> None:
    in_use = [("W1", "1.0"), ("W2", "1.0"), ("W3", "1.1"), ("W4", "1.1"), ("W5", "1.0")]
    assert version_changes(in_use) == [("W3", "1.1"), ("W5", "1.0")]
    assert version_changes([("W1", "1.0")]) == []
    assert version_changes([]) == []


def test_citations_are_printable() -> None:
    assert any("10.1136/qhc.12.6.458" in c for c in CITATIONS)
    assert any("Montgomery" in c for c in CITATIONS)


def test_p_chart_plot() -> None:
    chart = p_chart(_periods([50, 52, 54, 52, 54, (0, 0), 52, 54, 52, 54, 48]), baseline=1)
    figure = p_chart_plot(chart, "acceptance", changes=[("W03", "2"), ("W07", "3")])
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 1
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.texts] == ["v2", "v3"]
    dashed_x = [line.get_xdata()[0] for line in axes.lines if line.get_linestyle() == "--"]
    assert dashed_x == [3, 7]
    assert len(axes.collections) == 1  # the red signal points (index 9)
    assert axes.get_ylim() == (0.0, 1.0)
    with pytest.raises(ValueError):
        p_chart_plot(chart, "acceptance", changes=[("W99", "4")])
