"""What differs by device, behind one small interface: ``Device``, and a class per kind (``CPU``, ``CUDA``).

Everything that runs a case asks its device (``device_of(case.device)``) rather
than testing the device's name: how to set it up, synchronise, time a block of
iterations, open and read the memory window, which precisions it cannot run and
why, which profiler activities and which time (CPU or device) a profile ranks
by, how large a calibration matmul is, and its telemetry. A new device (Apple's
MPS, Intel's XPU) is one class here and its tests.

The interface (Lightning's ``fabric/accelerators`` in our terms)::

    Device(name)                  "cpu", "cuda", "cuda:1"
      .kind .index .timer         "cuda", 1, "cuda-event"
      .min_warmup_s               the shortest warm-up: a GPU's clocks settle over time
      .calibration_n              the side of the calibration matmul
      .unavailable()              why this device cannot run here, or None
      .missing()                  why its name is no device of this machine (cuda:3 of two GPUs), or None
      .unsupported(precision)     why it cannot run a precision (natively), or None
      .compile_unavailable()      why torch.compile cannot run on it here, or None
      .setup(threads)             this process measures on it: threads (CPU), the current device (CUDA)
      .synchronize()              wait for queued work
      .timed_block(step, s)       iterations for s seconds: (samples ns, host ns per iteration)
      .start_memory_window()      what the memory peaks count from, once warm-up is over
      .memory(rss)                the Result's memory figures
      .profiler_activities()      torch.profiler activities
      .profile_device_time        rank a profile's layers and ops by device time, not CPU time
      .telemetry()                a GpuState (clocks, power, throttling...) now, or None where there is none

Timers. CPU: ``time.perf_counter_ns`` around each iteration. CUDA: a pair of CUDA
events around each iteration with no synchronisation inside the timed loop:
iterations run in fives, the host synchronises once at the end of each five,
then reads the events; the host's own time to enqueue each iteration
(``perf_counter_ns`` around the launch) is kept beside them.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from typing import Any, Callable, ClassVar, Optional

import torch

from . import telemetry
from .errors import BadValue
from .record import GpuState

CUDA_BLOCK = 5  # iterations between two synchronisations of the CUDA timer


class Device:
    """One device a case runs on; subclasses say how (see the module docstring)."""

    kind: ClassVar[str]
    timer: ClassVar[str] = "perf_counter_ns"
    min_warmup_s: ClassVar[float] = 0.0
    calibration_n: ClassVar[int] = 2048
    profile_device_time: ClassVar[bool] = False

    def __init__(self, name: str) -> None:
        kind, _, index = name.partition(":")
        self.name, self.index = name, int(index) if index else None
        assert kind == self.kind, (name, self.kind)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def torch_device(self) -> torch.device:
        return torch.device(self.name)

    def unavailable(self) -> Optional[str]:
        return None

    def unsupported(self, precision: str) -> Optional[str]:
        return None

    def compile_unavailable(self) -> Optional[str]:
        return None

    def missing(self) -> Optional[str]:
        return None

    def setup(self, threads: int) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def timed_block(self, step: Callable[[], Any], seconds: float) -> tuple[list[int], list[int]]:
        """Iterations for ``seconds`` (at least one), one sample each: (samples ns, host ns per iteration, or
        empty where the timer is the host's own)."""
        samples: list[int] = []
        deadline = time.perf_counter() + seconds
        while not samples or time.perf_counter() < deadline:
            t0 = time.perf_counter_ns()
            step()
            samples.append(time.perf_counter_ns() - t0)
        return samples, []

    def start_memory_window(self) -> None:
        pass

    def memory(self, rss: dict[str, Optional[int]]) -> dict[str, Optional[int]]:
        """The memory figures of a Result, given the host's peak RSS above its baseline (``rss``)."""
        return {"cpu_peak_rss_delta_bytes": rss["delta"], "cpu_rss_baseline_bytes": rss["baseline"]}

    def profiler_activities(self) -> list[Any]:
        return [torch.profiler.ProfilerActivity.CPU]

    def telemetry(self) -> Optional[GpuState]:
        return None


class CPU(Device):
    kind = "cpu"

    def compile_unavailable(self) -> Optional[str]:
        if not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
            return "torch.compile on the CPU needs a C++ compiler and none is on PATH"
        return None

    def setup(self, threads: int) -> None:
        torch.set_num_threads(threads)


class CUDA(Device):
    kind = "cuda"
    timer = "cuda-event"
    min_warmup_s = 0.5  # a GPU's clocks and cuDNN's choices settle over time, not over six iterations
    calibration_n = 8192
    profile_device_time = True

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.index = self.index or 0  # "cuda" is the first visible GPU, as in a fresh process
        self.baseline: Optional[int] = None  # bytes allocated when the memory window opened

    def unavailable(self) -> Optional[str]:
        if not torch.cuda.is_available():
            return "cuda is not available on this machine"
        return self.missing()

    def missing(self) -> Optional[str]:
        """Why this name is no GPU of this machine (an index beyond those visible), or None; None too where
        CUDA is absent (the case is then skipped, not refused)."""
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count and self.index >= count:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            return (f"device {self.name!r} does not exist: this machine shows {count} GPU{'s' if count != 1 else ''}"
                    f" (cuda:0 to cuda:{count - 1}{f', CUDA_VISIBLE_DEVICES={visible}' if visible is not None else ''})")
        return None

    def unsupported(self, precision: str) -> Optional[str]:
        if precision in ("amp-bf16", "bf16") and not torch.cuda.is_bf16_supported(including_emulation=False):
            return (f"{precision} is not native on {torch.cuda.get_device_name(self.index)} (bfloat16 needs "
                    "compute capability 8.0 or newer; emulated, its time would mislead)")
        return None

    def setup(self, threads: int) -> None:
        torch.cuda.set_device(self.index)  # events, streams and the allocator's statistics follow it

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.index)

    def timed_block(self, step: Callable[[], Any], seconds: float) -> tuple[list[int], list[int]]:
        samples: list[int] = []
        host: list[int] = []
        deadline = time.perf_counter() + seconds
        while not samples or time.perf_counter() < deadline:
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                      for _ in range(CUDA_BLOCK)]
            for start, end in events:
                h0 = time.perf_counter_ns()
                start.record()
                step()
                end.record()
                host.append(time.perf_counter_ns() - h0)
            self.synchronize()
            samples += [round(start.elapsed_time(end) * 1e6) for start, end in events]
        return samples, host

    def start_memory_window(self) -> None:
        """The peaks from here on hold the weights, the input and the steady-state steps, not the fp32
        reference, the cast copies or cuDNN's autotuning workspaces of set-up."""
        self.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self.index)
        self.baseline = torch.cuda.memory_allocated(self.index)

    def memory(self, rss: dict[str, Optional[int]]) -> dict[str, Optional[int]]:
        """The allocator's peaks since ``start_memory_window``, the bytes allocated when it opened (weights,
        input, optimizer state: the baseline) and the peak above that baseline (what the steps themselves add);
        no baseline nor delta where no window was opened."""
        peak = torch.cuda.max_memory_allocated(self.index)
        baseline = self.baseline
        return {"cuda_peak_allocated_bytes": peak, "cuda_peak_reserved_bytes": torch.cuda.max_memory_reserved(self.index),
                "cuda_allocated_baseline_bytes": baseline,
                "cuda_peak_allocated_delta_bytes": None if baseline is None else max(0, peak - baseline)}

    def profiler_activities(self) -> list[Any]:
        return [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]

    def uuid(self) -> Optional[str]:
        """This GPU's UUID in nvidia-smi's spelling (GPU-8c5b..., MIG-...), or None where torch has none."""
        uuid = getattr(torch.cuda.get_device_properties(self.index), "uuid", None)
        text = str(uuid) if uuid is not None else ""
        return None if not text else text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"

    def telemetry(self) -> Optional[GpuState]:
        """Clocks, power, temperature, throttle reasons and other processes now (``bench.telemetry``), found by
        UUID; None without nvidia-ml-py or a working NVML."""
        return telemetry.reading(self.uuid(), self.index)


KINDS: dict[str, type[Device]] = {cls.kind: cls for cls in (CPU, CUDA)}


@functools.lru_cache(maxsize=None)
def device_of(name: str) -> Device:
    """The Device of a case's device name ("cpu", "cuda", "cuda:1")."""
    kind = name.partition(":")[0]
    if kind not in KINDS:
        raise BadValue(f"device must be one of {', '.join(KINDS)} (cuda:N for one GPU), got {name!r}")
    return KINDS[kind](name)


__all__ = ["Device", "CPU", "CUDA", "KINDS", "device_of"]
