"""Worker processes: starting them, pinning them, killing them, and saying why one ended.

Used alike by the runner (one ``python -m bench.worker REQUEST RESULT`` per
case), the interleaved A/B driver (``python -m bench.worker --serve``, possibly
from another checkout) and the profiler request of ``run --profile``.

Each worker is the leader of a new process session, so that killing its group
takes down whatever it started (compiler subprocesses, OpenMP helpers).

Workers of this checkout are forked from a fork server (``bench.forkserver``)
that has imported torch once, so a worker starts in milliseconds instead of
1.7-1.9 s; ``Forked`` stands for such a worker as ``subprocess.Popen`` does for
a started one. Workers of another checkout (``src``) are started from nothing,
as are all workers when ``CNNBENCH_FORKSERVER=0``.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Optional, Sequence

from .allocator import environ as allocator_environ
from .cases import Case, usable_cpus
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


class ForkServer:
    """The runner's side of ``bench.forkserver``: started on first use, one per runner process; or, forked from
    that one (``parent``), a comparison group's builder that holds the group's model built ahead (``prebuild``:
    the members' cases, see ``bench.forkserver``), ready within ``ready_s`` seconds or an OSError."""

    def __init__(self, parent: Optional["ForkServer"] = None, prebuild: Optional[Sequence[Case]] = None,
                 ready_s: float = 120.0) -> None:
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # numpy's OpenBLAS would start a thread server at import: one thread fewer to fork over (numpy's BLAS
        # times nothing in a worker)
        env = dict(os.environ, PYTHONUNBUFFERED="1", OPENBLAS_NUM_THREADS="1")
        self.stderr: Optional[IO[bytes]] = None if parent is None else tempfile.TemporaryFile()
        self.proc: "subprocess.Popen | Forked"
        try:
            if parent is None:
                self.proc = subprocess.Popen([sys.executable, "-m", "bench.forkserver", str(theirs.fileno())],
                                             pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, start_new_session=True, env=env)
            else:  # its end of the socket is its stdin
                cases = json.dumps([case.to_dict() for case in prebuild or ()])
                self.proc = Forked(parent, "bench.forkserver", ["0", "--prebuild", cases], env,
                                   theirs.fileno(), subprocess.DEVNULL, self.stderr, False)
        finally:
            theirs.close()
        self.exits: dict[int, int] = {}
        self.requests = 0
        try:
            if not self._receive(ready_s).get("ready"):
                raise OSError(f"the fork server did not start: {self.said() or 'no answer'}")
        except OSError:
            self.close()
            raise

    def said(self) -> str:
        """The last line the server wrote to its stderr ("" for none; the runner's own server writes to the
        runner's stderr)."""
        if self.stderr is None:
            return ""
        self.stderr.seek(0)
        lines = self.stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    def _receive(self, timeout: Optional[float]) -> dict[str, Any]:
        """The next message, or {} when none came within ``timeout``; an exit report is kept on the way."""
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return {}
        data = self.sock.recv(1 << 16)
        if not data:
            raise OSError("the fork server ended")
        message = json.loads(data)
        if "exit" in message:
            self.exits[message["exit"]] = message["code"]
        return message

    def spawn(self, module: str, args: Sequence[str], fds: Sequence[int], env: dict[str, str]) -> int:
        self.requests += 1
        request = {"id": self.requests, "module": module, "args": list(args), "env": env, "cwd": os.getcwd()}
        socket.send_fds(self.sock, [json.dumps(request).encode()], list(fds))
        while True:
            message = self._receive(60)
            if not message:
                raise OSError("the fork server did not answer")
            if "pid" in message and message.get("id") == self.requests:
                return message["pid"]

    def drop(self, timeout_s: float = 60.0) -> bool:
        """A group builder: free the model built ahead (every member has its own copy, or its mapping of the
        pages, by now), and wait until it has: its collection and freeing take a CPU for up to a few hundred
        milliseconds, which must not fall in a timed block. False when it did not say so within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        try:
            self.sock.send(json.dumps({"drop": True}).encode())
            while (left := deadline - time.monotonic()) > 0:
                if self._receive(left).get("dropped"):
                    return True
        except OSError:  # it ended: nothing of it is left to overlap a block
            return True
        return False

    def wait(self, pid: int, timeout: Optional[float]) -> Optional[int]:
        """The child's exit code, or None when it is still running after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid not in self.exits:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._receive(left) and left is not None and time.monotonic() >= deadline:
                return None  # one look at the socket even with no time left: an exit already reported counts
        return self.exits.pop(pid)

    def close(self) -> None:
        self.sock.close()  # the server kills its children's groups and exits
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
        if self.stderr is not None:
            self.stderr.close()


class Forked:
    """A worker forked by the fork server, with the parts of ``subprocess.Popen`` the harness uses."""

    def __init__(self, server: ForkServer, module: str, args: Sequence[str], env: dict[str, str],
                 stdin: Any, stdout: Any, stderr: Any, text: bool) -> None:
        self.server, self.returncode = server, None
        self.stdin: Any = None
        self.stdout: Any = None
        self.stderr: Any = None
        theirs: list[int] = []  # the child's stdin, stdout, stderr, passed to the server
        made: list[int] = []  # descriptors made here for the child: closed here once it has them
        ours: dict[str, int] = {}  # our ends of the pipes
        for name, spec in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
            if spec == subprocess.PIPE:
                read, write = os.pipe()
                child, mine = (read, write) if name == "stdin" else (write, read)
                theirs.append(child)
                made.append(child)
                ours[name] = mine
            elif spec == subprocess.DEVNULL or spec is None:
                theirs.append(os.open(os.devnull, os.O_RDWR))
                made.append(theirs[-1])
            else:
                theirs.append(spec if isinstance(spec, int) else spec.fileno())
        try:
            self.pid = server.spawn(module, args, theirs, env)
        except BaseException:
            for fd in ours.values():
                os.close(fd)
            raise
        finally:
            for fd in made:
                os.close(fd)
        for name, fd in ours.items():
            setattr(self, name, os.fdopen(fd, ("w" if name == "stdin" else "r") + ("" if text else "b")))

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            try:
                return self.wait(0)
            except subprocess.TimeoutExpired:
                return None
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        if self.returncode is None:
            try:
                code = self.server.wait(self.pid, timeout)
            except OSError:  # the server died: nobody reaps or reports this worker; end it, as a kill would
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                code = -signal.SIGKILL
            if code is None:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
            self.returncode = code
        return self.returncode

    def communicate(self, timeout: Optional[float] = None) -> tuple[Any, Any]:
        """Like ``Popen.communicate`` for a worker with only stderr piped: (None, stderr's content)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        chunks: list[bytes] = []
        if self.stderr is not None:
            fd = self.stderr.fileno()
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                ready, _, _ = select.select([fd], [], [], left)
                if not ready:
                    raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
            self.stderr.close()
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return None, b"".join(chunks)


_server: Optional[ForkServer] = None
_failed = False  # the fork server could not start here: do not pay its start again for every worker


def _fork_server() -> Optional[ForkServer]:
    """The runner's fork server, started on first use; None where it is turned off or cannot start."""
    global _server, _failed
    if os.environ.get("CNNBENCH_FORKSERVER", "1") == "0" or not hasattr(socket, "send_fds") or _failed:
        return None
    if _server is None or _server.proc.poll() is not None:
        try:
            _server = ForkServer()
        except OSError:
            _failed = True
            return None
        atexit.register(_server.close)
    return _server


def start(module: str, args: Sequence[str], *, src: Optional[str] = None, stdin: Any = subprocess.DEVNULL,
          stdout: Any = subprocess.DEVNULL, stderr: "int | IO[Any]" = subprocess.PIPE,
          text: bool = False, server: Optional[ForkServer] = None,
          allocator: Optional[str] = None) -> "subprocess.Popen | Forked":
    """``python -m MODULE ARGS`` in a new session, unbuffered; with ``src``, that checkout's code runs.

    Forked from ``server`` (a group's builder, ``group_builder``), else from the runner's fork server where there
    is one and ``src`` is not given (see the module docstring). With ``allocator``, a worker started from nothing
    gets it in its environment as well (``bench.allocator.environ``): a checkout older than the setting then
    keeps its memory as this one's workers do."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if allocator is not None:
        env = allocator_environ(allocator, env)
    server = None if src else server or _fork_server()
    if server is not None:
        return Forked(server, module, args, env, stdin, stdout, stderr, text)
    cwd = None
    if src:
        root = checkout(src)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
        cwd = str(root)
    return subprocess.Popen([sys.executable, "-m", module, *args], stdin=stdin, stdout=stdout, stderr=stderr,
                            cwd=cwd, env=env, start_new_session=True, text=text)


def group_builder(cases: Sequence[Case], ready_s: float) -> Optional[ForkServer]:
    """A fork server for one comparison group that has built the members' common model ahead (``ForkServer``'s
    ``prebuild``), forked from the runner's; None where there is no fork server (the members then build their
    own, as they would anyway); an OSError saying why where it could not start."""
    parent = _fork_server()
    return None if parent is None else ForkServer(parent, cases, ready_s)


def wait_for(proc: "subprocess.Popen | Forked", timeout_s: float) -> Optional[str]:
    """Wait for a worker to end: its stderr, or None when it passed ``timeout_s`` and was killed (its whole group).
    Ctrl-C or the runner being stopped takes the worker down too; what a worker that ended by itself left in its
    group is cleared."""
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return None
    except BaseException:
        kill_group(proc)
        raise
    clear_group(proc)
    return (err or b"").decode(errors="replace")


@dataclass(frozen=True)
class Ended:
    """How a worker run on a request ended (``run_on_request``)."""

    answer: Optional[dict[str, Any]]  # the JSON it wrote to its answer file; None when it wrote none
    returncode: Optional[int]  # its exit status (negative: the signal); None when it passed its limit
    stderr: str  # all it wrote there
    timeout_s: float  # its limit

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def reason(self, missing: str, lines: int = 1) -> str:
        """Why it ended without its ``missing`` answer: its limit passed, or ``exit_reason``'s signal or status
        and the last ``lines`` lines of its stderr."""
        if self.returncode is None:
            return f"worker passed its {self.timeout_s:g} s limit and was killed"
        return exit_reason(self.returncode, self.stderr, missing, lines)


def run_on_request(module: str, kind: str, request: dict[str, Any], timeout_s: float, answers: bool = True) -> Ended:
    """``python -m MODULE REQUEST.json [ANSWER.json]``: the request written to a scratch folder of ``kind`` (removed
    afterwards, however it ends), one worker started on it (``start``) and waited for up to ``timeout_s``
    (``wait_for``); with ``answers``, the JSON it wrote to ANSWER.json is read back."""
    with scratch(kind) as tmp:
        path, out = tmp / "request.json", tmp / "result.json"
        path.write_text(json.dumps(request))
        proc = start(module, [str(path), *([str(out)] if answers else [])], allocator=request.get("allocator"))
        err = wait_for(proc, timeout_s)
        if err is None:
            return Ended(None, None, "", timeout_s)
        return Ended(json.loads(out.read_text()) if answers and out.exists() else None, proc.returncode, err,
                     timeout_s)


def kill_group(proc: "subprocess.Popen | Forked") -> None:
    """SIGKILL the worker's whole process group (or the worker, should it not lead one yet), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def clear_group(proc: "subprocess.Popen | Forked") -> None:
    """After a worker ended by itself: SIGKILL what it left in its group (a compiler's pool of processes
    outlives the worker that started it otherwise)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def exit_reason(returncode: int, stderr: str, missing: str, lines: int = 1) -> str:
    """Why a worker ended without its ``missing`` (result, reply): the signal or status, and stderr's last line;
    with ``lines`` > 1, its last ``lines`` message lines joined by " / ": a traceback's header and its frames
    (indented) are passed over, so that what is left is the error and whatever followed it (CUDA's advice)."""
    tail = [line for line in stderr.splitlines() if line.strip()]
    if lines > 1:
        tail = [line for line in tail if not line[0].isspace() and not line.startswith("Traceback (")] or tail
    tail = [line.strip() for line in tail[-lines:]]
    last = f": {' / '.join(tail)}" if tail else ""
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
    return usable_cpus()[:max(case.threads for case in cases)]


SETTLE_POLL_S = 0.0002  # between looks at the threads: a look costs tens of microseconds, a spin lasts milliseconds


def _others_running(me: int) -> bool:
    """Whether a thread of this process other than ``me`` is running or runnable (``R`` in /proc); OSError where
    the threads cannot be read."""
    for tid in os.listdir("/proc/self/task"):
        if int(tid) == me:
            continue
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):  # it ended after the listing
            continue
        if stat[stat.rindex(")") + 2] == "R":
            return True
    return False


