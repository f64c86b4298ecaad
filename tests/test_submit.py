"""`cnnbench submit` (bench/submit.py): a suite's shards as one job array into one store, on the single-node Slurm
that scripts/test.sh starts (scripts/slurm.sh) and through submitit's local executor, which is always tested: where
Slurm cannot start, the Slurm tests skip with the reason scripts/slurm.sh gave."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from bench import submit as dispatch
from bench.cli import _passed_on, build_parser
from bench.store import Store
from conftest import run_cli

SLURM = os.environ.get("CNNBENCH_TEST_SLURM") == "1"
SLURM_SKIP = os.environ.get("CNNBENCH_TEST_SLURM_SKIP") or (
    "CNNBENCH_TEST_SLURM is not set: scripts/test.sh starts a single-node Slurm for these tests")
needs_slurm = pytest.mark.skipif(not SLURM, reason=SLURM_SKIP)

pytestmark = pytest.mark.usefixtures("fault_models")

# 4 comparison groups of one case each (batch sizes are never grouped together): 2 a shard. paced_2ms sleeps 2 ms
# a forward, so a case costs its worker's start and 0.2 s of sampling, whatever the machine
SUITE = ["--models", "paced_2ms", "--batch-sizes", "1,2,3,4", "--precision", "fp32", "--memory-format", "contiguous",
         "--threads", "1", "--max-seconds", "0.2"]
# slower cases for the cancelled shard: 50 ms a forward, a second of sampling, 2 groups a shard, so that a shard
# can be cancelled between its first case stored and its last
SLOW_SUITE = ["--models", "fault_slow", "--batch-sizes", "1,2,3,4", "--precision", "fp32", "--memory-format",
              "contiguous", "--threads", "1", "--max-seconds", "1"]


@pytest.fixture
def shared_store(request, tmp_path):
    """The store the tasks share: a PostgreSQL database where scripts/test.sh started a server, else SQLite."""
    if os.environ.get("CNNBENCH_TEST_POSTGRES_URL"):
        return request.getfixturevalue("postgres_url")
    return str(tmp_path / "shared.db")


def suite_keys(capsys, suite):
    code, out, _ = run_cli(capsys, "run", *suite, "--dry-run")
    assert code == 0
    return out.split()


def submitted(out):
    """The run id and {shard: job id} that `cnnbench submit` printed."""
    run_id = re.search(r"^run (\S+)$", out, re.M).group(1)
    return run_id, dict(re.findall(r"^shard (\d+/\d+)  job (\S+)$", out, re.M))


def case_rows(url, run_id):
    """Every stored row of the run as (case_key, status), duplicates included: counted by SQL, not by the store's
    own reading."""
    with Store(url, create=False).engine.connect() as conn:
        return list(conn.execute(sa.text("select case_key, status from results where run_id = :r"), {"r": run_id}))


def assert_one_complete_run(url, run_id, keys, jobs):
    """The store holds one run, ``run_id``: every case of ``keys`` once, nothing else, each shard's row with its
    job id (``jobs``: shard -> job id) and all its cases, and the run finished."""
    store = Store(url, create=False)
    assert [r["run_id"] for r in store.list_runs()] == [run_id]
    rows = case_rows(url, run_id)
    assert sorted(key for key, _ in rows) == sorted(keys)
    assert all(status in ("ok", "noisy") for _, status in rows), rows
    shards = store.shards(run_id)
    assert {f"{s['shard']}/{s['shards']}": s["job_id"] for s in shards} == jobs
    assert all(s["cases_done"] == s["cases_total"] > 0 and s["finished_at"] is not None for s in shards)
    assert store.run(run_id)["finished_at"] is not None


def squeue_state(job_id):
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", job_id.split("_")[0], "-o", "%i|%T"],
                         capture_output=True, text=True, timeout=60).stdout
    return dict(line.split("|") for line in out.split()).get(job_id)


def wait_for(condition, timeout_s=180, every_s=0.2):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"not within {timeout_s} s")


# -- argument checks: nothing is submitted -------------------------------------------------------------------------

@pytest.mark.parametrize("flags, says", [
    (["--shards", "0"], "--shards must be a positive integer, got '0'"),
    (["--shards", "two"], "--shards must be a positive integer, got 'two'"),
    (["--shards", "10001"], "--shards must be at most 10000, got '10001'"),
    (["--shards", "2", "--time", "0"], "--time must be a positive integer, got '0'"),
    (["--shards", "2", "--max-parallel", "-1"], "--max-parallel must be a positive integer"),
    (["--shards", "2", "--cpus-per-task", "1.5"], "--cpus-per-task must be a positive integer, got '1.5'"),
    (["--shards", "2", "--gpus-per-task", ""], "--gpus-per-task must be a positive integer"),
    (["--shards", "2", "--executor", "pbs"], "--executor must be one of auto, slurm, local, got 'pbs'"),
    (["--shards", "2", "--run-id", "../x"], "--run-id"),
    (["--shards", "2", "--batch-sizes", "0"], "batch size"),
    (["--store", "s.db"], "--shards"),  # required
    (["--shards", "2"], "--store"),  # required
])
def test_bad_flags_are_one_line_and_exit_2(capsys, tmp_path, flags, says):
    argv = ["submit", *flags] + ([] if "--store" in flags or flags == ["--shards", "2"] else ["--store", str(tmp_path / "s.db")])
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and says in err, err
    assert not (tmp_path / "s.db").exists()


def test_a_suite_the_tasks_could_not_run_is_refused_before_anything_is_submitted(capsys, tmp_path):
    logs, db = tmp_path / "jobs", tmp_path / "s.db"
    common = ["--store", str(db), "--log-dir", str(logs), "--executor", "local"]
    code, _, err = run_cli(capsys, "submit", "--shards", "2", "--models", "no_such_net", *common)
    assert code == 2 and "no_such_net" in err and len(err.strip().splitlines()) == 1
    # 4 comparison groups, never split: a fifth shard would have nothing to measure
    code, _, err = run_cli(capsys, "submit", "--shards", "5", *SUITE, *common)
    assert code == 2 and "at most the suite's 4 comparison groups" in err and "shard 5/5" in err
    assert not logs.exists() and not db.exists()


def test_without_submitit_the_extra_is_named_and_the_exit_is_3(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit raises ImportError
    code, out, err = run_cli(capsys, "submit", "--shards", "2", *SUITE, "--store", str(tmp_path / "s.db"))
    assert code == 3 and out == "" and err.strip() == "error: cnnbench submit needs submitit: pip install 'cnnbench[slurm]'"


def test_executor_auto_is_slurm_only_where_sbatch_is_on_path(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, no srun
    assert dispatch.executor_kind("auto") == "local" and dispatch.executor_kind("local") == "local"
    code, _, err = run_cli(capsys, "submit", "--shards", "2", *SUITE, "--store", str(tmp_path / "s.db"),
                           "--executor", "slurm")
    assert code == 3 and "--executor slurm needs Slurm's sbatch" in err and not (tmp_path / "s.db").exists()
    for tool in ("sbatch", "srun"):
        (tmp_path / tool).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / tool).chmod(0o755)
    assert dispatch.executor_kind("auto") == "slurm"


def test_a_run_id_the_store_holds_with_other_cases_is_refused(capsys, tmp_path):
    db = tmp_path / "s.db"
    store = Store(db)
    store.import_run({"id": "nightly", "suite": "s", "settings": {"shards": 2, "cases": []}, "started_at": 1.0,
                      "cases_total": 0}, [])
    code, _, err = run_cli(capsys, "submit", "--shards", "2", *SUITE, "--store", str(db), "--run-id", "nightly",
                           "--log-dir", str(tmp_path / "jobs"), "--executor", "local")
    assert code == 2 and "--run-id 'nightly' is a run in" in err and not (tmp_path / "jobs").exists()


def test_the_tasks_get_the_suite_flags_as_typed_and_their_place_in_the_run():
    line = ["submit", "--shards=2", "--models", "paced_2ms", "--store", "s.db", "--max-s", "0.2", "--wait",
            "--batch-sizes=1,2", "--run-id", "r1", "--time", "5", "--oom-retry"]
    flags = _passed_on(line)
    assert flags == ["--models", "paced_2ms", "--max-s", "0.2", "--batch-sizes=1,2", "--oom-retry"]
    argv = dispatch.task_argv(flags, "2/2", "r1", dispatch.task_store("s.db"))
    task = vars(build_parser().parse_args(argv))
    typed = vars(build_parser().parse_args(["run", *flags]))
    assert {k: v for k, v in task.items() if k not in ("shard", "run_id", "store")} == \
        {k: v for k, v in typed.items() if k not in ("shard", "run_id", "store")}
    assert str(task["shard"]) == "2/2" and task["run_id"] == "r1"
    assert task["store"] == os.path.abspath("s.db")  # a task may start in another folder
    url = "postgresql://u:p@db.example:5432/bench"
    assert dispatch.task_store(url) == url


@pytest.mark.parametrize("word, category", [
    ("PENDING", "pending"), ("RUNNING", "running"), ("COMPLETING", "running"), ("COMPLETED", "done"),
    ("CANCELLED by 0", "failed"), ("TIMEOUT", "failed"), ("NODE_FAIL", "failed"), ("OUT_OF_MEMORY", "failed"),
    ("UNKNOWN", "unknown"), ("", "unknown"),
])
def test_slurm_states_by_what_they_mean_for_a_task(word, category):
    assert dispatch.slurm_category(word) == category


# -- the local executor: always tested ---------------------------------------------------------------------------

def test_two_shards_through_the_local_executor_make_one_complete_run(capsys, tmp_path, shared_store):
    keys = suite_keys(capsys, SUITE)
    code, out, err = run_cli(capsys, "submit", "--shards", "2", *SUITE, "--store", shared_store, "--executor", "local",
                             "--wait", "--log-dir", str(tmp_path / "jobs"))
    assert code == 0, err
    assert "to local processes" in err
    run_id, jobs = submitted(out)
    assert sorted(jobs) == ["1/2", "2/2"] and all(job.isdigit() for job in jobs.values())  # local: a process id
    assert re.search(rf"^run {run_id}: (\d+ (noisy|ok)(, )?)+$", out, re.M), out  # the run's summary
    assert_one_complete_run(shared_store, run_id, keys, jobs)


def test_a_failed_task_is_named_with_its_log(capsys, tmp_path, monkeypatch):
    """The tasks cannot import the test models (no PYTHONPATH in their environment, though this process has
    them): each fails, and --wait says which shard, with its log's last lines."""
    monkeypatch.delenv("PYTHONPATH")
    db = str(tmp_path / "s.db")
    code, out, err = run_cli(capsys, "submit", "--shards", "2", *SUITE, "--store", db, "--executor", "local",
                             "--wait", "--log-dir", str(tmp_path / "jobs"), "--run-id", "broken")
    assert code == 1, err
    for shard in ("1/2", "2/2"):
        assert f"error: shard {shard} (job " in err
        assert f"finish it with: cnnbench run --resume broken --shard {shard} --store {db}" in err
    # the task's own error, from its log
    assert "the last lines of its log" in err and "error: cannot import plugin 'fault_models'" in err


