"""bench/migrate.py and bench/migrations/: older stores upgraded in place, read as they are, newer ones refused.

tests/fixtures/store-schema2.db was written by cnnbench at 3620c52 (schema 2 with pairings and track, before
Alembic): two runs of the quick suite from quick_run.json, the second with vgg11 1.5x slower, pairings and a
machine-speed track. It is opened here after every later schema change.
"""

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench import migrate
from bench.cli import main
from bench.store import Store, StoreError

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "store-schema2.db"
BASE, CAND = "20261128-035239-54d61f", "20261128-120000-c0ffee"


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dump(path):
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


def shape(url):
    """Every table's columns with their types' names, and the revision: what a store's schema is."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    inspector = sa.inspect(engine)
    tables = {name: sorted((c["name"], type(c["type"]).__name__, c["nullable"]) for c in inspector.get_columns(name))
              for name in inspector.get_table_names()}
    with engine.connect() as conn:
        revision = conn.execute(sa.text("select version_num from alembic_version")).scalar()
    engine.dispose()
    return tables, revision


def test_the_scripts_are_one_chain_ending_at_the_head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrate.FOLDER))
    script = ScriptDirectory.from_config(config)
    chain = [rev.revision for rev in script.walk_revisions()][::-1]
    assert tuple(chain) == migrate.REVISIONS and script.get_current_head() == migrate.HEAD


@pytest.fixture
def old_store(tmp_path):
    path = tmp_path / "s.db"
    shutil.copyfile(FIXTURE, path)
    return path


def cli_outputs(path, capsys, tmp_path):
    """What runs, export, compare and report say of the fixture's runs."""
    out = {}
    for name, args in (("runs", ["runs", "--format", "json"]), ("export", ["export", CAND, "--format", "csv"]),
                       ("compare", ["compare", BASE, CAND, "--format", "json"])):
        code = main([*args, "--store", str(path)])
        out[name] = (code, capsys.readouterr().out)
    report = tmp_path / "r.html"
    assert main(["report", BASE, CAND, "-o", str(report), "--store", str(path)]) == 0
    capsys.readouterr()
    out["report"] = "vgg11" in report.read_text()
    return out


def test_the_committed_store_reads_as_it_is_then_upgrades_with_a_copy_and_reads_the_same(old_store, tmp_path, capsys):
    before, rows = digest(old_store), dump(old_store)
    read = cli_outputs(old_store, capsys, tmp_path)
    assert digest(old_store) == before  # reading an older store changes nothing
    verdicts = json.loads(read["compare"][1])
    assert read["compare"][0] == 1 and verdicts["regressed"] is True and read["report"]
    assert {row["key"].split("|")[0] for row in verdicts["timing"] if row["verdict"] == "slower"} == {"vgg11"}
    store = Store(old_store)  # a writer
    assert store.upgraded_from in (None, "0002") and shape(f"sqlite:///{old_store}")[1] == migrate.HEAD
    if migrate.HEAD != "0002":
        assert store.backup == old_store.with_name("s.db.schema-0002.bak") and dump(store.backup) == rows
    store.engine.dispose()
    after = cli_outputs(old_store, capsys, tmp_path)
    assert after == read
    assert {r.case.key for r in Store(old_store, create=False).results(CAND)} == {
        r.case.key for r in Store(old_store, create=False).results(BASE)}


def downgrade_to_before_alembic(url, revision):
    """A store as a cnnbench of ``revision`` without Alembic would have left it."""
    from alembic import command

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        command.downgrade(migrate._config(conn), revision)
        conn.execute(sa.text("drop table alembic_version"))
    engine.dispose()


def test_a_store_from_before_the_pairings_is_upgraded_to_the_tables_of_a_new_store(store_url, tmp_path):
    url = store_url if "://" in store_url else f"sqlite:///{store_url}"
    Store(store_url).engine.dispose()
    new_shape = shape(url)
    downgrade_to_before_alembic(url, "0001")
    assert set(shape_tables(url)) == {"cnnbench_meta", "runs", "results", "samples"}
    reader = Store(store_url, create=False)  # read as it is
    assert reader.upgraded_from is None and reader.list_runs() == [] and reader.track("x") == []
    reader.engine.dispose()
    assert "alembic_version" not in shape_tables(url)
    writer = Store(store_url)
    assert writer.upgraded_from == "0001"
    assert (writer.backup is not None) == ("://" not in store_url)
    writer.engine.dispose()
    assert shape(url) == new_shape


def shape_tables(url):
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    names = sa.inspect(engine).get_table_names()
    engine.dispose()
    return names


def test_two_writers_opening_an_older_store_at_once_upgrade_it_once(store_url, open_at_once):
    url = store_url if "://" in store_url else f"sqlite:///{store_url}"
    Store(store_url).engine.dispose()
    downgrade_to_before_alembic(url, "0001")
    opened, errors = open_at_once(store_url, 2)
    assert errors == [] and len(opened) == 2
    assert sorted(str(s.upgraded_from) for s in opened) == ["0001", "None"]
    assert sum(s.backup is not None for s in opened) == (0 if "://" in store_url else 1)
    assert shape(url)[1] == migrate.HEAD


def test_a_store_from_a_newer_cnnbench_is_refused_and_untouched(old_store, capsys):
    Store(old_store).engine.dispose()
    with sqlite3.connect(old_store) as conn:
        conn.execute("update alembic_version set version_num = '9999'")
    before = digest(old_store)
    for args in (["runs"], ["run", "--models", "lenet5", "--threads", "1"]):
        assert main([*args, "--store", str(old_store)]) == 2
        err = capsys.readouterr().err
        assert err == (f"error: results store {str(old_store)!r} has schema 2 revision '9999', newer than this "
                       f"cnnbench reads (schema 2 revision {migrate.HEAD!r}); upgrade cnnbench\n")
    assert digest(old_store) == before
    with pytest.raises(StoreError, match="newer than this cnnbench"):
        Store(old_store, create=False)
