#!/bin/sh
# Builds the MOOD submission image from this checkout with podman (or buildah).
#
#   sh scripts/build-image.sh [debian|cuda]          (default: debian)
#
# debian: no container registry needed. The base is a Debian bookworm rootfs made with debootstrap
#         from a Debian mirror, imported as the local image localhost/moodlsr-base:bookworm; the build
#         stage's base, localhost/moodlsr-base:bookworm-node20, is the same rootfs with this machine's
#         Node 20 and its npm in /usr/local. The build fetches npm packages from the npm registry; the
#         image runs the networks on ONNX Runtime's CPU kernels (GPU=0).
# cuda:   the Dockerfile's defaults: the nvidia/cuda base from Docker Hub, Node from nodejs.org,
#         tfjs-node-gpu with libtensorflow from Google's storage, and the check that it loads.
#
# Environment (all optional):
#   MOODLSR_CONTAINER_TOOL podman or buildah (default: podman when installed)
#   MOODLSR_IMAGE         tag of the image (default: localhost/moodlsr:debian or localhost/moodlsr:cuda)
#   MOODLSR_IMAGE_WORK    scratch folder for the rootfs (default: /var/tmp/moodlsr-image)
#   DEBIAN_MIRROR         Debian mirror for debootstrap (default: http://deb.debian.org/debian)
#   MOODLSR_NODE          the Node 20 binary to copy into the base (default: `command -v node`);
#                         its npm is taken from <prefix>/lib/node_modules/npm
#   MOODLSR_FRESH_BASE=1  make the base again even if the image exists
#   MOODLSR_CA_CERTS      CA certificates the build trusts for the npm registry (default: NODE_EXTRA_CA_CERTS),
#                         for a TLS-intercepting proxy; passed as a build secret, not stored in the image
# Prints the image's size and the build times at the end.
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
root=$(CDPATH= cd -- "$here/.." && pwd)
. "$here/image-lib.sh"

flavour=${1:-debian}
case "$flavour" in
    debian | cuda) ;;
    *) die "usage: sh $0 [debian|cuda]" ;;
esac
image=${MOODLSR_IMAGE:-localhost/moodlsr:$flavour}
base_image=localhost/moodlsr-base:bookworm
build_base_image=localhost/moodlsr-base:bookworm-node20
tool=$(pick_container_tool)
started=$(date +%s)

# The Node 20 install of this machine: the binary and the npm beside it (<prefix>/lib/node_modules/npm).
node_install() {
    node=${MOODLSR_NODE:-$(command -v node || true)}
    [ -n "$node" ] && [ -x "$node" ] || die "no node binary found (set MOODLSR_NODE)"
    node=$(readlink -f -- "$node")
    major=$("$node" -p 'process.versions.node.split(".")[0]')
    [ "$major" = 20 ] || die "$node is Node $("$node" --version), the image needs Node 20 (set MOODLSR_NODE)"
    npm_dir=$(CDPATH= cd -- "$(dirname -- "$node")/../lib/node_modules/npm" 2>/dev/null && pwd) ||
        die "no npm beside $node (looked in $(dirname -- "$node")/../lib/node_modules/npm)"
}

