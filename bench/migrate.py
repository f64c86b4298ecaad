"""A store written by an older cnnbench brought to this one's schema in place, through Alembic
(one script a change under ``bench/migrations/versions/``).

A store's revision is its ``alembic_version`` row; a store from before Alembic (schema 2, no such table) is
at 0002 when it already has the pairings and track tables, else at 0001, and is stamped so before it is
upgraded. ``upgrade`` runs every later script in one transaction, under a lock (SQLite's write lock, taken
first; PostgreSQL's advisory lock), reading the revision again once it holds the lock, so that two writers
opening an older store at once upgrade it once. An SQLite store is first copied beside itself
(``NAME.schema-REV.bak``, SQLite's online backup, consistent under WAL). A revision this cnnbench does not
know is a newer cnnbench's: the store refuses it (``bench.store``).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any, Optional

import sqlalchemy as sa

from .errors import Unavailable, first_line

FOLDER = Path(__file__).resolve().parent / "migrations"
REVISIONS = tuple(sorted(p.name.split("_", 1)[0] for p in (FOLDER / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")))
HEAD = REVISIONS[-1]
_LOCK_ID = 0x636E6E62  # "cnnb": PostgreSQL's advisory lock for upgrades

log = logging.getLogger(__name__)


def lock(conn: sa.Connection) -> bool:
    """PostgreSQL: hold the schema's advisory lock until this transaction ends, so that two writers making or
    upgrading one store do it once (True); other databases: nothing (False)."""
    if conn.dialect.name != "postgresql":
        return False
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    return True


def revision_of(conn: sa.Connection, tables: set[str]) -> str:
    if "alembic_version" in tables:
        row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
        if row is not None:
            return str(row[0])
    return "0002" if {"pairings", "track"} <= tables else "0001"


def _config(conn: sa.Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(FOLDER))
    config.attributes["connection"] = conn
    return config


def stamp_head(conn: sa.Connection) -> None:
    """Mark a store just made from ``bench.store``'s tables as at the head."""
    from alembic import command

    command.stamp(_config(conn), HEAD)


def upgrade(engine: sa.Engine, label: str, sqlite_path: Optional[Path]) -> tuple[Optional[str], Optional[Path]]:
    """Bring the store to HEAD: the revision it was upgraded from and the copy made first (SQLite), or
    (None, None) when, under the lock, it was at HEAD already (another writer upgraded it)."""
    from alembic import command

    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":  # a write opens the transaction and takes the write lock now
            conn.execute(sa.text("UPDATE cnnbench_meta SET value = value WHERE key = 'schema_version'"))
        else:
            lock(conn)
        tables = set(sa.inspect(conn).get_table_names())
        current = revision_of(conn, tables)
        if current == HEAD:
            return None, None
        backup = _backup(sqlite_path, current) if sqlite_path is not None else None
        config = _config(conn)
        if "alembic_version" not in tables:
            command.stamp(config, current)
        command.upgrade(config, HEAD)
    kept = f"; as it was: {str(backup)!r}" if backup else ""
    log.warning("upgraded results store %r from schema revision %s to %s%s", label, current, HEAD, kept)
    return current, backup


def _backup(path: Path, revision: str) -> Path:
    target = path.with_name(f"{path.name}.schema-{revision}.bak")
    n = 1
    while target.exists():  # never overwrite an earlier copy
        target = path.with_name(f"{path.name}.schema-{revision}.bak.{n}")
        n += 1
    try:
        source, copy = sqlite3.connect(path), sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
    except (sqlite3.Error, OSError) as exc:
        raise Unavailable(f"cannot copy results store {str(path)!r} to {str(target)!r} before upgrading it: "
                          f"{first_line(exc)}; nothing was changed") from None
    return target
