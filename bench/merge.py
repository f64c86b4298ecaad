"""``cnnbench merge``: runs copied into one store from other stores and run files, for machines that could not
reach it (a node without the database, a CI job's artifact).

A source is a cnnbench store (an SQLite path or a URL, of any schema this cnnbench reads; opened read-only and
never upgraded) or a run file (``*.json``, ``bench.runfile``). Each run keeps its id, and goes in with its
results (samples and pairings) and its machine-speed track (a run file has none) in one transaction. Merging
is idempotent: a run that the target already holds with the same content is left as it is (track points it
lacks are added), so merging twice is merging once. A run id that the target, or another source, holds with
other content is refused with one line naming the run and what differs, before anything is written.
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


@dataclass(frozen=True)
class Incoming:
    """One run as a source holds it."""

    source: str
    run: dict
    results: tuple[Result, ...]
    track: tuple[tuple[float, float], ...] = ()

    @property
    def run_id(self) -> str:
        return str(self.run["id"])


def read_sources(sources: Iterable[str]) -> Iterator[Incoming]:
    for source in sources:
        if source.endswith(".json"):
            doc = runfile.read(source)
            yield Incoming(source, doc["run"], tuple(doc["results_parsed"]))
            continue
        store = open_store(source, create=False)
        for row in store.list_runs():
            run_id = row["run_id"]
            yield Incoming(source, store.run(run_id), tuple(store.results(run_id)), tuple(store.track(run_id)))
        store.engine.dispose()


def difference(held: Incoming, new: Incoming) -> Optional[str]:
    """What differs between two copies of one run, or None; a track point one of them lacks is no difference."""
    for key in RUN_KEYS:
        if held.run.get(key) != new.run.get(key):
            return f"its {key} differs"
    mine, theirs = ({r.case.key: r for r in side.results} for side in (held, new))
    if mine.keys() != theirs.keys():
        return f"its cases differ ({len(mine)} against {len(theirs)})"
    changed = sorted(key for key in mine if mine[key] != theirs[key])
    if changed:
        return f"{len(changed)} of its cases differ, e.g. {changed[0]!r}"
    points = dict(held.track)
    if any(at in points and points[at] != value for at, value in new.track):
        return "its machine-speed track differs"
    return None


def merge(sources: Sequence[str], into: Store) -> list[str]:
    """Copy every run of ``sources`` into ``into``; a line per run saying what was done. Every source is read
    and checked against the target before the first write."""
    plan: dict[str, Incoming] = {}  # runs to add
    held: dict[str, Incoming] = {}  # runs the target has already
    points: dict[str, list[tuple[float, float]]] = {}  # track points the target's runs lack
    for new in read_sources(sources):
        run_id = new.run_id
        if run_id not in plan and run_id not in held and into.has_run(run_id):
            held[run_id] = Incoming(into.label, into.run(run_id), tuple(into.results(run_id)), tuple(into.track(run_id)))
        earlier = plan.get(run_id) or held.get(run_id)
        if earlier is None:
            plan[run_id] = new
            continue
        why = difference(earlier, new)
        if why:
            raise StoreError(f"run {run_id!r} of {new.source!r} is also in {earlier.source!r} with other content "
                             f"({why}); nothing was merged")
        if run_id in held:
            have = {at for at, _ in held[run_id].track} | {at for at, _ in points.get(run_id, [])}
            points.setdefault(run_id, []).extend(point for point in new.track if point[0] not in have)
    for run_id, missing in points.items():
        if missing:
            into.add_track(run_id, missing)
    lines = [f"{run_id}: already in {into.label}" for run_id in held]
    for run_id, new in plan.items():
        into.import_run(new.run, new.results, track=new.track)
        lines.append(f"{run_id}: added from {new.source} ({len(new.results)} cases)")
    return lines
