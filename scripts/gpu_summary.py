"""summary.md of a GPU check (scripts/gpu_check.sh) from whatever its store holds, also when the run was cut short.

    python scripts/gpu_summary.py OUTDIR RUN_EXIT_STATUS

The machine, versions and the TF32 and cudnn.benchmark flags come from the run's
own record (what its workers ran with), not from ``cnnbench env``; one row per
case with its status and reason, the GPU's telemetry and the row's warnings.
"""

from __future__ import annotations

import sys
from pathlib import Path

HOW_IT_ENDED = {0: "finished", 124: "cut short by the time bound", 130: "interrupted (cut short by the time bound)",
                137: "killed (cut short by the time bound)"}


def _f(value, digits: int = 3) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def _cell(text) -> str:
    return "-" if text is None or text != text or text == "" else str(text).replace("|", "/").replace("\n", " ")


def summary(out: Path, exit_status: int) -> str:
    from bench.errors import CnnbenchError
    from bench.results import load
    from bench.store import open_store

    ended = HOW_IT_ENDED.get(exit_status, f"ended with exit status {exit_status}")
    try:
        store = open_store(str(out / "gpu.db"), create=False)
        run_id = store.latest_run_id()
        run = store.run(run_id)
        frame = load(run_id, store)
    except CnnbenchError as exc:
        return f"# GPU check: no run recorded\n\nThe run {ended} before storing anything: {exc}\n"
    env = run["environment"]
    done = len(frame)
    complete = run["finished_at"] is not None and done >= run["cases_total"]
    lines = [
        f"# GPU check on {env.get('gpu_name')} (driver {env.get('gpu_driver')}, torch {env.get('torch')}, "
        f"CUDA {env.get('cuda_build')}, cuDNN {env.get('cudnn')})", "",
        f"run {run_id} {ended}: {done} of {run['cases_total']} cases stored"
        + ("" if complete else " (the rest were not reached)") + f"; statuses: "
        f"{frame['status'].value_counts().to_dict() if done else {}}",
        f"workers ran with TF32 matmul={env.get('tf32_matmul')}, TF32 cuDNN={env.get('tf32_cudnn')}, "
        f"cudnn.benchmark={env.get('cudnn_benchmark')} (from the run record); GPUs {env.get('gpu_uuids')}, "
        f"CUDA_VISIBLE_DEVICES={env.get('cuda_visible_devices')}", "",
        "| model | batch | variant | mode | status | reason | p50 ms (events) | enqueue ms p50 (host) | img/s | cold start ms "
        "| peak alloc MiB | rel err | SM MHz start/end | W end | C end | throttled | shared | warnings |",
        "| --- | ---: | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | --- "
        "| --- |",
    ]
    for _, r in frame.iterrows():
        alloc = r.get("cuda_peak_allocated_bytes")
        mib = alloc / 2**20 if alloc is not None and alloc == alloc else None
        clocks = f"{_f(r.get('gpu_sm_clock_mhz_start'), 0)}/{_f(r.get('gpu_sm_clock_mhz_end'), 0)}"
        lines.append(
            f"| {r['model']} | {r['batch_size']} | {r['variant']} | {r['mode']} | {r['status']} | {_cell(r['reason'])} | "
            f"{_f(r['latency_ms_p50'])} | {_f(r.get('enqueue_ms_p50'))} | {_f(r['throughput_img_s'], 1)} | "
            f"{_f(r['cold_start_ms'], 1)} | {_f(mib, 1)} | {_f(r['output_rel_err'], 4)} | {clocks} | "
            f"{_f(r.get('gpu_power_w_end'), 0)} | {_f(r.get('gpu_temperature_c_end'), 0)} | "
            f"{_cell(r.get('gpu_throttled'))} | {_cell(r.get('gpu_shared'))} | {_cell(r.get('warnings'))} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    out, status = Path(argv[0]), int(argv[1]) if len(argv) > 1 else 0
    text = summary(out, status)
    (out / "summary.md").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
