"""bench/runner.py: isolation, fault statuses, crash-safe resume, concurrent writers (real worker processes)."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import allocator
from bench.cases import usable_cpus
from bench.stats import median
from bench.suites import suite_from_dict
from bench.runner import RunOptions, execute, start_run
from bench.store import Store, StoreError

TESTS = Path(__file__).resolve().parent


pytestmark = pytest.mark.usefixtures("fault_models")


def run(tmp_path, table, options=RunOptions()):
    store = Store(tmp_path / "s.db")
    suite = suite_from_dict({"threads": [1], **table}, name="t")
    run = start_run(suite, RunOptions(**{**options.__dict__, "calibrate_seconds": 0.05}))
    execute(store, run)
    return store.results(run.id)


def test_crash_and_timeout_become_statuses_and_the_suite_goes_on(tmp_path):
    results = run(tmp_path, {"models": ["fault_crash", "fault_hang", "lenet5"],
                             "measure": {"timeout_s": 6, "max_seconds": 0.5}})
    by_model = {r.case.model: r for r in results}
    assert by_model["fault_crash"].status == "crashed" and "SIGSEGV" in by_model["fault_crash"].reason
    assert by_model["fault_hang"].status == "timeout" and "6 s limit" in by_model["fault_hang"].reason
    assert by_model["lenet5"].status in ("ok", "noisy") and by_model["lenet5"].samples_ns
    assert by_model["lenet5"].macs == 416_520  # static figures are joined in by the runner


def test_allocation_failure_is_oom_and_retry_halves_the_batch_in_rows_of_its_own(tmp_path):
    results = run(tmp_path, {"models": ["fault_oom"], "batch_sizes": [4]}, RunOptions(oom_retry=True))
    assert [(r.case.batch_size, r.status, r.requested_batch_size) for r in results] == [
        (4, "oom", None), (2, "oom", 4), (1, "oom", 4)]
    assert "can't allocate memory" in results[0].reason


def test_a_worker_under_a_memory_limit_goes_oom(tmp_path):
    results = run(tmp_path, {"models": ["vgg11"], "batch_sizes": [64], "measure": {"max_seconds": 0.5}},
                  RunOptions(memory_limit_bytes=2**30))
    assert [r.status for r in results] == ["oom"]


def test_without_retry_the_batch_is_never_changed(tmp_path):
    results = run(tmp_path, {"models": ["fault_oom"], "batch_sizes": [4]})
    assert [(r.case.batch_size, r.status) for r in results] == [(4, "oom")]


def test_invalid_variant_is_kept_and_marked(tmp_path):
    results = run(tmp_path, {"models": ["fault_layout"], "memory_formats": ["contiguous", "channels_last"],
                             "measure": {"max_seconds": 0.5}})
    status = {r.case.memory_format: r.status for r in results}
    assert status["contiguous"] in ("ok", "noisy") and status["channels_last"] == "invalid"
    bad = next(r for r in results if r.case.memory_format == "channels_last")
    assert bad.samples_ns and bad.output_rel_err > 0.1 and "differs from fp32 contiguous eager" in bad.reason


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "bench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def wait_for_cases(db, cases, timeout_s=120):
    """The store once its newest run holds ``cases`` cases (or the timeout passed), polled every 0.2 s."""
    deadline = time.time() + timeout_s
    store = None
    while time.time() < deadline:
        try:
            store = store or Store(db, create=False)
        except StoreError:  # no store yet, or the runner is still creating its tables
            time.sleep(0.2)
            continue
        runs = store.list_runs()
        if runs and runs[0]["cases_done"] >= cases:
            break
        time.sleep(0.2)
    return store


def resume(run_id, db):
    """``cnnbench run --resume`` in this process: the runner to finish was another process, killed or cut off."""
    from bench.cli import main

    assert main(["run", "--resume", run_id, "--store", db, "--quiet"]) == 0


def test_kill_the_runner_mid_suite_then_resume_loses_nothing(store_url):
    db = store_url
    runner = cli("run", "--models", "fault_slow", "--batch-sizes", "1,2,3,4,5,6", "--precision", "fp32",
                 "--memory-format", "contiguous", "--threads", "1", "--max-seconds", "0.5", "--store", db, "--quiet")
    store = wait_for_cases(db, 2)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    run_id = store.list_runs()[0]["run_id"]
    before = {r.case.key: r for r in store.results(run_id)}
    assert 2 <= len(before) < 6
    resume(run_id, db)
    after = {r.case.key: r for r in store.results(run_id)}
    assert len(after) == 6 and sorted(r.case.batch_size for r in after.values()) == [1, 2, 3, 4, 5, 6]
    assert all(after[key] == result for key, result in before.items())  # what finished is untouched
    assert store.list_runs()[0]["finished_at"] is not None


def test_postgresql_stopped_mid_run_fails_the_case_in_flight_and_keeps_what_was_committed(own_postgres, capsys):
    from bench.cli import main

    db = own_postgres.url
    runner = cli("run", "--models", "fault_slow", "--batch-sizes", "1,2,3,4,5,6", "--precision", "fp32",
                 "--memory-format", "contiguous", "--threads", "1", "--max-seconds", "0.5", "--store", db, "--quiet")
    store = wait_for_cases(db, 2)
    run_id = store.list_runs()[0]["run_id"]
    committed = {r.case.key: r for r in store.results(run_id)}
    store.engine.dispose()
    time.sleep(0.5)  # past the probe between cases, into the next case's measuring (each: > 1 s)
    own_postgres.stop()  # as a crash: no goodbye to the runner's connection
    try:
        _, err = runner.communicate(timeout=120)
    finally:
        runner.kill()
    assert runner.returncode == 3, err
    assert err.startswith("error: results store 'postgresql://cnnbench:***@127.0.0.1:") and "cannot be reached" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    flying = re.search(r"not stored: 1 case in flight \((fault_slow\|[^)]*)\)", err)
    assert flying, err
    assert f"every case committed before is kept: finish with 'cnnbench run --resume {run_id}' with the same " \
           "--store once the store is back" in err
    own_postgres.start()
    assert main(["runs", "--store", db, "--format", "json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["run_id"] == run_id and listed["finished_at"] is None and 2 <= listed["cases_done"] < 6
    assert main(["export", run_id, "--store", db, "--format", "csv"]) == 0
    exported = capsys.readouterr().out.splitlines()
    assert len(exported) == 1 + listed["cases_done"]  # a header and each committed case, none half-stored
    kept = {r.case.key: r for r in Store(db, create=False).results(run_id)}
    assert len(kept) == listed["cases_done"] and all(r.status in ("ok", "noisy") and r.samples_ns for r in kept.values())
    assert all(kept[key] == result for key, result in committed.items())  # committed before the stop: intact
    assert flying.group(1) not in kept
    resume(run_id, db)
    after = Store(db, create=False).results(run_id)
    assert sorted(r.case.batch_size for r in after) == [1, 2, 3, 4, 5, 6]  # every case once
    assert all(next(r for r in after if r.case.key == key) == result for key, result in kept.items())
    assert Store(db, create=False).list_runs()[0]["finished_at"] is not None


def test_two_runners_on_one_store(store_url):
    db = store_url
    Store(db)  # created once, then shared
    args = ["--models", "lenet5", "--precision", "fp32,bf16", "--memory-format", "contiguous", "--threads", "1",
            "--max-seconds", "0.3", "--store", db, "--quiet"]
    first, second = cli("run", *args), cli("run", *args)
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0, second.stderr.read()
    store = Store(db, create=False)
    runs = store.list_runs()
    assert len(runs) == 2 and all(r["cases_done"] == r["cases_total"] == 4 for r in runs)
    assert all(len(store.results(r["run_id"])) == 4 for r in runs)
    if "://" not in db:
        import sqlite3
        with sqlite3.connect(db) as conn:
            assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"


# -- comparison groups ----------------------------------------------------------------------------

def test_grouping_rules():
    from bench.cases import Case
    from bench.runner import group_cases

    cases = [Case(m, precision=p, memory_format=f, batch_size=b)
             for m in ("a", "b") for b in (1, 2) for p in ("fp32", "amp-bf16") for f in ("contiguous", "channels_last")]
    by_variant = group_cases(cases, "variant")
    assert len(by_variant) == 4 and all(len(g) == 4 for g in by_variant)
    assert all(len({(c.model, c.batch_size) for c in g}) == 1 for g in by_variant)
    by_model = group_cases(cases, "model")
    assert len(by_model) == 8 and all([c.model for c in g] == ["a", "b"] for g in by_model)
    assert group_cases(cases, "none") == [[c] for c in cases]


def test_a_group_finds_a_1_5x_member_and_survives_a_crashing_one(tmp_path):
    results = run(tmp_path, {"models": ["paced_2ms", "fault_crash", "paced_3ms"], "group": "model",
                             "measure": {"max_seconds": 1.0, "warmup_seconds": 0.2, "timeout_s": 60}})
    by_model = {r.case.model: r for r in results}
    assert by_model["fault_crash"].status == "crashed" and "SIGSEGV" in by_model["fault_crash"].reason
    slow, base = by_model["paced_3ms"], by_model["paced_2ms"]
    assert base.status in ("ok", "noisy") and slow.status in ("ok", "noisy")
    pairing = slow.pairing
    assert pairing.reference == base.case.key and pairing.members == 3 and pairing.rounds >= 10
    # 3 ms against 2 ms of sleep, plus the same small compute and wake-up overhead on both: a little under 1.5
    assert pairing.ratio_ci_low <= pairing.ratio <= pairing.ratio_ci_high and 1.3 < pairing.ratio < 1.55
    assert pairing.p_value < 0.01 and pairing.ratio_ci_high - pairing.ratio_ci_low < 0.1
    assert base.pairing.ratio is None and base.pairing.group == slow.pairing.group
    assert len(slow.round_medians_ns) == pairing.rounds and slow.samples_ns
    assert base.cpu_peak_rss_delta_bytes is not None  # the worker's memory figures came back at the end


def test_pairings_and_round_medians_round_trip_through_the_store_and_export(tmp_path):
    from bench import runfile
    from bench.results import load

    results = run(tmp_path, {"models": ["paced_2ms"], "precisions": ["fp32", "bf16"],
                             "measure": {"max_seconds": 0.5, "warmup_seconds": 0.1}})
    store = Store(tmp_path / "s.db", create=False)
    run_id = store.latest_run_id()
    variant = next(r for r in results if r.case.precision == "bf16")
    assert variant.pairing is not None and variant.pairing.ratio is not None and variant.round_medians_ns
    doc = runfile.read(runfile.write(tmp_path / "run.json", runfile.dump(store, run_id)))
    assert {r.case.key: r for r in doc["results_parsed"]} == {r.case.key: r for r in results}
    frame = load(run_id, store).set_index("precision")
    assert frame.loc["bf16", "speedup"] == pytest.approx(1 / variant.pairing.ratio)
    assert frame.loc["bf16", "group"] == variant.pairing.group and frame.loc["fp32", "paired_rounds"] == 0
    assert set(frame["latency_ci_from"]) == {"rounds"}
    # the machine-speed track: a probe before the group, its own inside its window, one after it; each case's
    # speed is its group's probes'
    track = store.track(run_id)
    start, end = variant.started_at, variant.started_at + variant.duration_s
    inside = [value for at, value in track if start <= at <= end]
    assert track[0][0] < start and track[-1][0] > end and inside and all(value > 0 for _, value in track)
    speed = median(inside) / median([value for _, value in track])
    assert frame["machine_speed_rel"].tolist() == [pytest.approx(speed)] * 2
    assert frame["latency_ms_p50_rerun_low"].isna().all()  # one window says nothing of how the machine moves
    from bench.cli import main

    out = tmp_path / "track.csv"
    assert main(["export", run_id, "--track", "-o", str(out), "--store", str(tmp_path / "s.db")]) == 0
    import pandas as pd

    exported = pd.read_csv(out)
    assert list(exported["probe_gflop_s"]) == [value for _, value in track]
    assert exported["since_start_s"].is_monotonic_increasing and exported["speed_rel"].median() == pytest.approx(1)


@pytest.mark.parametrize("group", ["model", "none"])
def test_page_faults_per_iteration_and_the_fresh_page_price_are_measured_stored_and_exported(tmp_path, group):
    from fault_models import FRESH_BYTES
    from bench.results import load

    results = run(tmp_path, {"models": ["paced_2ms", "fresh_memory"], "group": group,
                             "measure": {"max_seconds": 0.4, "warmup_seconds": 0.1}}, RunOptions(allocator="system"))
    by_model = {r.case.model: r for r in results}
    fresh, paced = by_model["fresh_memory"], by_model["paced_2ms"]
    assert fresh.status in ("ok", "noisy") and paced.status in ("ok", "noisy"), (fresh.reason, paced.reason)
    # 40 MiB new to the process each forward: a fault per 4 KiB page of it; the paced model allocates next to nothing
    assert FRESH_BYTES // 4096 * 0.9 <= fresh.page_faults_per_iter <= FRESH_BYTES // 4096 * 1.5
    assert paced.page_faults_per_iter < 100
    assert all(0.001 < r.fresh_page_us < 1000 for r in results)
    # priced once, by the runner, right after the group: the members of a group share the price of their moment
    if group == "model":
        assert fresh.fresh_page_us == paced.fresh_page_us
    store = Store(tmp_path / "s.db", create=False)
    frame = load(store.latest_run_id(), store).set_index("model")
    assert frame.loc["fresh_memory", "page_faults_per_iter"] == fresh.page_faults_per_iter
    share = fresh.page_faults_per_iter * fresh.fresh_page_us / 1e3 / frame.loc["fresh_memory", "latency_ms_p50"]
    assert frame.loc["fresh_memory", "fresh_memory_share"] == pytest.approx(min(1.0, share))
    assert frame.loc["paced_2ms", "fresh_memory_share"] < 0.05


@pytest.mark.skipif(allocator.effective("keep") != "keep", reason="mallopt is glibc's")
@pytest.mark.parametrize("group", ["model", "none"])
def test_the_default_allocator_keeps_freed_memory_so_a_warm_step_takes_no_page_from_the_kernel(tmp_path, group):
    """The same 40 MiB a forward as above, under --allocator keep (the default): recorded in the run's options
    and environment, and the step no longer pays for fresh memory, grouped or alone."""
    from fault_models import FRESH_BYTES

    results = run(tmp_path, {"models": ["paced_2ms", "fresh_memory"], "group": group,
                             "measure": {"max_seconds": 0.4, "warmup_seconds": 0.1}})
    fresh = next(r for r in results if r.case.model == "fresh_memory")
    assert fresh.status in ("ok", "noisy"), fresh.reason
    assert any(r.pairing for r in results) == (group == "model")  # the group's path, and the lone worker's
    # under system each step faults every page (FRESH_BYTES // 4096, the test above); kept, the heap grows while it
    # settles (at most once or twice inside so short a sampling) and then serves every step from memory it has
    assert fresh.page_faults_per_iter < FRESH_BYTES // 4096 / 10
    store = Store(tmp_path / "s.db", create=False)
    run_row = store.run(store.latest_run_id())
    assert run_row["settings"]["options"]["allocator"] == "keep"
    assert run_row["environment"]["cpu_allocator"] == allocator.effective("keep")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or len(usable_cpus()) < 2, reason="needs /proc and 2 CPUs")
def test_a_member_whose_thread_pool_never_stops_spinning_is_counted_and_warned_of(tmp_path, monkeypatch):
    """OMP_WAIT_POLICY=active: OpenMP's pool spins on after every parallel region, so each wait for a member's
    threads ends at its cap, the next member's block begins with them on the CPUs, and the row says so."""
    from bench import processes
    from bench.group import SETTLE_CAPPED_WARN
    from bench.results import load

    monkeypatch.setenv("OMP_WAIT_POLICY", "active")  # read when OpenMP loads: a fork server of its own, started now
    monkeypatch.setattr(processes, "_server", None)
    try:
        results = run(tmp_path, {"models": ["spinning_pool"], "threads": [2],
                                 "memory_formats": ["contiguous", "channels_last"],
                                 "measure": {"max_seconds": 0.3, "warmup_seconds": 0.05}})
    finally:  # its own fork server, whose pool would spin on beside the tests after this one
        if processes._server is not None:
            processes._server.close()
    assert {r.status for r in results} <= {"ok", "noisy"} and len(results) == 2, [r.reason for r in results]
    assert all(r.settle_waits and r.settle_capped / r.settle_waits >= 0.5 for r in results), \
        [(r.settle_waits, r.settle_capped) for r in results]
    assert all(r.weights_shared is False for r in results)  # a tiny model: each member copies the builder's
    store = Store(tmp_path / "s.db", create=False)
    frame = load(store.latest_run_id(), store)
    assert (frame["settle_capped_share"] >= SETTLE_CAPPED_WARN).all()
    assert frame["warnings"].str.contains("OMP_WAIT_POLICY").all()


