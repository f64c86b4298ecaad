"""bench/pytest_import.py: pytest-benchmark files of any shape are imported whole or refused in one line."""

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings

from bench.errors import BadInput
from bench.pytest_import import import_file
from bench.store import Store
from hostile import one_value_replaced

VALID = {"machine_info": {"node": "h", "cpu": {"brand_raw": "cpu"}, "python_version": "3.11"},
         "commit_info": {"id": "abc", "dirty": False}, "version": "4.0.0",
         "benchmarks": [{"name": "test_a", "fullname": "t.py::test_a", "stats": {"data": [0.001, 0.0012]},
                         "extra_info": {"params": 10}}]}


def import_or_refuse(doc) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        path, db = Path(tmp) / "bench.json", Path(tmp) / "s.db"
        path.write_text(json.dumps(doc))
        try:
            run_id = import_file(lambda: Store(db), str(path))
        except BadInput as exc:
            assert "\n" not in str(exc).strip() and not db.exists()  # refused before the store was made
            return False
        store = Store(db, create=False)
        assert store.results(run_id) and store.run(run_id)["cases_total"] >= 1
        store.engine.dispose()
        return True


def test_a_valid_file_is_imported():
    assert import_or_refuse(VALID)


@settings(max_examples=60, deadline=None)
@given(one_value_replaced(VALID))
def test_a_file_with_any_value_replaced_is_imported_or_refused_in_one_line(doc):
    import_or_refuse(doc)
