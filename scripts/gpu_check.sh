#!/usr/bin/env bash
# The GPU check, prepared to run in one go on a lent GPU machine (no network there).
#
# Here (CPU machine), build the CUDA binary and stage what travels:
#   eval "$(bash ../shared/tools/cuda-toolchain.sh --cudnn)"
#   cargo build --release -p arcface-cli --features cudnn --target-dir target/cuda
#   mkdir -p .gpu && cp target/cuda/release/arcface ../shared/tools/gpu-libs.sh .gpu/
#   # a small LFW subset that fits the 64 MiB transfer: the dev training people with >= 3 images
#   ./target/release/arcface ... (see the issue notes) or skip the training part with SKIP_TRAIN=1
# There (device tool, carry [".gpu"]):
#   bash scripts/gpu_check.sh
# It prints: training images/s of r34/r50 at batch 128 in f32 and bf16 with peak GPU memory,
# the same steps in PyTorch (AMP, best of contiguous/channels-last) with the ratio, then a
# short r50 ArcFace training on the LFW subset with its images/s and dev accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.gpu/arcface}
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$(bash .gpu/gpu-libs.sh)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

# Peak memory as the driver sees it, sampled while the benchmark runs.
( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.5; done ) \
  > "$OUT/memory_samples.txt" 2>/dev/null &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null || true' EXIT

"$BIN" bench --device cuda --backbones r34,r50 --precision f32,bf16 --batch-size 128 \
  --warmup 5 --steps 20 --pytorch --save "$OUT" 2>&1 | tee "$OUT/bench.txt"
echo "peak GPU memory (MiB, driver view): $(sort -n "$OUT/memory_samples.txt" | tail -1)" | tee -a "$OUT/bench.txt"

if [ "${SKIP_TRAIN:-0}" != 1 ] && [ -d data/lfw/lfw-deepfunneled ]; then
  "$BIN" train --config r50_arcface --device cuda --out "$OUT/r50-short" --max-steps 300 2>&1 | tail -20
  "$BIN" eval --run "$OUT/r50-short" --protocol dev --device cuda 2>&1 | tail -20
fi
