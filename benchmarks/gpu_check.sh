#!/usr/bin/env bash
# Every GPU check in one short run (about 5 minutes on one GPU), for a machine with CUDA:
#   1. the CUDA test (bf16 autocast with fp32 FFTs, pinned non-blocking copies);
#   2. one-step training throughput on the NCEP config: fp32 vs bf16, eager vs torch.compile;
#   3. DDP through torchrun on 1 GPU (NCCL), the same short run.
# Usage: benchmarks/gpu_check.sh [DATA] [OUT]   (DATA defaults to ../shared/data/ncep_air_2013-2014.nc)
# Each run writes OUT/<name>/metrics.jsonl; the last lines print samples/s per run side by side.
set -euo pipefail
DATA=${1:-${FNO_SHARED_DATA:-../shared/data}/ncep_air_2013-2014.nc}
OUT=${2:-${OUT:-runs/gpu-check}}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
"$PY" -m pytest -q -m gpu tests/training/test_gpu.py

short=(--config configs/ncep-air.toml --data "$DATA" --device cuda --quiet
  --set stage1_epochs=2 --set "rollout_steps=[4]" --set batch_size=64 --set max_minutes=2)
run() {
  local name=$1; shift
  "$PY" -m fno_forecast train "${short[@]}" --out "$OUT/$name" "$@"
}
run fp32 --set bf16=false
run bf16 --set bf16=true
run bf16-compile --set bf16=true --set compile=true
"$PY" -m torch.distributed.run --standalone --nproc-per-node 1 -m fno_forecast train "${short[@]}" \
  --out "$OUT/ddp1" --set bf16=true

"$PY" - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
for run in ("fp32", "bf16", "bf16-compile", "ddp1"):
    lines = [json.loads(l) for l in (Path(sys.argv[1]) / run / "metrics.jsonl").read_text().splitlines()]
    stage1 = [r["samples_per_s"] for r in lines if r.get("stage") == 1]
    last = lines[-1]["val_rmse"]
    print(f"{run:13s} one-step samples/s {max(stage1):8.1f}   val RMSE " +
          " | ".join(f"{k}h {v[next(iter(v))]:.3f}" for k, v in last.items()))
PYEOF
