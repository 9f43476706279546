#!/usr/bin/env bash
# The GPU check, prepared to run in one go on a lent GPU machine (no network there).
#
# Here (CPU machine), build the CUDA binaries and stage what travels, i.e. run
#   bash scripts/stage_gpu.sh
# which does:
#   eval "$(bash ../shared/tools/cuda-toolchain.sh --cudnn)"
#   cargo build --release -p arcface-cli --features cudnn --target-dir ~/.cache/arcface-rs/target-cuda
#   cargo test --release -p arcface-kernels --features cudnn --test cudnn_conv --no-run \
#     --target-dir ~/.cache/arcface-rs/target-cuda --message-format=json   # -> "executable" path
#   strip + xz both into .gpu/{arcface,cudnn_conv_test}.xz (the executable from the JSON is
#   .../target-cuda/release/deps/cudnn_conv-HASH); cp ../shared/tools/gpu-libs.sh .gpu/
#   cargo run --release -p arcface-data --example crop_copy -- data/lfw .gpu/lfw 112 85 3
#   # (the `dev` subset, cropped to 112 px: 7110 images, 26 MB, fits the 64 MiB transfer;
#   # SKIP_LFW=1 skips it, SKIP_TRAIN=1 here skips the training part)
# There (device tool, carry [".gpu"]):
#   bash scripts/gpu_check.sh
# Phases, each under its own time limit; a failing phase is recorded and the next still runs
# (the exit status is non-zero if any failed):
#  1. .gpu/cudnn_conv_test: the cuDNN convolution's forward, input and weight gradients
#     against the CPU on random shapes (f32, TF32, bf16, f16). If it fails, the later phases
#     run on candle's own convolution (ARCFACE_CONV=candle) and say so.
#  2. `arcface bench --device cuda --pytorch`: training images/s of r34/r50 at batch 128 in
#     f32 and bf16 with GPU memory, the same steps in PyTorch (AMP, best of
#     contiguous/channels-last) and the ratio; JSON saved.
#  3. A short r50 ArcFace training (bf16) on the LFW `dev` subset: images/s, peak memory and
#     pairsDevTest accuracy; then the same training in PyTorch (benches/pytorch/train_lfw.py).
#  4. The r50 bf16 bench step again on candle's own convolution kernels (ARCFACE_CONV=candle),
#     to show what the cuDNN backward passes buy.
# Switches: SKIP_CUDNN_TEST=1 (both GPU tests), KERNELS=1 (bench and train with the fused
# BatchNorm/PReLU kernels if their test passed), SKIP_TRAIN=1, SKIP_TORCH_TRAIN=1, SKIP_AB=1 (phase 4), AB=1 runs
# first a quick A/B of the r50 bf16 step with its forward/backward/optimizer split: as built,
# then with the CUDA memory pool's default release (ARCFACE_CUDA_POOL=release), then with
# BatchNorm/PReLU on candle's autograd (ARCFACE_NORM=reference), then with the fused kernels
# (ARCFACE_CUDA_KERNELS=1, if their test passed).
# Results land in runs/gpu/ (WORK); where the device tool sets OUT, a log and a tarball of the
# small result files are copied there (it brings back at most 8 files).
# Budget: about 7 minutes on an H100/H200 (EPOCHS=10 by default); phases are cut short so the
# whole script ends within DEADLINE seconds (default 480).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.gpu/arcface}
WORK=${WORK:-runs/gpu}
BACK=${OUT:-}
mkdir -p "$WORK"
FAILED=()
START=$(date +%s)
say() { echo "[gpu_check +$(( $(date +%s) - START ))s] $*"; }

