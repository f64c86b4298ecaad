"""Dynamo's counters over a compiled case (bench.prepare.CompileWatch): graphs, graph breaks and recompiles while
sampling, on the CPU with Dynamo's eager backend (no C++ compiler needed); the compile modes as compilers."""

import itertools

import pytest
import torch
import torch._dynamo

from bench import worker
from bench.cases import COMPILERS, Case, Measure
from bench.prepare import CompileWatch, Prepared
from bench.record import CompileCounts, Result
from bench.results import result_row
from bench.store import Store
from bench.suites import suite_from_dict


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_a_shape_that_changes_while_sampling_is_counted_as_recompiles():
    fn = torch.compile(lambda x: torch.relu(x) + 1, backend="eager", dynamic=False)
    watch = CompileWatch()
    fn(torch.ones(2))  # cold start
    fn(torch.ones(2))  # warm-up: cached
    watch.sampling_starts()
    for n in (2, 3, 4, 3, 2):
        fn(torch.ones(n))
    assert watch.counts() == CompileCounts(graphs=3, graph_breaks=0, recompiles=2)  # 3 and 4 were new


def test_a_steady_compiled_step_recompiles_nothing_and_graph_breaks_are_counted():
    def f(x):
        x = x + 1
        torch._dynamo.graph_break()
        return x * 2

    fn = torch.compile(f, backend="eager")
    watch = CompileWatch()
    fn(torch.ones(2))
    watch.sampling_starts()
    for _ in range(5):
        fn(torch.ones(2))
    counts = watch.counts()
    assert counts.graph_breaks == 1 and counts.graphs == 2 and counts.recompiles == 0


def test_the_watch_starts_from_nothing():
    torch.compile(lambda x: x - 1, backend="eager")(torch.ones(2))
    assert CompileWatch().counts() == CompileCounts(graphs=0, graph_breaks=0, recompiles=0)


def test_a_compiled_case_measured_with_a_recompile_while_sampling_carries_the_warning(monkeypatch):
    fn = torch.compile(lambda x: x * 2, backend="eager", dynamic=False)
    sizes = itertools.chain([2, 2, 2], itertools.repeat(3))  # one new shape once sampling has begun

    def step():
        return fn(torch.ones(next(sizes)))

    def ready(case, cap, figures):
        step()  # cold start
        step()  # warm-up
        return step

    monkeypatch.setattr(worker, "skip_reason", lambda case: None)
    monkeypatch.setattr(worker, "get_ready", ready)
    case = Case("lenet5", compiler="compile", input_shape=(1, 32, 32))
    result = worker.measure(case, Measure(max_seconds=0.2, min_samples=3))
    assert result.status in ("ok", "noisy") and result.compile_counts == CompileCounts(2, 0, 1)
    assert "Dynamo recompiled 1 time while sampling" in result_row(result)["warnings"]
    eager = worker.measure(Case("lenet5", input_shape=(1, 32, 32)), Measure(max_seconds=0.2, min_samples=3))
    assert eager.compile_counts is None and result_row(eager)["compile_recompiles"] is None


def test_compile_counts_survive_the_store_and_a_run_file(tmp_path):
    counts = CompileCounts(graphs=4, graph_breaks=1, recompiles=0)
    result = Result(case=Case("lenet5", compiler="compile-max-autotune"), status="ok", compile_counts=counts)
    store = Store(tmp_path / "s.db")
    run = store.new_run(suite="t", suite_json={}, environment={}, calibration={}, settings={}, cases_total=1)
    store.add_result(run, result)
    assert store.results(run)[0].compile_counts == counts
    assert Result.from_dict(result.to_dict()) == result
    row = result_row(result)
    assert (row["compile_graphs"], row["compile_graph_breaks"], row["compile_recompiles"]) == (4, 1, 0)
    assert row["warnings"] == ""


def test_each_compile_mode_is_a_compiler_of_its_own_and_compile_keeps_its_key():
    assert COMPILERS == ("eager", "compile", "compile-reduce-overhead", "compile-max-autotune")
    assert Case("m", compiler="compile").compile_mode == "default" and Case("m").compile_mode is None
    assert Case("m", compiler="compile-reduce-overhead").compile_mode == "reduce-overhead"
    assert Case("m", compiler="compile").key == "m|cpu|b1|fp32|contiguous|infer|compile|t1|3x224x224"
    cases = suite_from_dict({"models": ["lenet5"], "compilers": ["eager", "compile-max-autotune"]}, name="t").cases()
    assert sorted(c.compiler for c in cases) == ["compile-max-autotune", "eager"]


def test_the_mode_reaches_torch_compile(monkeypatch):
    seen = []
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: seen.append(mode) or model)
    Prepared(Case("lenet5", compiler="compile-reduce-overhead", input_shape=(1, 32, 32)))
    Prepared(Case("lenet5", compiler="compile", input_shape=(1, 32, 32)))
    assert seen == ["reduce-overhead", "default"]


def test_a_compile_mode_that_does_not_exist_is_one_line(capsys):
    from bench.cli import main

    assert main(["run", "--dry-run", "--models", "lenet5", "--compiler", "compile-turbo"]) == 2
    err = capsys.readouterr().err
    assert "got 'compile-turbo'" in err and "compile-reduce-overhead" in err and err.count("\n") == 1
