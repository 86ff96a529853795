#!/usr/bin/env bash
# The GPU numbers in one command, on a CUDA machine (README "Tests and benchmarks"):
#   bench/gpu.sh [VIDEO] [MINUTES] [MAX_SESSIONS]
# installs, trains every engine for MINUTES (default 10) on VIDEO (default english_60s.mp4) and evaluates it
# (bench/run.py), times `say` at the video's size and reads training steps/s (bench/speed.py), and counts the
# live sessions `serve` holds at 25 FPS each (bench/serve.py --capacity). Tables go to bench_runs/gpu/gpu.md.
set -euo pipefail
cd "$(dirname "$0")/.."
VIDEO=${1:-../shared/data/english_60s.mp4}
MINUTES=${2:-10}
MAX_SESSIONS=${3:-32}
WORK=bench_runs/gpu
PY=.venv/bin/python
make install
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'bench/gpu.sh: no CUDA device')"
mkdir -p $WORK
{
  echo "# GPU benchmark: $($PY -c 'import torch; print(torch.cuda.get_device_name(0))'), $(date -u +%F), $(git rev-parse --short HEAD)"
  $PY bench/run.py "$VIDEO" --engines viseme,nerf,speech2lip,rhythm --minutes "$MINUTES" --device cuda --work $WORK
  $PY bench/speed.py $WORK/model_viseme $WORK/model_nerf $WORK/model_speech2lip $WORK/model_rhythm --device cuda
  for E in viseme speech2lip; do
    echo "serve $E:"; $PY bench/serve.py $WORK/model_$E --capacity "$MAX_SESSIONS" --seconds 20 --json
  done
} 2>&1 | tee $WORK/gpu.md
