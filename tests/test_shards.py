"""bench/shards.py and `run --shard K/N --run-id ID`: a deterministic partition by whole comparison groups, shards of
one run in one store (SQLite and PostgreSQL), a shard run twice, a dead shard resumed elsewhere (real workers)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from bench.cases import group_cases
from bench.errors import BadValue, StoreError
from bench.record import Result
from bench.shards import Shard, job_id, partition, shard_cases, shard_keys
from bench.store import Store
from bench.suites import suite_from_dict
from bench.values import chosen_run_id, shard
from conftest import run_cli

pytestmark = pytest.mark.usefixtures("fault_models")

TINY = ["--models", "lenet5", "--batch-sizes", "1,2", "--precision", "fp32,bf16", "--memory-format", "contiguous",
        "--threads", "1", "--max-seconds", "0.1", "--quiet"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=300)


def test_the_partition_deals_whole_groups_in_turn_and_covers_every_case_once():
    cases = suite_from_dict({"models": ["lenet5", "alexnet"], "batch_sizes": [1, 2, 4], "threads": [1],
                             "precisions": ["fp32", "bf16"], "memory_formats": ["contiguous", "channels_last"]},
                            name="t").cases()
    groups = group_cases(cases, "variant")
    assert len(groups) == 6
    parts = [shard_cases(cases, "variant", Shard(k, 4)) for k in (1, 2, 3, 4)]
    keys = [case.key for part in parts for case in part]
    assert sorted(keys) == sorted(case.key for case in cases) and len(set(keys)) == len(cases)  # once each
    for group in groups:  # never split: a group's members all fall to one shard
        assert sum(all(member in part for member in group) for part in parts) == 1
    # group i to shard i mod N + 1, in the suite's order: groups 0 and 4 to shard 1, 3 to shard 4
    assert parts[0] == groups[0] + groups[4] and parts[3] == groups[3]
    assert [len(part) for part in parts] == [8, 8, 4, 4]
    assert shard_cases(cases, "none", Shard(2, 24)) == [cases[1]]  # grouping none: case by case
    assert partition([[1, 2], [3], [4]], Shard(1, 1)) == [1, 2, 3, 4]
    settings = {"cases": [c.to_dict() for c in cases], "options": {"group": "variant"}}
    assert shard_keys(settings, Shard(4, 4)) == {case.key for case in groups[3]}


def test_a_dry_run_of_a_shard_lists_its_own_cases(capsys):
    from bench.cli import main

    assert main(["run", *TINY, "--dry-run"]) == 0
    whole = capsys.readouterr().out
    assert main(["run", *TINY, "--dry-run", "--shard", "2/2"]) == 0
    second = capsys.readouterr()
    assert second.out.split() == whole.split()[2:]  # the second group: batch 2
    assert second.err == "2 cases in shard 2/2 of suite 'quick+flags'\n"


def test_shard_and_run_id_values_are_checked():
    assert shard("2/3") == Shard(2, 3) and str(Shard(2, 3)) == "2/3" and shard(" 1/1 ") == Shard(1, 1)
    for bad in ("0/2", "3/2", "1/0", "a/b", "1/2/3", "1", "-1/2", "1/10001", ""):
        with pytest.raises(BadValue, match=r"--shard must be K/N with 1 <= K <= N <= 10000 .*got"):
            shard(bad)
    assert chosen_run_id("nightly-2026.11_28") == "nightly-2026.11_28"
    for bad in ("", "-x", "a b", "a/b", "x" * 65, "é"):
        with pytest.raises(BadValue, match="--run-id must"):
            chosen_run_id(bad)


def test_the_job_id_comes_from_submit_else_from_slurm():
    assert job_id({}) is None
    assert job_id({"SLURM_JOB_ID": "77"}) == "77"
    assert job_id({"SLURM_JOB_ID": "78", "SLURM_ARRAY_JOB_ID": "70", "SLURM_ARRAY_TASK_ID": "1"}) == "70_1"
    assert job_id({"CNNBENCH_JOB_ID": "70_0", "SLURM_JOB_ID": "78"}) == "70_0"


@pytest.mark.parametrize("argv, message", [
    (["--shard", "1/2"], "error: --shard needs --run-id: the id that every shard of the run shares"),
    (["--shard", "3/2", "--run-id", "x"], "error: --shard must be K/N with 1 <= K <= N <= 10000 (e.g. 1/2), got '3/2'"),
    (["--run-id", "a b"], "error: --run-id must be letters, digits"),
])
def test_bad_shard_flags_are_one_line_before_any_work(tmp_path, argv, message):
    done = cli("run", *TINY, "--store", str(tmp_path / "s.db"), *argv)
    assert done.returncode == 2 and done.stderr.startswith(message) and done.stderr.count("\n") == 1
    assert not (tmp_path / "s.db").exists()


def test_two_shards_make_one_run_with_every_case_once(tmp_path, capsys):  # into PostgreSQL: tests/test_submit.py
    from bench.cli import main

    store_url = str(tmp_path / "s.db")
    code, _, err = run_cli(capsys, "run", *TINY, "--store", store_url, "--shard", "1/2", "--run-id", "nightly",
                           "--machine", "box-a")
    assert code == 0, err
    store = Store(store_url, create=False)
    (row,) = store.list_runs()
    assert (row["run_id"], row["cases_total"], row["cases_done"], row["shards"], row["shards_done"]) == \
        ("nightly", 4, 2, 2, 1)
    assert row["finished_at"] is None  # a shard is not the run
    code, _, err = run_cli(capsys, "run", *TINY, "--store", store_url, "--shard", "2/2", "--run-id", "nightly",
                           "--machine", "box-b")
    assert code == 0, err
    (row,) = store.list_runs()
    assert (row["cases_done"], row["shards_done"]) == (4, 2) and row["finished_at"] is not None
    results = store.results("nightly")
    assert sorted(r.case.key for r in results) == sorted(c.key for c in store_cases(store, "nightly"))
    assert {r.machine for r in results if r.case.batch_size == 2} == {"box-b"}
    assert {r.machine for r in results if r.case.batch_size != 2} == {"box-a"}
    shards = store.shards("nightly")
    assert [(s["shard"], s["shards"], s["machine"], s["cases_total"], s["cases_done"]) for s in shards] == \
        [(1, 2, "box-a", 2, 2), (2, 2, "box-b", 2, 2)]
    assert all(s["finished_at"] and s["environment"]["hostname"] and s["calibration"] for s in shards)
    assert main(["runs", "--store", store_url]) == 0
    listed = capsys.readouterr().out
    assert "shards done" in listed and "2/2" in listed
    # the same shard planned otherwise, another shard count, a second plain run under the id: one line each, before
    # any calibration or measuring (here, in this process)
    assert main(["run", *TINY[:-1], "--store", store_url, "--shard", "1/2", "--run-id", "nightly",
                 "--max-seconds", "0.2"]) == 2
    assert "was planned with other cases or flags" in capsys.readouterr().err
    assert main(["run", *TINY, "--store", store_url, "--shard", "1/3", "--run-id", "nightly"]) == 2
    assert main(["run", *TINY, "--store", store_url, "--run-id", "nightly"]) == 2
    plain = capsys.readouterr().err
    assert "is already in" in plain and "--resume nightly" in plain
    assert len(store.results("nightly")) == 4


def store_cases(store, run_id):
    from bench.cases import Case

    return [Case.from_dict(c) for c in store.run(run_id)["settings"]["cases"]]


def test_a_shard_run_twice_at_once_leaves_one_row_per_case(tmp_path):  # PostgreSQL: tests/test_submit.py
    store_url = str(tmp_path / "s.db")
    Store(store_url)
    args = ["run", "--models", "fault_slow", "--batch-sizes", "1,2", "--precision", "fp32",
            "--memory-format", "contiguous", "--threads", "1", "--max-seconds", "0.2", "--quiet",
            "--store", store_url, "--shard", "1/1", "--run-id", "twice"]
    runners = []
    for machine in ("a", "b"):  # two machines: their own temporary folders, so no local lock keeps them apart
        (tmp_path / machine).mkdir()
        runners.append(subprocess.Popen([sys.executable, "-m", "bench", *args, "--machine", machine],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "TMPDIR": str(tmp_path / machine)}))
    for runner in runners:
        assert runner.wait(timeout=300) == 0, runner.stderr.read()
    store = Store(store_url, create=False)
    keys = [r.case.key for r in store.results("twice")]
    assert len(keys) == 2 == len(set(keys))
    (row,) = store.list_runs()
    assert row["finished_at"] is not None and (row["shards"], row["shards_done"]) == (1, 1)


def test_a_shard_killed_mid_run_is_finished_by_resume_on_another_machine(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    args = ["run", "--models", "fault_slow", "--batch-sizes", "1,2,3,4", "--precision", "fp32",
            "--memory-format", "contiguous", "--threads", "1", "--max-seconds", "0.3", "--quiet", "--store", db,
            "--run-id", "r", "--machine", "first"]
    runner = subprocess.Popen([sys.executable, "-m", "bench", *args, "--shard", "2/2"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if Store(db, create=False).done_keys("r"):
                break
        except Exception:
            pass
        time.sleep(0.2)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    store = Store(db, create=False)
    before = {r.case.key: r for r in store.results("r")}
    assert len(before) == 1  # shard 2 of 2: batches 2 and 4
    from bench.cli import main

    assert main(["run", "--resume", "r", "--store", db, "--shard", "2/3"]) == 2
    assert "has 2 shards, not 3" in capsys.readouterr().err
    code, _, err = run_cli(capsys, "run", "--resume", "r", "--store", db, "--shard", "2/2", "--machine", "second",
                           "--quiet")
    assert code == 0, err
    after = {r.case.key: r for r in store.results("r")}
    assert sorted(r.case.batch_size for r in after.values()) == [2, 4]
    assert all(after[key] == result for key, result in before.items())  # what was committed is untouched
    assert {r.machine for key, r in after.items() if key not in before} == {"second"}
    (shard_row,) = store.shards("r")
    assert (shard_row["machine"], shard_row["cases_done"], shard_row["cases_total"]) == ("second", 2, 2)
    assert shard_row["finished_at"] is not None and store.run("r")["finished_at"] is None  # shard 1 never ran
    code, _, err = run_cli(capsys, "run", "--resume", "r", "--store", db, "--quiet")  # no shard: what the run misses
    assert code == 0, err
    assert len(store.results("r")) == 4 and store.run("r")["finished_at"] is not None


def test_a_case_stored_meanwhile_is_left_out_and_returned(tmp_path):
    from bench.cases import Case

    store = Store(tmp_path / "s.db")
    run = store.new_run(suite="t", suite_json={}, environment={}, calibration={}, settings={}, cases_total=2)
    first = Result(case=Case("lenet5"), status="ok", machine="a")
    assert store.add_results(run, [first]) == []
    again = Result(case=Case("lenet5"), status="noisy", machine="b")
    other = Result(case=Case("lenet5", batch_size=2), status="ok")
    assert store.add_results(run, [again, other]) == [again]
    assert [(r.case.batch_size, r.status, r.machine) for r in store.results(run)] == [(1, "ok", "a"), (2, "ok", None)]


def test_resuming_an_unsharded_run_by_shard_is_refused_before_any_work(tmp_path):
    from bench.runner import RunOptions, run_settings

    suite = suite_from_dict({"models": ["lenet5"], "threads": [1]}, name="t")
    store = Store(tmp_path / "s.db")
    plain = store.new_run(suite="t", suite_json={}, environment={}, calibration={}, cases_total=1,
                          settings=run_settings(suite, suite.cases(), RunOptions()))
    refused = cli("run", "--resume", plain, "--store", str(tmp_path / "s.db"), "--shard", "1/2")
    assert refused.returncode == 2 and refused.stderr == f"error: run {plain!r} was not sharded: resume it without --shard\n"


def sharded_part(path, shard, points, machine):
    """A store as a node leaves it after measuring its shard of run 'n' (2 shards of 4 lenet5 cases) offline."""
    from bench.runner import RunOptions, run_settings

    suite = suite_from_dict({"models": ["lenet5"], "batch_sizes": [1, 2], "precisions": ["fp32", "bf16"],
                             "threads": [1]}, name="t")
    cases = suite.cases()
    settings = {**run_settings(suite, cases, RunOptions(group="variant")), "shards": 2}
    mine = shard_cases(cases, "variant", Shard(shard, 2))
    store = Store(path)
    run = {"id": "n", "suite": "t", "suite_definition": suite.to_dict(), "environment": {"hostname": machine},
           "calibration": {"cpu/float32/t1": 10.0 * shard}, "settings": settings, "started_at": 100.0 + shard,
           "finished_at": None, "cases_total": len(cases), "machine": machine}
    row = {"shard": shard, "shards": 2, "machine": machine, "environment": {"hostname": machine},
           "calibration": {}, "job_id": f"9_{shard - 1}", "cases_total": len(mine), "started_at": 100.0 + shard}
    results = [Result(case=case, status="ok", samples_ns=(1000 * shard,) * 5, machine=machine,
                      started_at=105.0 + i, duration_s=1.0) for i, case in enumerate(mine)]
    assert store.store_planned(run, results, row) == []
    store.add_track("n", points, machine)
    store.finish_shard("n", shard)
    return store


def test_the_parts_of_a_sharded_run_measured_offline_merge_into_one_run(tmp_path, store_url, capsys):
    from bench.cli import main
    from bench.results import load

    sharded_part(tmp_path / "a.db", 1, [(104.0, 100.0), (110.0, 100.0)], "box-a")
    sharded_part(tmp_path / "b.db", 2, [(104.5, 50.0), (110.5, 50.0)], "box-b")
    assert main(["merge", str(tmp_path / "a.db"), "--into", store_url]) == 0
    target = Store(store_url, create=False)
    assert target.run("n")["finished_at"] is None and len(target.results("n")) == 2
    assert main(["merge", str(tmp_path / "b.db"), str(tmp_path / "a.db"), "--into", store_url]) == 0
    assert "n: already in" in capsys.readouterr().out
    (row,) = target.list_runs()
    assert (row["cases_done"], row["cases_total"], row["shards"], row["shards_done"]) == (4, 4, 2, 2)
    assert target.run("n")["finished_at"] is not None
    assert [(s["shard"], s["machine"], s["job_id"], s["cases_done"]) for s in target.shards("n")] == \
        [(1, "box-a", "9_0", 2), (2, "box-b", "9_1", 2)]
    assert target.tracks("n") == {"box-a": [(104.0, 100.0), (110.0, 100.0)], "box-b": [(104.5, 50.0), (110.5, 50.0)]}
    # each case against its own machine's track: box-b is half as fast as box-a, and as fast as it usually is
    frame = load("n", target)
    assert frame["machine_speed_rel"].tolist() == [1.0] * 4 and set(frame["machine"]) == {"box-a", "box-b"}
    before = [(r.case.key, r.machine) for r in target.results("n")]
    assert main(["merge", str(tmp_path / "a.db"), str(tmp_path / "b.db"), "--into", store_url]) == 0  # twice: once
    assert [(r.case.key, r.machine) for r in target.results("n")] == before
    changed = Store(tmp_path / "b.db")
    with changed.engine.begin() as conn:
        conn.exec_driver_sql("update results set status = 'noisy'")
    assert main(["merge", str(tmp_path / "b.db"), "--into", store_url]) == 2
    assert "of its cases differ" in capsys.readouterr().err


def test_a_shard_joins_a_run_stored_before_the_allocator_setting_only_as_it_was_measured(tmp_path):
    """Such a run's options have no allocator: it was measured with glibc's own (``system``), and a shard that keeps
    freed memory would measure its part differently; the refusal names the setting."""
    store = Store(tmp_path / "s.db")
    old = {"measure": {"max_seconds": 1.0}, "options": {"isolation": "process", "group": "variant"}, "cases": []}
    run_id = store.new_run(suite="s", suite_json={}, environment={}, calibration={}, settings=old, cases_total=0)
    store.check_plan(run_id, {**old, "options": {**old["options"], "allocator": "system"}}, "shard 2/2")
    with pytest.raises(StoreError, match=r"planned with other cases or flags .*\(allocator 'system' -> 'keep'\)"):
        store.check_plan(run_id, {**old, "options": {**old["options"], "allocator": "keep"}}, "shard 2/2")
