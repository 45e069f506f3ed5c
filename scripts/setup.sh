#!/usr/bin/env bash
# Sets up whatever is missing on a fresh Debian machine with Python 3.11:
# the Debian packages (offscreen OpenGL for pyrender, libraries OpenCV loads, SuiteSparse) and the pinned
# Python packages in .venv. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# libsuitesparse-dev: CHOLMOD, which scikit-sparse (the cloth solver's sparse Cholesky) builds against.
# chromium: the real browser the web_client tests drive with Playwright (Python), headless.
# redis-server: the rooms' cross-process broker; the tests start their own on a free port.
APT_PACKAGES="libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libgles2 libglib2.0-0 libsuitesparse-dev chromium redis-server"
missing=""
for p in $APT_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
PIP_ARGS="-q --disable-pip-version-check"
# The CPU build of torch lies on these machines' disk; elsewhere pip takes it from PyPI.
[ -d /opt/wheels ] && PIP_ARGS="$PIP_ARGS --find-links /opt/wheels"
.venv/bin/python -m pip install $PIP_ARGS -r requirements.lock
.venv/bin/python -m pip install $PIP_ARGS --no-deps --no-build-isolation -e .
# Khronos glTF-Validator (npm, pinned) in a project-local folder, used by assets/khronos_validator.py
# and the tests to check every GLB fitroom writes.
GLTF_VALIDATOR_VERSION=2.0.0-dev.3.10
if ! grep -qs "\"version\": \"$GLTF_VALIDATOR_VERSION\"" .node/node_modules/gltf-validator/package.json; then
    command -v npm >/dev/null 2>&1 || {
        echo "setup: installing Debian packages: nodejs npm"
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
    }
    echo "setup: installing gltf-validator@$GLTF_VALIDATOR_VERSION into .node/"
    mkdir -p .node
    npm install --prefix .node --no-audit --no-fund --silent "gltf-validator@$GLTF_VALIDATOR_VERSION"
fi
# @google/model-viewer (npm, pinned): the page's "View in your room" (WebXR, Scene Viewer, Quick Look),
# served by the app at /vendor/model-viewer.min.js (streaming/web_static.py); no CDN.
MODEL_VIEWER_VERSION=4.4.0
if ! grep -qs "\"version\": \"$MODEL_VIEWER_VERSION\"" .node/node_modules/@google/model-viewer/package.json; then
    echo "setup: installing @google/model-viewer@$MODEL_VIEWER_VERSION into .node/"
    mkdir -p .node
    npm install --prefix .node --no-audit --no-fund --silent "@google/model-viewer@$MODEL_VIEWER_VERSION"
fi
touch .venv/.setup-done
echo "setup: done"
