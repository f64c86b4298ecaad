"""bench/store.py and bench/results.py: the store's round trip, refusals, and tidy loading."""

import hashlib
import socket
import sqlite3
import sys

import pandas as pd
import pytest
import sqlalchemy as sa

from bench.cases import Case
from bench.cli import main
from bench.errors import BadInput, StoreUnavailable
from bench.results import load, result_row
from bench.store import SCHEMA_VERSION, Store, StoreError
from bench.record import Result
from conftest import POSTGRES_URL


def a_result(batch=1, status="ok", samples=(1_000_000, 1_100_000, 900_000, 1_000_000)):
    return Result(case=Case("lenet5", batch_size=batch, threads=1, input_shape=(1, 32, 32)), status=status,
                  samples_ns=samples, timer="perf_counter_ns", cold_start_ms=3.0, macs=416_520, params=61_706,
                  started_at=1.0, duration_s=2.0)


def new_run(store, n=2):
    return store.new_run(suite="t", suite_json={"name": "t"}, environment={"hostname": "h"},
                         calibration={"cpu/float32/t1": 100.0}, settings={"cases": []}, cases_total=n)


def test_round_trip_and_tidy_frame(store_url):
    store = Store(store_url)
    run_id = new_run(store)
    store.add_result(run_id, a_result(1))
    store.add_result(run_id, a_result(2, status="skipped", samples=()))
    back = store.results(run_id)
    assert back == [a_result(1), a_result(2, status="skipped", samples=())]
    frame = load(run_id, store_url)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2
    row = frame.iloc[0]
    assert row["latency_ms_p50"] == pytest.approx(1.0) and row["throughput_img_s"] == pytest.approx(1000.0)
    assert row["flops"] == 2 * 416_520 and row["achieved_gflop_s"] == pytest.approx(2 * 416_520 / 1e-3 / 1e9)
    assert row["peak_fraction"] == pytest.approx(row["achieved_gflop_s"] / 100.0)
    for column in ("latency_ms_p90", "latency_ms_p99", "latency_ms_iqr", "latency_ms_stdev", "case_key", "variant"):
        assert column in frame.columns
    assert store.done_keys(run_id) == {a_result(1).case.key, a_result(2).case.key}


def test_a_store_from_before_pairings_and_the_track_reads_as_it_is_and_gains_them_on_write(tmp_path):
    path = tmp_path / "s.db"
    store = Store(path)
    run_id = new_run(store)
    store.add_result(run_id, a_result(1))
    store.engine.dispose()
    with sqlite3.connect(path) as conn:  # the first form of schema 2, before Alembic and machine labels
        for statement in ("DROP TABLE pairings", "DROP TABLE track", "DROP TABLE gpu_states", "DROP TABLE compile_counts",
                          "DROP TABLE alembic_version", "ALTER TABLE runs DROP COLUMN machine"):
            conn.execute(statement)
    before = digest(path)
    old = Store(path, create=False)
    assert old.results(run_id) == [a_result(1)] and old.track(run_id) == []
    assert load(run_id, old)["machine_speed_rel"].isna().all()
    old.engine.dispose()
    assert digest(path) == before  # reading changed nothing
    written = Store(path)
    written.add_probe(run_id, 1.0, 42.0)
    assert written.track(run_id) == [(1.0, 42.0)] and written.results(run_id) == [a_result(1)]


def test_same_case_twice_in_a_run_is_refused(store_url):
    store = Store(store_url)
    run_id = new_run(store)
    store.add_result(run_id, a_result(1))
    with pytest.raises(StoreError, match="has case .* already"):
        store.add_result(run_id, a_result(1))
    assert store.add_results(run_id, [a_result(1)]) == [a_result(1)]  # a group's: left out, and returned
    assert len(store.results(run_id)) == 1