def settle(cap_s: float, blind_s: float = 0.0, running: Callable[[int], bool] = _others_running) -> Optional[bool]:
    """Wait until no other thread of this process is running or runnable, at most ``cap_s``; where the threads
    cannot be read (no /proc), sleep ``blind_s`` instead. Returns whether the cap ended the wait with another
    thread still running (None: blind, not known).

    Why: after a parallel region OpenMP's idle threads spin before they sleep, and would take the CPUs from
    whatever runs next (the next member of a comparison group's round): measured with a 2-thread matmul, about
    8 ms on a 2-vCPU AMD EPYC VM (median of 50; max 12 ms), 1-3 ms on a Xeon VM; so a fixed pause is too short on
    one machine and wasted on the other."""
    deadline, me = time.perf_counter() + cap_s, threading.get_native_id()
    while True:
        try:
            busy = running(me)
        except OSError:
            time.sleep(blind_s)
            return None
        if not busy or time.perf_counter() >= deadline:
            return busy
        time.sleep(SETTLE_POLL_S)


def pin(cpus: Optional[Sequence[int]]) -> None:
    """Pin this process to ``cpus`` (nothing when None or unsupported)."""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cpus))


OWN_LIMIT_GRACE_S = 5.0  # past its runner's limit: a runner alive kills the worker first and reports a timeout


