"""bench/runfile.py: run files of any shape are read whole or refused in one line, never half-read."""

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings, strategies as st

from bench import runfile, views
from bench.compare import Side, compare_runs, document, exact_changes
from bench.errors import BadInput
from hostile import JSON, one_value_replaced

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "quick_run.json"
SMALL = json.loads(FIXTURE.read_text())
SMALL["results"] = [{**r, "samples_ns": r["samples_ns"][:12]} for r in SMALL["results"] if r["samples_ns"]][:2]


def read_or_refuse(content: str):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.json"
        path.write_text(content)
        try:
            doc = runfile.read(path)
        except BadInput as exc:
            assert "\n" not in str(exc).strip()
            return None
    side = Side(doc["run"]["id"], doc["run"], tuple(doc["results_parsed"]))
    rows = compare_runs(side.results, side.results)  # what was accepted can be compared and shown
    exact = exact_changes(side.results, side.results)
    views.comparison(document(side, side, rows, exact, []), rows, exact, "markdown")
    return doc


def test_the_fixture_is_read():
    assert read_or_refuse(json.dumps(SMALL)) is not None


@settings(max_examples=60, deadline=None)
@given(one_value_replaced(SMALL))
def test_a_run_file_with_any_value_replaced_is_read_or_refused_in_one_line(doc):
    read_or_refuse(json.dumps(doc))


@settings(max_examples=30, deadline=None)
@given(st.one_of(JSON.map(json.dumps), st.text(max_size=50)))
def test_any_document_is_read_or_refused_in_one_line(content):
    read_or_refuse(content)
