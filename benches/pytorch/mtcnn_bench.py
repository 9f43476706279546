#!/usr/bin/env python3
"""PyTorch CPU baseline for benches/benches/mtcnn.rs: facenet-pytorch's MTCNN (2.6, default
settings) on the same pictures, and the whole `embed` path per image as InsightFace runs it.
Rows (milliseconds per image, lower is better):

    detect_250x250   MTCNN.detect(landmarks=True) on one LFW photo as it is (decoded once)
    detect_640x480   the same photo pasted on a black 640x480 canvas at (300, 130), with a
                     2x2-averaged copy at (40, 300): two faces, as tests/mtcnn.rs's `canvas`
    embed_<model>    Pillow decode (EXIF upright) + detect + InsightFace's norm_crop (skimage
                     SimilarityTransform + cv2.warpAffine) of the largest face + IResNet
                     eval forward at batch 1 (random weights, no flip test) + L2 normalize
    forward_<model>  that last step alone, on the aligned crop (where embed's time goes)

The network is PyTorch's fastest variant on the machine, chosen by its forward time: as users
run it (NCHW eval), channels-last, or frozen TorchScript (torch.jit.freeze +
optimize_for_inference: BatchNorm folded, oneDNN fusions); every variant's time is printed
and saved with --json.

Our side builds the same pictures from the same photo; both decode the JPEG with
libjpeg-turbo. The IResNet is the one from crates/backbone/tests/fixtures/make_fixture.py.

Run alone:
    /root/torchenv/bin/python benches/pytorch/mtcnn_bench.py [--threads 2] [--seconds 5]
Side by side with `cargo bench -p arcface-benches --bench mtcnn` in one session, with the
ratio per row (it runs the cargo bench first, then this script, on the same threads):
    /root/torchenv/bin/python benches/pytorch/mtcnn_bench.py --compare [--json FILE]
Options: --photo (relative to data/lfw/lfw-deepfunneled; also ARCFACE_BENCH_PHOTO for the
Rust side), --models r50[,r18] (also ARCFACE_BENCH_MODELS). facenet-pytorch loads the weights
bundled with its package, the files data/mtcnn holds (../shared/data/mtcnn/SHA256SUMS).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import warnings

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from facenet_pytorch import MTCNN
from PIL import Image, ImageOps
from skimage import transform as trans

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "crates", "backbone", "tests", "fixtures"))
from make_fixture import PRESETS, Net  # noqa: E402

DEFAULT_PHOTO = "Aaron_Eckhart/Aaron_Eckhart_0001.jpg"
ARCFACE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                    [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)


def halve(rgb):
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    x = rgb[:h, :w].astype(np.uint32)
    s = x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]
    return ((s + 2) // 4).astype(np.uint8)


def canvas(rgb):
    big = np.zeros((480, 640, 3), np.uint8)
    big[130:130 + rgb.shape[0], 300:300 + rgb.shape[1]] = rgb
    small = halve(rgb)
    big[300:300 + small.shape[0], 40:40 + small.shape[1]] = small
    return big


def load_photo(path):
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def norm_crop(img, lmk, size=112):
    tform = trans.SimilarityTransform.from_estimate(lmk, ARCFACE * (size / 112.0))
    return cv2.warpAffine(img, tform.params[0:2, :], (size, size), borderValue=0.0)


def aligned(path, mtcnn):
    pil = load_photo(path)
    boxes, _, points = mtcnn.detect(pil, landmarks=True)
    if boxes is None:
        raise SystemExit(f"{path}: no face")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return norm_crop(np.asarray(pil), points[int(np.argmax(areas))].astype(np.float32))


def to_input(crop):
    return torch.from_numpy(crop).permute(2, 0, 1).unsqueeze(0).float().sub(127.5).div(127.5)


def embedding(crop, net, channels_last=False):
    x = to_input(crop)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    with torch.no_grad():
        return F.normalize(net(x))


def embed(path, mtcnn, net, channels_last=False):
    return embedding(aligned(path, mtcnn), net, channels_last)


def variants(model):
    """The network as PyTorch users run it (NCHW eval), channels-last, and frozen TorchScript
    (BatchNorm folded, oneDNN fusions: torch.jit.freeze + optimize_for_inference), all with
    the same seeded weights; name -> (net, channels_last)."""
    torch.manual_seed(0)
    net = Net(PRESETS[model]).eval()
    cl = Net(PRESETS[model]).eval()
    cl.load_state_dict(net.state_dict())
    cl = cl.to(memory_format=torch.channels_last)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, torch.zeros(1, 3, 112, 112))))
    return {"nchw": (net, False), "channels_last": (cl, True), "jit_frozen": (frozen, False)}


def ms_per_call(fn, seconds):
    fn()  # warm-up
    fn()
    n, start = 0, time.perf_counter()
    while n < 5 or time.perf_counter() - start < seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n * 1e3


def torch_rows(a):
    torch.set_num_threads(a.threads)
    path = os.path.join(a.lfw, a.photo)
    rgb = np.asarray(load_photo(path))
    pictures = {"detect_250x250": Image.fromarray(rgb), "detect_640x480": Image.fromarray(canvas(rgb))}
    mtcnn = MTCNN(select_largest=False, keep_all=True, device="cpu")
    rows = {}
    for name, pic in pictures.items():
        rows[name] = ms_per_call(lambda: mtcnn.detect(pic, landmarks=True), a.seconds)
        print(f"pytorch cpu/mtcnn/{name}: {rows[name]:.2f} ms/image", flush=True)
    for model in a.models.split(","):
        crop = aligned(path, mtcnn)
        # PyTorch's best variant of the network on this machine, chosen on the forward alone.
        times = {}
        for name, (net, cl) in variants(model).items():
            times[name] = ms_per_call(lambda: embedding(crop, net, cl), a.seconds)
            print(f"pytorch forward_{model} {name}: {times[name]:.2f} ms/image", flush=True)
        best = min(times, key=times.get)
        net, cl = variants(model)[best]
        rows[f"embed_{model}"] = ms_per_call(lambda: embed(path, mtcnn, net, cl), a.seconds)
        rows[f"forward_{model}"] = times[best]
        for name in (f"embed_{model}", f"forward_{model}"):
            print(f"pytorch cpu/mtcnn/{name} ({best}): {rows[name]:.2f} ms/image", flush=True)
        rows.setdefault("_variants", {})[model] = {"best": best, "forward_ms": times}
    return rows


def candle_rows(a):
    env = dict(os.environ, ARCFACE_BENCH_MODELS=a.models, ARCFACE_BENCH_PHOTO=a.photo,
               RAYON_NUM_THREADS=str(a.threads))
    cmd = ["cargo", "bench", "-p", "arcface-benches", "--bench", "mtcnn", "--", "--noplot", "cpu/"]
    print("+ RAYON_NUM_THREADS=%d %s" % (a.threads, " ".join(cmd)), flush=True)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    rows = {}
    names = ["detect_250x250", "detect_640x480"] + [f"{w}_{m}" for m in a.models.split(",") for w in ("embed", "forward")]
    for name in names:
        with open(os.path.join(target, "criterion", "cpu_mtcnn", name, "new", "estimates.json")) as f:
            rows[name] = json.load(f)["mean"]["point_estimate"] * 1e-6
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lfw", default=os.path.join(ROOT, "data", "lfw", "lfw-deepfunneled"))
    ap.add_argument("--photo", default=os.environ.get("ARCFACE_BENCH_PHOTO", DEFAULT_PHOTO))
    ap.add_argument("--models", default=os.environ.get("ARCFACE_BENCH_MODELS", "r50"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--compare", action="store_true", help="run the cargo bench first and print both")
    ap.add_argument("--json", help="with --compare, also write the table here as JSON")
    a = ap.parse_args()
    ours = candle_rows(a) if a.compare else None
    ref = torch_rows(a)
    if ours is None:
        return
    print(f"\n{'row':16} {'candle':>10} {'pytorch':>10} {'speed':>7}   "
          f"(ms/image, {a.threads} threads, torch {torch.__version__}, photo {a.photo})")
    table = []
    variants_seen = ref.pop("_variants", {})
    for name in ref:
        r = ref[name] / ours[name]
        print(f"{name:16} {ours[name]:10.2f} {ref[name]:10.2f} {r:6.2f}x")
        table.append({"row": name, "candle_ms": ours[name], "pytorch_ms": ref[name], "speed_ratio": r})
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"date": datetime.date.today().isoformat(), "threads": a.threads,
                       "torch": torch.__version__, "photo": a.photo, "rows": table,
                       "pytorch_variants": variants_seen}, f, indent=2)


if __name__ == "__main__":
    main()
