"""The results store: runs, one row per finished case, and the raw samples, through SQLAlchemy Core.

Default: an SQLite file under ``results/`` (WAL journal, so a reader never blocks
the runner and two runners can write at once: each waits for the other's short
transaction). A SQLAlchemy URL works through the same code; ``postgresql://`` (or
``postgres://``) means PostgreSQL through psycopg 3, the extra ``cnnbench[postgres]``.

A store is opened read-only (SQLite's ``query_only``, PostgreSQL's read-only
session) until its schema says it is a cnnbench store: a database that is not one
is left exactly as it was, byte for byte. A PostgreSQL server that cannot be
reached is ``StoreUnavailable`` (exit 3), a refused login or a missing database a
``StoreError`` (exit 2), each one line, before anything is written; a server lost
mid-run ends the run the same way, with every committed case kept. A pooled
connection is pinged before each use, so a server restarted between two writes
costs nothing; one lost inside a transaction fails that transaction only.

A new SQLite store is built whole in a temporary file beside its place and linked
in (``_create_sqlite``), so a runner killed, or a disk that fills, while making it
leaves no store, not a half one; two runners making it at once end with one.

A case is stored once per run: a runner that finds its case stored already (a
shard submitted twice) leaves its own measurement out and is told so, and the
first stays.

Every finished case is committed in its own transaction before the next starts,
so killing the runner loses only the case in flight; ``--resume`` measures what
is missing. A store that is corrupt, written by a newer schema, or unwritable is
refused with one line, before anything is written.

    runs     (id, suite, suite_json, environment_json, calibration_json, settings_json,
              started_at, finished_at, cases_total, machine)
    results  (id, run_id, case_key, the case's axes, status, reason, the figures of
              bench.record.Result)                                unique (run_id, case_key)
    samples  (result_id, kind, values_ns)    kind: "timed" (the case's timer), "host", or "round" (the
              median of each block of sampling: an interleaved round of a comparison group, or a
              50 ms block of a case measured alone)
    pairings (result_id, group_label, reference, members, rounds, ratio, ratio_ci_low, ratio_ci_high, p_value)
              a grouped case against its group's reference (bench.record.Pairing)
    track    (run_id, at, gflop_s, machine)   the machine-speed probe (bench.probe), measured between groups
    gpu_states (result_id, at, the fields of bench.record.GpuState)   at: "start" or "end" of sampling;
              a GPU case's telemetry (bench.telemetry)
    compile_counts (result_id, graphs, graph_breaks, recompiles)   a compiled case's Dynamo counters
    shards   (run_id, shard, shards, machine, environment_json, calibration_json, job_id, cases_total,
              started_at, finished_at)   one row per shard of a run split over runners (bench.shards)
    cnnbench_meta (key, value)   schema_version: 2, the level a cnnbench before Alembic checks
    alembic_version (version_num)  the revision of bench/migrations/versions/ the store is at

The schema evolves by migrations (``bench.migrate``): a store written by an older cnnbench is
upgraded in place when this one opens it to write (an SQLite store is first copied beside itself),
and read as it is otherwise: a column or table it lacks reads as empty. A store whose revision this
cnnbench does not know, or whose schema_version is higher, is a newer cnnbench's and is refused.
SCHEMA_VERSION is raised only by a change that a cnnbench before it could not read.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import glob
import json
import os
import time
import uuid
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError

from . import migrate
from .allocator import stored_options
from .cases import Case
from .errors import BadValue, StoreError, StoreUnavailable, Unavailable, cannot, first_line
from .record import ATTACHED, CompileCounts, GpuState, Pairing, Result
from .shards import Shard, shard_keys

SCHEMA_VERSION = 2
T = TypeVar("T")
DEFAULT_STORE = Path("results") / "cnnbench.db"


_meta = sa.MetaData()
meta_table = sa.Table("cnnbench_meta", _meta, sa.Column("key", sa.String(64), primary_key=True),
                      sa.Column("value", sa.Text, nullable=False))
runs = sa.Table(
    "runs", _meta,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("suite", sa.Text, nullable=False),
    sa.Column("suite_json", sa.Text, nullable=False),
    sa.Column("environment_json", sa.Text, nullable=False),
    sa.Column("calibration_json", sa.Text, nullable=False),
    sa.Column("settings_json", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("cases_total", sa.Integer, nullable=False),
    sa.Column("machine", sa.Text),  # the run's machine label (None: a run from before labels; its hostname)
)
_CASE_COLUMNS = [sa.Column(f.name, sa.Integer if f.type in ("int", int) else sa.Text, nullable=False)
                 for f in fields(Case)]
_TYPES = {"int": sa.BigInteger, "Optional[int]": sa.BigInteger, "float": sa.Float, "Optional[float]": sa.Float,
          "Optional[bool]": sa.Boolean, "str": sa.Text, "Optional[str]": sa.Text}
_RESULT_FIELDS = [f for f in fields(Result)
                  if f.name not in ("case", "samples_ns", "host_samples_ns", "round_medians_ns", "pairing", *ATTACHED)]
results = sa.Table(
    "results", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("case_key", sa.Text, nullable=False),
    *_CASE_COLUMNS,
    *[sa.Column(f.name, _TYPES[str(f.type)]) for f in _RESULT_FIELDS],
    sa.UniqueConstraint("run_id", "case_key"),
)
samples = sa.Table(
    "samples", _meta,
    sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id"), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("values_ns", sa.Text, nullable=False),
)
pairings = sa.Table(
    "pairings", _meta,
    sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id"), primary_key=True),
    sa.Column("group_label", sa.Text, nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("members", sa.Integer, nullable=False),
    sa.Column("rounds", sa.Integer, nullable=False),
    sa.Column("ratio", sa.Float),
    sa.Column("ratio_ci_low", sa.Float),
    sa.Column("ratio_ci_high", sa.Float),
    sa.Column("p_value", sa.Float),
)
track_table = sa.Table(
    "track", _meta,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("at", sa.Float, primary_key=True),  # unix time
    sa.Column("gflop_s", sa.Float, nullable=False),
    sa.Column("machine", sa.Text),  # the label of the machine probed (empty before revision 0006)
)
gpu_states = sa.Table(
    "gpu_states", _meta,
    sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id"), primary_key=True),
    sa.Column("at", sa.String(8), primary_key=True),  # "start" or "end" of sampling
    *[sa.Column(f.name, _TYPES[str(f.type)], nullable=False) for f in fields(GpuState)],
)
compile_counts = sa.Table(
    "compile_counts", _meta,
    sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id"), primary_key=True),
    *[sa.Column(f.name, _TYPES[str(f.type)], nullable=False) for f in fields(CompileCounts)],
)
shards_table = sa.Table(
    "shards", _meta,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("shard", sa.Integer, primary_key=True),  # K of K/N, 1-based
    sa.Column("shards", sa.Integer, nullable=False),  # N
    sa.Column("machine", sa.Text, nullable=False),
    sa.Column("environment_json", sa.Text, nullable=False),
    sa.Column("calibration_json", sa.Text, nullable=False),
    sa.Column("job_id", sa.Text),
    sa.Column("cases_total", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
)
_GPU_AT = {"start": "gpu_start", "end": "gpu_end"}
_KINDS = {"timed": "samples_ns", "host": "host_samples_ns", "round": "round_medians_ns"}


def _sqlite_path(url: str) -> Optional[Path]:
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def _url(location: "str | os.PathLike[str]") -> str:
    text = str(location)
    return text if "://" in text else f"sqlite:///{text}"


def _plan(settings: dict[str, Any]) -> dict[str, Any]:
    """A run's planned settings as JSON gives them back, its options completed with what a run stored before a
    setting existed was measured with (``bench.allocator.stored_options``)."""
    plan = json.loads(json.dumps(settings))
    if isinstance(plan, dict) and isinstance(plan.get("options"), dict):
        plan["options"] = stored_options(plan["options"])
    return plan

class Store:
    """An open results store. ``create=False`` refuses to make a new one (for read-only commands).
    ``upgrade`` (default: ``create``): a store from an older cnnbench is upgraded to this one's schema
    (``bench.migrate``); without it, the store is read as it is."""

    def __init__(self, location: "str | os.PathLike[str]" = DEFAULT_STORE, *, create: bool = True,
                 upgrade: Optional[bool] = None) -> None:
        self.url = _url(location)
        self.label = _label(location)
        self.tables: set[str] = set()
        self.columns: dict[str, set[str]] = {}
        self.upgraded_from: Optional[str] = None  # the revision an older store was upgraded from, and its copy
        self.backup: Optional[Path] = None
        self._ours = False  # connections are read-only until the schema says this is a cnnbench store
        path = _sqlite_path(self.url)
        if path is not None:
            self._check_file(path, create)
            if not path.exists():
                _create_sqlite(path, self.label)
        self.engine = _engine(self.url, self.label, sqlite=path is not None)
        sa.event.listen(self.engine, "connect", self._on_connect)
        sa.event.listen(self.engine, "handle_error",
                        functools.partial(_server_error if path is None else _file_error, self.label))
        try:
            self._check_schema(create, create if upgrade is None else upgrade)
        except (DatabaseError, OperationalError) as exc:
            raise StoreError(f"results store {self.label!r} cannot be read: {_reason(exc)}") from None

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if self.engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA busy_timeout = 60000")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute(f"PRAGMA query_only = {0 if self._ours else 1}")
            if self._ours:
                cursor.execute("PRAGMA journal_mode = WAL")
        elif self.engine.dialect.name == "postgresql" and not self._ours:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            dbapi_connection.commit()  # a SET inside a transaction that is rolled back would be undone
        cursor.close()

    def _writable(self) -> None:
        """The schema is ours: connections from now on may write (the read-only ones are closed)."""
        self._ours = True
        self.engine.dispose()

    def _check_file(self, path: Path, create: bool) -> None:
        if path.exists():
            if not os.access(path, os.R_OK):
                raise Unavailable(f"results store {self.label!r} is not readable by this user")
            with open(path, "rb") as fh:
                head = fh.read(16)
            if head and head != b"SQLite format 3\x00":
                raise StoreError(f"results store {self.label!r} is not an SQLite database (corrupt?); "
                                 "move it aside or pass --store")
            if create and not os.access(path, os.W_OK):
                raise Unavailable(f"results store {self.label!r} is not writable by this user")
        elif not create:
            raise StoreError(f"no results store at {self.label!r} (run 'cnnbench run' first, or pass --store)")
        else:
            parent = path.parent if str(path.parent) else Path(".")
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except FileExistsError:  # a file stands where a folder of the path should be
                raise BadValue(f"cannot create results store {self.label!r}: "
                               f"a file stands where its folder {str(parent)!r} should be") from None
            except OSError as exc:
                raise cannot(f"create results store {self.label!r}", exc) from None
            if not os.access(parent, os.W_OK):
                raise Unavailable(f"cannot create results store {self.label!r}: "
                                  "its folder is not writable by this user")

    def _check_schema(self, create: bool, upgrade: bool) -> None:
        inspector = sa.inspect(self.engine)
        tables = set(inspector.get_table_names())
        if "cnnbench_meta" in tables:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).first()
                try:
                    version = int(row[0]) if row else 0
                except (TypeError, ValueError):
                    raise StoreError(f"results store {self.label!r} has a schema_version that is not a number "
                                     f"({row[0]!r:.40}): it is damaged or not a cnnbench store") from None
                revision = migrate.revision_of(conn, tables) if version == SCHEMA_VERSION else ""
            if version > SCHEMA_VERSION or (version == SCHEMA_VERSION and revision not in migrate.REVISIONS):
                newer = f"schema {version}" + (f" revision {revision!r}" if version == SCHEMA_VERSION else "")
                raise StoreError(f"results store {self.label!r} has {newer}, newer than this cnnbench reads "
                                 f"(schema {SCHEMA_VERSION} revision {migrate.HEAD!r}); upgrade cnnbench")
            if version < SCHEMA_VERSION:
                raise StoreError(f"results store {self.label!r} has schema {version}, older than {SCHEMA_VERSION}; "
                                 "export its runs with the cnnbench that wrote it")
            self._writable()
            if upgrade and revision != migrate.HEAD:
                self.upgraded_from, self.backup = migrate.upgrade(self.engine, self.label, _sqlite_path(self.url))
                inspector = sa.inspect(self.engine)
                tables = set(inspector.get_table_names())
            self.tables = tables
            self.columns = {name: {c["name"] for c in inspector.get_columns(name)} for name in _meta.tables
                            if name in tables}
            return
        if tables:
            raise StoreError(f"{self.label!r} is a database but not a cnnbench results store "
                             f"(tables: {', '.join(sorted(tables))})")
        if not create:
            raise StoreError(f"results store {self.label!r} is empty")
        # a server's database (its DDL is transactional: made whole or not at all), or an empty SQLite file that
        # was there already (a new one is made whole by _create_sqlite)
        self._writable()
        if self.engine.dialect.name == "sqlite":  # kept in the file: every later connection is WAL too
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode = WAL")
        with self.engine.begin() as conn:
            if migrate.lock(conn) and sa.inspect(conn).get_table_names():
                made_meanwhile = True  # another writer made the store while this one waited for the lock
            else:
                made_meanwhile = False
                _meta.create_all(conn)
                conn.execute(sa.insert(meta_table).values(key="schema_version", value=str(SCHEMA_VERSION)))
                migrate.stamp_head(conn)
        if made_meanwhile:
            return self._check_schema(create, upgrade)
        self.tables = set(_meta.tables) | {"alembic_version"}
        self.columns = {table.name: {c.name for c in table.c} for table in _meta.tables.values()}

    # -- runs ---------------------------------------------------------------------------------
    def new_run(self, *, suite: str, suite_json: dict[str, Any], environment: dict[str, Any],
                calibration: dict[str, Any], settings: dict[str, Any], cases_total: int,
                machine: Optional[str] = None) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        with self.engine.begin() as conn:
            conn.execute(sa.insert(runs).values(
                id=run_id, suite=suite, suite_json=json.dumps(suite_json), environment_json=json.dumps(environment),
                calibration_json=json.dumps(calibration), settings_json=json.dumps(settings),
                started_at=time.time(), finished_at=None, cases_total=cases_total,
                machine=machine or environment.get("hostname")))
        return run_id

    def import_run(self, run: dict[str, Any], results_: "Iterable[Result]",
                   track: "Iterable[tuple[float, float, Optional[str]]]" = (),
                   shards: "Iterable[dict[str, Any]]" = ()) -> str:
        """Insert a run read from elsewhere (a run file, another store) with its results, track (unix time,
        GFLOP/s, machine) and shard rows, in one transaction."""
        with self.engine.begin() as conn:
            if conn.execute(sa.select(runs.c.id).where(runs.c.id == run["id"])).first() is not None:
                raise StoreError(f"run {run['id']!r} is already in {self.label!r}")
            self._insert_run(conn, run)
            for result in results_:
                self._insert_result(conn, run["id"], result)
            for at, gflop_s, machine in track:
                conn.execute(sa.insert(track_table).values(run_id=run["id"], at=at, gflop_s=gflop_s, machine=machine))
            for shard in shards:
                self._put_shard(conn, run["id"], shard)
        return run["id"]

    @staticmethod
    def _insert_run(conn: sa.Connection, run: dict[str, Any]) -> None:
        conn.execute(sa.insert(runs).values(
            id=run["id"], suite=run["suite"], suite_json=json.dumps(run.get("suite_definition", {})),
            environment_json=json.dumps(run.get("environment", {})),
            calibration_json=json.dumps(run.get("calibration", {})),
            settings_json=json.dumps(run.get("settings", {})), started_at=run.get("started_at", 0.0),
            finished_at=run.get("finished_at"), cases_total=run.get("cases_total", 0),
            machine=run.get("machine")))

    def store_planned(self, run: dict[str, Any], results_: "Iterable[Result]",
                      shard: Optional[dict[str, Any]] = None) -> list[Result]:
        """A run planned by ``bench.runner.start_run`` stored with its first results, in one transaction. With
        ``shard`` (a row of ``shards``: shard, shards, machine, environment, calibration, job_id, cases_total,
        started_at), the shard joins the run when another shard stored it already (planned alike: the same
        settings, else one StoreError line) and its row is added (or renewed, for a shard started again).
        Results whose case is stored already (another runner of the same shard) are left out and returned."""
        results_ = list(results_)

        def write(conn: sa.Connection) -> list[Result]:
            row = conn.execute(sa.select(runs.c.settings_json).where(runs.c.id == run["id"])).first()
            if row is None:
                self._insert_run(conn, run)
            elif shard is None:
                raise StoreError(f"run {run['id']!r} is already in {self.label!r}")
            else:
                self._check_plan(json.loads(row[0]), run["id"], run["settings"], f"shard {shard['shard']}/{shard['shards']}")
            if shard is not None:
                self._put_shard(conn, run["id"], shard)
            return self._insert_new(conn, run["id"], results_)
        return self._write(write)

    def check_plan(self, run_id: str, settings: dict[str, Any], what: str) -> None:
        """Refuse, with one StoreError line, ``what`` (a shard) whose planned ``settings`` (cases, measure, options,
        shards) differ from those of the stored run ``run_id``."""
        self._check_plan(self.run(run_id)["settings"], run_id, settings, what)

    def _check_plan(self, stored: dict[str, Any], run_id: str, settings: dict[str, Any], what: str) -> None:
        stored, planned = _plan(stored), _plan(settings)
        if stored != planned:
            old, new = (plan.get("options") if isinstance(plan.get("options"), dict) else {} for plan in (stored, planned))
            options = [f"{key} {old.get(key)!r} -> {new.get(key)!r}" for key in sorted(old.keys() | new.keys())
                       if old.get(key) != new.get(key)]
            raise StoreError(f"{what} of run {run_id!r} was planned with other cases or flags than the run in "
                             f"{self.label!r}{' (' + ', '.join(options) + ')' if options else ''}: start every "
                             "shard with the same suite and flags (or choose another --run-id)")

    def start_shard(self, run_id: str, shard: dict[str, Any]) -> None:
        """A shard of a stored run starts again (``--resume ID --shard K/N``): its row renewed, or added (as
        ``merge`` adds one, finished where ``shard`` says so)."""
        self._write(lambda conn: self._put_shard(conn, run_id, shard))

    @staticmethod
    def _put_shard(conn: sa.Connection, run_id: str, shard: dict[str, Any]) -> None:
        values = {"shards": shard["shards"], "machine": shard["machine"], "job_id": shard.get("job_id"),
                  "cases_total": shard["cases_total"], "finished_at": shard.get("finished_at")}
        planned = {f"{key}_json": json.dumps(shard[key]) for key in ("environment", "calibration") if key in shard}
        where = (shards_table.c.run_id == run_id) & (shards_table.c.shard == shard["shard"])
        if conn.execute(sa.select(shards_table.c.shard).where(where)).first() is None:
            conn.execute(sa.insert(shards_table).values(
                run_id=run_id, shard=shard["shard"], started_at=shard["started_at"],
                **{"environment_json": "{}", "calibration_json": "{}", **planned}, **values))
        else:  # started again: the runner and job now; the first start's time, environment and calibration stay
            conn.execute(sa.update(shards_table).where(where).values(**values, **planned))

    def finish_shard(self, run_id: str, shard: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(shards_table).where((shards_table.c.run_id == run_id)
                                                       & (shards_table.c.shard == shard)).values(finished_at=time.time()))

    def shards(self, run_id: str) -> list[dict[str, Any]]:
        """The run's shard rows in shard order (empty for a run that was not sharded, or a store from before
        shards): shard, shards, machine, job_id, started_at, finished_at, cases_total, cases_done, environment,
        calibration."""
        if "shards" not in self.tables:
            return []
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(sa.select(shards_table).where(shards_table.c.run_id == run_id)
                                                  .order_by(shards_table.c.shard)).mappings()]
        if not rows:
            return []
        settings, done = self.run(run_id)["settings"], self.done_keys(run_id)
        out = []
        for row in rows:
            row["environment"] = json.loads(row.pop("environment_json"))
            row["calibration"] = json.loads(row.pop("calibration_json"))
            row["cases_done"] = len(done & shard_keys(settings, Shard(row["shard"], row["shards"])))
            row.pop("run_id")
            out.append(row)
        return out

    def _write(self, write: Callable[[sa.Connection], T]) -> T:
        """``write`` in one transaction that holds the store's write lock from its start (SQLite: a first write
        takes it, so that what the transaction reads stays true until it commits); on PostgreSQL, where two
        writers may read alike and then collide on a unique key, the loser is run again, once the winner has
        committed, and then sees its rows."""
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    if self.engine.dialect.name == "sqlite":
                        conn.execute(sa.update(meta_table).where(meta_table.c.key == "schema_version")
                                     .values(value=meta_table.c.value))
                    return write(conn)
            except sa.exc.IntegrityError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def has_run(self, run_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is not None

    def finish_run(self, run_id: str, at: Optional[float] = None) -> None:
        """The run is finished, now or ``at`` (unix time)."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(runs).where(runs.c.id == run_id).values(finished_at=at or time.time()))

    def _present(self, table: sa.Table) -> list[sa.Column]:
        """The table's columns that this store has (an older store, read as it is, may lack the newest)."""
        have = self.columns.get(table.name)
        return [column for column in table.c if have is None or column.name in have]

    def run(self, run_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*self._present(runs)).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                known = [r[0] for r in conn.execute(sa.select(runs.c.id).order_by(runs.c.started_at.desc()).limit(5))]
                hint = f"; latest: {', '.join(known)}" if known else "; the store has no runs"
                raise StoreError(f"no run {run_id!r} in {self.label!r}{hint}")
        data = {"machine": None, **row}
        for column, key in (("suite_json", "suite_definition"), ("environment_json", "environment"),
                            ("calibration_json", "calibration"), ("settings_json", "settings")):
            data[key] = json.loads(data.pop(column))
        return data

    def earlier_run_ids(self, before: Optional[float], machine: Optional[str], limit: int = 5) -> list[str]:
        """Up to ``limit`` runs labelled ``machine`` started before the unix time ``before``, the latest first."""
        with self.engine.connect() as conn:
            query = (sa.select(runs.c.id).where(runs.c.started_at < (before or 0.0), runs.c.machine == machine)
                     .order_by(runs.c.started_at.desc(), runs.c.id.desc()))
            return [row[0] for row in conn.execute(query.limit(limit))]

    def latest_run_id(self) -> str:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs.c.id).order_by(runs.c.started_at.desc()).limit(1)).first()
        if row is None:
            raise StoreError(f"results store {self.label!r} has no runs")
        return row[0]

    def list_runs(self) -> list[dict[str, Any]]:
        counts = (sa.select(results.c.run_id, results.c.status, sa.func.count().label("n"))
                  .group_by(results.c.run_id, results.c.status))
        with self.engine.connect() as conn:
            query = sa.select(*self._present(runs)).order_by(runs.c.started_at)
            rows = [dict(r) for r in conn.execute(query).mappings()]
            tally: dict[str, dict[str, int]] = {}
            for run_id, status, n in conn.execute(counts):
                tally.setdefault(run_id, {})[status] = n
            sharded: dict[str, tuple[int, int]] = {}  # run: (shards, shards finished)
            if "shards" in self.tables:
                st = shards_table.c
                query = sa.select(st.run_id, sa.func.max(st.shards), sa.func.count(st.finished_at)).group_by(st.run_id)
                sharded = {run_id: (int(n), int(finished)) for run_id, n, finished in conn.execute(query)}
        out = []
        for row in rows:
            env = json.loads(row["environment_json"])
            by_status = tally.get(row["id"], {})
            out.append({
                "run_id": row["id"], "suite": row["suite"], "started_at": row["started_at"],
                "finished_at": row["finished_at"], "cases_total": row["cases_total"],
                "cases_done": sum(by_status.values()), "statuses": by_status,
                "machine": row.get("machine") or env.get("hostname"), "hostname": env.get("hostname"),
                "torch": env.get("torch"), "git_commit": env.get("git_commit"),
                "shards": sharded.get(row["id"], (0, 0))[0], "shards_done": sharded.get(row["id"], (0, 0))[1],
            })
        return out

    def add_probe(self, run_id: str, at: float, gflop_s: float, machine: Optional[str] = None) -> None:
        """One point of the run's machine-speed track (``bench.probe``) on ``machine`` (a label)."""
        self.add_track(run_id, [(at, gflop_s)], machine)

    def add_track(self, run_id: str, points: "Iterable[tuple[float, float]]", machine: Optional[str] = None) -> None:
        """Points (unix time, GFLOP/s) of a run's machine-speed track on ``machine``, in one transaction."""
        labelled = {"machine": machine} if "machine" in self.columns.get("track", {"machine"}) else {}
        with self.engine.begin() as conn:
            for at, gflop_s in points:
                conn.execute(sa.insert(track_table).values(run_id=run_id, at=at, gflop_s=gflop_s, **labelled))

    def track(self, run_id: str) -> list[tuple[float, float]]:
        """The run's machine-speed track, (unix time, GFLOP/s) in time order, all its machines together; empty
        for runs without one."""
        return sorted(point for points in self.tracks(run_id).values() for point in points)

    def tracks(self, run_id: str) -> dict[Optional[str], list[tuple[float, float]]]:
        """The run's machine-speed track by machine label (None: points from before labels), each in time order."""
        if "track" not in self.tables:
            return {}
        tt = track_table.c
        labelled = "machine" in self.columns.get("track", set())
        by: dict[Optional[str], list[tuple[float, float]]] = {}
        with self.engine.connect() as conn:
            query = sa.select(tt.at, tt.gflop_s, tt.machine if labelled else sa.null()).where(tt.run_id == run_id)
            for at, value, machine in conn.execute(query.order_by(tt.at)):
                by.setdefault(machine, []).append((float(at), float(value)))
        return by

    # -- results ------------------------------------------------------------------------------
    def done_keys(self, run_id: str) -> set[str]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(results.c.case_key).where(results.c.run_id == run_id))}

    def add_result(self, run_id: str, result: Result) -> None:
        """Commit one case with its samples, in one transaction; one StoreError line if the run has that case."""
        if self.add_results(run_id, [result]):
            raise StoreError(f"run {run_id!r} in {self.label!r} has case {result.case.key!r} already")

    def add_results(self, run_id: str, results_: "Iterable[Result]") -> list[Result]:
        """Commit several cases (a comparison group) in one transaction: all of them or none. A case stored
        already (by another runner of the same run or shard) is left out, and returned: the first stored stays."""
        results_ = list(results_)
        return self._write(lambda conn: self._insert_new(conn, run_id, results_))

    def _insert_new(self, conn: sa.Connection, run_id: str, results_: list[Result]) -> list[Result]:
        keys = [result.case.key for result in results_]
        stored = {row[0] for row in conn.execute(sa.select(results.c.case_key).where(
            (results.c.run_id == run_id) & results.c.case_key.in_(keys)))} if keys else set()
        for result in results_:
            if result.case.key not in stored:
                self._insert_result(conn, run_id, result)
        return [result for result in results_ if result.case.key in stored]

    @staticmethod
    def _insert_result(conn: sa.Connection, run_id: str, result: Result) -> None:
        row = {"run_id": run_id, "case_key": result.case.key, **result.case.to_dict()}
        row["input_shape"] = "x".join(map(str, result.case.input_shape))
        row.update({f.name: getattr(result, f.name) for f in _RESULT_FIELDS})
        result_id = conn.execute(sa.insert(results).values(**row)).inserted_primary_key[0]
        for kind, name in _KINDS.items():
            values = getattr(result, name)
            if values:
                conn.execute(sa.insert(samples).values(result_id=result_id, kind=kind,
                                                       values_ns=json.dumps(list(values))))
        if result.pairing is not None:
            pairing = {("group_label" if k == "group" else k): v for k, v in asdict(result.pairing).items()}
            conn.execute(sa.insert(pairings).values(result_id=result_id, **pairing))
        for at, name in _GPU_AT.items():
            state = getattr(result, name)
            if state is not None:
                conn.execute(sa.insert(gpu_states).values(result_id=result_id, at=at, **asdict(state)))
        if result.compile_counts is not None:
            conn.execute(sa.insert(compile_counts).values(result_id=result_id, **asdict(result.compile_counts)))

    def results(self, run_id: str) -> list[Result]:
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(*self._present(results)).where(results.c.run_id == run_id)
                                     .order_by(results.c.id)).mappings())
            kept: dict[tuple[int, str], list[int]] = {}
            paired: dict[int, Pairing] = {}
            states: dict[tuple[int, str], GpuState] = {}
            compiled: dict[int, CompileCounts] = {}
            ids = [r["id"] for r in rows]
            for chunk in range(0, len(ids), 500):
                query = sa.select(samples).where(samples.c.result_id.in_(ids[chunk:chunk + 500]))
                for s in conn.execute(query).mappings():
                    kept[(s["result_id"], s["kind"])] = json.loads(s["values_ns"])
                if "pairings" in self.tables:
                    query = sa.select(pairings).where(pairings.c.result_id.in_(ids[chunk:chunk + 500]))
                    for p in conn.execute(query).mappings():
                        data = {("group" if k == "group_label" else k): v for k, v in p.items() if k != "result_id"}
                        paired[p["result_id"]] = Pairing(**data)
                if "gpu_states" in self.tables:
                    query = sa.select(gpu_states).where(gpu_states.c.result_id.in_(ids[chunk:chunk + 500]))
                    for g in conn.execute(query).mappings():
                        state = {k: v for k, v in g.items() if k not in ("result_id", "at")}
                        states[(g["result_id"], _GPU_AT[g["at"]])] = GpuState(**state)
                if "compile_counts" in self.tables:
                    query = sa.select(compile_counts).where(compile_counts.c.result_id.in_(ids[chunk:chunk + 500]))
                    for c in conn.execute(query).mappings():
                        compiled[c["result_id"]] = CompileCounts(**{k: v for k, v in c.items() if k != "result_id"})
        out = []
        for r in rows:
            case = {f.name: r[f.name] for f in fields(Case)}
            case["input_shape"] = tuple(int(v) for v in r["input_shape"].split("x"))
            data = {f.name: r[f.name] for f in _RESULT_FIELDS if f.name in r}
            series = {name: tuple(kept.get((r["id"], kind), ())) for kind, name in _KINDS.items()}
            gpu = {name: states.get((r["id"], name)) for name in _GPU_AT.values()}
            out.append(Result(case=Case.from_dict(case), pairing=paired.get(r["id"]), compile_counts=compiled.get(r["id"]),
                              **series, **gpu, **data))
        return out


