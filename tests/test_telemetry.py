"""GPU telemetry (bench.telemetry) from recorded NVML answers: no GPU, no driver, no nvidia-ml-py needed."""

from types import SimpleNamespace

import pytest
import torch

from bench import telemetry
from bench.cases import Case
from bench.devices import device_of
from bench.record import GpuState, Result
from bench.results import result_row
from bench.store import Store

UUID = "GPU-8c5b3ab0-1d2e-4f60-9a1b-0c2d3e4f5a6b"


class RecordedNVML:
    """pynvml's functions answering as an H100 under load did (nvidia-smi -q of the same moment)."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    def __init__(self, mask=0x0, pids=(4242,), graphics=(), fail=None, old_driver=False):
        self.mask, self.pids, self.graphics, self.fail = mask, pids, graphics, fail
        self.asked = []
        if not old_driver:
            self.nvmlDeviceGetCurrentClocksEventReasons = self._reasons

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByUUID(self, uuid):
        self.asked.append(("uuid", uuid))
        return "handle"

    def nvmlDeviceGetHandleByIndex(self, index):
        self.asked.append(("index", index))
        return "handle"

    def nvmlDeviceGetClockInfo(self, handle, clock):
        if self.fail == "clock":
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return {1: 1980, 2: 2619}[clock]

    def nvmlDeviceGetPowerUsage(self, handle):
        return 612345  # mW

    def nvmlDeviceGetTemperature(self, handle, sensor):
        assert sensor == 0
        return 71

    def _reasons(self, handle):
        return self.mask

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
        return self.mask

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [SimpleNamespace(pid=p, usedGpuMemory=1 << 30) for p in self.pids]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle):
        return [SimpleNamespace(pid=p, usedGpuMemory=None) for p in self.graphics]


def test_a_reading_parses_clocks_power_temperature_reasons_and_processes():
    nvml = RecordedNVML(mask=0x1 | 0x4, pids=(4242, 777))
    state = telemetry.read(nvml, UUID, 0, pid=4242)
    assert state == GpuState(sm_clock_mhz=1980, mem_clock_mhz=2619, power_w=612.345, temperature_c=71,
                             clock_event_reasons="gpu_idle,sw_power_cap", other_processes=1)
    assert nvml.asked == [("uuid", UUID.encode())]  # by UUID: CUDA_VISIBLE_DEVICES cannot point NVML elsewhere


def test_without_a_uuid_the_gpu_is_found_by_index_and_old_drivers_name_reasons_as_throttle_reasons():
    nvml = RecordedNVML(mask=0x40, old_driver=True)
    state = telemetry.read(nvml, None, 3, pid=4242)
    assert nvml.asked == [("index", 3)] and state.clock_event_reasons == "hw_thermal_slowdown"


def test_in_a_container_one_process_not_named_by_our_pid_is_this_worker():
    # NVML answers with the host's PIDs: the worker's own PID (12 in its namespace) is not among them
    assert telemetry.read(RecordedNVML(pids=(90001,)), UUID, 0, pid=12).other_processes == 0
    assert telemetry.read(RecordedNVML(pids=(90001, 90002), graphics=(90003,)), UUID, 0, pid=12).other_processes == 2
    assert telemetry.read(RecordedNVML(pids=()), UUID, 0, pid=12).other_processes == 0


def test_a_failing_nvml_query_gives_no_reading_not_a_failed_case():
    assert telemetry.read(RecordedNVML(fail="clock"), UUID, 0) is None


def test_reason_bits_by_name_and_unknown_bits_kept():
    assert telemetry.reasons(0) == ()
    assert telemetry.reasons(0x8 | 0x80) == ("hw_slowdown", "hw_power_brake_slowdown")
    assert telemetry.reasons(0x1 | 0x1000) == ("gpu_idle", "0x1000")


def _state(reasons="", others=0, sm=1980):
    return GpuState(sm_clock_mhz=sm, mem_clock_mhz=2619, power_w=300.0, temperature_c=60,
                    clock_event_reasons=reasons, other_processes=others)


def test_only_caps_and_slowdowns_count_as_throttling():
    assert telemetry.throttled(_state("gpu_idle"), _state("applications_clocks_setting")) is False
    assert telemetry.throttled(_state("gpu_idle"), _state("sw_thermal_slowdown")) is True
    assert telemetry.throttled(None, None) is None and telemetry.shared(None) is None
    assert telemetry.shared(_state(), _state(others=2)) is True and telemetry.shared(_state()) is False


def test_a_throttled_and_shared_case_is_flagged_in_its_row():
    case = Case("lenet5", device="cuda", input_shape=(1, 32, 32))
    result = Result(case=case, status="ok", samples_ns=(1_000_000,) * 5, host_samples_ns=(10_000,) * 5,
                    gpu_start=_state("gpu_idle"), gpu_end=_state("sw_power_cap,hw_slowdown", others=2, sm=1410))
    row = result_row(result)
    assert (row["gpu_sm_clock_mhz_start"], row["gpu_sm_clock_mhz_end"]) == (1980, 1410)
    assert row["gpu_throttled"] is True and row["gpu_shared"] is True
    assert row["warnings"] == ("the GPU throttled while sampling (hw_slowdown, sw_power_cap): the time is the slowed "
                               "clock's; let it cool or lift the power cap, and rerun; 2 other processes on the GPU "
                               "while sampling: the time is shared; rerun on an idle GPU")
    quiet = result_row(Result(case=case, status="ok", samples_ns=(1,) * 5, gpu_start=_state(), gpu_end=_state()))
    assert quiet["warnings"] == "" and quiet["gpu_throttled"] is False
    cpu = result_row(Result(case=Case("lenet5"), status="ok", samples_ns=(1,) * 5))
    assert cpu["gpu_throttled"] is None and cpu["gpu_power_w_end"] is None and cpu["warnings"] == ""


def test_readings_survive_the_store_and_a_run_file(tmp_path):
    case = Case("lenet5", device="cuda", input_shape=(1, 32, 32))
    result = Result(case=case, status="ok", samples_ns=(1,) * 3, gpu_start=_state("gpu_idle"), gpu_end=_state(others=1))
    store = Store(tmp_path / "s.db")
    run = store.new_run(suite="t", suite_json={}, environment={}, calibration={}, settings={}, cases_total=2)
    store.add_results(run, [result, Result(case=Case("lenet5"), status="ok")])
    back = store.results(run)
    assert back[0].gpu_start == result.gpu_start and back[0].gpu_end == result.gpu_end
    assert back[1].gpu_start is None
    assert Result.from_dict(result.to_dict()) == result
    assert "gpu_start" not in Result(case=case, status="ok").to_dict()  # older readers never see it


def test_an_older_store_without_the_table_gets_it_on_write_and_reads_none_before(tmp_path):
    import sqlalchemy as sa

    path = tmp_path / "old.db"
    store = Store(path)
    run = store.new_run(suite="t", suite_json={}, environment={}, calibration={}, settings={}, cases_total=1)
    store.add_result(run, Result(case=Case("lenet5"), status="ok"))
    with store.engine.begin() as conn:  # a store of migration 0003, before telemetry and compile counters
        conn.execute(sa.text("DROP TABLE gpu_states"))
        conn.execute(sa.text("DROP TABLE compile_counts"))
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0003'"))
    store.engine.dispose()
    assert Store(path, create=False).results(run)[0].gpu_end is None  # read as it is
    again = Store(path)  # a writer upgrades it, after a copy beside it
    assert {"gpu_states", "compile_counts"} <= again.tables and (tmp_path / "old.db.schema-0003.bak").exists()
    again.add_result(run, Result(case=Case("lenet5", device="cuda"), status="ok", gpu_end=_state()))
    assert again.results(run)[1].gpu_end == _state()


def test_the_cuda_device_reads_its_gpu_by_uuid(monkeypatch):
    nvml = RecordedNVML(mask=0x4, pids=())
    monkeypatch.setattr(telemetry, "_nvml", lambda: nvml)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(uuid=UUID[4:]))
    state = device_of("cuda:1").telemetry()
    assert state.clock_event_reasons == "sw_power_cap" and nvml.asked == [("uuid", UUID.encode())]
    assert device_of("cpu").telemetry() is None


def test_without_nvidia_ml_py_there_is_no_reading(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pynvml(name, *args, **kwargs):
        if name == "pynvml":
            raise ImportError("No module named 'pynvml'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pynvml)
    assert telemetry.reading(UUID, 0) is None


@pytest.mark.parametrize("field", ["gpu_start", "gpu_end"])
def test_a_groups_finish_reply_becomes_readings(field):
    from dataclasses import asdict

    from bench.runner import _finish_figures

    figures = _finish_figures({"cuda_peak_allocated_bytes": 5, field: asdict(_state())})
    assert figures == {"cuda_peak_allocated_bytes": 5, field: _state()}
