#!/usr/bin/env bash
# The whole test suite: set up, then pytest. Extra arguments go to pytest.
source "$(dirname "$0")/setup.sh"
# The report's browser test drives Debian's chromium; as root with apt, install it (else that test skips, saying why).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium for the browser test" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
exec .venv/bin/python -m pytest "$@"