def test_ctrl_c_during_wait_leaves_the_local_jobs_running(capsys, tmp_path, monkeypatch):
    from bench import views

    def interrupted(self, text):
        raise KeyboardInterrupt

    monkeypatch.setattr(views.StatusLine, "update", interrupted)
    code, out, err = run_cli(capsys, "submit", "--shards", "2", *SUITE, "--store", str(tmp_path / "s.db"),
                             "--executor", "local", "--wait", "--log-dir", str(tmp_path / "jobs"))
    run_id, jobs = submitted(out)
    pids = [int(job) for job in jobs.values()]
    assert code == 130 and "stopped waiting" in err and "its jobs go on" in err
    assert f"to cancel them: kill {' '.join(jobs.values())}" in err
    for pid in pids:  # Ctrl-C reaches the whole foreground process group: the jobs ignore it
        os.kill(pid, signal.SIGINT)
    time.sleep(1)
    assert all(alive(pid) for pid in pids)
    for pid in pids:  # and the hint's way to cancel them works
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not any(alive(pid) for pid in pids), timeout_s=60)


def alive(pid):
    """Whether our child ``pid`` still runs (reaped once it ended, as submitit's job would)."""
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False


# -- Slurm ---------------------------------------------------------------------------------------------------------

@needs_slurm
def test_two_shards_as_one_slurm_job_array_make_one_complete_run(capsys, tmp_path, postgres_url):
    keys = suite_keys(capsys, SUITE)
    code, out, err = run_cli(capsys, "submit", "--shards", "2", *SUITE, "--store", postgres_url, "--wait",
                             "--log-dir", str(tmp_path / "jobs"))
    assert code == 0, err
    assert "to Slurm (sbatch is on PATH)" in err
    run_id, jobs = submitted(out)
    array = jobs["1/2"].split("_")[0]
    assert jobs == {"1/2": f"{array}_0", "2/2": f"{array}_1"}  # one array, task K-1 running shard K
    assert_one_complete_run(postgres_url, run_id, keys, jobs)
    assert err.strip().splitlines()[-1] == f"run {run_id}: 4/4 cases stored; jobs: 2 done"  # the progress line


