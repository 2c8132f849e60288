# MOOD challenge submission image for moodlsr.
#
#   docker build -t moodlsr .
#   docker run --gpus all --read-only --network none \
#       -v "$PWD/data":/mnt/data:ro -v "$PWD/pred":/mnt/pred \
#       moodlsr sh /workspace/run_pixel_brain.sh /mnt/data /mnt/pred
#
# The build needs the internet (Node tarball, npm registry, and the libtensorflow GPU archive that
# @tensorflow/tfjs-node-gpu downloads in its install script); running the image needs none.
# tfjs-node-gpu 4.22 is built against CUDA 11.2 + cuDNN 8.1, hence this base. See docs/docker.md.

# ---------------------------------------------------------------------------------------------
# build stage: Node, all npm dependencies (with the native TensorFlow binding), the compiled package
FROM nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04 AS build

ARG NODE_VERSION=20.18.1
ENV DEBIAN_FRONTEND=noninteractive

# curl/xz fetch Node; python3, make and g++ let node-gyp compile the tfjs binding when no prebuilt one matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl xz-utils python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

# Node 20 from the official tarball, checked against the release's SHA-256 list.
RUN set -eu; \
    cd /tmp; \
    curl -fsSLO "https://nodejs.org/dist/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-x64.tar.xz"; \
    curl -fsSLO "https://nodejs.org/dist/v${NODE_VERSION}/SHASUMS256.txt"; \
    grep " node-v${NODE_VERSION}-linux-x64.tar.xz\$" SHASUMS256.txt | sha256sum -c -; \
    tar -xJf "node-v${NODE_VERSION}-linux-x64.tar.xz" -C /usr/local --strip-components=1 --no-same-owner; \
    rm -f "node-v${NODE_VERSION}-linux-x64.tar.xz" SHASUMS256.txt; \
    node --version; npm --version

WORKDIR /workspace

# Dependencies first (cached while package*.json do not change). --ignore-scripts skips the root
# package's `prepare` (the sources are not copied yet); the rebuild then runs tfjs-node-gpu's own
# install script, which downloads libtensorflow (GPU) and the native binding.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild @tensorflow/tfjs-node-gpu

# npm drops an optional dependency whose install failed and still exits 0: fail the build here instead.
RUN node -e "const tf = require('@tensorflow/tfjs-node-gpu'); console.log('tfjs-node-gpu', tf.version.tfjs, 'backend', tf.getBackend())"

COPY tsconfig.json ./
COPY src ./src
COPY eval ./eval
COPY scripts ./scripts
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && node -e "require('@tensorflow/tfjs-node-gpu')" \
 && node dist/src/cli.js --version

# ---------------------------------------------------------------------------------------------
# runtime stage: the same CUDA runtime, Node's binary, the pruned package, weights and entry scripts
FROM nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04

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
 && node -e "require('@tensorflow/tfjs-node-gpu')" \
 && node /workspace/dist/src/cli.js --version

# Nothing is written outside the output folder at run time (the scripts point HOME and TMPDIR into it),
# so `docker run --read-only` works. No ENTRYPOINT: MOOD runs `sh /workspace/run_X.sh /mnt/data /mnt/pred`.
