#!/usr/bin/env bash
# The main job: set up, then measure the default (quick) suite into results/cnnbench.db.
# Extra arguments go to `cnnbench run` (e.g. --suite ci, --models 'vgg1*').
source "$(dirname "$0")/setup.sh"
.venv/bin/cnnbench run "$@"
.venv/bin/cnnbench runs
