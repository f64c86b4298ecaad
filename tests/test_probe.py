"""bench/probe.py: the machine-speed track and what is read from it."""

import math

import pytest

from bench.probe import (MIN_SPREAD_WINDOWS, PROBE_S, fresh_memory_us, fresh_spread, movement, movement_line,
                         probe_gflop_s, speed_during, spread)
from bench.record import Result
from bench.stats import Z95, median, rerun_interval, stdev

TRACK = [(100.0, 50.0), (110.0, 50.0), (120.0, 25.0), (130.0, 50.0), (140.0, 50.0)]


def test_the_probe_measures_this_machine_for_its_time(monkeypatch):
    import time
    t0 = time.perf_counter()
    assert probe_gflop_s(1) > 0.1  # a 384-square matmul: far above 0.1 GFLOP/s on any CPU that runs torch
    assert time.perf_counter() - t0 >= PROBE_S  # the median over a tenth of a second, not a millisecond's luck


def test_fresh_memory_is_priced_per_page_on_one_thread_and_the_thread_count_is_put_back():
    import torch
    saved = torch.get_num_threads()
    cost = fresh_memory_us(repeats=3)
    # a page fault takes well over a nanosecond and well under a millisecond on anything that runs torch
    assert 0.001 < cost < 1000 and torch.get_num_threads() == saved


def test_the_fresh_memory_spread_is_the_sd_of_the_log_price_over_windows_a_group_counting_once():
    prices = [1.0, 1.2, 0.9, 1.0, 1.5]
    windows = [(10.0 * i, 10.0 * i + 10) for i in range(len(prices))]
    typical = median(prices)
    expected = stdev([math.log(p / typical) for p in prices])
    assert fresh_spread(list(zip(windows, prices))) == pytest.approx(expected)
    # a group's members measured the price one after another at the end of one window: its median counts once
    group = [(windows[0], 0.95), (windows[0], 1.0), (windows[0], 1.05)]
    assert fresh_spread(group + list(zip(windows[1:], prices[1:]))) == pytest.approx(expected)
    # a window at 5x the typical price was disturbed, not a price a rerun meets: left out, as the probe's are
    assert fresh_spread(list(zip(windows, prices)) + [((60.0, 70.0), 5.0)]) == pytest.approx(expected)
    assert fresh_spread(list(zip(windows, prices))[:MIN_SPREAD_WINDOWS - 1]) is None
    assert fresh_spread([(w, None) for w in windows]) is None