def test_training_step_flops_are_three_forwards():
    r = a_result()
    train = Result(**{**r.__dict__, "case": Case("lenet5", mode="train", threads=1, input_shape=(1, 32, 32))})
    assert result_row(train)["step_flops"] == 3 * result_row(r)["step_flops"]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_corrupt_store_is_refused_and_untouched(tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database at all" * 10)
    before = digest(path)
    with pytest.raises(StoreError, match="not an SQLite database"):
        Store(path)
    assert digest(path) == before


def test_newer_schema_is_refused_and_untouched(tmp_path):
    path = tmp_path / "s.db"
    Store(path)
    with sqlite3.connect(path) as conn:
        conn.execute("update cnnbench_meta set value = ? where key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    before = digest(path)
    with pytest.raises(StoreError, match="newer than this cnnbench"):
        Store(path)
    assert digest(path) == before


def test_a_schema_version_that_is_not_a_number_is_one_line_and_untouched(tmp_path, capsys):
    from bench.cli import main

    path = tmp_path / "s.db"
    Store(path).engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("update cnnbench_meta set value = 'abc' where key = 'schema_version'")
    before = digest(path)
    assert main(["runs", "--store", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: results store") and "schema_version that is not a number ('abc')" in err
    assert len(err.splitlines()) == 1 and digest(path) == before


def test_a_full_disk_is_one_line_and_keeps_what_was_committed(tmp_path):
    store = Store(tmp_path / "s.db")
    run_id = new_run(store)
    store.add_result(run_id, a_result(1))

    def fill_up(dbapi_conn, _record):  # the file may not grow: SQLite's own "database or disk is full"
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    sa.event.listen(store.engine, "connect", fill_up)
    with pytest.raises(StoreUnavailable, match="cannot be written: database or disk is full"):
        for n in range(2, 200):
            store.add_result(run_id, a_result(n))
    sa.event.remove(store.engine, "connect", fill_up)
    assert a_result(1) in store.results(run_id)


# -- a new SQLite store is made whole or not at all -------------------------------------------------------

def test_a_disk_that_fills_while_a_store_is_made_leaves_no_file_and_the_next_open_makes_it(tmp_path, monkeypatch,
                                                                                           capsys):
    from bench import migrate
    from bench.store import meta_table

    path = tmp_path / "s.db"

    def fill_up(conn):  # the tables are made; the disk fills before the stamp (SQLite's own "disk is full")
        assert {"runs", "results", "cnnbench_meta"} <= set(sa.inspect(conn).get_table_names())
        conn.exec_driver_sql(f"PRAGMA max_page_count = {conn.exec_driver_sql('PRAGMA page_count').scalar()}")
        conn.execute(sa.insert(meta_table).values(key="filler", value="x" * 100_000))

    monkeypatch.setattr(migrate, "stamp_head", fill_up)
    with pytest.raises(StoreUnavailable, match=r"^results store '.*s\.db' cannot be written: database or disk is full"):
        Store(path)
    assert list(tmp_path.iterdir()) == []  # no store, no half store, no temporary file
    assert main(["runs", "--store", str(path)]) == 2
    assert capsys.readouterr().err.startswith("error: no results store at")  # not "empty", not "not a cnnbench store"
    monkeypatch.undo()
    store = Store(path)
    new_run(store)
    assert len(Store(path, create=False).list_runs()) == 1


KILLED_WHILE_MAKING = """
import os, signal, sys
from bench import migrate
from bench.store import Store

def killed(conn):  # the tables are made, the stamp is not: the runner dies here
    os.kill(os.getpid(), signal.SIGKILL)

migrate.stamp_head = killed
Store(sys.argv[1])
"""


def test_a_runner_killed_while_making_a_store_leaves_none_and_its_copy_is_removed_once_stale(tmp_path, capsys):
    import os
    import subprocess
    import time

    path = tmp_path / "s.db"
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_MAKING, str(path)], capture_output=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    abandoned = list(tmp_path.iterdir())  # its copy (and the copy's journal) beside where the store goes
    assert abandoned and all(p.name.startswith(".s.db.") and ".creating" in p.name for p in abandoned), abandoned
    assert main(["runs", "--store", str(path)]) == 2
    assert capsys.readouterr().err.startswith("error: no results store at")
    young = tmp_path / ".s.db.1-0badf00d.creating"  # another runner's copy, being made now: left alone
    young.write_bytes(b"")
    an_hour_ago = time.time() - 3600
    for leftover in abandoned:
        os.utime(leftover, (an_hour_ago, an_hour_ago))
    new_run(Store(path))
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("s.db-")) == [young.name, "s.db"]
    assert len(Store(path, create=False).list_runs()) == 1


MAKING_TOGETHER = """
import sys, time
from pathlib import Path
from bench import migrate
from bench.store import Store

path, ready, writers = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
stamp = migrate.stamp_head

def stamp_together(conn):  # every writer has its whole copy before any of them links it into place
    stamp(conn)
    (ready / sys.argv[4]).touch()
    deadline = time.time() + 60
    while len(list(ready.iterdir())) < writers and time.time() < deadline:
        time.sleep(0.01)

migrate.stamp_head = stamp_together
store = Store(path)
print(store.new_run(suite="t", suite_json={}, environment={}, calibration={}, settings={}, cases_total=0))
"""


def test_writers_making_one_sqlite_store_at_once_make_it_once(tmp_path):
    import subprocess

    path, ready = tmp_path / "store" / "s.db", tmp_path / "ready"
    ready.mkdir()
    writers = [subprocess.Popen([sys.executable, "-c", MAKING_TOGETHER, str(path), str(ready), "3", str(n)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(3)]
    outcomes = [writer.communicate(timeout=120) for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0, 0], outcomes
    assert len(list(ready.iterdir())) == 3  # all three made a copy of their own
    ids = {out.strip() for out, _ in outcomes}
    assert {run["run_id"] for run in Store(path, create=False).list_runs()} == ids and len(ids) == 3
    assert [p.name for p in path.parent.iterdir() if "creating" in p.name] == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_where_the_file_system_has_no_hard_links_a_new_store_is_renamed_into_place(tmp_path, monkeypatch):
    import errno
    import os

    def no_links(*_):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    store = Store(tmp_path / "s.db")
    new_run(store)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("s.db-")] == ["s.db"]
    assert len(Store(tmp_path / "s.db", create=False).list_runs()) == 1


def test_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table customers (id integer)")
    with pytest.raises(StoreError, match="not a cnnbench results store"):
        Store(path)


def test_unwritable_location(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(BadInput, match="cannot create results store .*: a file stands where its folder"):
        Store(blocker / "s.db")


def test_read_only_commands_need_an_existing_store(tmp_path, capsys):
    missing = str(tmp_path / "none.db")
    assert main(["runs", "--store", missing]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no results store at") and len(err.splitlines()) == 1
    assert not (tmp_path / "none.db").exists()


def test_unknown_run_id(store_url, capsys):
    store = Store(store_url)
    run_id = new_run(store)
    assert main(["export", "nope", "--store", store_url]) == 2
    err = capsys.readouterr().err
    assert "no run 'nope'" in err and run_id in err


def test_export_formats(tmp_path, store_url, capsys):
    store = Store(store_url)
    run_id = new_run(store)
    store.add_result(run_id, a_result(1))
    db = store_url
    assert main(["export", run_id, "--format", "csv", "--store", db]) == 0
    assert "latency_ms_p50" in capsys.readouterr().out.splitlines()[0]
    assert main(["export", "latest", "--format", "parquet", "-o", str(tmp_path / "r.parquet"), "--store", db]) == 0
    assert pd.read_parquet(tmp_path / "r.parquet")["params"].tolist() == [61_706]
    assert main(["export", run_id, "--format", "xlsx", "--store", db]) == 2
    assert main(["runs", "--store", db, "--format", "json"]) == 0


# -- PostgreSQL: the driver, a server that is down, a refused login, a connection lost mid-run --------------

def test_a_postgresql_url_without_the_driver_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    assert main(["runs", "--store", "postgresql://user:secret@127.0.0.1:1/results"]) == 3
    err = capsys.readouterr().err
    assert err == "error: a PostgreSQL results store needs the psycopg driver: pip install 'cnnbench[postgres]'\n"


def test_a_store_url_of_an_unknown_kind_is_one_line(capsys):
    assert main(["runs", "--store", "nosuchdb://x/y"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: results store 'nosuchdb://x/y'") and "postgresql://" in err
    assert len(err.splitlines()) == 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_is_down_is_one_line_exit_3(capsys):
    pytest.importorskip("psycopg")
    url = f"postgresql://cnnbench:secret@127.0.0.1:{free_port()}/results"
    assert main(["runs", "--store", url]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"error: results store 'postgresql://cnnbench:***@127.0.0.1:") and "cannot be reached" in err
    assert "secret" not in err and len(err.splitlines()) == 1
    assert main(["run", "--models", "lenet5", "--dry-run", "--store", url]) == 0  # a dry run needs no store


def tables_of(url):
    import psycopg

    with psycopg.connect(url) as conn:
        return sorted(r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'public'"))


def test_a_wrong_password_is_one_line_exit_2_and_writes_nothing(postgres_url, capsys):
    wrong = postgres_url.replace("cnnbench:", "cnnbench:not-", 1)
    assert main(["run", "--models", "lenet5", "--threads", "1", "--store", wrong]) == 2
    err = capsys.readouterr().err
    assert "refused the connection" in err and "password authentication failed" in err
    assert "not-" not in err and len(err.splitlines()) == 1
    assert tables_of(postgres_url) == []


def test_a_foreign_postgresql_database_is_refused_and_left_alone(postgres_url, capsys):
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        conn.execute("create table customers (id integer)")
    assert main(["run", "--models", "lenet5", "--threads", "1", "--store", postgres_url]) == 2
    assert "not a cnnbench results store (tables: customers)" in capsys.readouterr().err
    assert tables_of(postgres_url) == ["customers"]


def test_a_connection_lost_inside_a_write_is_one_line_and_keeps_what_was_committed(postgres_url):
    import psycopg

    store = Store(postgres_url)
    run_id = new_run(store)
    store.add_result(run_id, a_result(1))
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:  # the server drops this store's connections
        admin.execute("select pg_terminate_backend(pid, 5000) from pg_stat_activity where datname = %s", (database,))
    store.add_result(run_id, a_result(3))  # between two writes: the pool's ping finds it dropped and replaces it
    inserts = []

    def drop_at_the_second_case(conn, _cursor, statement, *_):  # the group's first case is in, uncommitted
        inserts.append(statement)
        if sum(s.startswith("INSERT INTO results ") for s in inserts) == 2:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                admin.execute("select pg_terminate_backend(%s, 5000)", (conn.connection.dbapi_connection.info.backend_pid,))

    sa.event.listen(store.engine, "before_cursor_execute", drop_at_the_second_case)
    with pytest.raises(StoreUnavailable, match=r"cannot be reached: .*terminat"):
        store.add_results(run_id, [a_result(2), a_result(4)])
    sa.event.remove(store.engine, "before_cursor_execute", drop_at_the_second_case)
    assert Store(postgres_url, create=False).results(run_id) == [a_result(1), a_result(3)]  # the group: none of it


def test_a_server_restarted_between_two_writes_costs_nothing_and_one_that_is_down_is_one_line(own_postgres):
    store = Store(own_postgres.url)
    run_id = new_run(store)
    store.add_result(run_id, a_result(1))
    own_postgres.stop()
    own_postgres.start()
    store.add_result(run_id, a_result(2))  # the pooled connection died with the server: pinged, and replaced
    own_postgres.stop()
    with pytest.raises(StoreUnavailable, match=r"^results store 'postgresql://cnnbench:\*\*\*@.*' cannot be reached: "):
        store.add_result(run_id, a_result(3))
    own_postgres.start()
    assert store.results(run_id) == [a_result(1), a_result(2)]


# -- a store is read-only until it is known to be ours -----------------------------------------------------

def test_a_foreign_sqlite_database_is_left_byte_for_byte_as_it_was(tmp_path, capsys):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table customers (id integer)")
        conn.execute("insert into customers values (1)")
    before = digest(path)
    for args in (["runs"], ["export", "latest"], ["report", "--latest", "-o", str(tmp_path / "r.html")],
                 ["run", "--models", "lenet5", "--threads", "1"], ["run", "--resume", "x"]):
        assert main([*args, "--store", str(path)]) == 2, args
        err = capsys.readouterr().err
        assert "not a cnnbench results store (tables: customers)" in err and len(err.splitlines()) == 1
        assert digest(path) == before, args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]  # no journal or WAL left beside it


def test_a_new_store_is_wal_and_an_existing_one_stays_writable(tmp_path):
    path = tmp_path / "s.db"
    store = Store(path)
    new_run(store)
    with sqlite3.connect(path) as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    again = Store(path, create=False)
    new_run(again)  # resume opens with create=False and writes
    assert len(again.list_runs()) == 2


def test_writers_making_one_postgresql_store_at_once_make_it_once(postgres_url, open_at_once):
    opened, errors = open_at_once(postgres_url, 3)
    assert errors == [] and len(opened) == 3
    ids = {new_run(store) for store in opened}
    assert {run["run_id"] for run in Store(postgres_url, create=False).list_runs()} == ids