# Brings the results back: the log and a tarball of everything small (no checkpoints).
finish() {
  stop_sampler
  sleep 1  # let tee write the log's last lines
  if [ -n "$BACK" ] && [ "$BACK" != "$WORK" ]; then
    tar -czf "$BACK/gpu-results.tar.gz" --exclude='*.safetensors' --exclude='*.ckpt' \
      --exclude='checkpoints' "$WORK" 2>/dev/null
    cp -f "$WORK/log.txt" "$BACK/" 2>/dev/null
    cp -f "$WORK"/train-cuda-*.json "$BACK/" 2>/dev/null
  fi
}
SAMPLER=
start_sampler() {
  ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.5; done ) \
    > "$1" 2>/dev/null &
  SAMPLER=$!
}
stop_sampler() { [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null; SAMPLER=; true; }
peak() { sort -n "$1" 2>/dev/null | tail -1; }
trap finish EXIT
# Everything below also goes to the log.
exec > >(tee "$WORK/log.txt") 2>&1

# phase NAME SECONDS CMD...: runs CMD under a time limit (its children too), records failure.
phase() {
  local name=$1 limit=$2; shift 2
  # Never run past DEADLINE seconds from the start (default 480), so the results come back.
  local left=$(( ${DEADLINE:-480} - ($(date +%s) - START) - 10 ))
  if [ "$left" -lt 20 ]; then
    say "phase $name SKIPPED (only ${left}s left before DEADLINE)"
    FAILED+=("$name(skipped)")
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "phase $name (limit ${limit}s): $*"
  timeout -k 10 "$limit" "$@"
  local rc=$?
  # Orphaned PyTorch children of a killed bench would hold the GPU: end them.
  pkill -f 'benches/pytorch/' 2>/dev/null
  if [ $rc -ne 0 ]; then
    say "phase $name FAILED (exit $rc$( [ $rc -eq 124 ] && echo ', time limit'))"
    FAILED+=("$name")
  else
    say "phase $name done"
  fi
  return 0
}

# stage_gpu.sh ships the binaries xz-compressed; unpack with Python's lzma (xz may be absent).
for f in .gpu/*.xz; do
  [ -e "$f" ] || continue
  python3 -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as i, open(sys.argv[2], "wb") as o: shutil.copyfileobj(i, o)' \
    "$f" "${f%.xz}"
  chmod +x "${f%.xz}"
done
export LD_LIBRARY_PATH=$(bash .gpu/gpu-libs.sh)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$WORK/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version())'

# 1. Correctness of the cuDNN convolution (crates/kernels/src/cudnn_conv.rs) before any timing.
if [ -x .gpu/cudnn_conv_test ] && [ "${SKIP_CUDNN_TEST:-0}" != 1 ]; then
  ARCFACE_REQUIRE_GPU=1 phase cudnn_conv_test 90 .gpu/cudnn_conv_test --nocapture
  if [[ " ${FAILED[*]} " == *" cudnn_conv_test "* ]]; then
    say "cuDNN convolution test failed: the rest runs on candle's convolution (ARCFACE_CONV=candle)"
    export ARCFACE_CONV=candle
  fi
fi

# 1a. The fused BatchNorm/PReLU kernels (crates/kernels/src/cuda_norm) against the CPU; they
# are opt-in (ARCFACE_CUDA_KERNELS=1) and the A/B below uses them only if this passes.
KERNELS_OK=0
if [ -x .gpu/cuda_norm_test ] && [ "${SKIP_CUDNN_TEST:-0}" != 1 ]; then
  ARCFACE_REQUIRE_GPU=1 phase cuda_norm_test 60 .gpu/cuda_norm_test --nocapture --test-threads 1
  [[ " ${FAILED[*]} " == *" cuda_norm_test "* ]] || KERNELS_OK=1
fi

# 1b. What each CUDA change buys, on the r50 bf16 step (AB=1).
if [ "${AB:-0}" = 1 ]; then
  AB_ARGS=(bench --device cuda --backbones r50 --precision bf16 --batch-size 128 --warmup 3 --steps 8 --breakdown)
  phase ab_built 60 "$BIN" "${AB_ARGS[@]}"
  # Forward time per layer kind (synchronized around each layer: slower, for the split only).
  ARCFACE_PROFILE=1 phase ab_profile 60 "$BIN" "${AB_ARGS[@]}"
  ARCFACE_CUDA_POOL=release phase ab_pool_release 60 "$BIN" "${AB_ARGS[@]}"
  ARCFACE_NORM=reference phase ab_norm_reference 60 "$BIN" "${AB_ARGS[@]}"
  if [ "$KERNELS_OK" = 1 ]; then
    ARCFACE_CUDA_KERNELS=1 phase ab_cuda_kernels 60 "$BIN" "${AB_ARGS[@]}"
    ARCFACE_CUDA_KERNELS=1 ARCFACE_PROFILE=1 phase ab_cuda_kernels_profile 60 "$BIN" "${AB_ARGS[@]}"
  fi
fi
# With KERNELS=1 (and the kernel test passed) the bench and the training below use them.
if [ "${KERNELS:-0}" = 1 ] && [ "$KERNELS_OK" = 1 ]; then
  export ARCFACE_CUDA_KERNELS=1
  say "bench and training run with the fused BatchNorm/PReLU kernels (ARCFACE_CUDA_KERNELS=1)"
fi

# 2. The side-by-side training-step bench.
start_sampler "$WORK/memory_bench.txt"
phase bench 200 "$BIN" bench --device cuda --backbones r34,r50 --precision f32,bf16 --batch-size 128 \
  --warmup 5 --steps 20 --pytorch --breakdown --save "$WORK"
stop_sampler
say "peak GPU memory during the bench (MiB, driver view): $(peak "$WORK/memory_bench.txt")"

# 3. A short r50 ArcFace training on the LFW dev subset, ours then PyTorch's, same recipe
# (flip only: the PyTorch trainer has no [augment]).
if [ "${SKIP_TRAIN:-0}" != 1 ] && [ -d .gpu/lfw/lfw-deepfunneled ]; then
  EPOCHS=${EPOCHS:-10}
  CFG="$WORK/r50_arcface_dev.toml"
  sed -e 's|^dir = "data"|dir = "data"\nlfw_dir = ".gpu/lfw"\ncrop = [0, 0, 112, 112]|' \
      -e 's|^protocol = .*|protocol = "dev"|' -e '/^fold = /d' -e 's|^min_images = .*|min_images = 3|' \
      -e 's|^precision = .*|precision = "bf16"|' -e "s|^epochs = .*|epochs = $EPOCHS|" \
      -e 's|^warmup_epochs = .*|warmup_epochs = 1.0|' \
      -e '/^\[augment\]/,/^$/d' \
      configs/r50_arcface.toml > "$CFG"
  start_sampler "$WORK/memory_train.txt"
  phase train 150 "$BIN" train --config "$CFG" --device cuda --out "$WORK/r50-dev"
  stop_sampler
  start_sampler "$WORK/memory_torch.txt"
  [ "${SKIP_TORCH_TRAIN:-0}" = 1 ] || PYTHONUNBUFFERED=1 phase torch_train 150 python3 benches/pytorch/train_lfw.py --config "$CFG" \
    --lfw-dir .gpu/lfw --device cuda --amp bf16 --data-on host --json "$WORK/torch_lfw.json"
  stop_sampler
  python3 - "$WORK" <<'PY' || FAILED+=(train_summary)
import json, os, sys
out = sys.argv[1]
def peak(name):
    try:
        vals = [int(l) for l in open(f"{out}/{name}") if l.strip().isdigit()]
    except OSError:
        return float("nan")
    return max(vals) if vals else float("nan")
print("r50 ArcFace bf16 on the LFW dev subset (5561 images, 629 people), pairsDevTest accuracy:")
ours_ips = float("nan")
m = f"{out}/r50-dev/metrics.jsonl"
if os.path.exists(m):
    rows = [json.loads(l) for l in open(m) if '"kind":"train"' in l]
    ips = [r["images_per_sec"] for r in (rows[1:] or rows)]
    ours_ips = sum(ips) / len(ips) if ips else float("nan")
    e = f"{out}/r50-dev/eval/eval.json"
    acc = "no eval"
    if os.path.exists(e):
        ours = json.load(open(e))
        acc = f"accuracy {100*ours['accuracy_mean']:.2f}% +- {100*ours['accuracy_std']:.2f}"
    print(f"  arcface-rs: {ours_ips:8.1f} images/s  peak {peak('memory_train.txt')} MiB (driver)  {acc}")
t = f"{out}/torch_lfw.json"
if os.path.exists(t):
    torch_ = json.load(open(t))
    print(f"  PyTorch:    {torch_['images_per_sec']:8.1f} images/s  peak {peak('memory_torch.txt')} MiB (driver), "
          f"{torch_['peak_mem_mb']:.0f} MB allocated  accuracy {100*torch_['accuracy_mean']:.2f}% +- {100*torch_['accuracy_std']:.2f}")
    print(f"  ratio (ours / PyTorch images/s): {ours_ips/torch_['images_per_sec']:.2f}x")
PY
fi

# 4. What cuDNN's backward buys: the same r50 bf16 step on candle's own conv kernels.
if [ "${ARCFACE_CONV:-}" != candle ] && [ "${SKIP_AB:-0}" != 1 ]; then
  ARCFACE_CONV=candle phase bench_candle_conv 90 "$BIN" bench --device cuda --backbones r50 \
    --precision f32,bf16 --batch-size 128 --warmup 2 --steps 5
fi

say "total $(( $(date +%s) - START ))s; failed phases: ${FAILED[*]:-none}"
[ ${#FAILED[@]} -eq 0 ]
