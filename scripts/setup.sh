#!/usr/bin/env bash
# Sets up whatever is missing on a fresh Debian machine with Python 3.11:
# the Debian packages (offscreen OpenGL for pyrender, libraries OpenCV loads) and the pinned
# Python packages in .venv. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libgles2 libglib2.0-0"
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
touch .venv/.setup-done
echo "setup: done"
