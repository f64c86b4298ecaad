"""The CUDA logic that runs without a GPU: keys, skip rules, the flags a worker applies, the memory window,
warm-up on a GPU, the gradient scaler, launch-bound cases, an out-of-memory error inside an interleaved block and
the options refused for CUDA."""

import json
import time
from dataclasses import asdict

import pytest
import torch

from bench import prepare, runner, worker
from bench.cases import Case, Measure
from bench.cli import main
from bench.devices import CUDA
from bench.prepare import Prepared, set_backends, skip_reason, warm_up
from bench.record import Result
from bench.results import result_row
from bench.suites import suite_from_dict


def test_a_gpu_case_key_does_not_carry_the_hosts_core_count():
    cases = suite_from_dict({"models": ["lenet5"], "devices": ["cpu", "cuda"], "threads": [1, 2]}, name="t").cases()
    gpu = [c for c in cases if c.device == "cuda"]
    assert len(gpu) == 1 and gpu[0].threads == 1 and "|t1|" in gpu[0].key  # one case, not one per thread count
    assert sorted(c.threads for c in cases if c.device == "cpu") == [1, 2]
    default = suite_from_dict({"models": ["lenet5"], "devices": ["cuda"]}, name="t").cases()
    assert [c.threads for c in default] == [1]  # whatever this host's cores


def test_bf16_that_is_only_emulated_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla V100-SXM2-16GB")
    reason = skip_reason(Case("lenet5", device="cuda", precision="amp-bf16", input_shape=(1, 32, 32)))
    assert "amp-bf16 is not native on Tesla V100-SXM2-16GB" in reason


def test_the_fp32_reference_is_computed_without_tf32(fault_models):
    from fault_models import FLAGS_SEEN

    FLAGS_SEEN.clear()
    set_backends(tf32=True, cudnn_benchmark=False)
    try:
        Prepared(Case("flag_probe", precision="bf16", input_shape=(1, 8, 8)))
        assert FLAGS_SEEN[0] == (False, False)  # the reference
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)  # restored
    finally:
        set_backends(tf32=False, cudnn_benchmark=False)


def test_float16_autocast_training_steps_through_a_gradient_scaler():
    case = Case("lenet5", precision="amp-fp16", mode="train", batch_size=2, input_shape=(1, 32, 32))
    if skip_reason(case):
        pytest.skip(skip_reason(case))
    prep = Prepared(case)
    step = prep.step()
    step()
    assert isinstance(prep.scaler, torch.amp.GradScaler) and prep.scaler.get_scale() > 0
    assert Prepared(Case("lenet5", mode="train", batch_size=2, input_shape=(1, 32, 32))).scaler is None
    assert Prepared(Case("lenet5", precision="amp-fp16", input_shape=(1, 32, 32))).scaler is None  # inference


def test_the_memory_window_opens_after_warm_up(monkeypatch):
    calls = []
    for name in ("synchronize", "empty_cache", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, _n=name: calls.append(_n))
    worker.start_memory_window(Case("lenet5", device="cuda"))
    assert calls == ["synchronize", "empty_cache", "reset_peak_memory_stats"]
    calls.clear()
    worker.start_memory_window(Case("lenet5"))
    assert calls == []
    order = []
    monkeypatch.setattr(worker, "get_ready", lambda *a: order.append("ready") or (lambda: None))
    monkeypatch.setattr(worker, "start_memory_window", lambda case: order.append("window"))
    monkeypatch.setattr(worker, "sample", lambda *a: order.append("sample") or ([1] * 10, [], [1] * 10, "target"))
    worker.measure(Case("lenet5", input_shape=(1, 32, 32)), Measure())
    assert order == ["ready", "window", "sample"]


def test_warm_up_on_a_gpu_lasts_its_floor(monkeypatch):
    monkeypatch.setattr(prepare, "sync", lambda case: None)
    t0 = time.perf_counter()
    iterations, settled = warm_up(lambda: None, Case("lenet5", device="cuda"), cap_s=5.0)
    assert time.perf_counter() - t0 >= CUDA.min_warmup_s and settled and iterations > 6
    iterations, _ = warm_up(lambda: time.sleep(0.001), Case("lenet5"), cap_s=5.0)
    assert iterations < 100  # the CPU has no floor: six steady iterations do
    t0 = time.perf_counter()
    warm_up(lambda: None, Case("lenet5", device="cuda"), cap_s=0.1)
    assert time.perf_counter() - t0 < CUDA.min_warmup_s  # the cap still caps


def test_a_case_whose_host_enqueues_as_slowly_as_the_gpu_runs_is_launch_bound():
    case = Case("lenet5", device="cuda")

    def row(host_ms):
        return result_row(Result(case=case, status="ok", samples_ns=(1_000_000,) * 5,
                                 host_samples_ns=(int(host_ms * 1e6),) * 5))

    assert row(0.95)["launch_bound"] is True and row(0.1)["launch_bound"] is False
    assert row(0.95)["enqueue_ms_p50"] == pytest.approx(0.95)  # named for what the host's clock sees: enqueue time
    assert result_row(Result(case=Case("lenet5"), status="ok", samples_ns=(1,) * 5))["launch_bound"] is None


