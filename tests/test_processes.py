"""bench/processes.py and bench/forkserver.py: workers forked from a server that imported torch once."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import processes
from bench.processes import ForkServer, Forked, exit_reason, kill_group, start

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def on_path(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


def test_a_forked_worker_takes_the_callers_environment_and_directory_and_leads_its_group(on_path, monkeypatch,
                                                                                        tmp_path):
    monkeypatch.setenv("CNNBENCH_TEST_VALUE", "set after the server started")
    monkeypatch.chdir(tmp_path)
    proc = start("forked_main", ["env", "CNNBENCH_TEST_VALUE"], stdout=subprocess.PIPE)
    assert isinstance(proc, Forked)
    out = proc.stdout.read().decode()
    assert proc.wait(30) == 0
    assert out.strip() == f"set after the server started|{tmp_path}|True"


def test_pipes_exit_codes_signals_and_stderr(on_path):
    proc = start("forked_main", ["echo", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for line in ("one", "two"):
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == line
    proc.stdin.close()
    assert proc.wait(30) == 0
    failing = start("forked_main", ["exit", "3"])
    _, err = failing.communicate(timeout=30)
    assert failing.returncode == 3 and exit_reason(3, err.decode(), "result").endswith(": about to fail")
    killed = start("forked_main", ["signal", "SIGSEGV"])
    killed.communicate(timeout=30)
    assert killed.returncode == -11 and "SIGSEGV" in exit_reason(killed.returncode, "", "result")


def test_a_timeout_then_a_kill(on_path):
    proc = start("forked_main", ["sleep", "60"])
    with pytest.raises(subprocess.TimeoutExpired):
        proc.communicate(timeout=0.3)
    kill_group(proc)
    assert proc.returncode == -9


def test_no_worker_outlives_its_server(on_path):
    server = ForkServer()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = Forked(server, "forked_main", ["sleep", "60"], env, subprocess.DEVNULL, subprocess.DEVNULL,
                  subprocess.DEVNULL, False)
    os.kill(proc.pid, 0)  # alive
    server.close()  # as when the runner ends, however it ends: its end of the socket closes
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the forked worker outlived its fork server")


def test_the_fork_server_can_be_turned_off_and_another_checkout_is_started_afresh(on_path, monkeypatch):
    monkeypatch.setenv("CNNBENCH_FORKSERVER", "0")
    proc = start("forked_main", ["exit", "0"])
    assert isinstance(proc, subprocess.Popen)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert processes._fork_server() is None


def test_a_runner_killed_takes_its_workers_with_it(tmp_path):
    """kill -9 of the runner: the fork server sees its socket close and kills the hanging worker's group."""
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from bench.processes import start\n"
            "p = start('forked_main', ['sleep', '120'])\n"
            "print(p.pid, flush=True)\n"
            "import time; time.sleep(120)\n") % str(TESTS)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    runner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    worker = int(runner.stdout.readline())
    runner.kill()
    runner.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail("the worker outlived its runner")


