"""bench/record.py (and what reads records): no torch needed to read, store or compare results."""

import json
import subprocess
import sys
from pathlib import Path

from bench.cases import Case, Measure
from bench.record import CHECKS, STATUSES, Result, failed_checks, tally, timing_status

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "quick_run.json"


def _modules_after(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                          capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_the_record_and_the_case_axes_import_no_torch():
    loaded = _modules_after("import bench.record, bench.cases, bench.precision, bench.values, bench.cli")
    assert "torch" not in loaded and "numpy" in loaded  # numpy: bench.stats, through bench.compare


def test_comparing_two_run_files_never_loads_torch(tmp_path):
    code = (f"from bench.cli import main\ncode = main(['compare', {str(FIXTURE)!r}, {str(FIXTURE)!r}, '--format', 'json'])\n"
            "assert code == 0, code")
    assert "torch" not in _modules_after(code)


def test_a_result_round_trips_and_names_its_failed_checks():
    result = Result(case=Case("lenet5", threads=1, input_shape=(1, 32, 32)), status="invalid",
                    samples_ns=(3, 1, 2), check_dtype=True, check_output=False)
    assert Result.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert failed_checks(result.to_dict()) == ["check_output"]  # None (not run) and True are not failures
    assert set(CHECKS) <= set(result.to_dict())
    assert tally(["ok", "skipped", "ok"]) == {"ok": 2, "skipped": 1}
    assert STATUSES[0] == "ok" and "invalid" in STATUSES


def test_timing_status_is_noisy_at_a_cap_when_the_interval_is_wider_than_the_target_or_unknown():
    sampling = Measure(target_ci=0.02)
    assert timing_status([100.0] * 10, "time cap", sampling) == ("ok", "")  # all alike: known to +/-0%
    assert timing_status([100.0, 120.0] * 5, "target", sampling) == ("ok", "")  # the rule held when it stopped
    status, reason = timing_status([100.0, 120.0] * 5, "time cap", sampling)
    assert status == "noisy" and "median known to +/-" in reason and "larger max_seconds" in reason
    status, reason = timing_status([100.0] * 5, "max samples", sampling)  # 5 alike: still no 95% interval
    assert status == "noisy" and "interval unknown (it needs 6) after 5 blocks" in reason and "max_samples" in reason
