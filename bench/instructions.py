"""Instruction counts per iteration with Valgrind's callgrind: a metric that machine load does not move.

Method: ``torch.utils.benchmark.Timer.collect_callgrind`` (as PyTorch's own
instruction-count benchmarks do) runs a fresh Python under
``valgrind --tool=callgrind`` with collection off, builds the case exactly as the
worker does (``bench.prepare.Prepared``: same seed, weights, input, precision,
format, mode), runs one step untimed, then switches collection on for
``iterations`` steps. The count is the denoised total (CPython's dictionary and
allocator noise removed) divided by ``iterations``. Single-threaded, CPU only.

collect_callgrind also instruments from the start, which makes ``import torch``
under Valgrind most of the cost (lenet5: about 145 s on 2 cores). A ``valgrind``
first on PATH starts it with instrumentation off instead, and the setup switches
it on (``callgrind_control --instr=on``) once the case is built, before the
warm-up steps (lenet5: about 50 s). Every collected step runs instrumented as
before, so the count is the same (lenet5: 1.972-1.983 M a step either way).
Should torch change its flags, the wrapper changes nothing and the count is only
slower.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional

from .cases import Case


def unavailable(case: Case) -> Optional[str]:
    """Why this case cannot be counted, or None."""
    if case.device != "cpu":
        return "instruction counts are for CPU cases"
    if case.compiler != "eager":
        return "instruction counts are for eager cases (compilation would be counted)"
    if shutil.which("valgrind") is None:
        return "valgrind is not installed (apt-get install valgrind)"
    import torch

    if not torch._C._valgrind_supported_platform():
        return "this torch build has no Valgrind support"
    return None


def count(case: Case, iterations: int = 5) -> tuple[Optional[float], str]:
    """(instructions per iteration, "") or (None, why not)."""
    reason = unavailable(case)
    if reason:
        return None, reason
    import torch.utils.benchmark as tb

    setup = "\n".join([
        "import json, os, subprocess",
        "from bench.cases import Case",
        "from bench.prepare import Prepared",
        "from bench.zoo import load_plugins",
        "load_plugins()",
        f"prep = Prepared(Case.from_dict(json.loads({json.dumps(json.dumps(case.to_dict()))})))",
        "step = prep.step()",
        "step()",
        "if os.environ.get('CNNBENCH_INSTR_LATE'):  # under the valgrind below (torch also runs the setup here)",
        "    subprocess.run(['callgrind_control', '--instr=on', str(os.getpid())], stdout=subprocess.DEVNULL)",
    ])
    timer = tb.Timer(stmt="step()", setup=setup, num_threads=1)
    saved_path = os.environ.get("PATH", "")
    with tempfile.TemporaryDirectory(prefix="cnnbench-callgrind-") as wrapper:
        valgrind = Path(wrapper) / "valgrind"
        valgrind.write_text(_UNINSTRUMENTED_START.format(valgrind=shlex.quote(shutil.which("valgrind"))))
        valgrind.chmod(0o755)
        # collect_callgrind runs `python` from PATH and insists it is this interpreter: put ours first
        os.environ["PATH"] = os.pathsep.join([wrapper, os.path.dirname(sys.executable), saved_path])
        try:
            stats = timer.collect_callgrind(number=iterations, repeats=1, collect_baseline=False)
            stats = stats[0] if isinstance(stats, tuple) else stats
        except Exception as exc:  # valgrind failed to run the case: say so in the row, do not stop the suite
            text = str(exc).strip().splitlines()
            return None, f"callgrind failed: {text[-1] if text else type(exc).__name__}"
        finally:
            os.environ["PATH"] = saved_path
    total = stats.counts(denoise=True)
    if total <= 0:  # instrumentation never came on (callgrind_control exits 0 even when it reached no process)
        return None, "callgrind failed: it counted no instructions (callgrind_control --instr=on did not take)"
    return total / iterations, ""


# collect_callgrind passes --instr-atstart=yes; this valgrind passes everything else as it is
_UNINSTRUMENTED_START = """#!/bin/sh
for arg; do
    shift
    if [ "$arg" = --instr-atstart=yes ]; then arg=--instr-atstart=no; export CNNBENCH_INSTR_LATE=1; fi
    set -- "$@" "$arg"
done
exec {valgrind} "$@"
"""
