"""bench/stats.py: percentiles and the median's distribution-free confidence interval."""

import math
import random

import pytest

from bench import stats


def test_percentiles_match_numpy_linear_interpolation():
    xs = [5, 1, 4, 2, 3]
    assert stats.median(xs) == 3
    assert stats.percentile(xs, 0) == 1 and stats.percentile(xs, 100) == 5
    assert stats.percentile([1, 2, 3, 4], 50) == 2.5
    assert stats.percentile([10, 20], 90) == pytest.approx(19)
    assert math.isnan(stats.median([]))


def test_spread_figures():
    xs = [2, 4, 4, 4, 5, 5, 7, 9]
    assert stats.mean(xs) == 5
    assert stats.stdev(xs) == pytest.approx(2.138089935)
    assert stats.iqr(xs) == pytest.approx(1.5)  # p75 = 5 + 0.25 x (7 - 5), p25 = 4 (numpy's linear rule)


def test_median_ci_brackets_the_median_and_narrows_with_n():
    rng = random.Random(1)
    small = [rng.lognormvariate(0, 0.1) for _ in range(20)]
    large = [rng.lognormvariate(0, 0.1) for _ in range(2000)]
    lo, hi = stats.median_ci(small)
    assert lo <= stats.median(small) <= hi
    assert stats.median_ci_rel(large) < stats.median_ci_rel(small)
    assert stats.median_ci_rel([1.0, 1.0]) == math.inf  # too few samples to know anything
    five, six = [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert all(math.isnan(v) for v in stats.median_ci(five))  # [min, max] of 5 covers the median 93.75%: not 95
    assert stats.median_ci(six) == (1.0, 6.0) and stats.median_ci_rel(five) == math.inf


def test_median_ci_covers_the_true_median_about_95_percent_of_the_time():
    rng = random.Random(7)
    true_median = 1.0  # of lognormal(0, s)
    trials, covered = 2000, 0
    for _ in range(trials):
        xs = [rng.lognormvariate(0, 0.3) for _ in range(25)]
        lo, hi = stats.median_ci(xs)
        covered += lo <= true_median <= hi
    assert 0.93 <= covered / trials <= 0.99


def test_summarize_names_units():
    row = stats.summarize([1.0, 2.0, 3.0])
    assert row["latency_ms_p50"] == 2.0 and row["samples"] == 3
    assert set(row) >= {"latency_ms_p90", "latency_ms_p99", "latency_ms_iqr", "latency_p50_ci_rel"}
