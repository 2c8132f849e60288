#!/bin/sh
# Runs the MOOD image the way the organisers do, on small seeded sets, and checks it:
#
#   sh scripts/test-image.sh [IMAGE]        (default: localhost/moodlsr:debian, from scripts/build-image.sh)
#
# 1. Sets (moodlsr inject, fixed seeds, kept in IMAGE_WORK/sets): brain 256³ (one normal, one anomaly) and
#    abdomen 512³ (one anomaly), the MOOD geometry, which the shipped default method (zscore) needs; and a
#    64³ brain set (one normal, two anomalies) for the network method(s) of MOODLSR_TEST_METHODS.
# 2. Each of the four entry scripts, exactly as the organisers run them (without --gpus here):
#      podman run --read-only --network none -v IN:/mnt/data:ro -v OUT:/mnt/pred IMAGE \
#          sh /workspace/run_TASK_REGION.sh /mnt/data /mnt/pred
#    (--read-only-tmpfs=false: podman's --read-only otherwise mounts writable tmpfs on /tmp, /var/tmp and
#    /run, which Docker's does not.) The network methods run the brain scripts with -e MOODLSR_METHOD=M.
# 3. Checks: the organisers' checks of every output folder (scripts/check-image-outputs.ts organisers:
#    names, shapes, values in [0, 1], nothing left behind, AP, time per case); the outputs equal the host
#    CLI's (the same scripts run from this checkout): byte-identical, else within MOODLSR_TOLERANCE; the
#    inputs are unchanged; and, run once more with a WRITABLE root file system, `podman diff` shows the
#    scripts write nothing outside /mnt/pred.
# 4. Reports the image size, the start-up time and the seconds per case (also in WORK/report.txt).
#
# Environment (all optional):
#   MOODLSR_IMAGE_WORK            scratch folder (default /var/tmp/moodlsr-image; this test uses its test/)
#   MOODLSR_TEST_METHODS          network methods to run on the 64³ brain set (default: lsgs; "" for none)
#   MOODLSR_TOLERANCE             largest allowed difference where outputs are not byte-identical (default 1e-4)
#   MOODLSR_MAX_SECONDS_PER_CASE  time budget per case of one run, start-up included (default 600)
# Needs podman, root, a checkout with node_modules (npm ci) and data/mricron (sh scripts/fetch-data.sh).
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
root=$(CDPATH= cd -- "$here/.." && pwd)
. "$here/image-lib.sh"

image=${1:-localhost/moodlsr:debian}
methods=${MOODLSR_TEST_METHODS-lsgs}
tolerance=${MOODLSR_TOLERANCE:-1e-4}
budget=${MOODLSR_MAX_SECONDS_PER_CASE:-600}
work=$IMAGE_WORK/test
report=$work/report.txt
head_src=$root/data/mricron/ch2bet.nii.gz

command -v podman >/dev/null 2>&1 || die "podman is not installed (apt-get install podman)"
podman image exists "$image" || die "no image $image: build it with sh scripts/build-image.sh"
[ -f "$head_src" ] || die "$head_src is missing: run sh scripts/fetch-data.sh"
cd "$root"
echo "== host build: tsc -p tsconfig.json"
"$root/node_modules/.bin/tsc" -p tsconfig.json || die "the host build failed (npm ci first?)"
cli="$root/dist/src/cli.js"
check="$root/dist/scripts/check-image-outputs.js"

rm -rf -- "$work"
mkdir -p -- "$work"
failures=0
fail() {
    echo "FAIL: $*" | tee -a "$report" >&2
    failures=$((failures + 1))
}
note() {
    echo "$*" | tee -a "$report"
}
now() {
    date +%s.%N
}
elapsed() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'
}

probe_podman "$image"
size=$(podman image inspect --format '{{.Size}}' "$image")
note "image $image: $((size / 1000000)) MB; podman options here: ${podman_global:-none} before run, ${run_options:-none} after it"

# make_set NAME INJECT_ARGS...: a seeded toy-format set, kept in IMAGE_WORK/sets between runs (the same
# arguments give the same bytes; a 512³ abdomen takes minutes to make).
make_set() {
    name=$1
    shift
    cached=$IMAGE_WORK/sets/$name
    if [ "$(cat "$cached.args" 2>/dev/null)" != "$*" ]; then
        rm -rf -- "$cached" "$cached.args"
        mkdir -p -- "$IMAGE_WORK/sets"
        node "$cli" inject --out "$cached" "$@"
        echo "$*" > "$cached.args"
    fi
    mkdir -p -- "$work/data"
    cp -a -- "$cached" "$work/data/$name"
}
echo "== sets"
make_set brain --src "$head_src" --normal 1 --per-kind 1 --kinds uniform --seed 1
make_set abdom --region abdom --normal 0 --per-kind 1 --kinds uniform --seed 1
make_set brain64 --src "$head_src" --size 64 --normal 1 --per-kind 1 --kinds uniform,noise --seed 2
inputs_before=$(cd "$work/data" && find . -type f | sort | xargs sha256sum)

