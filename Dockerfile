# MOOD challenge submission image for moodlsr.
#
#   docker build -t moodlsr .                        # GPU image on the CUDA base (needs Docker Hub, nodejs.org, Google storage)
#   sh scripts/build-image.sh                        # CPU image on an offline Debian base (podman/buildah; needs the npm registry)
#   docker run --gpus all --read-only --network none \
#       -v "$PWD/data":/mnt/data:ro -v "$PWD/pred":/mnt/pred \
#       moodlsr sh /workspace/run_pixel_brain.sh /mnt/data /mnt/pred
#
# Build arguments:
#   BASE          the base of the image. Default: the CUDA 11.2 + cuDNN 8 runtime, which tfjs-node-gpu
#                 4.22 is built against. scripts/build-image.sh passes a local Debian bookworm base made
#                 with debootstrap.
#   BUILD_BASE    the base of the build stage (default: BASE). scripts/build-image.sh passes the same
#                 Debian base with Node 20 and npm in /usr/local.
#   GPU           1 (default): install @tensorflow/tfjs-node-gpu and fail the build unless it loads.
#                 0: leave the optional dependencies out (moodlsr then runs the networks on ONNX Runtime's
#                 CPU kernels, as on a machine where tfjs-node-gpu cannot install).
#   NODE_VERSION  the Node 20 release fetched from nodejs.org when the base has no `node`.
# Running the image needs no network. See docs/docker.md.
ARG BASE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04
ARG BUILD_BASE=${BASE}

# ---------------------------------------------------------------------------------------------
# build stage: Node, the npm dependencies (with the native TensorFlow binding when GPU=1), the compiled package
FROM ${BUILD_BASE} AS build

ARG NODE_VERSION=20.18.1
ARG GPU=1
ENV DEBIAN_FRONTEND=noninteractive

# Node 20: the base's own `node` when it has one, else the official tarball, checked against the
# release's SHA-256 list (curl/xz fetch it). python3, make and g++ let node-gyp compile the tfjs
# binding when no prebuilt one matches (GPU=1 only). No apt at all for the offline base with GPU=0.
RUN set -eu; \
    packages=""; \
    if ! command -v node >/dev/null 2>&1; then packages="ca-certificates curl xz-utils"; fi; \
    if [ "$GPU" = 1 ]; then packages="$packages python3 make g++"; fi; \
    if [ -n "$packages" ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends $packages; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    if command -v node >/dev/null 2>&1; then \
        echo "Node $(node --version) from the base image at $(command -v node)"; \
    else \
        cd /tmp; \
        curl -fsSLO "https://nodejs.org/dist/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-x64.tar.xz"; \
        curl -fsSLO "https://nodejs.org/dist/v${NODE_VERSION}/SHASUMS256.txt"; \
        grep " node-v${NODE_VERSION}-linux-x64.tar.xz\$" SHASUMS256.txt | sha256sum -c -; \
        tar -xJf "node-v${NODE_VERSION}-linux-x64.tar.xz" -C /usr/local --strip-components=1 --no-same-owner; \
        rm -f "node-v${NODE_VERSION}-linux-x64.tar.xz" SHASUMS256.txt; \
    fi; \
    test "$(command -v node)" = /usr/local/bin/node; \
    node -e 'if (process.versions.node.split(".")[0] !== "20") { console.error("Node 20 needed, the image has " + process.version); process.exit(1); }'; \
    npm --version

WORKDIR /workspace

# Dependencies first (cached while package*.json do not change). --ignore-scripts skips the root
# package's `prepare` (the sources are not copied yet) and onnxruntime-node's download of CUDA
# libraries (its CPU binaries ship in the package). With GPU=1 the rebuild then runs tfjs-node-gpu's
# own install script, which downloads libtensorflow (GPU) and the native binding; with GPU=0 the
# optional dependencies (tfjs-node-gpu and its tree) are left out. Behind a TLS-intercepting proxy, pass
# its CA certificates as the build secret `ca_certs` (scripts/build-image.sh does, from NODE_EXTRA_CA_CERTS);
# a secret is mounted for this step only and never stored in the image.
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=ca_certs \
    if [ -f /run/secrets/ca_certs ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca_certs; fi; \
    if [ "$GPU" = 1 ]; then \
        npm ci --ignore-scripts --no-audit --no-fund && npm rebuild @tensorflow/tfjs-node-gpu; \
    else \
        npm ci --ignore-scripts --omit=optional --no-audit --no-fund; \
    fi

# npm drops an optional dependency whose install failed and still exits 0: fail the GPU build here instead.
RUN if [ "$GPU" = 1 ]; then \
        node -e "const tf = require('@tensorflow/tfjs-node-gpu'); console.log('tfjs-node-gpu', tf.version.tfjs, 'backend', tf.getBackend())"; \
    else \
        echo "GPU=0: no tfjs-node-gpu"; \
    fi

COPY tsconfig.json ./
COPY src ./src
COPY eval ./eval
COPY scripts ./scripts
# onnxruntime-node ships CPU binaries for every platform (~220 MB for macOS and Windows): keep linux/x64.
# Source maps (~200 MB, nearly all in @tensorflow) are read only under --enable-source-maps: drop them.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && find node_modules -name '*.map' -type f -delete \
 && for dir in node_modules/onnxruntime-node/bin/napi-v*; do \
        find "$dir" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +; \
        find "$dir/linux" -mindepth 1 -maxdepth 1 ! -name x64 -exec rm -rf {} +; \
    done \
 && if [ "$GPU" = 1 ]; then node -e "require('@tensorflow/tfjs-node-gpu')"; fi \
 && node -e "require('onnxruntime-node')" \
 && node dist/src/cli.js --version

# ---------------------------------------------------------------------------------------------
# runtime stage: the same base, Node's binary, the pruned package, weights and entry scripts
FROM ${BASE}

ARG GPU=1
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /workspace
COPY --from=build /workspace/package.json /workspace/package.json
COPY --from=build /workspace/node_modules /workspace/node_modules
COPY --from=build /workspace/dist /workspace/dist
COPY weights /workspace/weights
# The scripts find the package next to themselves (/workspace/dist) and the weights in /workspace/weights.
COPY scripts/mood-entry.sh scripts/run_sample_brain.sh scripts/run_pixel_brain.sh scripts/run_sample_abdom.sh scripts/run_pixel_abdom.sh /workspace/
RUN chmod +x /workspace/run_*.sh /workspace/mood-entry.sh \
 && mkdir -p /mnt/data /mnt/pred \
 && if [ "$GPU" = 1 ]; then node -e "require('@tensorflow/tfjs-node-gpu')"; fi \
 && node /workspace/dist/src/cli.js --version

# Nothing is written outside the output folder at run time (the scripts point HOME and TMPDIR into it),
# so `docker run --read-only` works. No ENTRYPOINT: MOOD runs `sh /workspace/run_X.sh /mnt/data /mnt/pred`.
