"""What sharding costs and gains on one node, and what the store costs per case.

    python benchmarks/scale.py [--smoke] [--store-cases 200]

1. The same small suite (real models on the CPU, 1 thread a case) as 1 shard and as 2 shards, each through
   `cnnbench submit --wait` to the single-node Slurm of scripts/slurm.sh (submitit's local executor where Slurm
   cannot start, said so), into a PostgreSQL database of its own: the command's wall time (submission,
   scheduling, every task's start-up and calibration included), the run's own span in the store (first shard
   started to last shard finished), and the rows stored against the suite's cases (each case once: distinct
   keys and rows are counted by SQL).
2. The store's cost per committed case: ``Store.add_results`` of one realistic Result at a time (the rows the
   1-shard run stored, samples and pairings included, each copied under a new case key), as the runner commits
   them, timed ``--store-cases`` times into a fresh SQLite file and a fresh PostgreSQL database.

It starts its own PostgreSQL server and Slurm cluster (scripts/postgres.sh and scripts/slurm.sh, stopped at the
end) unless it runs under scripts/test.sh's. Run it alone: it measures wall time, and the 2-shard run's two
tasks share this node's cores by design. `--smoke` runs 2 cases and 10 store commits, to check that it works.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SUITE = ["--models", "lenet5,alexnet", "--batch-sizes", "1,2,4,8", "--precision", "fp32", "--memory-format",
         "contiguous", "--threads", "1", "--max-seconds", "1"]
SMOKE_SUITE = ["--models", "lenet5", "--batch-sizes", "1,2", "--precision", "fp32", "--memory-format", "contiguous",
               "--threads", "1", "--max-seconds", "0.2"]


def with_services(argv: list[str]) -> int:
    """This script again, under a PostgreSQL server and a Slurm cluster of its own, both stopped when it ends."""
    script = ('source scripts/setup.sh; source scripts/postgres.sh; source scripts/slurm.sh; trap "slurm_stop; postgres_stop" EXIT; '
              'postgres_start; slurm_start; CNNBENCH_SCALE_SERVICES=1 .venv/bin/python benchmarks/scale.py "$@"')
    return subprocess.run(["bash", "-c", script, "scale.py", *argv], cwd=ROOT).returncode


def database(admin_url: str, action: str, name: str) -> str:
    """Make or drop a database on the server of ``admin_url``; its URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' if action == "create" else f'DROP DATABASE "{name}" WITH (FORCE)')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def rows_of(url: str, run_id: str) -> tuple[int, int]:
    """(rows, distinct case keys) the store holds for ``run_id``, counted by SQL."""
    import sqlalchemy as sa

    from bench.store import Store

    with Store(url, create=False).engine.connect() as conn:
        return tuple(conn.execute(sa.text("select count(*), count(distinct case_key) from results where run_id = :r"),
                                  {"r": run_id}).one())


def expected_cases(suite: list[str]) -> int:
    done = subprocess.run([sys.executable, "-m", "bench", "run", *suite, "--dry-run"], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    return len(done.stdout.split())


def sharded(suite: list[str], shards: int, url: str, executor: str, logs: Path) -> dict:
    """One `cnnbench submit --wait` of ``suite`` as ``shards`` shards: its wall time and the run's figures."""
    from bench.store import Store

    run_id = f"scale-{shards}-{uuid.uuid4().hex[:6]}"
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench", "submit", "--shards", str(shards), *suite, "--store", url,
                           "--run-id", run_id, "--executor", executor, "--wait", "--log-dir", str(logs / run_id)],
                          capture_output=True, text=True, cwd=ROOT)
    wall_s = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"error: the {shards}-shard run failed (exit {done.returncode}):\n{done.stderr}")
    store = Store(url, create=False)
    parts = store.shards(run_id)
    span_s = max(p["finished_at"] for p in parts) - min(p["started_at"] for p in parts)
    rows, distinct = rows_of(url, run_id)
    return {"shards": shards, "wall_s": wall_s, "span_s": span_s, "rows": rows, "distinct": distinct,
            "run_id": run_id, "jobs": ",".join(str(p["job_id"]) for p in parts)}


