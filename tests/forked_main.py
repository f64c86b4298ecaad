"""A module the fork server can run (tests/test_processes.py): ``main(argv)`` does what argv says, or what the
request file it is given says (``bench.processes.run_on_request``)."""

import json
import os
import signal
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    if argv[0].endswith("request.json"):
        return answer(*argv)
    what, value = argv
    if what == "env":
        print(f"{os.environ.get(value, '')}|{os.getcwd()}|{os.getpgid(0) == os.getpid()}", flush=True)
        return 0
    if what == "echo":  # one line in, the same line out, until the input ends
        for line in sys.stdin:
            print(line.strip(), flush=True)
        return 0
    if what == "leave":  # start a process in this group, say its pid, and end without it
        import subprocess

        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(child.pid, file=sys.stderr, flush=True)
        return 0
    if what == "sleep":
        time.sleep(float(value))
        return 0
    if what == "exit":
        print("about to fail", file=sys.stderr, flush=True)
        return int(value)
    if what == "signal":
        os.kill(os.getpid(), getattr(signal, value))
    raise SystemExit(f"unknown {what}")


def answer(request: str, out: str = "") -> int:
    """What a request file asks: write to stderr, sleep, write the answer file, then exit with a status."""
    asked = json.loads(Path(request).read_text())
    if "stderr" in asked:
        print(asked["stderr"], file=sys.stderr, end="", flush=True)
    time.sleep(asked.get("sleep", 0))
    if "answer" in asked:
        Path(out).write_text(json.dumps(asked["answer"]))
    return asked.get("exit", 0)