def test_group_none_measures_each_case_alone(tmp_path):
    results = run(tmp_path, {"models": ["paced_2ms"], "precisions": ["fp32", "bf16"], "group": "none",
                             "measure": {"max_seconds": 0.3, "warmup_seconds": 0.1}})
    assert all(r.pairing is None for r in results)
    # alone, the interval comes from the medians of its 50 ms blocks over the measuring window
    assert all(3 <= len(r.round_medians_ns) < len(r.samples_ns) for r in results)
    store = Store(tmp_path / "s.db", create=False)
    from bench.results import load

    frame = load(store.latest_run_id(), store)
    assert set(frame["latency_ci_from"]) == {"blocks"}


def test_a_member_that_hangs_times_out_and_the_group_goes_on(tmp_path):
    results = run(tmp_path, {"models": ["paced_2ms", "fault_hang", "paced_3ms"], "group": "model",
                             "measure": {"max_seconds": 0.5, "warmup_seconds": 0.1, "timeout_s": 3}})
    by_model = {r.case.model: r for r in results}
    assert by_model["fault_hang"].status == "timeout" and "3 s limit" in by_model["fault_hang"].reason
    slow = by_model["paced_3ms"]
    assert slow.status in ("ok", "noisy") and slow.pairing.rounds >= 10 and 1.3 < slow.pairing.ratio < 1.55


