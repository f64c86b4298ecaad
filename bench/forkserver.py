"""A fork server: one process that has imported torch and the worker, and forks a worker per request.

Why: a worker started from nothing spends 1.7-1.9 s importing torch, torchvision
and the harness before it builds anything; a suite pays that once per case. A
fork of a process that has already imported them (and run no torch op, so no
thread pool, no CUDA context and no allocator state is inherited) starts in
milliseconds and is otherwise the same fresh, isolated process: its own
session, its own memory (copy-on-write), its own stdio.

Protocol (``python -m bench.forkserver FD``, FD one end of a SOCK_SEQPACKET
socket pair; one JSON message a packet):
    server -> runner  {"ready": true}                       once imported
    runner -> server  {"module", "args", "env", "cwd"} with 3 file descriptors
                      (the child's stdin, stdout, stderr) passed alongside
    server -> runner  {"pid": PID}                           the child's pid
    runner -> server  {"drop": true}                         a group builder frees its model
    server -> runner  {"dropped": true}                      once it has (before the group's first block)
    server -> runner  {"exit": PID, "code": CODE}            when a child ends
                      (CODE as ``Popen.returncode``: -N for signal N)
A child runs in a new session (``setsid``), so killing its process group takes
down what it starts; it takes the request's environment, working directory and
``PYTHONPATH`` entries, and runs the module's ``main(ARGS)``, as ``python -m MODULE ARGS`` would.
When the runner's end closes (the runner ended, however), the server kills
every child's group and exits: no worker outlives its runner.

A comparison group's builder (``python -m bench.forkserver FD --prebuild CASES``,
itself forked from the runner's server with its socket as stdin, FD 0): before it
says it is ready, it builds, on one thread, the model, input and reference output
that every member of the group starts from (``bench.prepare.prebuild``; CPU
cases of one model, batch, input and mode), then forks the group's workers as
above: each copies that base into memory of its own (or, an inference model too big
for the last-level cache, reads its weights from the builder's pages:
``bench.prepare.keeps_builder_pages``) instead of building the same model again (a
VGG: about 1 s of weight initialisation and a reference forward per member). One thread, so that no OpenMP pool exists to be forked over (the
thread count is checked, as after the imports). A build that fails is said on
stderr, and the members then build their own (and meet the failure themselves).
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import socket
import sys
from typing import Any, Optional

PRELOAD = ("torch", "torchvision", "bench.worker", "bench.profiling", "classic_cnns")  # imported, never run


def _send(sock: socket.socket, obj: dict[str, Any]) -> None:
    sock.send(json.dumps(obj).encode())


def _die_with(parent: int) -> None:
    """SIGKILL this child when the server that forked it ends, however (Linux's ``PR_SET_PDEATHSIG``): a group
    builder's workers are its children, not the runner's server's, which kills only its own children's groups."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it ended before the request took hold
        os._exit(1)


def _child(request: dict[str, Any], fds: list[int], sock: socket.socket, server_pid: int) -> None:
    """In the forked child: become the worker the request names; never returns."""
    code = 1
    try:
        sock.close()
        os.setsid()
        _die_with(server_pid)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
        sys.path[1:1] = extra
        sys.argv = [request["module"], *request["args"]]
        try:  # what `python -m MODULE ARGS` runs: the module's main(argv) (the modules served all have one)
            returned = importlib.import_module(request["module"]).main(list(request["args"]))
            code = returned if isinstance(returned, int) else 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - a child must never fall back into the server's loop
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:  # what a fresh interpreter runs at exit (a compiler's pool shuts down, logging flushes)
            import atexit

            atexit._run_exitfuncs()
        except BaseException:  # noqa: BLE001
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code)


def _prebuild(cases: list[dict[str, Any]]) -> None:
    import torch

    from bench.cases import Case
    from bench.prepare import prebuild

    torch.set_num_threads(1)
    try:
        prebuild([Case.from_dict(case) for case in cases])
    except Exception as exc:  # noqa: BLE001 - the members build their own and say what fails
        print(f"fork server: the group's model was not built ahead ({type(exc).__name__}: {exc}); "
              "each member builds its own", file=sys.stderr)


def serve(sock: socket.socket, prebuild: Optional[list[dict[str, Any]]] = None) -> int:
    for name in PRELOAD:
        __import__(name)
    if prebuild:
        _prebuild(prebuild)
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1
    if threads > 1:  # a fork copies only this thread: refuse rather than risk a lock held by another
        print(f"fork server: {threads} threads after imports; workers will be started from nothing",
              file=sys.stderr)
        return 1
    children: set[int] = set()
    # asleep until a request or a child's end: a SIGCHLD writes to the wake-up pipe (no polling, which would
    # wake this process hundreds of times a second beside the worker being timed)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    server_pid = os.getpid()
    _send(sock, {"ready": True})
    try:
        while True:
            readable, _, _ = select.select([sock, wake_read], [], [])
            if wake_read in readable:
                while True:
                    try:
                        if not os.read(wake_read, 512):
                            break
                    except BlockingIOError:
                        break
            while children:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                children.discard(pid)
                _send(sock, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})
            if sock not in readable:
                continue
            message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 3)
            if not message:
                return 0  # the runner is gone
            request = json.loads(message)
            if request.get("drop"):  # a group builder whose members all started: its model is theirs now
                from bench.prepare import drop_bases

                drop_bases()
                _send(sock, {"dropped": True})
                continue
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                os.close(wake_read)
                os.close(wake_write)
                _child(request, fds, sock, server_pid)
            for fd in fds:
                os.close(fd)
            children.add(pid)
            _send(sock, {"pid": pid, "id": request.get("id")})
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        for pid in children:
            for kill in (os.killpg, os.kill):  # the group, and the child should it not lead one yet
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        for pid in children:  # reaped here: where init does not reap orphans, they would stay as zombies
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the runner, which closes the socket
    prebuild = json.loads(argv[2]) if argv[1:2] == ["--prebuild"] else None
    return serve(socket.socket(fileno=int(argv[0])), prebuild)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
