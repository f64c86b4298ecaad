#!/usr/bin/env bash
# On a machine with CUDA: run the GPU check suite and write its results and a short summary under OUTDIR.
#   bash scripts/gpu_check.sh OUTDIR
# Uses the python on PATH (or $PYTHON) with torch already installed; installs cnnbench's other needs if missing.
set -euo pipefail
out="${1:?usage: scripts/gpu_check.sh OUTDIR}"
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
mkdir -p "$out"
"$PY" -c 'import torch' 2>/dev/null || { echo "error: $PY cannot import torch; set PYTHON to one that can" >&2; exit 2; }
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "error: no CUDA device visible to torch")'
"$PY" -c 'import pandas, sqlalchemy, rich' 2>/dev/null || "$PY" -m pip install -q pandas 'SQLAlchemy>=2' rich
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -m bench env --format json > "$out/env.json"
"$PY" -m bench run --suite scripts/gpu_check.toml --store "$out/gpu.db" --quiet
"$PY" -m bench export latest --store "$out/gpu.db" --format csv -o "$out/results.csv"
"$PY" - "$out" <<'PY'
import json, sys
from pathlib import Path
from bench.results import load
out = Path(sys.argv[1])
env = json.loads((out / "env.json").read_text())
frame = load(store=str(out / "gpu.db"))
lines = [f"# GPU check on {env['gpu_name']} (driver {env['gpu_driver']}, torch {env['torch']}, CUDA {env['cuda_build']})", "",
         f"run {frame['run_id'].iloc[0]}; statuses: {frame['status'].value_counts().to_dict()}", "",
         "| model | batch | variant | mode | status | p50 ms (events) | p50 ms (host) | img/s | cold start ms | peak alloc MiB | rel err |",
         "| --- | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
for _, r in frame.iterrows():
    def f(v, d=3):
        return "-" if v is None or v != v else f"{v:.{d}f}"
    mib = r["cuda_peak_allocated_bytes"] / 2**20 if r["cuda_peak_allocated_bytes"] == r["cuda_peak_allocated_bytes"] and r["cuda_peak_allocated_bytes"] is not None else None
    lines.append(f"| {r['model']} | {r['batch_size']} | {r['variant']} | {r['mode']} | {r['status']} | {f(r['latency_ms_p50'])} | "
                 f"{f(r['host_latency_ms_p50'])} | {f(r['throughput_img_s'], 1)} | {f(r['cold_start_ms'], 1)} | {f(mib, 1)} | {f(r['output_rel_err'], 4)} |")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
