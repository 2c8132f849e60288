#!/bin/sh
# MOOD entry point: sample task, abdominal dataset.
#   sh run_sample_abdom.sh INPUT_DIR OUTPUT_DIR
# Everything else (outputs, scratch folder, environment variables, exit status): mood-entry.sh beside this file.
set -eu
if [ "$#" -ne 2 ]; then
    echo "usage: sh $0 INPUT_DIR OUTPUT_DIR" >&2
    exit 64
fi
exec sh "$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)/mood-entry.sh" sample abdom "$1" "$2"
