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
#   cargo run --release -p arcface-data --example crop_copy -- data/lfw .gpu/lfw 112 85 3
#   # (the `dev` subset, cropped to 112 px: 7110 images, 26 MB, fits the 64 MiB transfer;
#   # SKIP_LFW=1 skips it, SKIP_TRAIN=1 here skips the training part)
# There (device tool, carry [".gpu"]):
#   bash scripts/gpu_check.sh
# It first runs .gpu/cudnn_conv_test (if staged): the cuDNN convolution's forward, input and
# weight gradients against the CPU on random shapes (f32, TF32, bf16, f16), failing the
# script on any mismatch. Then it prints: training images/s of r34/r50 at batch 128 in f32
# and bf16 with peak GPU memory, the same steps in PyTorch (AMP, best of
# contiguous/channels-last) with the ratio, then a short r50 ArcFace training (bf16) on the
# LFW `dev` subset with its images/s, peak memory and pairsDevTest accuracy, and the same
# training in PyTorch (benches/pytorch/train_lfw.py, AMP bf16) on the same GPU.
# Budget: about 8 minutes on an H100 (EPOCHS=10 by default).
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

# Peak memory as the driver sees it, sampled while a phase runs: start_sampler FILE / stop_sampler.
start_sampler() {
  ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.5; done ) \
    > "$1" 2>/dev/null &
  SAMPLER=$!
}
stop_sampler() { kill "$SAMPLER" 2>/dev/null || true; }
peak() { sort -n "$1" | tail -1; }
trap stop_sampler EXIT

start_sampler "$OUT/memory_bench.txt"
"$BIN" bench --device cuda --backbones r34,r50 --precision f32,bf16 --batch-size 128 \
  --warmup 5 --steps 20 --pytorch --save "$OUT" 2>&1 | tee "$OUT/bench.txt"
stop_sampler
echo "peak GPU memory during the bench (MiB, driver view): $(peak "$OUT/memory_bench.txt")" | tee -a "$OUT/bench.txt"

# A short r50 ArcFace training on the LFW dev subset, ours then PyTorch's, same recipe.
if [ "${SKIP_TRAIN:-0}" != 1 ] && [ -d .gpu/lfw/lfw-deepfunneled ]; then
  EPOCHS=${EPOCHS:-10}
  CFG="$OUT/r50_arcface_dev.toml"
  sed -e 's|^dir = "data"|dir = "data"\nlfw_dir = ".gpu/lfw"\ncrop = [0, 0, 112, 112]|' \
      -e 's|^protocol = .*|protocol = "dev"|' -e '/^fold = /d' -e 's|^min_images = .*|min_images = 3|' \
      -e 's|^precision = .*|precision = "bf16"|' -e "s|^epochs = .*|epochs = $EPOCHS|" \
      -e 's|^warmup_epochs = .*|warmup_epochs = 1.0|' \
      configs/r50_arcface.toml > "$CFG"
  start_sampler "$OUT/memory_train.txt"
  "$BIN" train --config "$CFG" --device cuda --out "$OUT/r50-dev" 2>&1 | tail -25 | tee "$OUT/train.txt"
  stop_sampler
  start_sampler "$OUT/memory_torch.txt"
  python3 benches/pytorch/train_lfw.py --config "$CFG" --lfw-dir .gpu/lfw --device cuda --amp bf16 \
    --data-on host --json "$OUT/torch_lfw.json" 2>&1 | tail -15 | tee "$OUT/torch_train.txt"
  stop_sampler
  python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def peak(name):
    vals = [int(l) for l in open(f"{out}/{name}") if l.strip().isdigit()]
    return max(vals) if vals else float("nan")
rows = [json.loads(l) for l in open(f"{out}/r50-dev/metrics.jsonl") if '"kind":"train"' in l]
ips = [r["images_per_sec"] for r in (rows[1:] or rows)] or [float("nan")]
ours = json.load(open(f"{out}/r50-dev/eval/eval.json"))
torch_ = json.load(open(f"{out}/torch_lfw.json"))
print("r50 ArcFace bf16 on the LFW dev subset (5561 images, 629 people), pairsDevTest accuracy:")
print(f"  arcface-rs: {sum(ips)/len(ips):8.1f} images/s  peak {peak('memory_train.txt')} MiB (driver)  "
      f"accuracy {100*ours['accuracy_mean']:.2f}% +- {100*ours['accuracy_std']:.2f}")
print(f"  PyTorch:    {torch_['images_per_sec']:8.1f} images/s  peak {peak('memory_torch.txt')} MiB (driver), "
      f"{torch_['peak_mem_mb']:.0f} MB allocated  accuracy {100*torch_['accuracy_mean']:.2f}% +- {100*torch_['accuracy_std']:.2f}")
print(f"  ratio (ours / PyTorch images/s): {sum(ips)/len(ips)/torch_['images_per_sec']:.2f}x")
PY
fi
