#!/usr/bin/env bash
# Seeds each target's corpus (fuzz/corpus/<target>/, not committed) with the repository's own
# fixtures, so the fuzzer starts from well-formed files and mutates them.
set -euo pipefail
cd "$(dirname "$0")"
root=..
seed() { local target=$1; shift; mkdir -p "corpus/$target"; cp "$@" "corpus/$target/"; }
seed protocol $root/crates/data/tests/fixtures/lfw-mini/*.txt
seed scores $root/crates/eval/tests/fixtures/scores.tsv
seed config $root/configs/*.toml
seed bin_pickle $root/crates/eval/tests/fixtures/*.bin
seed pth $root/crates/backbone/tests/fixtures/tiny/weights.pth
seed safetensors $root/crates/backbone/tests/fixtures/tiny/weights.safetensors
# The real P-Net (28 KB) when it has been fetched (cargo xtask download mtcnn).
if [ -f $root/data/mtcnn/pnet.pt ]; then seed mtcnn_weights $root/data/mtcnn/pnet.pt; else mkdir -p corpus/mtcnn_weights; fi
mkdir -p corpus/pth_pickle
python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); open(sys.argv[2],'wb').write(z.read('weights/data.pkl'))" \
    $root/crates/backbone/tests/fixtures/tiny/weights.pth corpus/pth_pickle/data.pkl
mkdir -p corpus/metrics_jsonl
printf '%s\n' '{"kind":"train","step":10,"epoch":0,"loss":12.5,"accuracy":0.1,"lr":0.1,"images_per_sec":30.0,"elapsed_s":2.0}' \
    '{"kind":"val","step":10,"epoch":0,"accuracy":0.6,"threshold":0.3}' > corpus/metrics_jsonl/run.jsonl
mkdir -p corpus/image_decode
ls $root/crates/data/tests/fixtures/lfw-mini/lfw-deepfunneled/*/*.jpg | head -4 | xargs -I{} cp {} corpus/image_decode/
# A small PNG (RGB, 8x8), written with zlib alone.
python3 - corpus/image_decode/small.png <<'PY'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
rows = b"".join(b"\0" + bytes((x * 32, y * 32, 128) * 1)[:3] * 8 for y in range(8) for x in [y])
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