def test_a_case_that_pays_for_fresh_memory_is_widened_by_the_prices_spread_and_warned():
    from bench.cases import Case
    from bench.record import Result
    from bench.results import FRESH_SHARE_WARN, result_rows

    rounds = tuple(range(10_000_000, 10_120_000, 10_000))  # p50 about 10.05 ms
    prices = [1.0, 1.3, 0.8, 1.0, 1.1, 0.9]

    def case(i: int, model: str, faults: float, device: str = "cpu") -> Result:
        return Result(case=Case(model, device=device), status="ok", samples_ns=rounds, round_medians_ns=rounds,
                      started_at=100.0 + 20 * i, duration_s=10.0, machine="vm", page_faults_per_iter=faults,
                      fresh_page_us=prices[i])

    # half of a 10 ms step in faults at 1 us a page: 5,000 pages; the others fault on nothing
    results = [case(i, f"heavy{i}", 5000.0) for i in range(6)] + [case(i, f"none{i}", 0.0) for i in range(6)]
    track = {"vm": [(105.0 + 20 * i, 100.0 + i % 2) for i in range(6)]}  # a machine whose compute barely moved
    rows = {row["model"]: row for row in result_rows(results, None, track)}
    bare = {row["model"]: row for row in result_rows(
        [Result(**{**r.__dict__, "fresh_page_us": None}) for r in results], None, track)}
    p50 = rows["heavy0"]["latency_ms_p50"]
    assert rows["heavy0"]["fresh_memory_share"] == pytest.approx(5000 * 1.0 / 1e3 / p50)
    assert rows["none0"]["fresh_memory_share"] == 0 and bare["heavy0"]["fresh_memory_share"] is None
    spread_probe = spread(track["vm"], [(100.0 + 20 * i, 110.0 + 20 * i) for i in range(6)])
    log_sd = math.hypot(spread_probe, rows["heavy0"]["fresh_memory_share"] * fresh_spread(
        [((100.0 + 20 * i, 110.0 + 20 * i), p) for i, p in enumerate(prices)]))
    expected = rerun_interval(p50, rows["heavy0"]["latency_ms_p50_ci_low"], rows["heavy0"]["latency_ms_p50_ci_high"],
                              log_sd)
    assert (rows["heavy0"]["latency_ms_p50_rerun_low"], rows["heavy0"]["latency_ms_p50_rerun_high"]) == (
        pytest.approx(expected[0]), pytest.approx(expected[1]))
    assert rows["heavy0"]["latency_rerun_from"] == "probe + fresh memory"
    # a case that faults on nothing, or one without a price, keeps the probe's interval
    assert rows["none0"]["latency_rerun_from"] == "probe" == bare["heavy0"]["latency_rerun_from"]
    assert rows["none0"]["latency_p50_rerun_rel"] == pytest.approx(bare["heavy0"]["latency_p50_rerun_rel"])
    assert rows["heavy0"]["latency_p50_rerun_rel"] > rows["none0"]["latency_p50_rerun_rel"]
    assert rows["heavy0"]["fresh_memory_share"] >= FRESH_SHARE_WARN
    assert "about 50% of this step goes to memory new to the process (5,000 page faults per iteration at 1.00 us" \
        in rows["heavy0"]["warnings"]
    assert rows["none0"]["warnings"] == "" == bare["heavy0"]["warnings"]
    # a step faulting more than a thread could in its time is all fresh memory, not more; a GPU case has no share
    capped = result_rows([case(0, "huge", 1e6)], None, {})[0]
    assert capped["fresh_memory_share"] == 1.0
    assert result_rows([case(0, "gpu", 5000.0, device="cuda")], None, {})[0]["fresh_memory_share"] is None


def test_a_member_whose_threads_outlasted_a_fifth_of_its_waits_is_warned_of_in_its_row():
    from bench.cases import Case
    from bench.group import SETTLE_CAPPED_WARN
    from bench.results import result_rows

    rounds = tuple(range(10_000_000, 10_120_000, 10_000))

    def member(model: str, waits, capped) -> Result:
        return Result(case=Case(model), status="ok", samples_ns=rounds, round_medians_ns=rounds,
                      settle_waits=waits, settle_capped=capped)

    rows = {row["model"]: row for row in result_rows(
        [member("at", 10, 2), member("under", 10, 1), member("alone", None, None)], None, {})}
    assert rows["at"]["settle_capped_share"] == SETTLE_CAPPED_WARN == 0.2
    assert "this case's threads were still running when the 25 ms wait for them ended after 20% of its blocks" \
        in rows["at"]["warnings"] and "OMP_WAIT_POLICY" in rows["at"]["warnings"]
    assert rows["under"]["settle_capped_share"] == 0.1 and rows["under"]["warnings"] == ""
    assert rows["alone"]["settle_capped_share"] is None and rows["alone"]["warnings"] == ""


def test_a_case_reads_the_probes_around_its_window():
    assert speed_during(TRACK, 101, 109) == pytest.approx(1.0)  # probes at 100 and 110
    assert speed_during(TRACK, 121, 129) == pytest.approx(0.75)  # 120 (25) and 130 (50): median 37.5 of 50
    assert speed_during(TRACK, 111, 119) == pytest.approx(0.75)  # 110 and 120
    assert speed_during(TRACK, 150, 160) == pytest.approx(1.0)  # after the last probe: the last one
    assert speed_during([], 0, 1) is None


def test_a_group_reads_its_own_probes_not_its_neighbours():
    # a group's window from 115 to 125 holds the probe at 120: that one alone, not 110's and 130's beside it
    assert speed_during(TRACK, 115, 125) == pytest.approx(0.5)
    assert speed_during(TRACK, 100, 120) == pytest.approx(1.0)  # 100, 110, 120 inside: median 50


