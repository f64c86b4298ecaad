"""Worker processes: starting them, pinning them, killing them, and saying why one ended.

Used alike by the runner (one ``python -m bench.worker REQUEST RESULT`` per
case), the interleaved A/B driver (``python -m bench.worker --serve``, possibly
from another checkout) and the profiler request of ``run --profile``.

Each worker is the leader of a new process session, so that killing its group
takes down whatever it started (compiler subprocesses, OpenMP helpers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any, Optional, Sequence

from .cases import Case
from .errors import BadValue


def checkout(src: str) -> Path:
    """A checkout whose code can serve one side of an interleaved A/B; BadValue otherwise."""
    worker = Path(src).resolve() / "bench" / "worker.py"
    if not worker.is_file():
        raise BadValue(f"{src!r} is not a cnnbench checkout (no bench/worker.py there)")
    if "--serve" not in worker.read_text(errors="replace"):
        raise BadValue(f"the checkout at {src!r} predates interleaved measurement "
                       "(its bench/worker.py has no --serve); use a newer commit")
    return worker.parent.parent


def start(module: str, args: Sequence[str], *, src: Optional[str] = None, stdin: Any = subprocess.DEVNULL,
          stdout: Any = subprocess.DEVNULL, stderr: "int | IO[Any]" = subprocess.PIPE,
          text: bool = False) -> subprocess.Popen:
    """``python -m MODULE ARGS`` in a new session, unbuffered; with ``src``, that checkout's code runs."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cwd = None
    if src:
        root = checkout(src)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
        cwd = str(root)
    return subprocess.Popen([sys.executable, "-m", module, *args], stdin=stdin, stdout=stdout, stderr=stderr,
                            cwd=cwd, env=env, start_new_session=True, text=text)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the worker's whole process group, then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def exit_reason(returncode: int, stderr: str, missing: str) -> str:
    """Why a worker ended without its ``missing`` (result, reply): the signal or status, and stderr's last line."""
    tail = [line for line in stderr.splitlines() if line.strip()]
    last = f": {tail[-1].strip()}" if tail else ""
    if returncode < 0:
        name = signal_name(-returncode)
        hint = " (the kernel's OOM killer sends this)" if name == "SIGKILL" else ""
        return f"worker killed by {name}{hint}{last}"
    return f"worker exited with status {returncode} and no {missing}{last}"


def shared_cpus(*cases: Case) -> Optional[list[int]]:
    """The CPUs workers measured together are pinned to: the first ``threads`` this process may use
    (None: no pinning, for devices other than the CPU or where affinity cannot be set)."""
    if any(case.device != "cpu" for case in cases) or not hasattr(os, "sched_getaffinity"):
        return None
    usable = sorted(os.sched_getaffinity(0))
    return usable[:max(case.threads for case in cases)]


def pin(cpus: Optional[Sequence[int]]) -> None:
    """Pin this process to ``cpus`` (nothing when None or unsupported)."""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cpus))
