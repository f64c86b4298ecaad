"""The matmul calibration (bench.calibrate): in a worker of its own, with the run's backend flags, and a worker
that fails saying why."""

import json

import pytest
import torch

from bench import calibrate, processes, runner
from bench.cases import Case
from bench.errors import WorkerFailed
from bench.store import Store
from bench.suites import suite_from_dict


def test_a_run_calibrates_in_a_worker_and_leaves_absent_devices_out(monkeypatch):
    started = []
    real = processes.start
    monkeypatch.setattr(runner.processes, "start", lambda module, args, **kw: started.append(module)
                        or real(module, args, **kw))
    cases = [Case("lenet5", threads=1), Case("alexnet", threads=1), Case("lenet5", precision="amp-bf16", threads=1)]
    if not torch.cuda.is_available():
        cases.append(Case("lenet5", device="cuda"))
    peaks = runner.calibrate_isolated(cases, runner.RunOptions(calibrate_seconds=0.05))
    assert started == ["bench.calibrate"]
    assert set(peaks) == {"cpu/float32/t1", "cpu/bfloat16/t1"} and all(v > 0 for v in peaks.values())


def test_the_calibration_worker_applies_the_runs_flags(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(calibrate, "calibrate", lambda cases, seconds: seen.append(
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark,
         [c.key for c in cases], seconds)) or {"cpu/float32/t1": 1.0})
    request, answer = tmp_path / "request.json", tmp_path / "result.json"
    request.write_text(json.dumps({"cases": [Case("lenet5").to_dict()], "seconds": 0.2, "tf32": True,
                                   "cudnn_benchmark": True}))
    try:
        assert calibrate.main([str(request), str(answer)]) == 0
    finally:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
    assert seen == [(True, True, True, [Case("lenet5").key], 0.2)]
    assert json.loads(answer.read_text())["peaks"] == {"cpu/float32/t1": 1.0}


def test_isolation_none_calibrates_here_with_the_flags(monkeypatch):
    seen = []
    monkeypatch.setattr(runner, "calibrate", lambda cases, seconds: seen.append(
        torch.backends.cuda.matmul.allow_tf32) or {})
    try:
        runner.calibrate_isolated([Case("lenet5")], runner.RunOptions(isolation="none", tf32=True))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    assert seen == [True]


def test_a_failed_calibration_worker_says_how_it_ended_and_what_its_stderr_said_last():
    """A case whose device the worker cannot name: bench.calibrate ends with a traceback, exit status 1."""
    with pytest.raises(WorkerFailed) as failed:
        runner.calibrate_isolated([Case("lenet5", device="tpu", threads=1)], runner.RunOptions(calibrate_seconds=0.05))
    assert str(failed.value) == ("the calibration worker exited with status 1 and no peaks: bench.errors.BadValue: "
                                 "device must be one of cpu, cuda (cuda:N for one GPU), got 'tpu'")


def test_a_run_whose_calibration_failed_goes_on_without_peaks_and_says_why(monkeypatch, tmp_path, capsys):
    from bench.cli import main

    def fail(cases, options):
        raise WorkerFailed("the calibration worker killed by SIGKILL (the kernel's OOM killer sends this)")

    monkeypatch.setattr(runner, "calibrate_isolated", fail)
    planned = runner.start_run(suite_from_dict({"models": ["lenet5"], "threads": [1]}, name="t"), runner.RunOptions())
    assert planned.row["calibration"] == {} and planned.warnings == (
        "the calibration worker killed by SIGKILL (the kernel's OOM killer sends this); the run goes on without "
        "peaks, so its rows have no peak_fraction",)
    store = tmp_path / "s.db"
    assert main(["run", "--models", "lenet5", "--batch-sizes", "1", "--precision", "fp32", "--memory-format",
                 "contiguous", "--threads", "1", "--max-seconds", "0.3", "--quiet", "--store", str(store)]) == 0
    err = capsys.readouterr().err
    assert "warning: the calibration worker killed by SIGKILL" in err and "Traceback" not in err
    assert len(Store(store, create=False).list_runs()) == 1  # measured and stored all the same
