#!/usr/bin/env bash
# Every GPU check in one short run (about 5 minutes on one H200; give it a 10-minute cap):
#   1. the CUDA test (bf16 autocast with fp32 FFTs, pinned non-blocking copies);
#   2. one-step training throughput on the NCEP config: fp32 vs bf16, eager vs torch.compile;
#   3. DDP through torchrun on 1 GPU (NCCL), the same short run;
#   4. SFNO training throughput on a global grid with both poles (121 x 240 x 14, a store written here by
#      data/make_big_store.py; batch 32, memory budget raised for the GPU): fp32, bf16 and bf16 with
#      torch.compile (a run that fails prints "failed"; a compiled run's first epoch includes compiling);
#   5. a timed 10-day rollout (40 six-hourly steps) at 721 x 1440 x 20 of the default FNO and SFNO for that
#      grid (random weights), fp32 and bf16: seconds per step and peak GPU memory (benchmarks/rollout.py).
# Usage: benchmarks/gpu_check.sh [DATA] [OUT]   (DATA defaults to ../shared/data/ncep_air_2013-2014.nc)
# Each run writes OUT/<name>/metrics.jsonl; the last lines print samples/s per run side by side.
# Without a GPU: GPU_CHECK_DEVICE=cpu GPU_CHECK_TINY=1 benchmarks/gpu_check.sh runs every part on the CPU at
# a tiny size (about 13 minutes on 2 cores, most of it torch.compile), to show the script works (DDP then
# uses gloo, and bf16 is fp32: autocast is for CUDA only).
set -euo pipefail
DATA=${1:-${FNO_SHARED_DATA:-../shared/data}/ncep_air_2013-2014.nc}
OUT=${2:-${OUT:-runs/gpu-check}}
PY=${PYTHON:-.venv/bin/python}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
TINY=${GPU_CHECK_TINY:-0}
mkdir -p "$OUT"
if [[ $DEVICE == cuda ]]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  "$PY" -m pytest -q -m gpu tests/training/test_gpu.py
fi

if [[ $TINY == 1 ]]; then
  size=(--set samples_per_epoch=64 --set stage1_epochs=1 --set "rollout_steps=[2]" --set batch_size=16
    --set max_minutes=0.5)
  store_size=(--steps 160 --nlat 33 --nlon 64)
  rollout_size=(--grid 33x64 --channels 4 --steps 4)
else
  size=(--set stage1_epochs=2 --set "rollout_steps=[4]" --set batch_size=64 --set max_minutes=2)
  store_size=(--steps 600)
  rollout_size=(--grid 721x1440 --channels 20 --steps 40)
fi
short=(--config configs/ncep-air.toml --data "$DATA" --device "$DEVICE" --quiet "${size[@]}")
run() {
  local name=$1; shift
  "$PY" -m fno_forecast train "${short[@]}" --out "$OUT/$name" "$@"
}
run fp32 --set bf16=false
run bf16 --set bf16=true
run bf16-compile --set bf16=true --set compile=true
"$PY" -m torch.distributed.run --standalone --nproc-per-node 1 -m fno_forecast train "${short[@]}" \
  --out "$OUT/ddp1" --set bf16=true

# SFNO on the sphere: defaults for the grid, a short fixed plan; compile may not support every SFNO op.
"$PY" data/make_big_store.py "${store_size[@]}" --out "$OUT/global.zarr"
sphere=(--data "$OUT/global.zarr" --model sfno --device "$DEVICE" --quiet
  --set stage1_epochs=2 --set "rollout_steps=[2]" --set samples_per_epoch=1024 --set batch_size=32
  --set rollout_samples_per_epoch=128 --set max_memory_gb=60 --set recent_anomaly=false
  --set lead_calibration=false --set max_minutes=1)
[[ $TINY == 1 ]] && sphere+=(--set samples_per_epoch=32 --set rollout_samples_per_epoch=16 --set batch_size=16
  --set max_memory_gb=3 --set max_minutes=0.5)
run_sphere() {
  local name=$1; shift
  "$PY" -m fno_forecast train "${sphere[@]}" --out "$OUT/$name" "$@" || echo "$name failed (exit $?)"
}
run_sphere sfno-fp32 --set bf16=false
run_sphere sfno-bf16 --set bf16=true
run_sphere sfno-bf16-compile --set bf16=true --set compile=true

"$PY" - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
for run in ("fp32", "bf16", "bf16-compile", "ddp1", "sfno-fp32", "sfno-bf16", "sfno-bf16-compile"):
    path = Path(sys.argv[1]) / run / "metrics.jsonl"
    lines = [json.loads(l) for l in path.read_text().splitlines()] if path.is_file() else []
    stage1 = [r["samples_per_s"] for r in lines if r.get("stage") == 1]
    if not stage1:
        print(f"{run:17s} failed (no one-step epoch in {path})")
        continue
    last = lines[-1]["val_rmse"]
    print(f"{run:17s} one-step samples/s {max(stage1):8.1f}   val RMSE " +
          " | ".join(f"{k}h {v[next(iter(v))]:.3f}" for k, v in last.items()))
PYEOF
rm -rf "$OUT/global.zarr"

# The 10-day rollout at the FourCastNet grid (721 x 1440 x 20): the default FNO and SFNO for that grid.
"$PY" benchmarks/rollout.py --ten-day --device "$DEVICE" "${rollout_size[@]}"
