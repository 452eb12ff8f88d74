"""The population-scale benchmark runs (at its smallest size only: timings are not tested)."""

from __future__ import annotations

import re

from bench.scale import COLUMNS, crossing, main


def test_the_scale_benchmark_prints_a_table_of_positive_rates(spark, capsys):
    report = main(["--sizes", "10000"])
    assert report in capsys.readouterr().out
    header, row, *verdicts = report.splitlines()
    assert header.split()[1:] == " ".join(COLUMNS).split()
    size, *rates = re.split(r"\s{2,}", row.strip())
    assert size == "10,000"
    assert len(rates) == len(COLUMNS)
    assert all(float(rate.replace(",", "")) > 0 for rate in rates)
    assert [v.split(":")[0] for v in verdicts] == ["features", "counting"]


def test_the_crossing_is_found_between_the_sizes_measured():
    sizes = [10_000, 100_000, 1_000_000]
    assert "about 100,000 resources" in crossing(sizes, [100, 100, 100], [10, 100, 1000])
    assert "faster at every size" in crossing(sizes, [100, 100, 100], [10, 20, 50])
    assert "from the smallest size" in crossing(sizes, [1, 1, 1], [2, 2, 2])
