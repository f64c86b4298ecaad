"""The device layer (bench.devices): the CPU class on the CPU, the CUDA class's logic through fakes of torch.cuda
(no GPU needed: every test here runs on a CPU-only machine)."""

import time

import pytest
import torch

from bench import devices
from bench.devices import CPU, CUDA, device_of
from bench.errors import BadValue


class FakeEvent:
    """A CUDA event whose timestamps come from a shared fake device clock (in ms)."""

    clock = [0.0]

    def __init__(self, enable_timing: bool = False) -> None:
        assert enable_timing
        self.at = None

    def record(self) -> None:
        self.at = FakeEvent.clock[0]

    def elapsed_time(self, end: "FakeEvent") -> float:
        return end.at - self.at


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda as a machine with two GPUs, a V100 (no native bf16) and an A100, and a log of calls."""
    calls = []
    names = {0: "Tesla V100-SXM2-16GB", 1: "NVIDIA A100-SXM4-40GB"}
    current = [0]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: names[index or 0])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: current.__setitem__(0, index))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(("synchronize", device)))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append(("empty_cache",)))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append(("reset", device)))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: {0: 100, 1: 300}[device])
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device=None: {0: 200, 1: 400}[device])
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: {0: 120, 1: 250}[device])
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    FakeEvent.clock[0] = 0.0
    return {"calls": calls, "current": current}


def test_device_of_names_a_class_per_kind_and_refuses_others():
    assert isinstance(device_of("cpu"), CPU) and isinstance(device_of("cuda"), CUDA)
    one = device_of("cuda:1")
    assert (one.kind, one.index, one.timer) == ("cuda", 1, "cuda-event") and device_of("cuda").index == 0
    assert device_of("cpu").index is None
    assert device_of("cuda:1") is one  # one object per name
    with pytest.raises(BadValue, match="device must be one of cpu, cuda .*got 'mps'"):
        device_of("mps")


def test_every_kind_is_a_case_device():
    from bench.cases import DEVICES

    assert tuple(devices.KINDS) == DEVICES


def test_the_cpu_times_with_the_hosts_clock_and_reports_rss():
    cpu = device_of("cpu")
    samples, host = cpu.timed_block(lambda: time.sleep(0.002), 0.02)
    assert host == [] and 3 <= len(samples) <= 10 and all(s >= 2_000_000 for s in samples)
    assert cpu.memory({"delta": 5, "baseline": 7}) == {"cpu_peak_rss_delta_bytes": 5, "cpu_rss_baseline_bytes": 7}
    assert cpu.profiler_activities() == [torch.profiler.ProfilerActivity.CPU] and not cpu.profile_device_time
    assert cpu.unavailable() is None and cpu.unsupported("amp-bf16") is None and cpu.min_warmup_s == 0


def test_the_cpu_sets_its_threads():
    saved = torch.get_num_threads()
    try:
        device_of("cpu").setup(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(saved)


def test_cuda_without_a_gpu_says_so():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert device_of("cuda").unavailable() == "cuda is not available on this machine"


def test_a_cuda_index_beyond_the_visible_devices_is_missing(fake_cuda, monkeypatch):
    assert device_of("cuda:1").unavailable() is None and device_of("cuda").unavailable() is None
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    why = "device 'cuda:2' does not exist: this machine shows 2 GPUs (cuda:0 to cuda:1)"
    assert device_of("cuda:2").unavailable() == why and device_of("cuda:2").missing() == why
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert device_of("cuda:2").missing().endswith("(cuda:0 to cuda:1, CUDA_VISIBLE_DEVICES=3,5)")


def test_without_cuda_an_index_is_not_missing_but_unavailable(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_of("cuda:3").missing() is None
    assert device_of("cuda:3").unavailable() == "cuda is not available on this machine"


@pytest.mark.parametrize("given, name", [("cpu", "cpu"), ("cuda", "cuda"), (" cuda:1", "cuda:1"), ("cuda:0", "cuda"),
                                         ("cuda:007", "cuda:7")])
def test_a_device_is_a_kind_or_a_gpu_by_index(given, name):
    from bench.values import device

    assert device(given) == name


@pytest.mark.parametrize("given", ["cuda:", "cuda:-1", "cuda:x", "cpu:1", "gpu", "cuda:1:2", "cuda:99999", ""])
def test_a_bad_device_names_the_value_and_what_is_allowed(given):
    from bench.values import device

    with pytest.raises(BadValue) as err:
        device(given)
    assert str(err.value) == ("device must be one of cpu, cuda, or cuda:N for one GPU by its index (e.g. cuda:1), "
                              f"got {given!r}")


def test_run_refuses_a_gpu_index_this_machine_lacks_in_one_line(fake_cuda, tmp_path, capsys):
    from bench.cli import main

    store = tmp_path / "s.db"
    assert main(["run", "--models", "lenet5", "--devices", "cuda:2", "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: device 'cuda:2' does not exist: this machine shows 2 GPUs") and err.count("\n") == 1
    assert not store.exists()


def test_a_gpu_by_index_is_a_case_of_its_own_with_one_thread():
    from bench.suites import suite_from_dict

    cases = suite_from_dict({"models": ["lenet5"], "devices": ["cuda:1", "cuda:0"], "threads": [2]}, name="t").cases()
    assert sorted((c.device, c.threads) for c in cases) == [("cuda", 1), ("cuda:1", 1)]
    assert "|cuda:1|" in [c.key for c in cases if c.device == "cuda:1"][0]


def test_a_gpu_by_index_is_skipped_with_its_reason_where_there_is_no_cuda(monkeypatch):
    from bench.cases import Case, Measure
    from bench.worker import measure

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = measure(Case("lenet5", device="cuda:1", input_shape=(1, 32, 32)), Measure())
    assert (result.status, result.reason) == ("skipped", "cuda is not available on this machine")


def test_bf16_is_unsupported_where_only_emulated_and_names_that_gpu(fake_cuda, monkeypatch):
    assert "amp-bf16 is not native on Tesla V100" in device_of("cuda").unsupported("amp-bf16")
    assert "bf16 is not native" in device_of("cuda").unsupported("bf16")
    assert device_of("cuda").unsupported("amp-fp16") is None and device_of("cuda").unsupported("fp32") is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert device_of("cuda:1").unsupported("amp-bf16") is None


def test_cuda_events_time_each_iteration_with_one_synchronisation_per_block(fake_cuda):
    durations = iter([1.5, 2.0, 2.5, 3.0, 3.5] * 4)

    def step():  # the device's clock moves by the step's time; the host's barely
        FakeEvent.clock[0] += next(durations)

    samples, host = device_of("cuda:1").timed_block(step, 0.0)
    assert samples == [1_500_000, 2_000_000, 2_500_000, 3_000_000, 3_500_000]  # one block of CUDA_BLOCK
    assert len(host) == devices.CUDA_BLOCK and all(h >= 0 for h in host)
    assert fake_cuda["calls"] == [("synchronize", 1)]  # once, after the block, on the case's GPU


def test_cuda_memory_window_and_peaks_follow_the_device(fake_cuda):
    gpu = device_of("cuda:1")
    gpu.start_memory_window()
    assert fake_cuda["calls"] == [("synchronize", 1), ("empty_cache",), ("reset", 1)]
    # the baseline is what was allocated when the window opened; the delta, the peak above it
    assert gpu.memory({"delta": 5, "baseline": 7}) == {
        "cuda_peak_allocated_bytes": 300, "cuda_peak_reserved_bytes": 400,
        "cuda_allocated_baseline_bytes": 250, "cuda_peak_allocated_delta_bytes": 50}
    first = device_of("cuda")
    first.baseline = None  # one object per name lives on between tests
    assert first.memory({}) == {"cuda_peak_allocated_bytes": 100, "cuda_peak_reserved_bytes": 200,
                                "cuda_allocated_baseline_bytes": None, "cuda_peak_allocated_delta_bytes": None}
    first.start_memory_window()  # allocated above the peak (freed since the reset): the delta is 0, not negative
    assert first.memory({})["cuda_allocated_baseline_bytes"] == 120
    assert first.memory({})["cuda_peak_allocated_delta_bytes"] == 0
    first.baseline = None


def test_cuda_setup_makes_the_indexed_gpu_current_and_leaves_threads(fake_cuda):
    threads = torch.get_num_threads()
    device_of("cuda:1").setup(1)
    assert fake_cuda["current"] == [1] and torch.get_num_threads() == threads
    fake_cuda["current"][0] = 0
    device_of("cuda").setup(1)
    assert fake_cuda["current"] == [0]  # "cuda" is whichever GPU is current


def test_a_cuda_profile_ranks_by_device_time():
    gpu = device_of("cuda")
    assert gpu.profile_device_time and gpu.profiler_activities() == [torch.profiler.ProfilerActivity.CPU,
                                                                      torch.profiler.ProfilerActivity.CUDA]
    assert gpu.min_warmup_s == 0.5 and gpu.calibration_n == 8192


def test_the_top_ops_of_a_device_profile_are_ranked_by_device_time():
    from types import SimpleNamespace

    from bench.profiling import _top_ops

    ops = [SimpleNamespace(key="aten::conv2d", count=3, self_cpu_time_total=100.0, cpu_time_total=300.0,
                           self_device_time_total=9000.0),
           SimpleNamespace(key="aten::relu", count=3, self_cpu_time_total=600.0, cpu_time_total=600.0,
                           self_device_time_total=30.0)]
    by_device = _top_ops(ops, 3, by_device=True)
    assert [o["operator"] for o in by_device] == ["aten::conv2d", "aten::relu"]
    assert by_device[0]["self_device_ms"] == pytest.approx(3.0)
    by_cpu = _top_ops(ops, 3, by_device=False)
    assert [o["operator"] for o in by_cpu] == ["aten::relu", "aten::conv2d"] and "self_device_ms" not in by_cpu[0]


def test_no_module_but_the_device_layer_tests_a_device_name():
    """Device branches belong in bench.devices; the host checks (device != "cpu": pinning, settling,
    instruction counts, GPU threads) are the only names others test."""
    import re
    from pathlib import Path

    bench = Path(devices.__file__).parent
    for path in bench.glob("*.py"):
        if path.name != "devices.py":
            text = path.read_text()
            assert not re.search(r'device\s*==\s*"cuda"|torch\.cuda\.(synchronize|Event|max_memory)', text), path