def test_a_group_in_flight_when_the_runner_is_killed_is_measured_again_whole(tmp_path):
    db = str(tmp_path / "s.db")
    runner = cli("run", "--models", "fault_slow", "--batch-sizes", "1,2,3", "--precision", "fp32,bf16",
                 "--memory-format", "contiguous", "--threads", "1", "--max-seconds", "0.5", "--store", db, "--quiet")
    store = wait_for_cases(db, 2)  # the first group (batch 1: fp32 and bf16 together) is stored
    time.sleep(1.0)  # well inside the second group's warm-up or rounds (each member: >= 0.5 s of blocks)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    run_id = store.list_runs()[0]["run_id"]
    before = {r.case.key: r for r in store.results(run_id)}
    assert len(before) % 2 == 0 and 2 <= len(before) < 6  # whole groups only: none half-stored
    resume(run_id, db)
    after = store.results(run_id)
    assert sorted((r.case.batch_size, r.case.precision) for r in after) == [
        (b, p) for b in (1, 2, 3) for p in ("bf16", "fp32")]  # every case once
    for result in after:  # each group's members paired with their own group's reference, from one measurement
        ref = next(r for r in after if r.case.batch_size == result.case.batch_size and r.case.precision == "fp32")
        assert result.pairing.group == ref.pairing.group and result.started_at == ref.started_at
        if result is not ref:
            assert result.pairing.reference == ref.case.key and result.pairing.rounds >= 10
    assert all(next(r for r in after if r.case.key == key) == result for key, result in before.items())