@needs_slurm
def test_an_unknown_partition_is_refused_with_the_clusters_own(capsys, tmp_path):
    code, _, err = run_cli(capsys, "submit", "--shards", "2", *SUITE, "--store", str(tmp_path / "s.db"),
                           "--slurm-partition", "gpu-nope")
    assert code == 2 and "--slurm-partition must be one of this cluster's partitions (test)" in err
    assert not (tmp_path / "s.db").exists()


@needs_slurm
def test_a_cancelled_shard_is_finished_by_resume_with_no_case_lost_or_twice(capsys, tmp_path, postgres_url):
    keys = suite_keys(capsys, SLOW_SUITE)
    code, out, err = run_cli(capsys, "submit", "--shards", "2", *SLOW_SUITE, "--store", postgres_url,
                             "--log-dir", str(tmp_path / "jobs"))
    assert code == 0, err
    run_id, jobs = submitted(out)
    store = None  # made by the first shard

    def shard_two_started():
        nonlocal store
        try:
            store = store or Store(postgres_url, create=False)
        except Exception:  # not made yet
            return None
        if not store.has_run(run_id):
            return None
        rows = {s["shard"]: s for s in store.shards(run_id)}
        return 2 in rows and rows[2]["cases_done"] >= 1 and rows[2]

    row = wait_for(shard_two_started)
    subprocess.run(["scancel", jobs["2/2"]], check=True, timeout=60)
    wait_for(lambda: squeue_state(jobs["2/2"]) == "CANCELLED" and squeue_state(jobs["1/2"]) == "COMPLETED")
    before = {r.case.key: r for r in store.results(run_id)}
    left = {s["shard"]: s for s in store.shards(run_id)}[2]
    assert 1 <= left["cases_done"] < left["cases_total"] == 2, left  # cancelled mid-run
    assert row["job_id"] == jobs["2/2"] and left["finished_at"] is None
    assert store.run(run_id)["finished_at"] is None

    code, _, err = run_cli(capsys, "run", "--resume", run_id, "--shard", "2/2", "--store", postgres_url, "--quiet")
    assert code == 0, err
    rows = case_rows(postgres_url, run_id)
    assert sorted(key for key, _ in rows) == sorted(keys)  # nothing lost, nothing twice
    assert all(status in ("ok", "noisy") for _, status in rows), rows  # the case in flight was not kept as crashed
    after = {r.case.key: r for r in store.results(run_id)}
    assert all(after[key] == result for key, result in before.items())  # what was stored stays as it was
    assert store.run(run_id)["finished_at"] is not None


