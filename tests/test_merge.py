"""bench/merge.py and `cnnbench merge`: runs from other stores and run files, idempotent, conflicts refused."""

import json
import sqlite3

import pytest

from bench import runfile
from bench.cases import Case
from bench.cli import main
from bench.record import Pairing, Result
from bench.store import Store


def a_result(batch=1, ms=1.0):
    case = Case("lenet5", batch_size=batch, threads=1, input_shape=(1, 32, 32))
    return Result(case=case, status="ok", samples_ns=tuple(int(ms * 1e6) + i for i in range(20)), timer="perf_counter_ns",
                  round_medians_ns=(1_000_000, 1_000_100), macs=416_520, params=61_706, started_at=1.0, duration_s=2.0,
                  pairing=Pairing(group="lenet5|b1", reference=case.key, members=2, rounds=2, ratio=1.0))


def node(path, machine, batches=(1, 2), points=((10.0, 50.0), (20.0, 51.0))):
    """A store as a node that could not reach the shared one leaves it: one run, its results and track."""
    store = Store(path)
    run_id = store.new_run(suite="t", suite_json={"name": "t"}, environment={"hostname": machine},
                           calibration={}, settings={"cases": []}, cases_total=len(batches), machine=machine)
    store.add_results(run_id, [a_result(b) for b in batches])
    for at, value in points:
        store.add_probe(run_id, at, value)
    store.finish_run(run_id)
    store.engine.dispose()
    return run_id


def contents(url):
    store = Store(url, create=False)
    out = {run["run_id"]: (store.run(run["run_id"]), store.results(run["run_id"]), store.track(run["run_id"]))
           for run in store.list_runs()}
    store.engine.dispose()
    return out


def test_merge_copies_runs_with_samples_pairings_and_track_and_twice_is_once(tmp_path, store_url, capsys):
    a, b = node(tmp_path / "a.db", "node-a"), node(tmp_path / "b.db", "node-b", batches=(4,))
    doc = runfile.dump(Store(tmp_path / "a.db", create=False), a)
    doc["run"]["id"] = "from-a-file"
    runfile.write(tmp_path / "c.json", doc)
    sources = [str(tmp_path / "a.db"), str(tmp_path / "b.db"), str(tmp_path / "c.json")]
    assert main(["merge", *sources, "--into", store_url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sorted(out) == sorted([f"{a}: added from {sources[0]} (2 cases)", f"{b}: added from {sources[1]} (1 cases)",
                                  f"from-a-file: added from {sources[2]} (2 cases)"])
    merged = contents(store_url)
    for run_id, path in ((a, "a.db"), (b, "b.db")):
        assert merged[run_id] == contents(str(tmp_path / path))[run_id]  # meta, results, pairings, track
    assert merged[a][0]["machine"] == "node-a" and merged["from-a-file"][1] == merged[a][1]
    assert merged["from-a-file"][2] == []  # a run file carries no track
    assert main(["merge", *sources, "--into", store_url]) == 0
    label = Store(store_url, create=False).label  # a URL's password hidden
    assert sorted(capsys.readouterr().out.splitlines()) == sorted(f"{r}: already in {label}"
                                                                  for r in (a, b, "from-a-file"))
    assert contents(store_url) == merged


def test_a_run_held_with_other_content_is_refused_and_nothing_is_merged(tmp_path, store_url, capsys):
    a = node(tmp_path / "a.db", "node-a")
    assert main(["merge", str(tmp_path / "a.db"), "--into", store_url]) == 0
    capsys.readouterr()
    before = contents(store_url)
    node(tmp_path / "new.db", "node-n")  # a run the target lacks, named first: refused all the same
    with sqlite3.connect(tmp_path / "a.db") as conn:  # the same run id, one sample changed
        conn.execute("update samples set values_ns = '[1, 2, 3]' where kind = 'timed' and result_id = 1")
    assert main(["merge", str(tmp_path / "new.db"), str(tmp_path / "a.db"), "--into", store_url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: run {a!r} of {str(tmp_path / 'a.db')!r} is also in ") and len(err.splitlines()) == 1
    assert "1 of its cases differ" in err and "nothing was merged" in err
    assert contents(store_url) == before


def test_two_sources_with_one_id_and_other_content_are_refused(tmp_path, capsys):
    a = node(tmp_path / "a.db", "node-a")
    doc = runfile.dump(Store(tmp_path / "a.db", create=False), a)
    doc["run"]["machine"] = "someone-else"
    runfile.write(tmp_path / "a.json", doc)
    target = tmp_path / "t.db"
    assert main(["merge", str(tmp_path / "a.db"), str(tmp_path / "a.json"), "--into", str(target)]) == 2
    assert "its machine differs" in capsys.readouterr().err
    assert Store(target, create=False).list_runs() == []


def test_track_points_the_target_lacks_are_added(tmp_path, capsys):
    a = node(tmp_path / "a.db", "node-a", points=((10.0, 50.0),))
    target = str(tmp_path / "t.db")
    assert main(["merge", str(tmp_path / "a.db"), "--into", target]) == 0
    with sqlite3.connect(tmp_path / "a.db") as conn:
        conn.execute("insert into track (run_id, at, gflop_s) values (?, 20.0, 52.0)", (a,))
    assert main(["merge", str(tmp_path / "a.db"), "--into", target]) == 0
    capsys.readouterr()
    assert Store(target, create=False).track(a) == [(10.0, 50.0), (20.0, 52.0)]


def test_bad_sources_are_one_line(tmp_path, capsys):
    foreign = tmp_path / "f.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("create table customers (id integer)")
    (tmp_path / "x.json").write_text(json.dumps({"format": "something"}))
    for source, message in ((foreign, "not a cnnbench results store"), (tmp_path / "none.db", "no results store at"),
                            (tmp_path / "x.json", "is not a cnnbench run file")):
        assert main(["merge", str(source), "--into", str(tmp_path / "t.db")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as stop:
        main(["merge", "--into", str(tmp_path / "t.db")])
    assert stop.value.code == 2 and "the following arguments are required: SOURCE" in capsys.readouterr().err
