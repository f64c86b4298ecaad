#!/usr/bin/env bash
# The main job: set up, then show the model table and the full analysis of one model.
source "$(dirname "$0")/setup.sh"
.venv/bin/cnnbench list
echo
.venv/bin/cnnbench inspect "${1:-vgg16}"
