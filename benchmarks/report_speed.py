"""Report generation time for a quick-sized run (target: under 20 s).

    python benchmarks/report_speed.py [--repeats 3]

Imports the saved quick-suite fixture (tests/fixtures/quick_run.json, 49 cases
with raw samples) into a temporary store and times ``write_report`` end to end
(reading the store, six seaborn figures, rendering), reporting each repeat.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import runfile
from bench.report import write_report
from bench.store import Store

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "quick_run.json"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "s.db")
        run_id = runfile.import_into(store, runfile.read(FIXTURE))
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            path = write_report(store, [run_id], Path(tmp) / "r.html")
            times.append(time.perf_counter() - start)
        size = path.stat().st_size
    print(f"report for {run_id} ({size / 1e6:.2f} MB): " + ", ".join(f"{t:.2f} s" for t in times)
          + f"; median {statistics.median(times):.2f} s (target < 20 s)")
    return 0 if statistics.median(times) < 20 else 1


if __name__ == "__main__":
    sys.exit(main())
