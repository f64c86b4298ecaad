# Sourced by main.sh and test.sh: make .venv in the checkout and install cnnbench into it (editable),
# again only when pyproject.toml changed. Needs Python 3.10+ with venv and pip; set PYTHON to choose one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "error: cnnbench needs Python 3.10 or newer, $PYTHON is $("$PYTHON" -V 2>&1)" >&2; exit 2; }
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $("$PYTHON" -V)" >&2
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.cnnbench-installed"
want="$(cat pyproject.toml | "$PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing cnnbench and its dependencies into .venv (torch is large: a few minutes the first time)" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[test]'
    echo "$want" > "$stamp"
fi
