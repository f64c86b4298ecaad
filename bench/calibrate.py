"""The device's measured peak: a short matmul calibration per device, dtype and thread count.

Method: square matmuls of the device's ``calibration_n`` (2048 on the CPU, 8192 on CUDA), repeated for about
``seconds``; the peak is the *best* iteration's rate, 2*n^3 FLOPs over its time
(a peak is what the hardware can do, so the fastest repeat is the estimate).
Stored with the run, so achieved GFLOP/s can be read as a fraction of it.

It runs in a worker of its own (``python -m bench.calibrate``, ``bench.runner.
calibrate_isolated``) with the run's backend flags: under ``--tf32`` an fp32
case multiplies in TF32 and its peak must too (else its fraction of the peak
can pass 1), and the runner keeps no CUDA context or 8192-square buffers for
the rest of the run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .devices import device_of
from .precision import compute_dtype
from .prepare import dtype


def calibration_key(device: str, dtype: str, threads: int) -> str:
    return f"{device}/{dtype}/t{threads}"


def matmul_peak_gflop_s(device: str, dtype_: torch.dtype, threads: int, seconds: float = 0.5) -> float:
    where = device_of(device)
    n = where.calibration_n
    where.setup(threads)
    a = torch.randn(n, n, device=where.torch_device()).to(dtype_)
    b = torch.randn(n, n, device=where.torch_device()).to(dtype_)
    best = float("inf")
    deadline = time.perf_counter() + seconds
    repeats = 0
    while repeats < 3 or time.perf_counter() < deadline:
        where.synchronize()
        t0 = time.perf_counter()
        torch.mm(a, b)
        where.synchronize()
        best = min(best, time.perf_counter() - t0)
        repeats += 1
    return 2 * n**3 / best / 1e9


def calibrate(cases: list[Any], seconds: float = 0.5) -> dict[str, float]:
    """Peak GFLOP/s for every (device, compute dtype, threads) the cases use; devices absent are left out."""
    peaks: dict[str, float] = {}
    saved_threads = torch.get_num_threads()
    try:
        for case in cases:
            if device_of(case.device).unavailable():
                continue
            name = compute_dtype(case.precision)
            key = calibration_key(case.device, name, case.threads)
            if key not in peaks:
                try:
                    peaks[key] = round(matmul_peak_gflop_s(case.device, dtype(name), case.threads, seconds), 2)
                except RuntimeError:  # a dtype the device cannot multiply: no peak to compare with
                    continue
    finally:
        torch.set_num_threads(saved_threads)
    return peaks


def main(argv: list[str]) -> int:
    """``python -m bench.calibrate REQUEST.json RESULT.json``: ``calibrate`` in a worker, with the run's flags.

    The request is ``{"cases": [Case.to_dict()...], "seconds": S, **RunOptions.worker_flags()}``;
    the result ``{"peaks": {key: GFLOP/s}, "pid": the worker's}``.
    """
    from .cases import Case
    from .prepare import apply_flags

    request = json.loads(Path(argv[0]).read_text())
    apply_flags(request)
    peaks = calibrate([Case.from_dict(c) for c in request["cases"]], float(request.get("seconds", 0.5)))
    tmp = Path(argv[1] + ".tmp")
    tmp.write_text(json.dumps({"peaks": peaks, "pid": os.getpid()}))
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