def test_movement_is_in_per_cent_of_the_median():
    moved = movement(TRACK)
    assert moved["min_pct"] == pytest.approx(-50) and moved["max_pct"] == pytest.approx(0)
    assert moved["probes"] == 5 and moved["median_gflop_s"] == 50
    assert movement(TRACK[:1]) is None and "no machine-speed track" in movement_line([])
    assert movement_line(TRACK).startswith("-40% to +0% of its median 50.0 GFLOP/s")


def test_spread_is_the_sd_of_the_log_speed_over_case_windows_and_needs_windows_enough():
    values = [100.0, 110.0, 90.0, 100.0, 150.0]
    # each window of 10 s holds two 20 ms probes: the window's speed is their median, as a case's time averages
    track = [(10.0 * i + dt, v * f) for i, v in enumerate(values) for dt, f in ((2, 0.8), (8, 1.2))]
    windows = [(10.0 * i, 10.0 * i + 10) for i in range(len(values))]
    typical = median([v for _, v in track])
    assert spread(track, windows) == pytest.approx(stdev([math.log(v / typical) for v in values]))
    assert spread(track, windows) < stdev([math.log(v) for _, v in track])  # the single probes swing wider
    assert spread(track, windows + windows) == spread(track, windows)  # a group's members share one window
    assert spread(track, windows[:MIN_SPREAD_WINDOWS - 1]) is None


def test_a_rerun_interval_widens_each_side_in_log_space_for_two_windows():
    r2 = math.sqrt(2)  # the rerun's own window is as uncertain as this one
    lo, hi = rerun_interval(10.0, 9.0, 12.0, 0.0)
    # a machine that never moves: the rerun's median still has its own measurement error
    assert math.log(10 / lo) == pytest.approx(r2 * math.log(10 / 9)) and math.log(hi / 10) == pytest.approx(
        r2 * math.log(12 / 10))
    lo, hi = rerun_interval(10.0, 10.0, 10.0, 0.1)
    assert lo == pytest.approx(10 * math.exp(-r2 * Z95 * 0.1)) and hi == pytest.approx(10 * math.exp(r2 * Z95 * 0.1))
    lo, hi = rerun_interval(10.0, 9.0, 12.0, 0.05)
    assert math.log(10 / lo) == pytest.approx(r2 * math.hypot(math.log(10 / 9), Z95 * 0.05))
    assert math.log(hi / 10) == pytest.approx(r2 * math.hypot(math.log(12 / 10), Z95 * 0.05))
    assert all(math.isnan(v) for v in rerun_interval(10.0, math.nan, 12.0, 0.05))
    assert all(math.isnan(v) for v in rerun_interval(10.0, 9.0, 12.0, math.nan))


def test_a_runs_rows_widen_each_case_by_its_own_machines_spread_between_windows():
    from bench.cases import Case
    from bench.record import Result
    from bench.results import result_rows

    rounds = tuple(range(1_000_000, 1_012_000, 1_000))  # 12 round medians, 1.000-1.011 ms: a narrow CI

    def case_at(start: float, machine: str, model: str) -> Result:
        return Result(case=Case(model), status="ok", samples_ns=rounds, round_medians_ns=rounds, started_at=start,
                      duration_s=10.0, machine=machine)

    results = [case_at(100.0 + 20 * i, "moving", f"m{i}") for i in range(6)]
    results += [case_at(100.0 + 20 * i, "steady", f"s{i}") for i in range(6)]
    # "moving": each window's probes at 70 or 140 GFLOP/s; "steady": the same speed throughout
    tracks = {"moving": [(105.0 + 20 * i, 70.0 if i % 2 else 140.0) for i in range(6)],
              "steady": [(105.0 + 20 * i, 100.0) for i in range(6)]}
    rows = {row["model"]: row for row in result_rows(results, None, tracks)}
    for i in range(6):
        moving, steady = rows[f"m{i}"], rows[f"s{i}"]
        assert moving["latency_ms_p50_rerun_low"] < moving["latency_ms_p50_ci_low"]
        assert moving["latency_ms_p50_rerun_high"] > moving["latency_ms_p50_ci_high"]
        assert moving["machine_speed_rel"] in (pytest.approx(2 / 3), pytest.approx(4 / 3))  # against the median, 105
        # a machine that did not move: the rerun interval is the measurement's own, for two windows
        p50, low, high = (steady[f"latency_ms_p50{end}"] for end in ("", "_ci_low", "_ci_high"))
        assert steady["latency_ms_p50_rerun_low"] == pytest.approx(p50 * (low / p50) ** math.sqrt(2))
        assert steady["latency_ms_p50_rerun_high"] == pytest.approx(p50 * (high / p50) ** math.sqrt(2))
        assert moving["latency_p50_rerun_rel"] > steady["latency_p50_rerun_rel"]


