"""bench/probe.py: the machine-speed track and what is read from it."""

import pytest

from bench.probe import movement, movement_line, probe_gflop_s, speed_during

TRACK = [(100.0, 50.0), (110.0, 50.0), (120.0, 25.0), (130.0, 50.0), (140.0, 50.0)]


def test_the_probe_measures_this_machine():
    assert probe_gflop_s(1) > 0.1  # a 384-square matmul: far above 0.1 GFLOP/s on any CPU that runs torch


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
