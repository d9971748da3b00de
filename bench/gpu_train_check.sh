#!/usr/bin/env bash
# One short GPU session for the training engine (issue 5); prints everything
# docs/BENCHMARKS.md wants, about 3-5 minutes on one modern GPU:
#   1. GPU model, torch/CUDA versions
#   2. legacy_xception @ 224 px, bf16: train img/s (model-only vs full pipeline,
#      i.e. the data-pipeline ratio) and inference img/s  (bench/bench_train.py)
#   3. the same in fp32 for comparison (short)
#   4. a DDP smoke: torchrun over min(2, #GPUs) processes (NCCL) on a tiny
#      generated face set, 2 epochs, checks the run finished
#   5. the CPU gloo DDP test and the CUDA-only paths of the training tests
# Usage (repository root, venv active or .venv present):  bash bench/gpu_train_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python
OUT=${OUT:-$(mktemp -d)}
echo "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count(), torch.cuda.get_device_name(0))"

echo "== legacy_xception@224 bf16 (batch 64)"
timeout 240 $PY bench/bench_train.py --backbone legacy_xception --size 224 --no-residual --batch 64 \
    --steps 30 --n-images 4096 --device cuda --precision bf16

echo "== legacy_xception@224 bf16, paper batch 16"
timeout 120 $PY bench/bench_train.py --backbone legacy_xception --size 224 --no-residual --batch 16 \
    --steps 40 --n-images 2048 --device cuda --precision bf16

echo "== legacy_xception@224 fp32 (batch 64)"
timeout 120 $PY bench/bench_train.py --backbone legacy_xception --size 224 --no-residual --batch 64 \
    --steps 15 --n-images 2048 --device cuda --precision fp32

echo "== DDP smoke (torchrun, NCCL)"
NGPU=$($PY -c "import torch; print(min(2, torch.cuda.device_count()))")
WS="$OUT/ddp-ws"
$PY - "$WS" "$OUT" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, ".")
from engine.workspace import resolve_workspace
from testkit.toy_training import make_toy
ws = resolve_workspace(sys.argv[1]).ensure()
cfg = make_toy(ws, Path(sys.argv[2]), epochs=2, batch=16, backbone="resnet10t", size=64,
               videos_per_class={"train": 40, "val": 8}, device="auto")
print("config", cfg)
EOF
timeout 300 $PY -m torch.distributed.run --standalone --nproc_per_node="$NGPU" -m engine.training \
    --config "$OUT/toy.toml" --approach arcfacemod --workspace "$WS"
echo "ddp exit: $?"
$PY - "$WS" <<'EOF'
import sys
from engine.workspace import resolve_workspace
from engine.store.runs import run_rows
print(run_rows(resolve_workspace(sys.argv[1]).store())[["run_id", "status", "epochs_done", "train_seconds"]])
EOF

echo "== tests (CPU gloo DDP + training tests on a CUDA machine)"
timeout 300 $PY -m pytest -q -p no:cacheprovider tests/integration/test_train.py tests/integration/test_train_ddp.py tests/unit/test_losses.py
