"""The worker's host allocator (bench/allocator.py): keep freed memory, or glibc's own way."""

import json
import os
import subprocess
import sys

import pytest

from bench import allocator
from bench.errors import BadValue
from bench.runner import RunOptions

# In a fresh interpreter (the setting cannot be undone in this one): 24 MiB, below glibc's largest mmap threshold,
# so whether it comes back from the kernel each time depends on glibc's moving threshold; 40 MiB, above it,
# always does under glibc's defaults. Each is allocated, written and freed 20 times; the faults of the last 10 count.
_PROBE = """
import ctypes, json, resource, sys
from bench import allocator
used = allocator.use(sys.argv[1]) if sys.argv[1] != "environment" else None
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
faults = {}
for mib in (24, 40):
    n = mib << 20
    for i in range(20):
        if i == 10:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        p = libc.malloc(n)
        ctypes.memset(p, 1, n)
        libc.free(p)
    faults[mib] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
print(json.dumps({"used": used, "faults": faults, "then_system": allocator.use("system")}))
"""


def _faults(name: str, env=None) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, name], capture_output=True, text=True, timeout=60, check=True,
                          env=env)
    return json.loads(done.stdout)


@pytest.mark.skipif(allocator.effective("keep") != "keep", reason="mallopt is glibc's")
def test_keep_takes_no_page_from_the_kernel_once_warm_and_system_takes_every_page_above_the_threshold():
    keep, system = _faults("keep"), _faults("system")
    assert keep["used"] == "keep" and system["used"] == "system"
    pages_40 = (40 << 20) // 4096
    assert keep["faults"]["24"] < 16 and keep["faults"]["40"] < 16
    assert system["faults"]["40"] > 0.9 * pages_40  # glibc's mmap threshold is at most 32 MiB: back to the kernel
    assert keep["then_system"] == "keep" and system["then_system"] == "system"  # keep cannot be undone: said so


@pytest.mark.skipif(allocator.effective("keep") != "keep", reason="glibc's tunables")
def test_a_process_started_from_nothing_keeps_its_memory_through_its_environment_alone():
    """What an older checkout's worker gets: no call of its own, GLIBC_TUNABLES read by glibc at start-up."""
    env = allocator.environ("keep", {**os.environ, "GLIBC_TUNABLES": "glibc.malloc.check=0"})
    assert env["GLIBC_TUNABLES"].startswith("glibc.malloc.check=0:glibc.malloc.mmap_max=0:")
    assert allocator.environ("system", {"A": "1"}) == {"A": "1"}
    tuned = _faults("environment", env)
    assert tuned["faults"]["24"] < 16 and tuned["faults"]["40"] < 16
    assert _faults("environment", {**os.environ, "GLIBC_TUNABLES": ""})["faults"]["40"] > 0.9 * (40 << 20) // 4096


def test_an_unknown_allocator_is_refused_and_a_libc_without_mallopt_keeps_its_own(monkeypatch):
    with pytest.raises(BadValue, match="allocator must be one of keep, system, got 'tcmalloc'"):
        allocator.use("tcmalloc")
    with pytest.raises(BadValue, match="allocator must be one of keep, system, got 'x'"):
        RunOptions(allocator="x")
    monkeypatch.setattr(allocator, "_mallopt", lambda: None)
    monkeypatch.setattr(allocator, "_in_effect", {"keep": False})  # whatever an in-process test set here before
    assert allocator.effective("keep") == "system" and allocator.use("keep") == "system"


def test_a_run_stored_before_the_setting_was_measured_with_glibcs_own_and_a_new_one_keeps():
    assert RunOptions.stored({"isolation": "process"}).allocator == "system"
    assert RunOptions.stored({"allocator": "keep"}).allocator == "keep"
    assert RunOptions().allocator == "keep"
    assert RunOptions(tf32=True).worker_flags() == {"tf32": True, "cudnn_benchmark": False, "allocator": "keep"}