def test_isolation_none_resets_dynamo_before_a_compiled_case(monkeypatch):
    import torch._dynamo

    resets = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))
    monkeypatch.setattr(runner, "measure", lambda case, sampling: Result(case=case, status="ok"))
    runner.run_in_process(Case("lenet5", compiler="compile"), Measure(), runner.RunOptions(isolation="none"))
    runner.run_in_process(Case("lenet5"), Measure(), runner.RunOptions(isolation="none"))
    assert resets == [1]


def test_a_memory_limit_is_refused_for_gpu_cases_before_anything_is_stored(tmp_path, capsys):
    store = tmp_path / "s.db"
    code = main(["run", "--models", "lenet5", "--devices", "cpu,cuda", "--worker-memory-limit", "2GiB",
                 "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 2 and "--worker-memory-limit caps a worker's address space" in err and len(err.splitlines()) == 1
    assert not store.exists()


def _serve(case, asks):
    """``worker.serve`` in this process: the request for ``case``, then ``asks``; its replies."""
    replies = []
    lines = iter([json.dumps({"case": case.to_dict(), "measure": asdict(Measure(warmup_seconds=0.1))}),
                  *map(json.dumps, asks)])
    worker.serve(lines, replies.append)
    return replies


def test_an_oom_inside_an_interleaved_block_is_oom_not_crashed(monkeypatch):
    steps = [0]

    def step():  # out of memory on the fifth iteration: in the third block, after two full ones
        steps[0] += 1
        if steps[0] == 5:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(worker, "get_ready", lambda case, cap, figures: step)
    monkeypatch.setattr(worker, "timed_block", lambda step, case, seconds: ([step() or 1000 for _ in range(2)], []))
    replies = _serve(Case("lenet5", input_shape=(1, 32, 32)), [{"block": 0.01}] * 4)
    assert replies[0]["ready"] is True and replies[1:3] == [{"samples_ns": [1000, 1000]}] * 2
    assert replies[3] == {"failed": True, "status": "oom",
                          "reason": "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"}
    assert len(replies) == 4  # and the worker stopped there


def test_a_group_member_out_of_memory_mid_sampling_leaves_as_oom_and_the_group_goes_on(fault_models):
    members = [Case(model, threads=1, input_shape=(1, 8, 8)) for model in ("paced_2ms", "fault_oom_later")]
    sampling = Measure(target_ci=1e-9, max_seconds=1.5, warmup_seconds=0.1, timeout_s=60)
    base, oom = runner.measure_group(members, sampling, runner.RunOptions(group="model"))
    assert oom.status == "oom" and "CUDA out of memory. Tried to allocate 2.00 GiB" in oom.reason
    assert base.status in ("ok", "noisy") and len(base.round_medians_ns) >= 10


def test_the_runs_backend_flags_reach_every_worker(monkeypatch):
    """--tf32 and --cudnn-benchmark go in every worker's request (alone, interleaved, calibrating) and the
    worker sets them before it builds anything."""
    from bench import processes

    sent = []

    def run_on_request(module, kind, request, timeout_s, answers=True):
        sent.append((module, request))
        answer = {"peaks": {}} if module == "bench.calibrate" else Result(case=Case.from_dict(request["case"]),
                                                                          status="ok").to_dict()
        return processes.Ended(answer, 0, "", timeout_s)

    monkeypatch.setattr(processes, "run_on_request", run_on_request)
    options = runner.RunOptions(tf32=True, cudnn_benchmark=True)
    runner.run_isolated(Case("lenet5", device="cuda"), Measure(), options)
    runner.calibrate_isolated([Case("lenet5", device="cuda")], options)
    extra = []
    monkeypatch.setattr(runner, "run_group", lambda arms, *a, request_extra, **kw: extra.append(request_extra) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        runner.measure_group([Case("lenet5"), Case("lenet5", precision="bf16")], Measure(), options)
    assert [(module, r["tf32"], r["cudnn_benchmark"]) for module, r in sent] == [
        ("bench.worker", True, True), ("bench.calibrate", True, True)]
    assert extra[0]["tf32"] is True and extra[0]["cudnn_benchmark"] is True
    try:
        worker._apply_request({"case": Case("lenet5").to_dict(), "measure": asdict(Measure()), "tf32": True,
                               "cudnn_benchmark": True})
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
                torch.backends.cudnn.benchmark) == (True, True, True)
        worker._apply_request({"case": Case("lenet5").to_dict(), "measure": asdict(Measure())})
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
                torch.backends.cudnn.benchmark) == (False, False, False)  # off unless asked: not torch's defaults
    finally:
        set_backends(tf32=False, cudnn_benchmark=False)
