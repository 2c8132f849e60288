#!/bin/sh
# MOOD entry point: pixel task, brain dataset.
#   sh run_pixel_brain.sh INPUT_DIR OUTPUT_DIR
# Everything else (outputs, scratch folder, environment variables, exit status): mood-entry.sh beside this file.
set -eu
if [ "$#" -ne 2 ]; then
    echo "usage: sh $0 INPUT_DIR OUTPUT_DIR" >&2
    exit 64
fi
exec sh "$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)/mood-entry.sh" pixel brain "$1" "$2"
