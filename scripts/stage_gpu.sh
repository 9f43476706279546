#!/usr/bin/env bash
# Builds, on this CPU machine, what scripts/gpu_check.sh runs on a lent GPU machine, and
# stages it in .gpu/ (git-ignored; give the device tool carry [".gpu"]):
#   .gpu/arcface.xz           the release CLI built with the `cudnn` feature
#   .gpu/cudnn_conv_test.xz   the release test binary of crates/kernels/tests/cudnn_conv.rs
#   .gpu/cuda_norm_test.xz    the same for crates/kernels/tests/cuda_norm.rs (fused BN/PReLU kernels)
#   .gpu/gpu-libs.sh          finds the CUDA/cuDNN runtime libraries there
#   .gpu/lfw/                 the LFW `dev` subset cropped to 112 px (7110 images, 26 MB), from
#                             data/lfw (run `cargo xtask download` first; SKIP_LFW=1 skips it)
# The binaries are stripped and xz-compressed (110-180 MB raw, mostly debug info and
# candle's CUDA fatbins; 6-9 MB as .xz; the transfer is capped at 64 MiB); gpu_check.sh
# unpacks them there.
# Usage: bash scripts/stage_gpu.sh            (SKIP_CLI=1: only the conv test and gpu-libs.sh)
# CUDA builds share one warm target dir (CUDA_TARGET_DIR, default ~/.cache/arcface-rs/target-cuda);
# a cold build of the CLI takes well over ten minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash ../shared/tools/cuda-toolchain.sh --cudnn)"
TARGET=${CUDA_TARGET_DIR:-$HOME/.cache/arcface-rs/target-cuda}
mkdir -p .gpu

# stage SRC NAME: .gpu/NAME.xz, stripped (no debug info: backtraces lose file/line there).
stage() {
  rm -f ".gpu/$2" ".gpu/$2.xz"
  strip -o ".gpu/$2" "$1"
  xz -T0 -6 ".gpu/$2"
}

if [ "${SKIP_CLI:-0}" != 1 ]; then
  cargo build --release -p arcface-cli --features cudnn --target-dir "$TARGET"
  stage "$TARGET/release/arcface" arcface
fi

# The GPU tests' binaries are target/release/deps/<test>-<hash>: take their paths from cargo's JSON.
for t in cudnn_conv cuda_norm; do
  TEST_BIN=$(cargo test --release -p arcface-kernels --features cudnn --test "$t" --no-run \
      --target-dir "$TARGET" --message-format=json \
    | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$t")
  [ -n "$TEST_BIN" ] || { echo "stage_gpu: cargo built no $t test binary" >&2; exit 1; }
  stage "$TEST_BIN" "${t}_test"
done
cp -f ../shared/tools/gpu-libs.sh .gpu/
if [ "${SKIP_LFW:-0}" != 1 ]; then
  rm -rf .gpu/lfw
  # A CPU build (the normal target dir): it only decodes, crops and re-encodes JPEGs.
  env -u CARGO_TARGET_DIR cargo run --release -p arcface-data --example crop_copy -- data/lfw .gpu/lfw 112 85 3
fi
ls -l .gpu/
echo "staged .gpu/ ($(du -sh .gpu | cut -f1); the device tool carries at most 64 MiB in all)"
