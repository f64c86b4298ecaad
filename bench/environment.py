"""What machine and software a measurement ran on: everything that can change a timing."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from . import allocator
from .cases import all_cores, usable_cpus

CHECKOUT = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Optional[Path] = None) -> Optional[str]:
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _size_bytes(text: str) -> int:
    """sysfs's cache size ("32768K", "1M", "512") in bytes."""
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


SYS_CPUS = Path("/sys/devices/system/cpu")


def _last_level(caches: Path) -> tuple[int, int, str]:
    """(level, bytes, the CPUs that share it) of the highest-level data or unified cache in one CPU's ``caches``."""
    best = (0, 0, "")
    for index in caches.glob("index*"):
        if (index / "type").read_text().strip() in ("Unified", "Data"):
            best = max(best, (int((index / "level").read_text()), _size_bytes((index / "size").read_text()),
                              (index / "shared_cpu_list").read_text().strip()))
    return best


def cpu_llc_bytes(cpus: Optional[Sequence[int]] = None, root: Path = SYS_CPUS) -> Optional[int]:
    """The last-level cache this process's CPUs (``cpus``, default its affinity) have between them, in bytes: each
    distinct last-level cache counted once (an EPYC's L3 is one per core complex; a worker pinned across two has
    both). From Linux's sysfs (a VM's is what its hypervisor shows); None where it is not known."""
    if cpus is None:
        cpus = usable_cpus()
    try:
        caches = {shared: size for _, size, shared in (_last_level(root / f"cpu{cpu}" / "cache") for cpu in cpus)}
    except (OSError, ValueError):
        return None
    return sum(caches.values()) or None


def git_state(path: Path = CHECKOUT) -> tuple[Optional[str], Optional[bool]]:
    """The checkout's commit and whether its tracked files differ from it (None outside git)."""
    commit = _run(["git", "rev-parse", "HEAD"], cwd=path)
    if commit is None:
        return None, None
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path)
    return commit, bool(status)


def gpu_uuids() -> list[Optional[str]]:
    """Each visible GPU's UUID in nvidia-smi's spelling (GPU-8c5b...), by index: cuda:N is the Nth."""
    from .devices import device_of

    return [device_of(f"cuda:{index}").uuid() for index in range(torch.cuda.device_count())]


def worker_flags(tf32: bool = False, cudnn_benchmark: bool = False,
                 allocator_name: str = allocator.DEFAULT_ALLOCATOR) -> dict[str, Any]:
    """The flags a worker measures with under ``run [--tf32] [--cudnn-benchmark] [--allocator]``: the backend
    flags read back after ``bench.prepare.set_backends`` (the one place they are set), not this process's
    defaults (TF32 on for cuDNN), and the host allocator that takes effect on this C library
    (``bench.allocator.effective``)."""
    from .prepare import set_backends

    backends = torch.backends
    saved = backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32, backends.cudnn.benchmark
    set_backends(tf32, cudnn_benchmark)
    try:
        return {"tf32_matmul": backends.cuda.matmul.allow_tf32, "tf32_cudnn": backends.cudnn.allow_tf32,
                "cudnn_benchmark": backends.cudnn.benchmark, "cpu_allocator": allocator.effective(allocator_name)}
    finally:
        backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32, backends.cudnn.benchmark = saved


def collect(tf32: bool = False, cudnn_benchmark: bool = False,
            allocator_name: str = allocator.DEFAULT_ALLOCATOR) -> dict[str, Any]:
    """A flat record of the environment, with the backend flags of a run with these options (``worker_flags``);
    keys carry units where they have one."""
    import torchvision

    commit, dirty = git_state()
    cuda = torch.cuda.is_available()
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda_build": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_model": cpu_model(),
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_usable": all_cores(),
        "cpu_llc_bytes": cpu_llc_bytes(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": cuda,
        "gpu_name": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_names": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "gpu_driver": _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]) if cuda else None,
        "gpu_uuids": gpu_uuids() if cuda else [],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        **worker_flags(tf32, cudnn_benchmark, allocator_name),
        "git_commit": commit,
        "git_dirty": dirty,
    }
    if info["gpu_driver"]:
        info["gpu_driver"] = info["gpu_driver"].splitlines()[0]
    info["machine_fingerprint"] = fingerprint(info)
    return info


FINGERPRINT_KEYS = ("cpu_model", "cpu_cores_logical", "gpu_name", "gpu_count")


def fingerprint(env: dict[str, Any]) -> str:
    """The hardware's identity, 12 hex digits of a SHA-256 over FINGERPRINT_KEYS: two runs with the same one ran
    on the same kind of machine. The GPU driver and the torch build are recorded beside it but left out: a
    comparison across an upgrade of either on one machine is what the regression gate is for."""
    text = json.dumps({key: env.get(key) for key in FINGERPRINT_KEYS}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
