"""``cnnbench merge``: runs copied into one store from other stores and run files, for machines that could not
reach it (a node without the database, a CI job's artifact).

A source is a cnnbench store (an SQLite path or a URL, of any schema this cnnbench reads; opened read-only and
never upgraded) or a run file (``*.json``, ``bench.runfile``). Each run keeps its id, and goes in with its
results (samples and pairings), its machine-speed track (a run file has none) and its shards' rows in one
transaction. Merging is idempotent: a run that the target already holds with the same content is left as it is
(track points it lacks are added), so merging twice is merging once. A run id that the target, or another
source, holds with other content is refused with one line naming the run and what differs, before anything is
written. The shards of one sharded run (``bench.shards``), measured into separate files, are one run: planned
alike, their cases and shard rows are joined (a case both hold must be the same), and the run is finished once
every case is in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence

from . import runfile
from .errors import StoreError
from .record import Result
from .store import Store, open_store

RUN_KEYS = ("suite", "suite_definition", "environment", "calibration", "settings", "started_at", "finished_at",
            "cases_total", "machine")
SHARED_KEYS = ("suite", "suite_definition", "settings", "cases_total")  # what every part of a sharded run holds alike


Point = tuple[float, float, Optional[str]]  # a track point: unix time, GFLOP/s, the machine probed


@dataclass(frozen=True)
class Incoming:
    """One run as a source holds it."""

    source: str
    run: dict
    results: tuple[Result, ...]
    track: tuple[Point, ...] = ()
    shards: tuple[dict, ...] = ()  # Store.shards' rows, without cases_done

    @property
    def run_id(self) -> str:
        return str(self.run["id"])

    @property
    def sharded(self) -> bool:
        return "shards" in (self.run.get("settings") or {})


def held_in(store: Store, run_id: str, source: str) -> Incoming:
    track = tuple(sorted((at, value, machine) for machine, points in store.tracks(run_id).items()
                         for at, value in points))
    shards = tuple({k: v for k, v in row.items() if k != "cases_done"} for row in store.shards(run_id))
    return Incoming(source, store.run(run_id), tuple(store.results(run_id)), track, shards)


def read_sources(sources: Iterable[str]) -> Iterator[Incoming]:
    for source in sources:
        if source.endswith(".json"):
            doc = runfile.read(source)
            yield Incoming(source, doc["run"], tuple(doc["results_parsed"]))
            continue
        store = open_store(source, create=False)
        for row in store.list_runs():
            yield held_in(store, row["run_id"], source)
        store.engine.dispose()


def difference(held: Incoming, new: Incoming) -> Optional[str]:
    """What differs between two copies of one run, or None; a track point one of them lacks is no difference,
    nor, between two parts of a sharded run, a case, a shard or a shard's environment that one of them lacks."""
    joined = held.sharded and new.sharded
    for key in SHARED_KEYS if joined else RUN_KEYS:
        if held.run.get(key) != new.run.get(key):
            return f"its {key} differs"
    mine, theirs = ({r.case.key: r for r in side.results} for side in (held, new))
    if mine.keys() != theirs.keys() and not joined:
        return f"its cases differ ({len(mine)} against {len(theirs)})"
    changed = sorted(key for key in mine.keys() & theirs.keys() if mine[key] != theirs[key])
    if changed:
        return f"{len(changed)} of its cases differ, e.g. {changed[0]!r}"
    points = {at: (value, machine) for at, value, machine in held.track}
    if any(at in points and points[at] != (value, machine) for at, value, machine in new.track):
        return "its machine-speed track differs"
    return None


def joined(held: Incoming, new: Incoming) -> Incoming:
    """``new``'s cases, track points and shards that ``held`` lacks, added to it (a sharded run's parts)."""
    keys = {r.case.key for r in held.results}
    points = {at for at, _, _ in held.track}
    shards = {row["shard"] for row in held.shards}
    return Incoming(held.source, held.run, held.results + tuple(r for r in new.results if r.case.key not in keys),
                    tuple(sorted(held.track + tuple(p for p in new.track if p[0] not in points))),
                    held.shards + tuple(row for row in new.shards if row["shard"] not in shards))


def merge(sources: Sequence[str], into: Store) -> list[str]:
    """Copy every run of ``sources`` into ``into``; a line per run saying what was done. Every source is read
    and checked against the target before the first write."""
    plan: dict[str, Incoming] = {}  # runs to add (a sharded run's parts joined)
    held: dict[str, Incoming] = {}  # runs the target has already, as it has them
    grown: dict[str, Incoming] = {}  # those, with what the sources add
    for new in read_sources(sources):
        run_id = new.run_id
        if run_id not in plan and run_id not in held and into.has_run(run_id):
            held[run_id] = grown[run_id] = held_in(into, run_id, into.label)
        earlier = plan.get(run_id) or grown.get(run_id)
        if earlier is None:
            plan[run_id] = new
            continue
        why = difference(earlier, new)
        if why:
            raise StoreError(f"run {run_id!r} of {new.source!r} is also in {earlier.source!r} with other content "
                             f"({why}); nothing was merged")
        (plan if run_id in plan else grown)[run_id] = joined(earlier, new)
    lines = []
    for run_id, run in grown.items():
        before = held[run_id]
        cases = run.results[len(before.results):]
        into.add_results(run_id, cases)
        added = [p for p in run.track if p not in set(before.track)]
        for machine in sorted({p[2] for p in added}, key=str):
            into.add_track(run_id, [(at, value) for at, value, m in added if m == machine], machine)
        for row in run.shards[len(before.shards):]:
            into.start_shard(run_id, row)
        _finish_if_whole(into, run)
        lines.append(f"{run_id}: already in {into.label}" + (f"; {len(cases)} cases added" if cases else ""))
    for run_id, new in plan.items():
        into.import_run(new.run if not new.sharded else {**new.run, "finished_at": None}, new.results,
                        track=new.track, shards=new.shards)
        if new.sharded:
            _finish_if_whole(into, new)
        lines.append(f"{run_id}: added from {new.source} ({len(new.results)} cases)")
    return lines


def _finish_if_whole(into: Store, run: Incoming) -> None:
    """A sharded run whose every case is now in the target is finished (at its last part's finish)."""
    if not run.sharded or into.run(run.run_id)["finished_at"] is not None:
        return
    if len({r.case.key for r in run.results}) >= run.run.get("cases_total", 0):
        into.finish_run(run.run_id, max([row["finished_at"] or 0 for row in run.shards] or [0]) or None)