def own_limit(seconds: Optional[float]) -> None:
    """A worker's own time limit, kept whoever watches: SIGALRM, whose default action ends the process even inside
    a C call, ``seconds`` + ``OWN_LIMIT_GRACE_S`` from now (None or 0: cancelled). So a worker whose runner was
    killed (kill -9, and no fork server to take its workers down) does not outlive its limit."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(math.ceil(seconds + OWN_LIMIT_GRACE_S) if seconds else 0)


_SCRATCH = re.compile(r"cnnbench-(worker|profile|calibrate)-([0-9]+)-[a-z0-9_]+")


@contextlib.contextmanager
def scratch(kind: str) -> Iterator[Path]:
    """A temporary folder for one worker's request and answer, removed when the block ends, however it ends. A
    runner killed with kill -9 cannot remove its own: its folders carry its pid, and the next runner removes
    those whose runner is gone."""
    for folder in Path(tempfile.gettempdir()).glob("cnnbench-*"):
        match = _SCRATCH.fullmatch(folder.name)
        if match and not _alive(int(match.group(2))):
            shutil.rmtree(folder, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=f"cnnbench-{kind}-{os.getpid()}-") as tmp:
        yield Path(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextlib.contextmanager
def claim(key: str, what: str) -> Iterator[None]:
    """Hold ``key`` while the block runs, or refuse with one line naming ``what`` when another process holds it
    (a second ``run --resume`` of a run being measured). An flock on a lock file in the temporary folder: the
    kernel releases it however the holder ends, kill -9 included; the file is removed by whoever held it last."""
    path = Path(tempfile.gettempdir()) / f"cnnbench-claim-{hashlib.sha256(key.encode()).hexdigest()[:20]}.lock"
    while True:
        fh = open(path, "a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise BadValue(f"{what} is being measured by another cnnbench process; "
                           "resume it once that one has ended") from None
        with contextlib.suppress(FileNotFoundError):  # the file is still the one named: else a holder removed it
            if os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino:
                break
        fh.close()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # removed while held: whoever opened it before sees it gone and tries afresh
        fh.close()