def test_a_disturbed_window_is_left_out_of_the_spread_and_its_cases_are_warned():
    from bench.cases import Case
    from bench.record import Result
    from bench.results import result_rows

    rounds = tuple(range(1_000_000, 1_012_000, 1_000))
    results = [Result(case=Case(f"m{i}"), status="ok", samples_ns=rounds, round_medians_ns=rounds,
                      started_at=100.0 + 20 * i, duration_s=10.0, machine="vm") for i in range(7)]
    calm = [100.0, 110.0, 90.0, 105.0, 95.0, 100.0]
    # the fourth window's probes waited a scheduler slice per matmul: 7 GFLOP/s, 7% of the machine's speed
    speeds = calm[:3] + [7.0] + calm[3:]
    rows = {row["model"]: row for row in result_rows(results, None, {"vm": [(105.0 + 20 * i, v) for i, v in
                                                                             enumerate(speeds)]})}
    calm_only = {row["model"]: row for row in result_rows(
        [r for i, r in enumerate(results) if i != 3], None,
        {"vm": [(105.0 + 20 * i, v) for i, v in enumerate(speeds) if i != 3]})}
    assert "the machine ran at 0.07x its typical speed" in rows["m3"]["warnings"]
    assert all(rows[f"m{i}"]["warnings"] == "" for i in range(7) if i != 3)
    # the others' intervals are those of the calm windows alone: one disturbance does not widen them all
    assert rows["m0"]["latency_p50_rerun_rel"] == pytest.approx(calm_only["m0"]["latency_p50_rerun_rel"])


