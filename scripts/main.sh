#!/usr/bin/env bash
# The main job: set up, measure the default (quick) suite into results/cnnbench.db, write reports/index.html.
# Extra arguments go to `cnnbench run` (e.g. --suite ci, --models 'vgg1*').
source "$(dirname "$0")/setup.sh"
.venv/bin/cnnbench run "$@"
.venv/bin/cnnbench report --latest -o reports/index.html
