# Shared by scripts/build-image.sh and scripts/test-image.sh (sourced, not run): which container tool
# and OCI runtime work on this machine, and the options `podman run` needs here.
#
# Why the probing: on the sandboxed development machines (Debian 12, podman 4.3, crun 1.8, cgroup v1
# controllers plus a cgroup2 hierarchy with hugetlb enabled, no CAP_SYS_RESOURCE)
#   - crun refuses every container: "crun: cgroups in hybrid mode not supported, drop all controllers
#     from cgroupv2" (with --cgroups=disabled too); runc 1.1 runs them;
#   - podman's rootful default open-files limit (1048576) is above the hard limit here (20000), and
#     raising a hard limit needs CAP_SYS_RESOURCE: "setrlimit `RLIMIT_NOFILE`: Operation not permitted";
#     with only --ulimit nofile given, RLIMIT_NPROC fails the same way. Passing both at the hard limits
#     the runtime inherits works.
# Elsewhere the defaults work and nothing is added.

IMAGE_WORK=${MOODLSR_IMAGE_WORK:-/var/tmp/moodlsr-image}

die() {
    echo "$0: $*" >&2
    exit 1
}

# MOODLSR_CONTAINER_TOOL, else podman, else buildah (image building only).
pick_container_tool() {
    if [ -n "${MOODLSR_CONTAINER_TOOL:-}" ]; then
        command -v "$MOODLSR_CONTAINER_TOOL" >/dev/null 2>&1 || die "MOODLSR_CONTAINER_TOOL=$MOODLSR_CONTAINER_TOOL is not installed"
        echo "$MOODLSR_CONTAINER_TOOL"
    elif command -v podman >/dev/null 2>&1; then
        echo podman
    elif command -v buildah >/dev/null 2>&1; then
        echo buildah
    else
        die "neither podman nor buildah is installed (Debian: apt-get install podman buildah)"
    fi
}

# The hard limit of a resource as the OCI runtime inherits it ("Max open files", "Max processes").
hard_limit() {
    awk -v name="$1" 'index($0, name) == 1 { print $(NF - 1) }' /proc/self/limits
}

# The options `podman run` needs on this machine, found by starting `true` in IMAGE: none, else runc,
# else runc with the inherited hard ulimits. Sets podman_global (before `run`) and run_options (after it);
# fails with the errors of every try.
probe_podman() {
    image=$1
    nofile=$(hard_limit "Max open files")
    nproc=$(hard_limit "Max processes")
    # the runtime here inherits a lower process limit than the shell's (32768); a lower one is harmless
    [ "$nproc" = unlimited ] || [ "$nproc" -le 32768 ] || nproc=32768
    limits="--ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc"
    for try in "|" "--runtime runc|" "--runtime runc|$limits"; do
        podman_global=${try%%|*}
        run_options=${try#*|}
        # shellcheck disable=SC2086 # lists of words
        if err=$(podman $podman_global run $run_options --rm --network none "$image" true 2>&1); then
            return 0
        fi
        echo "$0: podman ${podman_global:+$podman_global }run ${run_options:+$run_options }$image true: $err" >&2
    done
    die "no podman options start a container here (see the errors above)"
}

# The OCI runtime for RUN steps of a build: runc where the default fails (see above), probed with IMAGE.
build_runtime_option() {
    tool=$1
    image=$2
    if [ "$tool" != podman ]; then
        if command -v runc >/dev/null 2>&1; then echo "--runtime runc"; fi
        return 0
    fi
    if podman run --rm --network none "$image" true >/dev/null 2>&1; then
        echo ""
    else
        echo "--runtime runc"
    fi
}