def test_a_rerun_interval_widens_to_how_far_this_machines_cases_moved_since_its_previous_run(tmp_path):
    import time

    from bench.cases import Case
    from bench.record import Result
    from bench.results import MIN_HISTORY_CASES, load
    from bench.store import Store

    store = Store(tmp_path / "h.db")
    rounds = tuple(range(1_000_000, 1_012_000, 1_000))  # 12 block medians: a narrow CI

    def run(label, fingerprint, scales, n=6, measured_on=None, options=None):
        time.sleep(0.01)  # runs in the order made
        environment = {"hostname": "h", "machine_fingerprint": fingerprint}
        if options and "allocator" in options:  # the one in effect, as the run records it
            environment["cpu_allocator"] = options.pop("allocator")
        settings = {"options": options} if options else {}
        run_id = store.new_run(suite="s", suite_json={}, environment=environment, calibration={}, settings=settings,
                               cases_total=n, machine=label)
        for i in range(n):
            samples = tuple(int(v * scales[i % len(scales)]) for v in rounds)
            store.add_result(run_id, Result(case=Case(f"m{i}"), status="ok", samples_ns=samples,
                                            round_medians_ns=samples, started_at=time.time(), duration_s=1.0,
                                            machine=(measured_on or [label])[i % len(measured_on or [label])]))
        return run_id

    first = run("box", "f1", [1.0])
    # every case 10% slower or faster than in the first run, but one 3x slower: the median change is 10%
    second = run("box", "f1", [1.1, 1 / 1.1, 1.1, 1 / 1.1, 1.1, 3.0])
    assert load(first, store)["latency_rerun_from"].isna().all()  # no track, no earlier run: no rerun interval
    rows = load(second, store)
    assert (rows["latency_rerun_from"] == f"run {first}").all()
    sd = 1.4826 * math.log(1.1) / math.sqrt(2)  # each run's share of the change
    for _, row in rows.iterrows():
        p50, low, high = (row[f"latency_ms_p50{end}"] for end in ("", "_ci_low", "_ci_high"))
        assert row["latency_ms_p50_rerun_high"] == pytest.approx(
            p50 * math.exp(math.sqrt(2 * (math.log(high / p50) ** 2 + (Z95 * sd) ** 2))))
        assert row["latency_ms_p50_rerun_low"] == pytest.approx(
            p50 * math.exp(-math.sqrt(2 * (math.log(p50 / low) ** 2 + (Z95 * sd) ** 2))))
    # another machine (label or hardware), or a run measured partly elsewhere, is not this one's history; a later
    # run reads the latest of its own
    run("box-b", "f1", [2.0])
    run("box", "f2", [2.0])
    run("box", "f1", [3.0], measured_on=["box", "box-2"])  # its box cases alone are too few
    third = run("box", "f1", [1.0])
    assert (load(third, store)["latency_rerun_from"] == f"run {second}").all()
    assert load(first, store)["latency_rerun_from"].isna().all()  # later runs change nothing of an earlier one
    few = run("box", "f1", [1.0], n=MIN_HISTORY_CASES - 1)
    assert load(few, store)["latency_rerun_from"].isna().all()  # too few cases in common say too little
    same = run("box", "f1", [1.0])  # nothing moved since the third run: no history, not a zero-width one
    assert load(same, store)["latency_rerun_from"].isna().all()
    elsewhere = run("box", "f1", [1.1], measured_on=["box-3"])  # resumed on another machine under the label
    assert load(elsewhere, store)["latency_rerun_from"].isna().all()
    # measured another way (interleaved in groups, or with freed memory kept): not this one's history, though a
    # run from before either setting counts as measured alone with glibc's own allocator
    alike = run("box", "f1", [1.1], options={"group": "none", "allocator": "system"})
    assert (load(alike, store)["latency_rerun_from"] == f"run {same}").all()
    grouped = run("box", "f1", [1.0], options={"group": "variant", "allocator": "system"})
    kept = run("box", "f1", [1.1], options={"group": "none", "allocator": "keep"})
    assert load(grouped, store)["latency_rerun_from"].isna().all() and load(kept, store)["latency_rerun_from"].isna().all()
    assert (load(run("box", "f1", [1.1], options={"group": "variant", "allocator": "system"}), store)[
        "latency_rerun_from"] == f"run {grouped}").all()
    # under --isolation none every case is measured alone, whatever the suite's grouping says
    inline = run("box", "f1", [1.0], options={"group": "variant", "isolation": "none", "allocator": "keep"})
    assert (load(inline, store)["latency_rerun_from"] == f"run {kept}").all()
    with store.engine.begin() as conn:  # a run whose environment is not a table: no history, and no error
        conn.exec_driver_sql(f"update runs set environment_json = 'null' where id = '{first}'")
    assert load(first, store)["latency_rerun_from"].isna().all() and len(load(second, store)) == 6


def test_the_rerun_interval_takes_the_wider_of_the_probes_spread_and_the_history():
    from bench.cases import Case
    from bench.record import Result
    from bench.results import result_rows

    rounds = tuple(range(1_000_000, 1_012_000, 1_000))
    results = [Result(case=Case(f"m{i}"), status="ok", samples_ns=rounds, round_medians_ns=rounds,
                      started_at=100.0 + 20 * i, duration_s=10.0, machine="vm") for i in range(6)]
    tracks = {"vm": [(105.0 + 20 * i, 70.0 if i % 2 else 140.0) for i in range(6)]}  # a probe spread of ~0.38
    probed = result_rows(results, None, tracks)
    narrow = result_rows(results, None, tracks, history=(0.01, "r0"))
    wide = result_rows(results, None, tracks, history=(1.0, "r0"))
    assert {row["latency_rerun_from"] for row in narrow} == {"probe"}
    assert [row["latency_p50_rerun_rel"] for row in narrow] == [row["latency_p50_rerun_rel"] for row in probed]
    assert {row["latency_rerun_from"] for row in wide} == {"run r0"}
    assert all(w["latency_p50_rerun_rel"] > p["latency_p50_rerun_rel"] for w, p in zip(wide, probed))