def store_cost(url: str, templates: list, n: int) -> list[float]:
    """Seconds per ``Store.add_results`` of one case, ``n`` times, into a fresh store at ``url``."""
    from bench.store import Store

    store = Store(url)
    run_id = "store-cost"
    store.import_run({"id": run_id, "suite": "scale", "settings": {}, "started_at": time.time(), "cases_total": n}, [])
    results = [replace(templates[i % len(templates)],
                       case=replace(templates[i % len(templates)].case, batch_size=1000 + i)) for i in range(n)]
    times = []
    for result in results:
        t0 = time.perf_counter()
        store.add_results(run_id, [result])
        times.append(time.perf_counter() - t0)
    store.engine.dispose()
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2 cases and 10 store commits: does it work?")
    parser.add_argument("--store-cases", type=int, default=200, help="commits timed per store (default 200)")
    args = parser.parse_args(argv)
    if not os.environ.get("CNNBENCH_SCALE_SERVICES") and not os.environ.get("CNNBENCH_TEST_POSTGRES_URL"):
        return with_services(argv)
    admin = os.environ.get("CNNBENCH_TEST_POSTGRES_URL")
    if not admin:
        sys.exit(f"error: no PostgreSQL server: {os.environ.get('CNNBENCH_TEST_POSTGRES_SKIP', 'none started')}")
    executor = "slurm" if os.environ.get("CNNBENCH_TEST_SLURM") == "1" else "local"
    if executor == "local":
        print(f"note: no Slurm ({os.environ.get('CNNBENCH_TEST_SLURM_SKIP', 'not started')}); the shards run "
              "through submitit's local executor", file=sys.stderr)
    suite = SMOKE_SUITE if args.smoke else SUITE
    n_store = 10 if args.smoke else args.store_cases
    expected = expected_cases(suite)
    name = f"cnnbench_scale_{uuid.uuid4().hex[:8]}"
    url = database(admin, "create", name)
    try:
        with tempfile.TemporaryDirectory(prefix="cnnbench-scale-") as tmp:
            runs = [sharded(suite, shards, url, executor, Path(tmp)) for shards in (1, 2)]
            from bench.store import Store

            templates = Store(url, create=False).results(runs[0]["run_id"])
            costs = {"sqlite": store_cost(str(Path(tmp) / "cost.db"), templates, n_store)}
            cost_url = database(admin, "create", name + "_cost")
            try:
                costs["postgresql"] = store_cost(cost_url, templates, n_store)
            finally:
                database(admin, "drop", name + "_cost")
    finally:
        database(admin, "drop", name)

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"suite: {' '.join(suite)} ({expected} cases); executor: {executor}, one node of {cpus} CPUs")
    print(f"{'shards':>6}  {'wall (s)':>9}  {'run span (s)':>12}  {'rows':>5}  {'distinct':>8}  {'expected':>8}  jobs")
    for r in runs:
        print(f"{r['shards']:>6}  {r['wall_s']:>9.1f}  {r['span_s']:>12.1f}  {r['rows']:>5}  {r['distinct']:>8}  "
              f"{expected:>8}  {r['jobs']}")
    print(f"2 shards against 1: wall {runs[1]['wall_s'] / runs[0]['wall_s']:.2f}x, run span "
          f"{runs[1]['span_s'] / runs[0]['span_s']:.2f}x")
    print(f"\nstore cost per committed case (Store.add_results of one realistic Result, {n_store} commits; "
          f"{sum(len(t.samples_ns) for t in templates) // max(len(templates), 1)} samples a row on average)")
    print(f"{'store':<10}  {'mean (ms)':>9}  {'p50 (ms)':>8}  {'p95 (ms)':>8}")
    for backend, times in costs.items():
        ms = sorted(1000 * t for t in times)
        print(f"{backend:<10}  {statistics.fmean(ms):>9.2f}  {statistics.median(ms):>8.2f}  "
              f"{ms[min(len(ms) - 1, int(0.95 * len(ms)))]:>8.2f}")
    bad = [r for r in runs if not r["rows"] == r["distinct"] == expected]
    if bad:
        print(f"error: rows stored differ from the suite's {expected} cases: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
