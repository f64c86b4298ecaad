import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from bench.cli import main

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def run_cli(capsys, *argv):
    """``cnnbench ARGV`` in this process: its exit status (argparse's usage errors included), stdout and stderr."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's own usage errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture
def fault_models(monkeypatch):
    """The test-only models of tests/fault_models.py, here and in the workers (they inherit the variables)."""
    monkeypatch.setenv("CNNBENCH_PLUGINS", "fault_models")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from bench.zoo import load_plugins
    load_plugins.cache_clear()
    load_plugins()


@pytest.fixture(autouse=True, scope="session")
def _catalog_cache(tmp_path_factory):
    """`cnnbench list`'s cache in a folder of this session's, not the user's ~/.cache."""
    os.environ.setdefault("CNNBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cnnbench-cache")))


POSTGRES_URL = os.environ.get("CNNBENCH_TEST_POSTGRES_URL")
POSTGRES_SKIP = os.environ.get("CNNBENCH_TEST_POSTGRES_SKIP") or (
    "CNNBENCH_TEST_POSTGRES_URL is not set: scripts/test.sh starts a PostgreSQL server for these tests")


@pytest.fixture
def postgres_url():
    """A fresh, empty database on the test server of scripts/postgres.sh, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP)
    import uuid

    import psycopg

    name = f"cnnbench_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """Where a store goes, once as an SQLite file and once as a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "s.db")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def open_at_once():
    """``open_at_once(url, writers)``: that many threads open a Store on ``url`` at the same moment, as separate
    writers would; (the stores opened, the exceptions raised), each in no particular order."""
    from bench.store import Store

    def open_all(url: str, writers: int) -> tuple[list, list]:
        opened, errors = [], []
        start = threading.Barrier(writers)

        def open_it():
            start.wait()
            try:
                opened.append(Store(url))
            except Exception as exc:  # noqa: BLE001 - the test reports whatever a writer met
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return opened, errors

    return open_all


class OwnPostgres:
    """A PostgreSQL server of one test's own, made by scripts/postgres.sh, that the test may stop and start again
    (the shared server of CNNBENCH_TEST_POSTGRES_URL is never stopped: other tests use it)."""

    def __init__(self, folder: str, url: str) -> None:
        self.folder, self.url = folder, url

    def _ctl(self, *args: str) -> None:
        done = subprocess.run(["bash", "-c", 'source scripts/postgres.sh && CNNBENCH_PG_DIR="$1" && shift && '
                               'postgres_ctl "$@"', "-", self.folder, *args],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"pg_ctl {' '.join(args)}: {done.stdout}{done.stderr}"

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; ``immediate`` ends it as a crash would, with no goodbye to its clients."""
        self._ctl("stop", "-m", mode)

    def start(self) -> None:
        self._ctl("start")


@pytest.fixture
def own_postgres():
    """A throwaway PostgreSQL server for this test alone (``OwnPostgres``), removed afterwards; skipped, with the
    other PostgreSQL tests' reason, where scripts/test.sh could not make the shared one."""
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP)
    env = {k: v for k, v in os.environ.items() if k not in ("CNNBENCH_TEST_POSTGRES_URL", "CNNBENCH_TEST_POSTGRES_SKIP")}
    made = subprocess.run(["bash", "-c", 'source scripts/postgres.sh && postgres_start && printf "%s\\n" '
                           '"${CNNBENCH_PG_DIR:-}" "${CNNBENCH_TEST_POSTGRES_URL:-}" "${CNNBENCH_TEST_POSTGRES_SKIP:-}"'],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    folder, url, skip = (made.stdout.splitlines() + ["", "", ""])[:3]
    try:
        if not url:
            pytest.skip(skip or f"scripts/postgres.sh made no server: {made.stderr.strip()[-200:]}")
        yield OwnPostgres(folder, url)
    finally:
        if folder:
            subprocess.run(["bash", "-c", 'source scripts/postgres.sh && CNNBENCH_PG_DIR="$1" CNNBENCH_PG_STARTED=1 '
                            'postgres_stop', "-", folder], cwd=REPO, capture_output=True, timeout=120)