# debootstrap + Node 20 + import: the offline base image.
make_debian_base() {
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (apt-get install debootstrap)"
    [ "$(id -u)" = 0 ] || die "debootstrap and the rootful podman build need root"
    node_install
    mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
    rootfs=$IMAGE_WORK/rootfs
    mkdir -p -- "$IMAGE_WORK"
    rm -rf -- "$rootfs"
    echo "== debootstrap --variant=minbase bookworm $rootfs $mirror"
    t0=$(date +%s)
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$IMAGE_WORK/debootstrap.log" 2>&1 ||
        die "debootstrap failed, see $IMAGE_WORK/debootstrap.log: $(tail -n 1 "$IMAGE_WORK/debootstrap.log")"
    echo "   $(($(date +%s) - t0)) s"

    # Package lists, caches and documentation are not needed in the image.
    rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"* "$rootfs/var/cache/debconf/"*-old \
        "$rootfs/usr/share/doc/"* "$rootfs/usr/share/man/"* "$rootfs/usr/share/info/"* "$rootfs/var/log/"*
    import_rootfs "$rootfs" "$base_image"

    echo "== Node $("$node" --version) ($node) and npm $("$node" "$npm_dir/bin/npm-cli.js" --version) ($npm_dir) into /usr/local"
    install -D -m 0755 "$node" "$rootfs/usr/local/bin/node"
    mkdir -p "$rootfs/usr/local/lib/node_modules"
    cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
    chroot "$rootfs" /usr/local/bin/node -e 'console.log("node", process.version, "runs in the rootfs")' ||
        die "the copied node does not run in the Debian rootfs (missing libraries?)"
    import_rootfs "$rootfs" "$build_base_image"
    rm -rf -- "$rootfs"
}

# import_rootfs DIR IMAGE: a folder as a one-layer image.
import_rootfs() {
    echo "== import $2"
    tarball=$IMAGE_WORK/rootfs.tar
    tar -C "$1" --numeric-owner -cf "$tarball" .
    path_env="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    if [ "$tool" = podman ]; then
        podman import --change "ENV $path_env" --change "CMD [\"/bin/sh\"]" "$tarball" "$2" >/dev/null
    else
        container=$(buildah from scratch)
        buildah add "$container" "$tarball" / >/dev/null
        buildah config --env "$path_env" --cmd /bin/sh "$container"
        buildah commit --rm "$container" "$2" >/dev/null
    fi
    rm -f -- "$tarball"
}

image_exists() {
    if [ "$tool" = podman ]; then podman image exists "$1"; else buildah inspect --type image "$1" >/dev/null 2>&1; fi
}

if [ "$flavour" = debian ]; then
    if [ "${MOODLSR_FRESH_BASE:-0}" = 1 ] || ! image_exists "$base_image" || ! image_exists "$build_base_image"; then
        make_debian_base
    else
        echo "== bases $base_image and $build_base_image exist (MOODLSR_FRESH_BASE=1 makes them again)"
    fi
    base_done=$(date +%s)
    runtime=$(build_runtime_option "$tool" "$base_image")
    set -- --build-arg "BASE=$base_image" --build-arg "BUILD_BASE=$build_base_image" --build-arg GPU=0
else
    base_done=$(date +%s)
    runtime=""
    set --
fi

# CA certificates of a TLS-intercepting proxy between the build and the npm registry: a build secret.
ca_certs=${MOODLSR_CA_CERTS:-${NODE_EXTRA_CA_CERTS:-}}
if [ -n "$ca_certs" ]; then
    [ -f "$ca_certs" ] || die "CA certificates $ca_certs (MOODLSR_CA_CERTS or NODE_EXTRA_CA_CERTS) do not exist"
    set -- "$@" --secret "id=ca_certs,src=$ca_certs"
fi

echo "== $tool build ${runtime:+$runtime }$* -t $image $root"
if [ "$tool" = podman ]; then
    # shellcheck disable=SC2086 # runtime is a list of words
    podman build $runtime --layers "$@" -t "$image" -f "$root/Dockerfile" "$root"
else
    # shellcheck disable=SC2086
    buildah bud $runtime --layers "$@" -t "$image" -f "$root/Dockerfile" "$root"
fi
finished=$(date +%s)

if [ "$tool" = podman ]; then
    size=$(podman image inspect --format '{{.Size}}' "$image")
    size="$size bytes ($((size / 1000000)) MB)"
else
    size=$(buildah images --noheading --format '{{.Size}}' "$image")
fi
echo "== built $image: $size; base $((base_done - started)) s, image build $((finished - base_done)) s"
