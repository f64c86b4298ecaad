"""bench/probe.py: the machine-speed track and what is read from it."""

import math

import pytest

from bench.probe import MIN_SPREAD_PROBES, PROBE_S, movement, movement_line, probe_gflop_s, speed_during, spread
from bench.stats import Z95, rerun_interval, robust_sd

TRACK = [(100.0, 50.0), (110.0, 50.0), (120.0, 25.0), (130.0, 50.0), (140.0, 50.0)]


def test_the_probe_measures_this_machine_for_its_time(monkeypatch):
    import time
    t0 = time.perf_counter()
    assert probe_gflop_s(1) > 0.1  # a 384-square matmul: far above 0.1 GFLOP/s on any CPU that runs torch
    assert time.perf_counter() - t0 >= PROBE_S  # the median over a tenth of a second, not a millisecond's luck


def test_a_case_reads_the_probes_around_its_window():
    assert speed_during(TRACK, 101, 109) == pytest.approx(1.0)  # probes at 100 and 110
    assert speed_during(TRACK, 121, 129) == pytest.approx(0.75)  # 120 (25) and 130 (50): median 37.5 of 50
    assert speed_during(TRACK, 111, 119) == pytest.approx(0.75)  # 110 and 120
    assert speed_during(TRACK, 150, 160) == pytest.approx(1.0)  # after the last probe: the last one
    assert speed_during([], 0, 1) is None


def test_movement_is_in_per_cent_of_the_median():
    moved = movement(TRACK)
    assert moved["min_pct"] == pytest.approx(-50) and moved["max_pct"] == pytest.approx(0)
    assert moved["probes"] == 5 and moved["median_gflop_s"] == 50
    assert movement(TRACK[:1]) is None and "no machine-speed track" in movement_line([])
    assert movement_line(TRACK).startswith("-40% to +0% of its median 50.0 GFLOP/s")


def test_spread_is_the_robust_sd_of_the_log_speed_and_needs_probes_enough():
    values = [100.0, 110.0, 90.0, 100.0, 1000.0]  # one wild probe moves the MAD little
    track = [(float(i), v) for i, v in enumerate(values)]
    assert spread(track) == pytest.approx(robust_sd([math.log(v) for v in values]))
    assert robust_sd([1.0, 2.0, 3.0, 4.0, 100.0]) == pytest.approx(1.4826)  # median 3, deviations 2 1 0 1 97
    assert spread(track[:MIN_SPREAD_PROBES - 1]) is None
    assert math.isnan(robust_sd([1.0]))


def test_a_rerun_interval_widens_each_side_in_log_space():
    lo, hi = rerun_interval(10.0, 9.0, 12.0, 0.0)
    assert (lo, hi) == pytest.approx((9.0, 12.0))  # a machine that never moves: the measurement's own CI
    lo, hi = rerun_interval(10.0, 10.0, 10.0, 0.1)
    assert lo == pytest.approx(10 * math.exp(-Z95 * 0.1)) and hi == pytest.approx(10 * math.exp(Z95 * 0.1))
    lo, hi = rerun_interval(10.0, 9.0, 12.0, 0.05)
    assert math.log(10 / lo) == pytest.approx(math.hypot(math.log(10 / 9), Z95 * 0.05))
    assert math.log(hi / 10) == pytest.approx(math.hypot(math.log(12 / 10), Z95 * 0.05))
    assert all(math.isnan(v) for v in rerun_interval(10.0, math.nan, 12.0, 0.05))
    assert all(math.isnan(v) for v in rerun_interval(10.0, 9.0, 12.0, math.nan))