def test_a_run_compiles_into_an_inductor_cache_of_its_own(tmp_path, monkeypatch):
    import os

    from bench import runner
    from bench.record import Result

    seen = []
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "users-cache"))
    monkeypatch.setattr(runner, "measure", lambda case, sampling: seen.append(
        (os.environ["TORCHINDUCTOR_CACHE_DIR"], os.listdir(os.environ["TORCHINDUCTOR_CACHE_DIR"])))
        or Result(case=case, status="ok"))
    run(tmp_path, {"models": ["lenet5"], "batch_sizes": [1, 2]}, RunOptions(isolation="none", group="none"))
    (first, empty), (second, _) = seen
    assert first == second and empty == [] and "cnnbench-inductor-" in first  # one cache for the run, empty at first
    assert not os.path.exists(first) and os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "users-cache")


# -- faults of the run itself: nothing half-stored, nothing rewritten, one runner per run ---------------------

def test_a_run_that_could_not_start_leaves_nothing_in_the_store(tmp_path, monkeypatch):
    from bench import runner

    store = Store(tmp_path / "s.db")
    planned = start_run(suite_from_dict({"models": ["paced_2ms"], "threads": [1]}, name="t"),
                        RunOptions(calibrate_seconds=0.05))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner, "_attempts", full_disk)
    with pytest.raises(OSError):
        execute(store, planned)
    assert store.list_runs() == []


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    run(tmp_path, {"models": ["paced_2ms"], "measure": {"max_seconds": 0.2, "warmup_seconds": 0.1}})
    store = Store(tmp_path / "s.db", create=False)
    before = store.list_runs()
    assert before[0]["finished_at"] is not None
    execute(store, before[0]["run_id"])
    assert store.list_runs() == before and len(store.track(before[0]["run_id"])) == 2


