"""A GPU's state through NVIDIA's own bindings (``nvidia-ml-py``, the ``cnnbench[gpu]`` extra): clocks, power,
temperature, throttle reasons and the other processes on it, read at the start and at the end of sampling.

Method: ``pynvml`` (what nvidia-ml-py installs) is asked for the GPU whose UUID
torch gives for the case's CUDA index, so ``CUDA_VISIBLE_DEVICES`` cannot make
NVML read another GPU. Each reading is a ``bench.record.GpuState``:

- SM and memory clocks (``nvmlDeviceGetClockInfo``, MHz), power
  (``nvmlDeviceGetPowerUsage``, mW -> W), temperature (GPU sensor, C);
- the clock-event (throttle) reasons (``nvmlDeviceGetCurrentClocksEventReasons``,
  ``...ThrottleReasons`` in older drivers), by name; of these, only power and
  thermal caps and hardware slowdowns count as throttling (``THROTTLING``): an
  idle GPU or a clock set by the application is not slowed by the case;
- the compute and graphics processes on the GPU other than this one. NVML names
  processes by the host's PIDs, which a container does not see: where this
  process's PID is not in the list, one of them is taken to be this process
  (it holds a CUDA context while it samples).

Without nvidia-ml-py, or where NVML fails (no driver, no permission), there is
no reading and the case carries none: telemetry never fails a case.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from .record import GpuState

# NVML's clock-event reason bits (nvml.h: nvmlClocksEventReason*), by the name a row shows
REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
THROTTLING = frozenset({"sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown",
                        "hw_power_brake_slowdown"})


def reasons(mask: int) -> tuple[str, ...]:
    """The names of the bits set in an NVML clock-event mask; an unknown bit as its hex value."""
    named = tuple(name for bit, name in REASONS.items() if mask & bit)
    unknown = mask & ~sum(REASONS)
    return named + ((hex(unknown),) if unknown else ())


def _nvml() -> Optional[Any]:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # pynvml.NVMLError and its kin: no driver, no library
        return None
    return pynvml


def _handle(nvml: Any, uuid: Optional[str], index: int) -> Any:
    if uuid:
        return nvml.nvmlDeviceGetHandleByUUID(uuid.encode() if isinstance(uuid, str) else uuid)
    return nvml.nvmlDeviceGetHandleByIndex(index)


def _mask(nvml: Any, handle: Any) -> int:
    ask = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return int(ask(handle))


def _others(nvml: Any, handle: Any, pid: int) -> int:
    pids = set()
    for ask in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        if hasattr(nvml, ask):
            pids |= {p.pid for p in getattr(nvml, ask)(handle)}
    return max(0, len(pids - {pid}) - (0 if pid in pids else 1))


def read(nvml: Any, uuid: Optional[str], index: int, pid: Optional[int] = None) -> Optional[GpuState]:
    """One reading of the GPU with this UUID (or NVML index) from an initialised pynvml; None where NVML fails."""
    try:
        handle = _handle(nvml, uuid, index)
        return GpuState(
            sm_clock_mhz=int(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
            mem_clock_mhz=int(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM)),
            power_w=nvml.nvmlDeviceGetPowerUsage(handle) / 1000,
            temperature_c=int(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
            clock_event_reasons=",".join(reasons(_mask(nvml, handle))),
            other_processes=_others(nvml, handle, os.getpid() if pid is None else pid),
        )
    except Exception:  # an NVML error on one query: no reading rather than a failed case
        return None


def reading(uuid: Optional[str], index: int) -> Optional[GpuState]:
    """The state of the case's GPU now, or None without nvidia-ml-py or a working NVML."""
    nvml = _nvml()
    return read(nvml, uuid, index) if nvml is not None else None


def throttled(*states: Optional[GpuState]) -> Optional[bool]:
    """Whether any reading shows a power or thermal cap or a hardware slowdown (None: no reading)."""
    seen = [s for s in states if s is not None]
    return any(THROTTLING & set(s.clock_event_reasons.split(",")) for s in seen) if seen else None


def shared(*states: Optional[GpuState]) -> Optional[bool]:
    """Whether any reading shows another process on the GPU (None: no reading)."""
    seen = [s for s in states if s is not None]
    return any(s.other_processes > 0 for s in seen) if seen else None


__all__ = ["REASONS", "THROTTLING", "reasons", "read", "reading", "throttled", "shared"]
