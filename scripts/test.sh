#!/usr/bin/env bash
# The whole test suite: set up, then pytest. Extra arguments go to pytest.
source "$(dirname "$0")/setup.sh"
exec .venv/bin/python -m pytest "$@"
