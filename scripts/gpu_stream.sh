#!/usr/bin/env bash
# NVENC on the GPU machine, in a device call of its own: that image has no PyAV, and its wheel (34 MB)
# does not fit beside gpu_session.sh's body model in one call's 64 MiB. Once, here:
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 -d .whl av==18.1.0
#
# then: run(command="bash scripts/gpu_stream.sh", timeout_s=300, carry=[".whl"])
#
# Writes to $OUT: gpu.csv (the device), nvenc.log (whether h264_nvenc opens, and
# tests/streaming/test_video_encoder.py with its NVENC test: 40 frames of 1080p, encode p95 < 10 ms).
# The rest of the stream (aiortc, pyrender) is not in that image either: the 1080p / 30 fps end to
# end figures need `bench/stream.py --width 1920 --height 1080 --fps 30 --encoder h264_nvenc` on a
# machine with both.
set -u -o pipefail
out=${OUT:-/tmp/fitroom-gpu}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/av-*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.csv" 2>&1
python3 -c "from streaming.video_encoder import nvenc_opens, _UNUSABLE; print('h264_nvenc opens:', nvenc_opens(), _UNUSABLE)" \
  2>&1 | tee "$out/nvenc.log"
timeout 200 python3 -m pytest -q -p no:cacheprovider -rs tests/streaming/test_video_encoder.py 2>&1 | tee -a "$out/nvenc.log" | tail -n 15
