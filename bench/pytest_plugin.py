"""pytest plugin (entry point ``pytest11``): measure a harness case inside pytest-benchmark.

    def test_alexnet(cnnbench_case):
        cnnbench_case("alexnet", batch_size=1)

The fixture builds the case exactly as ``cnnbench run`` does (same model, input,
precision, memory format, mode, compiler, threads, validity checks), warms it up,
then hands its step to pytest-benchmark's ``benchmark`` fixture, so pytest-benchmark's
own storage, ``--benchmark-compare`` and ``--benchmark-compare-fail`` apply. The
case key and the static figures go into ``extra_info``, which
``cnnbench import-pytest-benchmark`` reads back.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest


@pytest.fixture
def cnnbench_case(benchmark) -> Callable[..., Any]:
    from .cases import Case, Measure, all_cores
    from .errors import BadValue
    from .prepare import Prepared, skip_reason, validity, warm_up
    from .record import failed_checks
    from .runner import static_figures
    from .zoo import resolve

    def measure_case(model: str, **axes: Any) -> Any:
        axes.setdefault("threads", all_cores())
        axes.setdefault("input_shape", resolve(model).input_shape)
        case = Case(model, **axes)
        reason = skip_reason(case)
        if reason:
            pytest.skip(reason)
        prep = Prepared(case)
        failed = failed_checks(validity(prep))
        if failed:
            raise BadValue(f"case {case.key} fails its validity checks: {', '.join(failed)}")
        step = prep.step()
        warm_up(step, case, Measure().warmup_seconds)
        benchmark.extra_info.update({"cnnbench_case": case.to_dict(), "case_key": case.key,
                                     **{k: v for k, v in static_figures(case).items() if v is not None}})
        benchmark.group = case.model
        return benchmark(step)

    return measure_case
