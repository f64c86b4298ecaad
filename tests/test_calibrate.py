"""The matmul calibration (bench.calibrate): in a worker of its own, with the run's backend flags."""

import json

import torch

from bench import calibrate, processes, runner
from bench.cases import Case


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
