#!/usr/bin/env bash
# The whole test suite: set up, start a throwaway PostgreSQL server and single-node Slurm cluster, pytest, stop both.
# Extra arguments go to pytest.
source "$(dirname "$0")/setup.sh"
# The report's browser test drives Debian's chromium and the instruction-count tests run valgrind; as root with apt,
# install them (elsewhere those tests skip, saying why).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's ${missing[*]} for the browser and instruction-count tests" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
source scripts/postgres.sh
source scripts/slurm.sh
trap 'slurm_stop; postgres_stop' EXIT
postgres_start
slurm_start
.venv/bin/python -m pytest "$@"