# Start-up: an empty container, then Node loading the CLI.
t0=$(now)
# shellcheck disable=SC2086 # lists of words
podman $podman_global run $run_options --rm --read-only --read-only-tmpfs=false --network none "$image" true
t1=$(now)
# shellcheck disable=SC2086
podman $podman_global run $run_options --rm --read-only --read-only-tmpfs=false --network none "$image" node /workspace/dist/src/cli.js --version >/dev/null
t2=$(now)
note "start-up: container $(elapsed "$t0" "$t1") s, container + node + CLI $(elapsed "$t1" "$t2") s"

# run_case SET TASK REGION METHOD: the image (the organisers' command), the host, and the checks.
run_case() {
    set_dir=$work/data/$1
    task=$2
    region=$3
    method=$4
    label="$1 $task $region ${method:-default}"
    out=$work/pred/image/$1-$task-${method:-default}
    host=$work/pred/host/$1-$task-${method:-default}
    mkdir -p -- "$out" "$host"
    set --
    if [ -n "$method" ]; then set -- -e "MOODLSR_METHOD=$method"; fi
    echo "== image: $label"
    t0=$(now)
    # shellcheck disable=SC2086
    if ! podman $podman_global run $run_options --rm --read-only --read-only-tmpfs=false --network none \
        -v "$set_dir/toy:/mnt/data:ro" -v "$out:/mnt/pred" "$@" \
        "$image" sh "/workspace/run_${task}_${region}.sh" /mnt/data /mnt/pred; then
        fail "$label: the image's run exited non-zero"
    fi
    t1=$(now)
    seconds=$(elapsed "$t0" "$t1")
    echo "== host: $label"
    if ! MOODLSR_METHOD=$method sh "$root/scripts/run_${task}_${region}.sh" "$set_dir/toy" "$host"; then
        fail "$label: the host run exited non-zero"
    fi
    if ! checked=$(node "$check" organisers --set "$set_dir" --pred "$out" --task "$task" --seconds "$seconds" --max-seconds-per-case "$budget"); then
        fail "$label: the organisers' checks"
    fi
    if ! compared=$(node "$check" compare --task "$task" --expected "$host" --actual "$out" --tolerance "$tolerance"); then
        fail "$label: the image's outputs differ from the host's"
    fi
    note "$label: $seconds s; ${checked#"$out": }; ${compared#"$out": }"
}

# The organisers' four runs, with the default method (shipped weights/REGION/default-method, else zscore).
run_case brain sample brain ""
run_case brain pixel brain ""
run_case abdom sample abdom ""
run_case abdom pixel abdom ""
for method in $methods; do
    run_case brain64 sample brain "$method"
    run_case brain64 pixel brain "$method"
done

[ "$inputs_before" = "$(cd "$work/data" && find . -type f | sort | xargs sha256sum)" ] || fail "an input file changed"

# Nothing written outside /mnt/pred, even where the root file system lets it: podman diff of a writable run
# (vae-rec: a network method, quick at 64³), less what podman itself changes in any container (here "C /etc",
# its mount points for /etc/hosts and /etc/resolv.conf), measured on a container that runs `true`.
# writable_diff OUT LIST COMMAND...: runs COMMAND with a writable root; LIST gets the container's changes, sorted.
writable_diff() {
    out=$1
    list=$2
    shift 2
    mkdir -p -- "$out"
    # shellcheck disable=SC2086
    container=$(podman $podman_global create $run_options --network none -v "$work/data/brain64/toy:/mnt/data:ro" -v "$out:/mnt/pred" \
        -e MOODLSR_METHOD=vae-rec "$image" "$@")
    podman start --attach "$container" >/dev/null 2>&1 || fail "$* with a writable root exited non-zero"
    podman diff "$container" | sort > "$list"
    podman rm "$container" >/dev/null
}
writable_diff "$work/pred/writable-baseline" "$work/diff-baseline" true
for task in sample pixel; do
    out=$work/pred/writable-$task
    writable_diff "$out" "$work/diff-$task" sh "/workspace/run_${task}_brain.sh" /mnt/data /mnt/pred
    [ "$(ls "$out" | wc -l)" = 3 ] || fail "run_${task}_brain.sh with a writable root: $(ls "$out" | wc -l) outputs, expected 3"
    changes=$(comm -23 "$work/diff-$task" "$work/diff-baseline")
    if [ -n "$changes" ]; then
        fail "run_${task}_brain.sh wrote outside /mnt/pred: $(echo "$changes" | tr '\n' ' ')"
    else
        note "run_${task}_brain.sh with a writable root: podman diff shows only podman's own changes ($(tr '\n' ' ' < "$work/diff-baseline")): nothing written outside /mnt/pred"
    fi
done

if [ "$failures" -gt 0 ]; then
    echo "== $failures failure(s); report: $report" >&2
    exit 1
fi
echo "== all checks pass; report: $report"
