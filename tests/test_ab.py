"""bench/ab.py (interleaved A/B), the worker's --serve protocol, and compare --confirm (bench/confirm.py)."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bench import confirm as gate
from bench.ab import Arm, Paired, interleave
from bench.cases import Case, Measure
from bench.cli import main
from bench.compare import CaseComparison, Side, Thresholds
from bench.errors import BadValue
from bench.record import Result
from bench.stats import paired_figures, sign_test_p
from bench.store import Store
from bench.worker import serve

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FAST = Measure(min_samples=5, max_seconds=1.0, warmup_seconds=0.2, timeout_s=120)


pytestmark = pytest.mark.usefixtures("fault_models")


def case(model):
    return Case(model, threads=1, input_shape=(1, 32, 32) if model == "lenet5" else (1, 8, 8))


def test_sign_test_exact_values():
    assert sign_test_p([0.1] * 8) == pytest.approx(2 / 256)
    assert sign_test_p([0.1, -0.1] * 5) == 1.0
    assert sign_test_p([0.1] * 9 + [-0.1]) == pytest.approx(2 * 11 / 1024)
    assert sign_test_p([0.0, 0.0]) == 1.0


def test_paired_figures_are_the_median_log_ratio():
    base = [100] * 11
    cand = [120] * 10 + [500]
    f = paired_figures(base, cand)
    assert f["ratio"] == pytest.approx(1.2)  # the outlier round moves nothing
    assert f["ratio_ci_low"] == pytest.approx(1.2) and f["p_value"] < 0.01


def test_serve_protocol_in_process():
    replies = []
    request = {"case": case("lenet5").to_dict(), "measure": FAST.__dict__}
    lines = iter([json.dumps(request), json.dumps({"block": 0.02}), json.dumps({"block": 0.0})])
    assert serve(lines, replies.append) == 0
    hello, block, single = replies
    assert hello["ready"] is True and hello["cold_start_ms"] > 0 and hello["warmup_iterations"] >= 2
    assert len(block["samples_ns"]) >= 1 and all(s > 0 for s in block["samples_ns"])
    assert len(single["samples_ns"]) == 1  # a block is at least one iteration


def test_serve_reports_a_failing_case_instead_of_raising():
    replies = []
    request = {"case": case("fault_oom").to_dict(), "measure": FAST.__dict__}
    serve(iter([json.dumps(request)]), replies.append)
    assert replies[0]["ready"] is False and replies[0]["status"] == "oom"


def test_interleaved_a_a_and_a_real_slowdown():
    same = interleave(Arm(case("paced_2ms")), Arm(case("paced_2ms")), FAST, block_s=0.02, min_rounds=10)
    assert same.status == "ok" and same.rounds >= 10
    assert 0.9 < same.ratio < 1.1 and same.p_value > 0.01
    slower = interleave(Arm(case("paced_2ms")), Arm(case("paced_3ms")), FAST, block_s=0.02, min_rounds=10)
    assert 1.3 < slower.ratio < 1.7 and slower.p_value < 0.01
    assert slower.ratio_ci_low <= slower.ratio <= slower.ratio_ci_high
    assert slower.base_iterations >= slower.rounds and slower.cand_iterations >= slower.rounds


def test_interleave_turns_a_dead_worker_into_a_status():
    crashed = interleave(Arm(case("lenet5")), Arm(case("fault_crash")), FAST)
    assert crashed.status == "crashed" and crashed.reason.startswith("candidate: worker killed by SIGSEGV")
    hung = interleave(Arm(case("fault_hang")), Arm(case("lenet5")), Measure(timeout_s=3, warmup_seconds=0.1))
    assert hung.status == "timeout" and hung.reason.startswith("baseline:")


def test_a_src_that_is_not_a_checkout_is_refused(tmp_path):
    with pytest.raises(BadValue, match="not a cnnbench checkout"):
        interleave(Arm(case("lenet5"), src=str(tmp_path)), Arm(case("lenet5")), FAST)


def side(results, commit="c0ffee", dirty=False, label="run"):
    return Side(label, {"environment": {"git_commit": commit, "git_dirty": dirty}, "settings": {"measure": FAST.__dict__}},
                tuple(results))


def test_runnable_needs_this_commit_and_clean_trees(monkeypatch):
    monkeypatch.setattr("bench.environment.git_state", lambda: ("c0ffee", False))
    assert gate.runnable(side([]), None).ok
    assert not gate.runnable(side([], commit="bad"), None).ok
    assert "uncommitted" in gate.runnable(side([], dirty=True), None).why_not
    assert "no git commit" in gate.runnable(side([], commit=None), None).why_not
    assert gate.runnable(side([], commit="bad"), "/some/checkout") == gate.Runnable(True, "/some/checkout")


def test_doubtful_rows():
    t = Thresholds()
    assert gate.doubtful(CaseComparison("k", "slower", ratio=1.2), t)
    assert gate.doubtful(CaseComparison("k", "inconclusive"), t)
    assert gate.doubtful(CaseComparison("k", "unchanged", ratio=1.06), t)
    assert not gate.doubtful(CaseComparison("k", "unchanged", ratio=1.04), t)
    assert not gate.doubtful(CaseComparison("k", "faster", ratio=0.7), t)


def test_paired_verdicts():
    t, before = Thresholds(), CaseComparison("k", "slower", ratio=1.3)
    def paired(ratio, p):
        return Paired("ok", base_ns=(10,) * 12, cand_ns=(round(10 * ratio),) * 12, ratio=ratio, p_value=p)
    assert gate.paired_verdict("k", paired(1.25, 0.001), t, before).verdict == "slower"
    assert gate.paired_verdict("k", paired(1.25, 0.2), t, before).verdict == "unchanged"
    assert gate.paired_verdict("k", paired(1.02, 0.001), t, before).verdict == "unchanged"
    assert gate.paired_verdict("k", paired(0.7, 0.001), t, before).verdict == "faster"
    failed = gate.paired_verdict("k", Paired("crashed", reason="candidate: boom"), t, before)
    assert failed.verdict == "inconclusive" and "boom" in failed.reason and "first pass: slower" in failed.reason


def test_a_side_whose_threads_outlast_the_wait_is_warned_of_in_the_verdict_and_the_table():
    from bench.group import SETTLE_CAPPED_WARN
    from bench.views import ab_outcome

    t = Thresholds()
    spun = Paired("ok", base_ns=(10,) * 12, cand_ns=(10,) * 12, ratio=1.0, ratio_ci_low=0.99, ratio_ci_high=1.01,
                  p_value=1.0, pair_ratios=(1.0,), settle_capped_share=(SETTLE_CAPPED_WARN, 0.0))
    row = gate.paired_verdict("k", spun, t)
    assert "the baseline's threads were still running" in row.reason and "after 20% of its blocks" in row.reason
    assert "OMP_WAIT_POLICY" in row.reason and "candidate" not in row.reason
    table = ab_outcome(row, spun, "a", "b", t, "table")
    assert table.count("warning: ") == 1 and "warning: the baseline's threads" in table
    quiet = replace(spun, settle_capped_share=(SETTLE_CAPPED_WARN / 2, None))  # under the threshold, or no waits
    assert not quiet.warnings and "warning" not in ab_outcome(gate.paired_verdict("k", quiet, t), quiet, "a", "b", t,
                                                              "table")


def fabricated(model, ms):
    """A stored result whose samples say ``ms`` whatever the code really does: a false alarm in the making."""
    return Result(case=case(model), status="ok", samples_ns=tuple(int(ms * 1e6 * (1 + 0.001 * (i % 7)))
                                                                  for i in range(40)))


def test_confirm_settles_a_false_alarm_by_interleaving(tmp_path, capsys):
    store = Store(tmp_path / "s.db")
    ids = []
    for ms in (2.1, 2.9):  # the same code, measured "slower" by a slow spell
        run_id = store.new_run(suite="t", suite_json={}, environment={"git_commit": "x"}, calibration={},
                               settings={"measure": FAST.__dict__}, cases_total=1)
        store.add_result(run_id, fabricated("paced_2ms", ms))
        ids.append(run_id)
    db = str(tmp_path / "s.db")
    assert main(["compare", *ids, "--store", db]) == 1
    assert "slower" in capsys.readouterr().out
    code = main(["compare", *ids, "--store", db, "--confirm", "--baseline-src", str(ROOT), "--candidate-src", str(ROOT),
                 "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    row = doc["timing"][0]
    assert code == 0 and row["verdict"] == "unchanged", row
    assert "interleaved A/B" in row["reason"] and "first pass: slower" in row["reason"]
    assert 0.9 < row["ratio"] < 1.1


def test_confirm_without_runnable_code_says_why(tmp_path, capsys):
    store = Store(tmp_path / "s.db")
    ids = []
    for ms in (2.1, 2.9):
        run_id = store.new_run(suite="t", suite_json={}, environment={"git_commit": "0" * 40}, calibration={},
                               settings={"measure": FAST.__dict__}, cases_total=1)
        store.add_result(run_id, fabricated("paced_2ms", ms))
        ids.append(run_id)
    assert main(["compare", *ids, "--store", str(tmp_path / "s.db"), "--confirm", "--format", "json"]) == 1
    row = json.loads(capsys.readouterr().out)["timing"][0]
    assert row["verdict"] == "slower" and "not re-measured" in row["reason"] and "0000000000" in row["reason"]
    assert main(["compare", *ids, "--store", str(tmp_path / "s.db"), "--confirm", "some"]) == 2
    assert "--confirm must be one of doubtful, all, got 'some'" in capsys.readouterr().err


AB_FAST = ["--threads", "1", "--max-seconds", "1", "--warmup-seconds", "0.2"]


def test_ab_command_flags_a_slower_model(capsys):
    assert main(["ab", "paced_2ms", "paced_3ms", *AB_FAST, "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "slower" and 1.3 < doc["ratio"] < 1.7 and doc["rounds"] >= 20
    assert doc["baseline"].startswith("paced_2ms|") and doc["candidate"].startswith("paced_3ms|")


def test_ab_command_varies_one_flag_and_prints_a_table(capsys):
    assert main(["ab", "lenet5", "--vs", "memory-format=channels_last", *AB_FAST]) in (0, 1)
    out = capsys.readouterr().out
    assert "B/A ratio" in out and "sign test p" in out and "verdict:" in out


@pytest.mark.parametrize("argv, message", [
    (["--vs", "colour=red"], "--vs takes FLAG=VALUE with FLAG one of device, batch-size"),
    (["--vs", "threads"], "got 'threads'"),
    (["--vs", "batch-size=0"], "batch"),
    (["--format", "csv"], "format must be one of table, json, got 'csv'"),
    (["--max-seconds", "-1"], "--max-seconds"),
])
def test_ab_command_bad_input(capsys, argv, message):
    assert main(["ab", "lenet5", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_checkout_without_the_serving_worker_is_refused(tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "worker.py").write_text("def main(argv): ...\n")
    with pytest.raises(BadValue, match="predates interleaved measurement"):
        interleave(Arm(case("lenet5"), src=str(tmp_path)), Arm(case("lenet5")), FAST)


def test_an_effect_one_process_pair_carries_alone_is_not_a_verdict():
    t, before = Thresholds(), CaseComparison("k", "unchanged", ratio=1.0)
    one_sided = Paired("ok", base_ns=(10,) * 20, cand_ns=(13,) * 20, ratio=1.3, p_value=1e-6, pair_ratios=(1.6, 1.02))
    assert gate.paired_verdict("k", one_sided, t, before).verdict == "unchanged"
    both = replace(one_sided, pair_ratios=(1.25, 1.35))
    row = gate.paired_verdict("k", both, t, before)
    assert row.verdict == "slower" and "2 process pairs (1.250, 1.350)" in row.reason
