#!/usr/bin/env bash
# The GPU figures in one call of the tool library's device `run` (an H100 or H200 machine whose
# image has CuPy 14, NumPy 2.5 and SciPy, but not this project's .venv: no scikit-sparse, so the
# host factorisation there is SuperLU; no Warp/Newton, 392 MB, too big to carry, so drape_speed's
# Newton row says so instead of timing; no PyAV or pyrender, so the stream's h264_nvenc targets
# cannot be measured there). The engine needs only NumPy, SciPy and CuPy. Carry the converted
# body model and the cached reference bodies (39 MB; the whole tree must stay under 64 MiB):
#
#   run(command="bash scripts/gpu_session.sh", timeout_s=600,
#       carry=[".fitroom-data/body_model.npz", ".fitroom-data/reference_bodies"])
#
# Writes to $OUT: gpu.csv (the device), gpu_tests.log (every gpu-marked engine test),
# drape_speed_gpu.json (the 10k t-shirt settled on CuPy, 5 runs; 40k per step),
# body_model_speed_gpu.json. Each stage has its own time limit so that a slow one cannot take the
# others' results with it.
set -u -o pipefail
out=${OUT:-/tmp/fitroom-gpu}
mkdir -p "$out"
# The repository's packages by path: the device's Python has no editable install of them.
export PYTHONUNBUFFERED=1 FITROOM_DATA_DIR=.fitroom-data PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.csv" 2>&1
python3 -c "import cupy, numpy, scipy; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__)" \
  | tee -a "$out/gpu.csv"
timeout 200 python3 -m pytest -m gpu -q -p no:cacheprovider tests/engine 2>&1 | tee "$out/gpu_tests.log" | tail -n 15
timeout 240 python3 bench/drape_speed.py --device cuda:0 --repeats 5 --out "$out/drape_speed_gpu.json" \
  > "$out/drape_speed.log" 2>&1
tail -n 5 "$out/drape_speed.log"
timeout 120 python3 bench/body_model_speed.py > "$out/body_model_speed.log" 2>&1
cp bench/results/body_model_speed_gpu.json "$out/" 2>/dev/null
ls -l "$out"
