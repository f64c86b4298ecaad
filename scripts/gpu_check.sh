#!/usr/bin/env bash
# On a machine with CUDA: run the GPU check suite and write its store, a CSV and summary.md under OUTDIR, within
# a time bound that includes start-up; summary.md is written even when the run is cut short (it then says so
# and holds what the store has).
#   bash scripts/gpu_check.sh OUTDIR      (a relative OUTDIR is taken from the directory you call it from)
# GPU_CHECK_SECONDS bounds the whole script (default 480: 8 minutes). Uses the python on PATH (or $PYTHON) with
# torch and torchvision already installed; installs cnnbench's other needs if missing. Exit status: the run's.
set -uo pipefail
started=$SECONDS
out="${1:?usage: scripts/gpu_check.sh OUTDIR}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
budget="${GPU_CHECK_SECONDS:-480}"
mkdir -p "$out" || exit 3
"$PY" -c 'import torch' 2>/dev/null || { echo "error: $PY cannot import torch; set PYTHON to one that can" >&2; exit 2; }
"$PY" -c 'import torchvision' 2>/dev/null || {
    echo "error: $PY cannot import torchvision (the models and the run record need it): install the torchvision" \
         "built for torch $("$PY" -c 'import torch; print(torch.__version__)')" >&2; exit 2; }
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "error: no CUDA device visible to torch")' \
    || exit 2
"$PY" -c 'import pandas, sqlalchemy, rich, jinja2' 2>/dev/null \
    || "$PY" -m pip install -q pandas 'SQLAlchemy>=2' rich jinja2 || exit 3
"$PY" -c 'import pynvml' 2>/dev/null || "$PY" -m pip install -q 'nvidia-ml-py>=12.535,<14' \
    || echo "warning: no nvidia-ml-py: the cases carry no GPU telemetry" >&2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -m bench env --format json > "$out/env.json" || true  # the machine as found; the summary reads the run's record
left=$(( budget - (SECONDS - started) - 40 ))  # 40 s kept for the export and the summary
if [ "$left" -lt 30 ]; then
    echo "error: start-up took $((SECONDS - started)) s of GPU_CHECK_SECONDS=$budget; nothing left to measure" >&2
    left=1
fi
timeout --signal=INT --kill-after=15 "$left" "$PY" -m bench run --suite scripts/gpu_check.toml --store "$out/gpu.db" --quiet
status=$?
"$PY" -m bench export latest --store "$out/gpu.db" --format csv -o "$out/results.csv" >/dev/null 2>&1 || true
"$PY" scripts/gpu_summary.py "$out" "$status"
exit "$status"
