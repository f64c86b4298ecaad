"""What a worker's host memory allocator does with memory a step frees: keep it (the default) or glibc's own way.

Why
    A CPU step allocates its activations and, under autocast, copies of its
    weights, and frees them at the end. glibc's malloc hands a buffer above its
    mmap threshold back to the kernel when it is freed, so the next step takes
    every page of it new from the kernel (a minor page fault, the page zeroed):
    VGG-11 amp-bf16 at batch 1 faults 58,370 pages (228 MiB) per step on a
    2-core Xeon VM, 58% of its step. That threshold moves: it starts at
    128 KiB and rises to the size of a freed mmapped buffer (at most 32 MiB), and
    the heap's top is trimmed back to the kernel past twice that; so whether a
    25 MiB activation comes from the heap or from the kernel depends on what the
    process freed before. Two fresh workers of one case differ by luck: VGG-13
    b2 fp32 channels_last took 12,512 faults per step in one run of the quick
    suite and 0 in the next (p50 197 ms against 178 ms), and the comparisons
    built on such a case do not repeat.

Allocators (``ALLOCATORS``)
    ``keep`` (the default): ``mallopt(M_MMAP_MAX, 0)`` and ``mallopt(M_TRIM_THRESHOLD, -1)`` (glibc
    reads it as SIZE_MAX: no limit, on purpose) in the worker before it builds
    anything (fixing either also stops glibc's moving threshold): the main
    arena serves every buffer from its heap and never hands freed memory back,
    so a warmed-up step takes no page from the kernel, whatever the process did
    before. That is what a serving process with a caching allocator sees, and
    what PyTorch's own CPU launcher sets up (``torch.backends.xeon.run_cpu``
    preloads jemalloc or tcmalloc, jemalloc with its decay off): the step's own
    work is measured, not the kernel's. A worker started from nothing (of
    another checkout, for ``ab`` or ``compare --confirm --baseline-src``; or with
    ``CNNBENCH_FORKSERVER=0``) also gets the same two settings as
    ``GLIBC_TUNABLES`` (``environ``), which glibc reads at start-up, so an older
    checkout's worker, which knows no allocator, keeps its memory too and the
    two sides are measured alike.
    ``system``: glibc's defaults untouched, moving threshold included, as a
    plain ``python`` process has them; the page-fault figures and the
    fresh-memory share (``bench.results``) then say what it costs.

    What ``keep`` leaves as it was: buffers that threads other than the main
    one allocate come from their own arenas, whose 64 MiB sub-heaps glibc maps
    and may unmap (a torch step allocates on the main thread; an OpenMP
    thread's scratch is small); a heap that cannot grow (``brk`` refused, e.g.
    under ``--worker-memory-limit``) is served by mmap, or is an ``oom``. Memory
    once used stays resident, so a case's peak resident memory is its high-water
    mark, as before, and a worker under ``--worker-memory-limit`` can meet its
    limit sooner than glibc's own way would (fragments of the heap are not given
    back). Instruction counts (``bench.instructions``) run under Valgrind, whose
    own malloc replaces glibc's: the setting does not reach them.

    The allocator is a run setting (``run --allocator``), recorded in the run's
    options and its environment (``cpu_allocator``), so ``compare`` names it when
    two runs differ; a run stored before it existed was measured with ``system``.
    ``mallopt`` is glibc's; elsewhere ``keep`` changes nothing and the
    environment says ``system``. Under ``--isolation none`` it is set in the
    runner's own process once, and cannot be undone there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
from typing import Optional

from .errors import BadValue

ALLOCATORS = ("keep", "system")
DEFAULT_ALLOCATOR = "keep"
STORED_BEFORE = "system"  # what a run stored without the setting was measured with

# glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = -1  # mallopt's int, which glibc takes as a size_t: SIZE_MAX
_TUNABLES = f"glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold={2**64 - 1}"  # the same, read at start-up
_in_effect = {"keep": False}  # this process's: keep cannot be undone


@functools.lru_cache(maxsize=1)
def _mallopt() -> Optional[ctypes._CFuncPtr]:
    """glibc's ``mallopt``, or None where the C library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return None
    fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    fn.argtypes, fn.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return fn


def stored_options(options: dict) -> dict:
    """A stored run's options, with the allocator a run stored before the setting was measured with
    (``STORED_BEFORE``) where they have none."""
    return {"allocator": STORED_BEFORE, **options}


def checked(name: str) -> str:
    """An allocator's name, or BadValue naming the allowed ones."""
    if name not in ALLOCATORS:
        raise BadValue(f"allocator must be one of {', '.join(ALLOCATORS)}, got {name!r}")
    return name


def effective(name: str) -> str:
    """What ``use(name)`` gives on this C library: ``keep`` needs glibc's ``mallopt``."""
    return name if name == "system" or _mallopt() is not None else "system"


def use(name: str) -> str:
    """Set this process's allocator (see the module docstring); returns the one in effect, which stays ``keep``
    once set in the process (``system`` changes nothing)."""
    if effective(checked(name)) == "keep" and not _in_effect["keep"]:
        mallopt = _mallopt()
        _in_effect["keep"] = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM))
    return "keep" if _in_effect["keep"] else "system"


def environ(name: Optional[str], env: Optional[dict[str, str]] = None) -> dict[str, str]:
    """``env`` (default: this process's environment) for a process started from nothing with allocator ``name``:
    for ``keep`` on glibc, ``GLIBC_TUNABLES`` with the same settings as ``use`` (after any the user set)."""
    env = dict(os.environ if env is None else env)
    if effective(checked(name or DEFAULT_ALLOCATOR)) == "keep":
        env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), _TUNABLES]))
    return env
