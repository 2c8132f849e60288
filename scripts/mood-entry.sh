#!/bin/sh
# The body of the four MOOD entry points (run_{sample,pixel}_{brain,abdom}.sh), which call it as
#   sh mood-entry.sh TASK REGION INPUT_DIR OUTPUT_DIR
# Scores every *.nii / *.nii.gz F of INPUT_DIR into OUTPUT_DIR: F.txt (one score) or F (a voxel map).
# Works on a read-only root file system: HOME and TMPDIR point into OUTPUT_DIR while it runs, and
# that scratch folder is removed at the end. The package is found relative to this script: the
# script's own folder (/workspace in the image) or its parent (scripts/ in a checkout).
# Environment (all optional):
#   MOODLSR_METHOD   scoring method (zscore, lsr, lsgs, vae-…, disyre); default: the one named in
#                    <package>/weights/REGION/default-method (one name for both tasks, or lines
#                    sample=M / pixel=M), else zscore
#   MOODLSR_WEIGHTS  weights folder; default: the method's shipped weights (weights/REGION, or its
#                    lsr/, lsgs/, vae/ or disyre/ sub-folder)
#   MOODLSR_SHARD    K/N: score only the K-th of N parts of the sorted case list (SLURM array, k8s Job)
#   MOODLSR_SEED     seed of every random draw (default 0)
# Exit status: that of `moodlsr predict` (0 all cases written, 2 some failed, 1 fatal); 64 on misuse;
# 130 / 143 / 129 after SIGINT / SIGTERM / SIGHUP, which are forwarded to predict (it removes its
# temporary files and stops at once), so `docker stop` and Ctrl-C leave nothing behind.
set -eu

if [ "$#" -ne 4 ]; then
    echo "usage: sh run_TASK_REGION.sh INPUT_DIR OUTPUT_DIR" >&2
    exit 64
fi
task=$1
region=$2
input=$3
output=$4
case "$task/$region" in
    sample/brain | pixel/brain | sample/abdom | pixel/abdom) ;;
    *) echo "$0: unknown task/region $task/$region" >&2; exit 64 ;;
esac

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
if [ -f "$here/dist/src/cli.js" ]; then
    package=$here
elif [ -f "$here/../dist/src/cli.js" ]; then
    package=$(CDPATH= cd -- "$here/.." && pwd)
else
    echo "$0: cannot find dist/src/cli.js next to this script or in its parent folder (run npm run build)" >&2
    exit 1
fi

if [ -n "${MOODLSR_METHOD:-}" ]; then
    method=$MOODLSR_METHOD
elif [ -f "$package/weights/$region/default-method" ]; then
    defaults=$package/weights/$region/default-method
    # A line TASK=METHOD names this task's method; a line without '=' names the method of every task.
    method=$(tr -d "\r" < "$defaults" | sed -n "s/^ *$task *= *\([^ ]*\).*/\1/p" | head -n 1)
    [ -n "$method" ] || method=$( (grep -v '=' "$defaults" || true) | tr -d ' \r' | sed '/^$/d' | head -n 1)
    [ -n "$method" ] || method=zscore
else
    method=zscore
fi

mkdir -p -- "$output"
host=$(uname -n)
# Scratch folders of earlier runs on this host whose shell is gone (killed with SIGKILL): remove them.
for old in "$output"/.tmp-"$host"-*; do
    [ -d "$old" ] || continue
    pid=${old#"$output"/.tmp-"$host"-}
    pid=${pid%%-*}
    case $pid in '' | *[!0-9]*) continue ;; esac
    if [ -d /proc/self ]; then [ -d "/proc/$pid" ] && continue; else kill -0 "$pid" 2>/dev/null && continue; fi
    rm -rf -- "$old"
done
# A scratch folder of this run's own (mkdir is atomic): shards sharing OUTPUT_DIR never share one.
attempt=0
until scratch="$output/.tmp-$host-$$-$attempt" && mkdir -- "$scratch" 2>/dev/null; do
    attempt=$((attempt + 1))
    if [ "$attempt" -ge 100 ]; then
        echo "$0: cannot create a scratch folder in $output" >&2
        exit 1
    fi
done
child=
# A signal goes to predict, which cleans up and ends; this script then exits with predict's status.
forward() {
    if [ -n "$child" ]; then kill "-$1" "$child" 2>/dev/null || true; else exit "$2"; fi
}
trap 'rm -rf -- "$scratch"' EXIT
trap 'forward INT 130' INT
trap 'forward TERM 143' TERM
trap 'forward HUP 129' HUP
mkdir -- "$scratch/home"
HOME=$scratch/home
TMPDIR=$scratch
export HOME TMPDIR

set -- --task "$task" --region "$region" -i "$input" -o "$output" --method "$method"
if [ -n "${MOODLSR_WEIGHTS:-}" ]; then
    set -- "$@" --weights "$MOODLSR_WEIGHTS"
fi
if [ -n "${MOODLSR_SHARD:-}" ]; then
    set -- "$@" --shard "$MOODLSR_SHARD"
fi
if [ -n "${MOODLSR_SEED:-}" ]; then
    set -- "$@" --seed "$MOODLSR_SEED"
fi

# In the background, so that the traps above run while it works (sh defers traps during a foreground command).
node "$package/dist/src/cli.js" predict "$@" &
child=$!
status=0
wait "$child" || status=$?
# A trapped signal ends `wait` early (status > 128): wait again until predict has really finished.
while [ "$status" -gt 128 ] && kill -0 "$child" 2>/dev/null; do
    status=0
    wait "$child" || status=$?
done
exit "$status"