@needs_slurm
def test_a_shard_submitted_twice_leaves_one_row_per_case(capsys, tmp_path, postgres_url):
    """Two tasks of one array run shard 1/2 at once (the node has 2 CPUs), each with a temporary folder of its own
    as on two machines (on one, the second runner of a shard is refused: bench.processes.claim locks it in the
    temporary folder): both measure, and one row per case stays."""
    Store(postgres_url)
    argv = dispatch.task_argv(SUITE, "1/2", "twice", postgres_url)
    own_tmp = dispatch.Resources(time_min=10, cpus_per_task=1, setup=('export TMPDIR="$(mktemp -d)"',))
    tasks = dispatch.submit("slurm", tmp_path / "jobs", own_tmp, [argv, argv], ["1/2", "1/2"], name="cnnbench-twice")
    final = dispatch.follow("slurm", tasks, lambda now: None, poll_s=0.5)
    assert [state.category for state in final] == ["done", "done"], [dispatch.log_tail(t) for t in tasks]
    rows = case_rows(postgres_url, "twice")
    keys = [key for key, _ in rows]
    assert len(keys) == len(set(keys)) == 2  # shard 1/2's two groups, once each
    store = Store(postgres_url, create=False)
    (shard,) = store.shards("twice")
    assert shard["cases_done"] == shard["cases_total"] == 2 and shard["job_id"] in {t.job_id for t in tasks}