STALE_CREATION_S = 600.0  # a store is built in well under a second: a temporary file this old was abandoned


def _create_sqlite(path: Path, label: str) -> None:
    """Make a new SQLite store at ``path`` whole or not at all. It is built in a temporary file beside ``path``
    (the same folder, so the same file system): tables, schema_version and the Alembic stamp, then WAL (kept in
    the file's header); then hard-linked into place, which fails when a file appeared there meanwhile: another
    runner made the store first, and that one stays. A runner killed, or a disk that fills, while building leaves
    no file at ``path``: only the temporary one, which a later creation in that folder removes once it is older
    than STALE_CREATION_S. On a file system without hard links the copy is renamed into place where ``path`` is
    still free."""
    _remove_stale_creations(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.creating")
    engine = sa.create_engine(f"sqlite:///{tmp}", poolclass=sa.pool.NullPool)
    sa.event.listen(engine, "handle_error", functools.partial(_file_error, label))
    try:
        with engine.begin() as conn:
            _meta.create_all(conn)
            conn.execute(sa.insert(meta_table).values(key="schema_version", value=str(SCHEMA_VERSION)))
            migrate.stamp_head(conn)
        with engine.connect() as conn:  # the last connection closes: the file holds everything, no -wal beside it
            conn.exec_driver_sql("PRAGMA journal_mode = WAL")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # made meanwhile by another runner: its store is the one
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise
            if not path.exists():  # no hard links here: a rename, which would replace a store made meanwhile
                os.rename(tmp, path)
    except OSError as exc:
        raise cannot(f"create results store {label!r}", exc) from None
    finally:
        engine.dispose()
        for leftover in (tmp, *(tmp.with_name(tmp.name + end) for end in ("-journal", "-wal", "-shm"))):
            with contextlib.suppress(OSError):
                leftover.unlink()


def _remove_stale_creations(path: Path) -> None:
    """Remove the temporary files of creations of ``path`` abandoned (killed) more than STALE_CREATION_S ago."""
    for old in path.parent.glob(f".{glob.escape(path.name)}.*.creating*"):
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > STALE_CREATION_S:
                old.unlink()


def _engine(url: str, label: str, *, sqlite: bool) -> sa.Engine:
    """The engine for a store URL; ``postgresql://`` and ``postgres://`` mean psycopg 3."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise BadValue(f"results store {label!r} is neither a path nor a SQLAlchemy URL "
                       f"(e.g. {_URL_EXAMPLE})") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    postgres = parsed.get_backend_name() == "postgresql"
    args: dict[str, Any] = {"timeout": 60} if sqlite else {"connect_timeout": 10} if postgres else {}
    # SQLite: a connection per use (NullPool), so that a long-lived reader never keeps a stale WAL snapshot. A
    # server: pooled connections, each pinged when taken from the pool, so that one the server dropped between two
    # writes (restarted, or ended it) is replaced by a new one instead of failing the write
    pool: dict[str, Any] = {"poolclass": sa.pool.NullPool} if sqlite else {"pool_pre_ping": True}
    try:
        return sa.create_engine(parsed, connect_args=args, **pool)
    except ImportError as exc:
        if postgres:
            raise Unavailable("a PostgreSQL results store needs the psycopg driver: "
                              "pip install 'cnnbench[postgres]'") from None
        raise Unavailable(f"results store {label!r} needs the Python module {exc.name!r}, which is not installed") \
            from None
    except sa.exc.ArgumentError as exc:  # NoSuchModuleError: a kind of database SQLAlchemy does not know
        raise BadValue(f"results store {label!r}: {first_line(exc)} (e.g. {_URL_EXAMPLE})") from None


_URL_EXAMPLE = "results/cnnbench.db, sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def _server_error(label: str, context: Any) -> None:
    """A database server's failure as one line: a refused login or a missing database is the user's to fix
    (StoreError, exit 2); a server that is down, unreachable or lost in a transaction is the environment's
    (StoreUnavailable, exit 3). A failed ping of a pooled connection goes on as it is, so that the pool replaces
    the connection; other errors (a duplicate case, ...) go on as they are."""
    if context.is_pre_ping or not isinstance(context.sqlalchemy_exception, (OperationalError, InterfaceError)):
        return
    reason = _reason(context.original_exception)
    text = reason.lower()
    if "authentication failed" in text or "no password supplied" in text or "does not exist" in text:
        raise StoreError(f"results store {label!r} refused the connection: {reason}") from None
    raise StoreUnavailable(f"results store {label!r} cannot be reached: {reason}") from None


_FILE_FAILURES = ("disk is full", "disk i/o error", "readonly database", "read-only database")


def _file_error(label: str, context: Any) -> None:
    """An SQLite file that cannot take a write (a full disk, an I/O error, a read-only file) as one line
    (StoreUnavailable, exit 3): what was committed before stays. Other errors go on as they are."""
    if isinstance(context.sqlalchemy_exception, OperationalError):
        reason = _reason(context.original_exception)
        if any(failure in reason.lower() for failure in _FILE_FAILURES):
            raise StoreUnavailable(f"results store {label!r} cannot be written: {reason}") from None


def _label(location: "str | os.PathLike[str]") -> str:
    """The store as the user named it, without a password."""
    text = str(location)
    if "://" not in text:
        return text
    try:
        return sa.engine.make_url(text).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return text


def _reason(exc: BaseException) -> str:
    return first_line(getattr(exc, "orig", None) or exc)


def open_store(location: Optional[str], *, create: bool, upgrade: Optional[bool] = None) -> Store:
    return Store(location or DEFAULT_STORE, create=create, upgrade=upgrade)


__all__ = ["Store", "StoreError", "open_store", "DEFAULT_STORE", "SCHEMA_VERSION"]
