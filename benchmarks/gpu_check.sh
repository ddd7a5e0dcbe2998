#!/usr/bin/env bash
# The GPU check (issue 6): --device cuda trains and samples on a GPU, a GPU-trained model file samples
# on a CPU-only process, DP and torchrun (NCCL) run on the GPU, then CPU vs GPU seconds per epoch.
# Run from the repository root on a machine with one CUDA GPU; logs and results go to $OUT (default
# /tmp/gpu_check). Each step reports PASS or FAIL and the script goes on.
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
W=$(mktemp -d)
step() {  # step NAME TIMEOUT COMMAND...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  if timeout "$limit" "$@" >"$OUT/$name.log" 2>&1; then echo "PASS $name ($((SECONDS - t0)) s)";
  else echo "FAIL $name ($((SECONDS - t0)) s): $(tail -3 "$OUT/$name.log" | tr '\n' ' ')"; fi
}
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

step pytest_gpu 180 python3 -m pytest tests/integration/test_gpu.py -p no:warnings -o addopts= -q
step cli_train_cuda 120 python3 -m synthgen train synthgen/datasets/adult.csv.gz --model ctgan --epochs 3 \
  --device cuda --out "$W/ctgan.sgm" -q
step cli_sample_cpu_only 60 env CUDA_VISIBLE_DEVICES= python3 -m synthgen sample "$W/ctgan.sgm" --rows 5000 \
  --where "income=>50K" --out "$W/rich.csv"
step rich_rows_only 30 python3 -c "import pandas as p, sys; d = p.read_csv('$W/rich.csv'); \
print(len(d), d.income.unique()); sys.exit(not (len(d) == 5000 and set(d.income) == {'>50K'}))"
step cli_dp_cuda 180 python3 -m synthgen train synthgen/datasets/adult.csv.gz --model tvae --epsilon 8 --epochs 2 \
  --metadata synthgen/datasets/adult.metadata.json --device cuda --out "$W/dp.sgm" -q
step dp_ledger 60 env CUDA_VISIBLE_DEVICES= python3 -m synthgen inspect "$W/dp.sgm"
step torchrun_nccl 180 torchrun --standalone --nproc_per_node 1 -m synthgen train synthgen/datasets/adult.csv.gz \
  --model tvae --epochs 3 --device cuda --out "$W/ddp.sgm" -q
step torchrun_nccl_dp 180 torchrun --standalone --nproc_per_node 1 -m synthgen train synthgen/datasets/adult.csv.gz \
  --model tvae --epsilon 8 --epochs 2 --metadata synthgen/datasets/adult.metadata.json --device cuda \
  --out "$W/ddp-dp.sgm" -q
step ddp_sample_cpu 60 env CUDA_VISIBLE_DEVICES= python3 -m synthgen sample "$W/ddp.sgm" --rows 1000 --out "$W/d.csv"
step speed 300 python3 benchmarks/device_speed.py --epochs 8 --full "${FULL:-tvae}" --out "$OUT"
cat "$OUT/device_speed.md" 2>/dev/null
grep -h "epsilon\|steps" "$OUT/dp_ledger.log" | head -8