def test_resume_refuses_flags_that_would_change_the_run_and_a_second_runner(tmp_path, capsys):
    from bench import processes
    from bench.cli import main

    run(tmp_path, {"models": ["paced_2ms"], "measure": {"max_seconds": 0.2, "warmup_seconds": 0.1}})
    db = tmp_path / "s.db"
    run_id = Store(db, create=False).latest_run_id()
    assert main(["run", "--resume", run_id, "--store", str(db), "--batch-sizes", "4", "--max-seconds", "1"]) == 2
    err = capsys.readouterr().err
    assert "--batch-sizes, --max-seconds would change it" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as refused:  # argparse's refusal: not a new run of the default suite
        main(["run", "--resume", "", "--store", str(db)])
    assert refused.value.code == 2 and "argument --resume" in capsys.readouterr().err
    with processes.claim(f"{db.resolve()}\0{run_id}", "another runner"):
        assert main(["run", "--resume", run_id, "--store", str(db), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is being measured by another cnnbench process" in err and len(err.strip().splitlines()) == 1
    assert main(["run", "--resume", run_id, "--store", str(db), "--quiet"]) == 0  # once that one has ended


@pytest.mark.parametrize("forkserver", ["1", "0"])
def test_a_groups_members_start_from_one_build_of_its_model(tmp_path, monkeypatch, forkserver):
    import os

    log = tmp_path / "builds"
    monkeypatch.setenv("CNNBENCH_TEST_BUILD_LOG", str(log))
    monkeypatch.setenv("CNNBENCH_FORKSERVER", forkserver)
    from bench import processes

    monkeypatch.setattr(processes, "_server", None)
    results = run(tmp_path, {"models": ["counted_builds"], "precisions": ["fp32", "bf16"], "batch_sizes": [2],
                             "memory_formats": ["contiguous", "channels_last"],
                             "measure": {"max_seconds": 0.2, "warmup_seconds": 0.05}})
    assert {r.status for r in results} <= {"ok", "noisy"} and len(results) == 4
    assert all(r.check_output for r in results if not r.case.is_reference)  # each checked against the reference
    assert all(r.cpu_rss_baseline_bytes for r in results)
    builders = [int(pid) for pid in log.read_text().split() if int(pid) != os.getpid()]  # not the static analysis
    # with a fork server: one build, by the group's builder, whatever the members; without one, each builds its own
    assert len(builders) == (1 if forkserver == "1" else 4), builders


def test_a_group_too_big_for_memory_is_split_in_parts_that_keep_the_reference(tmp_path, monkeypatch):
    from bench import runner

    two = 2 * runner._footprint_bytes(runner.Case("paced_2ms", input_shape=(1, 8, 8), threads=1))
    monkeypatch.setattr(runner, "available_bytes", lambda: int(two / 0.8) + 1)  # room for two workers at once
    results = run(tmp_path, {"models": ["paced_2ms"], "precisions": ["fp32", "bf16"],
                             "memory_formats": ["contiguous", "channels_last"],
                             "measure": {"max_seconds": 0.2, "warmup_seconds": 0.05}})
    by_variant = {r.case.variant: r for r in results}
    assert len(results) == 4 and {r.status for r in results} <= {"ok", "noisy"}
    labels = {r.pairing.group for r in results if not r.case.is_reference}
    assert len(labels) == 3 and all("part" in label and "of 3: too big for memory together" in label
                                    for label in labels)  # the split is recorded in each part's label
    reference = next(r for r in results if r.case.is_reference)
    for variant, result in by_variant.items():  # each paired with the one reference measured in its part
        if result is not reference:
            assert result.pairing.reference == reference.case.key and result.pairing.ratio is not None
