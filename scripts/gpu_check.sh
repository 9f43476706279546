#!/usr/bin/env bash
# The GPU check, prepared to run in one go on a lent GPU machine (no network there).
#
# Here (CPU machine), build the CUDA binaries and stage what travels, i.e. run
#   bash scripts/stage_gpu.sh
# which does:
#   eval "$(bash ../shared/tools/cuda-toolchain.sh --cudnn)"
#   cargo build --release -p arcface-cli --features cudnn --target-dir ~/.cache/arcface-rs/target-cuda
#   cargo test --release -p arcface-backbone --features cudnn --test cudnn_conv --no-run \
#     --target-dir ~/.cache/arcface-rs/target-cuda --message-format=json   # -> "executable" path
#   strip + xz both into .gpu/{arcface,cudnn_conv_test}.xz (the executable from the JSON is
#   .../target-cuda/release/deps/cudnn_conv-HASH); cp ../shared/tools/gpu-libs.sh .gpu/
#   # a small LFW subset that fits the 64 MiB transfer: the dev training people with >= 3 images
#   ./target/release/arcface ... (see the issue notes) or skip the training part with SKIP_TRAIN=1
# There (device tool, carry [".gpu"]):
#   bash scripts/gpu_check.sh
# It first runs .gpu/cudnn_conv_test (if staged): the cuDNN convolution's forward, input and
# weight gradients against the CPU on random shapes (f32, TF32, bf16, f16), failing the
# script on any mismatch. Then it prints: training images/s of r34/r50 at batch 128 in f32
# and bf16 with peak GPU memory, the same steps in PyTorch (AMP, best of
# contiguous/channels-last) with the ratio, then a short r50 ArcFace training on the LFW
# subset with its images/s and dev accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.gpu/arcface}
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
# stage_gpu.sh ships the binaries xz-compressed; unpack with Python's lzma (xz may be absent).
for f in .gpu/*.xz; do
  [ -e "$f" ] || continue
  python3 -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as i, open(sys.argv[2], "wb") as o: shutil.copyfileobj(i, o)' \
    "$f" "${f%.xz}"
  chmod +x "${f%.xz}"
done
export LD_LIBRARY_PATH=$(bash .gpu/gpu-libs.sh)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

# Correctness of the cuDNN convolution (crates/backbone/src/cudnn_conv.rs) before any timing.
if [ -x .gpu/cudnn_conv_test ]; then
  ARCFACE_REQUIRE_GPU=1 .gpu/cudnn_conv_test --nocapture 2>&1 | tee "$OUT/cudnn_conv.txt"
fi

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
