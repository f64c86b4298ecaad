"""Instruction counts per iteration with Valgrind's callgrind: a metric that machine load does not move.

Method: ``torch.utils.benchmark.Timer.collect_callgrind`` (as PyTorch's own
instruction-count benchmarks do) runs a fresh Python under
``valgrind --tool=callgrind`` with collection off, builds the case exactly as the
worker does (``bench.prepare.Prepared``: same seed, weights, input, precision,
format, mode), runs one step untimed, then switches collection on for
``iterations`` steps. The count is the denoised total (CPython's dictionary and
allocator noise removed) divided by ``iterations``. Single-threaded, CPU only.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
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
        "import json",
        "from bench.cases import Case",
        "from bench.prepare import Prepared",
        "from bench.zoo import load_plugins",
        "load_plugins()",
        f"prep = Prepared(Case.from_dict(json.loads({json.dumps(json.dumps(case.to_dict()))})))",
        "step = prep.step()",
        "step()",
    ])
    timer = tb.Timer(stmt="step()", setup=setup, num_threads=1)
    # collect_callgrind runs `python` from PATH and insists it is this interpreter: put ours first
    saved_path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), saved_path])
    try:
        stats = timer.collect_callgrind(number=iterations, repeats=1, collect_baseline=False)
        stats = stats[0] if isinstance(stats, tuple) else stats
    except Exception as exc:  # valgrind failed to run the case: say so in the row, do not stop the suite
        text = str(exc).strip().splitlines()
        return None, f"callgrind failed: {text[-1] if text else type(exc).__name__}"
    finally:
        os.environ["PATH"] = saved_path
    return stats.counts(denoise=True) / iterations, ""
