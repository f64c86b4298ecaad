#!/usr/bin/env bash
# On a machine with CUDA: run the GPU check suite and write its store, a CSV and summary.md under OUTDIR, within
# a time bound that includes start-up; summary.md is written however the check ends (cut short, a check up front
# failed, the summary itself too slow): it then says so and holds what the store has.
#   bash scripts/gpu_check.sh OUTDIR      (a relative OUTDIR is taken from the directory you call it from)
# GPU_CHECK_SECONDS bounds the whole script (default 480: 8 minutes). Uses the python on PATH (or $PYTHON) with
# torch and torchvision already installed; installs cnnbench's other needs if missing. Exit status: the run's
# (124: cut short by the bound), 2 or 3 when a check up front failed.
set -uo pipefail
started=$SECONDS
out="${1:?usage: scripts/gpu_check.sh OUTDIR}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
budget="${GPU_CHECK_SECONDS:-480}"
KILL_AFTER=15   # s: after the run's SIGINT, before its SIGKILL
FINISH=25       # s: for the export and the summary (each bounded)
MIN_RUN=30      # s: a run given less than this measures nothing (CUDA start-up and calibration alone)
mkdir -p "$out" || exit 3

# until the summary replaces it: what a check ended before its summary leaves behind
printf '# GPU check: no summary\n\nThe check ended before it summarised its run; its store, if any, is gpu.db.\n' \
    > "$out/summary.md"
stop() {  # STATUS MESSAGE: a check up front failed; say so on stderr and in summary.md
    echo "error: $2" >&2
    printf '# GPU check: not run\n\n%s\n' "$2" > "$out/summary.md"
    exit "$1"
}

"$PY" -c 'import torch' 2>/dev/null || stop 2 "$PY cannot import torch; set PYTHON to one that can"
"$PY" -c 'import torchvision' 2>/dev/null || stop 2 "$PY cannot import torchvision (the models and the run record \
need it): install the torchvision built for torch $("$PY" -c 'import torch; print(torch.__version__)')"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || stop 2 "no CUDA device visible to torch"
"$PY" -c 'import pandas, sqlalchemy, rich, jinja2' 2>/dev/null \
    || "$PY" -m pip install -q pandas 'SQLAlchemy>=2' rich jinja2 \
    || stop 3 "cannot install pandas, SQLAlchemy, rich and jinja2 for $PY"
"$PY" -c 'import pynvml' 2>/dev/null || "$PY" -m pip install -q 'nvidia-ml-py>=12.535,<14' \
    || echo "warning: no nvidia-ml-py: the cases carry no GPU telemetry" >&2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# the machine as found; the summary reads the run's own record
timeout 30 "$PY" -m bench env --format json > "$out/env.json" || true

left=$(( budget - (SECONDS - started) - KILL_AFTER - FINISH ))
if [ "$left" -lt "$MIN_RUN" ]; then
    echo "error: start-up took $((SECONDS - started)) s of GPU_CHECK_SECONDS=$budget; nothing left to measure" >&2
    status=124
else
    timeout --signal=INT --kill-after="$KILL_AFTER" "$left" \
        "$PY" -m bench run --suite scripts/gpu_check.toml --store "$out/gpu.db" --quiet
    status=$?
fi
timeout 10 "$PY" -m bench export latest --store "$out/gpu.db" --format csv -o "$out/results.csv" >/dev/null 2>&1 || true
timeout 15 "$PY" scripts/gpu_summary.py "$out" "$status" \
    || echo "warning: no summary of the store within 15 s; summary.md says so" >&2
exit "$status"