def _gone(pid: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_what_a_finished_worker_left_in_its_group_is_cleared(on_path):
    from bench.runner import _wait

    proc = start("forked_main", ["leave", "-"])
    err = _wait(proc, 60)
    left = int(err.strip().splitlines()[-1])
    assert proc.returncode == 0 and _gone(left)


def test_without_a_fork_server_a_worker_of_a_killed_runner_ends_at_its_own_limit(tmp_path, fault_models):
    """kill -9 of a runner that started its worker from nothing: no server takes the worker down, so the worker
    keeps its own limit (bench.processes.own_limit) and ends within its timeout plus the grace."""
    import json

    from bench.cases import Case, Measure

    request = tmp_path / "request.json"
    request.write_text(json.dumps({"case": Case("fault_hang", input_shape=(1, 8, 8)).to_dict(),
                                   "measure": {**Measure().__dict__, "timeout_s": 2.0}}))
    code = ("from bench.processes import start\n"
            "p = start('bench.worker', [%r, %r])\n"
            "print(p.pid, flush=True)\n"
            "import time; time.sleep(120)\n") % (str(request), str(tmp_path / "result.json"))
    env = dict(os.environ, CNNBENCH_FORKSERVER="0")
    runner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    worker = int(runner.stdout.readline())
    runner.kill()
    runner.wait()
    started = time.monotonic()
    assert _gone(worker, within=40), "the worker outlived its own limit"
    assert time.monotonic() - started > 1  # it ran on after its runner, to its limit: the limit ended it


def test_a_group_builder_says_it_has_freed_its_model_before_the_groups_first_block():
    from bench.cases import Case

    builder = processes.group_builder([Case("lenet5", input_shape=(1, 32, 32), threads=1)], 60)
    if builder is None:
        pytest.skip("no fork server here")
    try:
        # freeing the model takes the builder a CPU (VGG: a few hundred ms), so drop waits for it: a first block
        # that began meanwhile measured 2.5-21x its median on a 2-vCPU VM
        assert builder.drop() is True
        assert builder._receive(0.2) == {}  # no reply left over for a later request
    finally:
        builder.close()
    assert builder.drop() is True  # one that has ended holds nothing more


def test_scratch_folders_of_runners_that_are_gone_are_removed(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = tmp_path / f"cnnbench-worker-{dead.pid}-abc123"  # what a runner killed with kill -9 left
    mine = tmp_path / f"cnnbench-worker-{os.getpid()}-def456"
    left.mkdir()
    mine.mkdir()
    with processes.scratch("worker") as folder:
        assert folder.is_dir() and folder.parent == tmp_path
    assert not left.exists() and mine.exists() and not folder.exists()


CUDA_ERROR = """Traceback (most recent call last):
  File "/work/bench/calibrate.py", line 42, in matmul_peak_gflop_s
    a = torch.randn(n, n, device=where.torch_device()).to(dtype_)
        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
RuntimeError: CUDA error: out of memory
CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.
For debugging consider passing CUDA_LAUNCH_BLOCKING=1
Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.
"""


def test_a_worker_on_a_request_answers_or_says_why_not(on_path, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    done = processes.run_on_request("forked_main", "calibrate", {"answer": {"peaks": {"cpu/float32/t1": 9.5}}}, 30)
    assert done == processes.Ended({"peaks": {"cpu/float32/t1": 9.5}}, 0, "", 30) and not done.timed_out
    failed = processes.run_on_request("forked_main", "calibrate", {"stderr": CUDA_ERROR, "exit": 1}, 30)
    assert failed.answer is None and failed.returncode == 1
    assert failed.reason("peaks") == ("worker exited with status 1 and no peaks: Compile with `TORCH_USE_CUDA_DSA` "
                                      "to enable device-side assertions.")  # one line: CUDA's advice, not the error
    assert failed.reason("peaks", 4) == (
        "worker exited with status 1 and no peaks: RuntimeError: CUDA error: out of memory / CUDA kernel errors "
        "might be asynchronously reported at some other API call, so the stacktrace below might be incorrect. / "
        "For debugging consider passing CUDA_LAUNCH_BLOCKING=1 / Compile with `TORCH_USE_CUDA_DSA` to enable "
        "device-side assertions.")  # the traceback's header and frames passed over
    slow = processes.run_on_request("forked_main", "profile", {"sleep": 60}, 0.5, answers=False)
    assert slow.timed_out and slow.answer is None and slow.reason("profile") == (
        "worker passed its 0.5 s limit and was killed")
    assert list(tmp_path.iterdir()) == []  # every scratch folder removed


def test_scratch_folders_of_a_gone_runners_calibration_are_removed_too(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = tmp_path / f"cnnbench-calibrate-{dead.pid}-abc123"
    left.mkdir()
    with processes.scratch("worker"):
        pass
    assert not left.exists()


def test_settle_waits_until_no_other_thread_runs_at_most_its_cap():
    from bench.processes import settle

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        outcome = settle(*args, **kwargs)
        return outcome, time.perf_counter() - t0

    polls = iter([True, True, True, False])
    outcome, waited = timed(5.0, running=lambda me: next(polls))
    assert outcome is False and waited < 1.0  # three polls of 0.2 ms, then idle: settled
    assert next(polls, "spent") == "spent"
    outcome, waited = timed(0.05, running=lambda me: True)
    assert outcome is True and 0.05 <= waited < 1.0  # a thread that never stops: the cap, and it says so

    def unreadable(me):
        raise OSError("no /proc")

    outcome, waited = timed(5.0, 0.03, running=unreadable)
    assert outcome is None and 0.03 <= waited < 1.0  # blind: the fixed pause instead, and no claim


def test_a_worker_settles_once_its_thread_pool_stops_spinning():
    code = ("import torch, time; from bench.processes import settle, _others_running\n"
            "import threading; torch.set_num_threads(2); a = torch.randn(256, 256)\n"
            "for _ in range(50): a @ a\n"
            "t0 = time.perf_counter(); capped = settle(2.0)\n"
            "print(time.perf_counter() - t0, capped, _others_running(threading.get_native_id()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    waited, capped, busy = out.split()
    assert float(waited) < 2.0 and capped == busy == "False"  # OpenMP's spin ends by itself: milliseconds, no cap


def test_a_block_request_waits_for_idle_threads_only_where_every_worker_can():
    from bench.cases import Case
    from bench.group import SETTLE_BLIND_S, Arm, block_request

    ours, theirs = Arm(Case("lenet5")), Arm(Case("lenet5"), src="/elsewhere")
    assert block_request([ours, ours], 0.05, 0.025) == {"block": 0.05, "settle": SETTLE_BLIND_S, "settle_cap": 0.025}
    # another checkout's worker only sleeps a fixed pause: both sides get that one
    assert block_request([ours, theirs], 0.05, 0.025) == {"block": 0.05, "settle": SETTLE_BLIND_S, "settle_cap": 0.0}
    assert block_request([ours], 0.05, 0.0) == {"block": 0.05, "settle": 0.0, "settle_cap": 0.0}


def test_a_member_counts_the_waits_it_could_see_and_those_its_threads_outlasted():
    from bench.cases import Case
    from bench.group import Arm, Member

    member = Member(Arm(Case("lenet5")))
    # an older worker (no key), one blind to its threads (null), one that settled, one whose threads outlasted the cap
    for answer in ({"samples_ns": [3, 1, 2]}, {"samples_ns": [4], "settle_capped": None},
                   {"samples_ns": [5], "settle_capped": False}, {"samples_ns": [6, 6], "settle_capped": True}):
        member.round_ns.append(None)
        member.add_block(answer)
    assert member.round_ns == [2, 4, 5, 6] and member.samples_ns == [3, 1, 2, 4, 5, 6, 6]
    assert (member.settle_waits, member.settle_capped, member.settle_capped_share) == (2, 1, 0.5)
    assert Member(Arm(Case("lenet5"))).settle_capped_share is None  # no wait it could see: no share


def test_a_serving_worker_waits_with_settle_cap_and_sleeps_an_older_runners_fixed_pause(monkeypatch):
    import json
    from dataclasses import asdict

    from bench import prepare, worker
    from bench.cases import Case, Measure

    waits, sleeps, replies = [], [], []
    monkeypatch.setattr(worker.processes, "settle", lambda cap, blind=0.0: waits.append((cap, blind)) or True)
    monkeypatch.setattr(worker.processes, "pin", lambda cpus: None)
    real_sleep = time.sleep
    monkeypatch.setattr(worker.time, "sleep", lambda s: sleeps.append(s) or real_sleep(0))
    case = Case("lenet5", input_shape=(1, 32, 32), threads=1)
    # forked from a group builder on a machine whose cache is far smaller than the model: the builder's pages kept
    monkeypatch.setattr(prepare, "cpu_llc_bytes", lambda: 1)
    prepare.prebuild([case])
    lines = [{"case": case.to_dict(), "measure": asdict(Measure(max_seconds=0.2, warmup_seconds=0.05))},
             {"block": 0.01, "settle": 0.005, "settle_cap": 0.025}, {"block": 0.01, "settle": 0.005},
             {"block": 0.01, "settle": 0, "settle_cap": 0}, {"finish": True}]
    assert worker.serve(iter(json.dumps(line) for line in lines), replies.append) == 0
    assert replies[0]["ready"] and all(r["samples_ns"] for r in replies[1:4])
    assert waits == [(0.025, 0.005)] and sleeps == [0.005]  # no wait at all when neither is asked
    # the wait says whether the threads outlasted it; a sleep cannot know
    assert replies[1]["settle_capped"] is True and "settle_capped" not in replies[2] | replies[3]
    assert replies[0]["weights_shared"] is True  # read from the builder's pages, which the row records
