#!/usr/bin/env python3
"""PyTorch reference for `arcface train` on LFW: the same short run (recipe from a TOML preset
in configs/, dev protocol, flip test, 10-fold accuracy as arcface-eval) so that the GPU check
can print ours and PyTorch's images/s, peak memory and LFW dev accuracy side by side.

What matches our tool (crates/train, crates/data, crates/eval):
- Data: `peopleDevTrain.txt` people with >= `min_images` images, labels = rank of the name in
  sorted order; test pairs from `pairsDevTest.txt`. Images are cropped (the LFW box
  (68, 74, 114, 114) on 250x250 originals, the whole image on a crop_copy tree) and resized
  to `input_size` with a bilinear (triangle) filter, RGB, NCHW, `x/127.5 - 1`. Training flips
  use our coin (splitmix64 of (seed, epoch, image index)); the shuffle is a seeded torch
  permutation per epoch (not our ChaCha8 order), full batches only.
- Model: our PyTorch IResNet (crates/backbone/tests/fixtures/make_fixture.py) with
  InsightFace's init (conv N(0, 0.1)), class centres N(0, 0.01), the ArcFace loss of
  train_bench.py (cosface and softmax too), SGD with weight decay on every trainable tensor,
  `clip_grad_norm_`, per-step warm-up + poly schedule spanning all epochs (`--max-steps`
  cuts the run, not the schedule), bf16 autocast with f32 master weights and f32 loss.
- Eval: L2-normalize(f(x) + f(flip(x))) in f32, cosine scores, 10 folds per class in file
  order (`balanced_folds`), per-fold threshold = lowest best candidate on the other folds.

All JPEGs are decoded once (Pillow, else torchvision.io) into one uint8 NHWC tensor, by
default moved to the GPU whole (`--data-on host`: pinned host memory, one batch copied per
step); each step indexes, flips and normalizes on the device. images/s counts the steps after
the first 10 (cuDNN autotuning, allocator warm-up), between device syncs. Peak memory is
`torch.cuda.max_memory_allocated()` over training (the resident data set included, see
`data_mb`), or the peak RSS on the CPU. The last stdout line is one JSON object.

Usage (repository root):
  python3 benches/pytorch/train_lfw.py --config r50_arcface --lfw-dir .gpu/lfw \\
      --device cuda --amp bf16 --max-steps 300 --json runs/gpu/pytorch_lfw.json
  python3 benches/pytorch/train_lfw.py --config quick --lfw-dir /tmp/h/lfwcrop \\
      --input-size 48 --epochs 1 --device cpu --amp none        # a few minutes on 2 cores
  python3 benches/pytorch/train_lfw.py --self-test               # metric/flip checks, no data
"""
import argparse
import json
import math
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "crates/backbone/tests/fixtures"))
sys.path.insert(0, HERE)
from make_fixture import PRESETS, Net  # noqa: E402
from train_bench import arcface_loss  # noqa: E402

LFW_BOX = (68, 74, 114, 114)  # crates/data/src/preprocess.rs CropBox::LFW
IMAGES_DIR = "lfw-deepfunneled"


def fail(msg):
    """Exits with a message instead of a traceback for user errors."""
    sys.exit(f"train_lfw: {msg}")


# ---------------------------------------------------------------- config


def load_toml(path):
    try:
        import tomllib
    except ImportError:  # Python < 3.11: enough TOML for the presets in configs/
        return _mini_toml(path)
    with open(path, "rb") as f:
        return tomllib.load(f)


def _mini_toml(path):
    import ast
    out, table = {}, None
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("["):
                table = out.setdefault(line.strip("[]").strip(), {})
                continue
            key, sep, value = line.partition("=")
            if not sep:
                fail(f"{path}:{n}: expected key = value")
            value = value.strip().replace("true", "True").replace("false", "False")
            (out if table is None else table)[key.strip()] = ast.literal_eval(value)
    return out


def resolve_config(args):
    """The recipe: the preset's values with the command-line overrides applied."""
    path = args.config
    if not os.path.isfile(path):
        path = os.path.join(ROOT, "configs", f"{args.config}.toml")
    if not os.path.isfile(path):
        fail(f"no config {args.config!r} (neither a file nor configs/{args.config}.toml)")
    c = load_toml(path)
    d, m, lo = c.get("data", {}), c.get("model", {}), c.get("loss", {})
    o, s, t = c.get("optim", {}), c.get("schedule", {}), c.get("train", {})
    kind = lo.get("kind", "arcface")
    r = argparse.Namespace(
        name=c.get("name", os.path.basename(path)), path=path,
        seed=pick(args.seed, c.get("seed", 42)),
        protocol=d.get("protocol", "dev"), min_images=pick(args.min_images, d.get("min_images", 1)),
        crop=pick(args.crop, d.get("crop")), flip=d.get("flip", True),
        backbone=pick(args.backbone, m["backbone"]), width=pick(args.width, m.get("width", 64)),
        input_size=pick(args.input_size, m.get("input_size", 112)),
        num_features=m.get("num_features", 512), dropout=m.get("dropout", 0.0),
        loss=kind, scale=lo.get("scale", 64.0),
        m=lo.get("m", {"cosface": 0.35, "softmax": 0.0}.get(kind, 0.5)),
        optim=o.get("kind", "sgd"), lr=o["lr"], momentum=o.get("momentum", 0.9),
        weight_decay=o.get("weight_decay", 5e-4), nesterov=o.get("nesterov", False),
        sched=s.get("kind", "poly"), power=s.get("power", 2.0), warmup_epochs=s.get("warmup_epochs", 0.0),
        epochs=pick(args.epochs, t["epochs"]), batch_size=pick(args.batch_size, t["batch_size"]),
        max_steps=pick(args.max_steps, t.get("max_steps", 0)), grad_clip=t.get("grad_clip", 0.0),
        amp=pick(args.amp, "bf16" if t.get("precision", "f32") == "bf16" else "none"),
        log_every=pick(args.log_every, t.get("log_every", 10)),
        eval_batch_size=pick(args.eval_batch_size, t.get("eval_batch_size", 64)),
    )
    unsupported = [
        (r.optim != "sgd", f"optimizer {r.optim!r} (only sgd)"),
        (r.sched != "poly", f"schedule {r.sched!r} (only poly)"),
        (r.loss not in ("arcface", "cosface", "softmax"), f"loss {r.loss!r}"),
        (lo.get("easy_margin", False), "easy_margin"),
        (lo.get("grad_mode", "exact") != "exact", "grad_mode other than exact"),
        (r.dropout > 0, "dropout > 0 (the reference Net has none)"),
        (r.backbone not in PRESETS, f"backbone {r.backbone!r}"),
        (r.input_size % 16 != 0, f"input size {r.input_size} (must be a multiple of 16)"),
    ]
    for bad, what in unsupported:
        if bad:
            fail(f"{path}: unsupported {what}")
    if r.protocol != "dev":
        print(f"note: {r.name} says protocol {r.protocol!r}; this reference trains on dev", file=sys.stderr)
    return r


def pick(override, default):
    return default if override is None else override


# ---------------------------------------------------------------- data


def read_dev_split(lfw_dir, min_images):
    """(train paths, labels, class names, pair image paths, pair index array, same flags)."""
    people_file = os.path.join(lfw_dir, "peopleDevTrain.txt")
    pairs_file = os.path.join(lfw_dir, "pairsDevTest.txt")
    img = lambda name, k: os.path.join(lfw_dir, IMAGES_DIR, name, f"{name}_{int(k):04d}.jpg")  # noqa: E731
    try:
        with open(people_file) as f:
            people = [line.split() for line in f.read().splitlines()[1:] if line.strip()]
        with open(pairs_file) as f:
            pair_lines = [line.split() for line in f.read().splitlines()[1:] if line.strip()]
    except OSError as e:
        fail(f"reading the LFW dev protocol files: {e}")
    people = sorted((p[0], int(p[1])) for p in people if int(p[1]) >= min_images)
    paths, labels = [], []
    for label, (name, count) in enumerate(people):
        paths += [img(name, k) for k in range(1, count + 1)]
        labels += [label] * count
    index, pair_paths, pairs, same = {}, [], [], []
    for n, f in enumerate(pair_lines, 2):
        if len(f) not in (3, 4):
            fail(f"{pairs_file}:{n}: expected `name i j` or `name1 i name2 j`")
        refs = [(f[0], f[1]), (f[0], f[2])] if len(f) == 3 else [(f[0], f[1]), (f[2], f[3])]
        ids = []
        for ref in refs:
            if ref not in index:
                index[ref] = len(pair_paths)
                pair_paths.append(img(*ref))
            ids.append(index[ref])
        pairs.append(ids)
        same.append(len(f) == 3)
    return paths, np.array(labels), [p[0] for p in people], pair_paths, np.array(pairs), np.array(same)


def make_decoder(size, crop):
    """A function path -> HWC uint8 RGB array (crop, then resize to `size`), and its name."""

    def box_for(w, h):
        if crop is not None:
            return tuple(crop)
        return LFW_BOX if (w, h) == (250, 250) else (0, 0, w, h)

    try:
        from PIL import Image

        def decode(path):
            with Image.open(path) as im:
                im = im.convert("RGB")
                x, y, w, h = box_for(*im.size)
                if (x, y, w, h) != (0, 0) + im.size:
                    im = im.crop((x, y, x + w, y + h))
                if im.size != (size, size):
                    im = im.resize((size, size), Image.BILINEAR)  # antialiased, like image's Triangle
                return np.asarray(im, dtype=np.uint8)

        return decode, "pillow"
    except ImportError:
        pass
    try:
        from torchvision.io import ImageReadMode, decode_jpeg, read_file
    except ImportError:
        fail("decoding JPEGs needs Pillow or torchvision (pip install pillow)")

    def decode(path):
        t = decode_jpeg(read_file(path), mode=ImageReadMode.RGB)
        x, y, w, h = box_for(t.shape[2], t.shape[1])
        t = t[:, y:y + h, x:x + w]
        if (h, w) != (size, size):
            t = F.interpolate(t[None].float(), size=(size, size), mode="bilinear",
                              antialias=True, align_corners=False)[0].round().clamp(0, 255).byte()
        return t.permute(1, 2, 0).numpy()

    return decode, "torchvision"


def decode_all(paths, decode, workers):
    out = None
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for i, a in enumerate(pool.map(decode, paths)):
            if out is None:
                out = np.empty((len(paths),) + a.shape, np.uint8)
            out[i] = a
    return torch.from_numpy(out)


def _splitmix64(z):
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def flip_coins(seed, epoch, n):
    """crates/data/src/augment.rs `should_flip(seed, epoch, i)` for i in 0..n."""
    s = _splitmix64(np.array([seed], np.uint64))
    e = _splitmix64(s ^ np.uint64(epoch))
    return (_splitmix64(e ^ np.arange(n, dtype=np.uint64)) >> np.uint64(63)) == 1


class Images:
    """The decoded images where batches are taken from, and the step's device-side prep."""

    def __init__(self, u8, dev, on_device, channels_last, max_batch):
        self.dev, self.on_device, self.cl = dev, on_device or dev.type != "cuda", channels_last
        self.data = u8.to(dev) if self.on_device else u8.pin_memory()
        self.ring = []
        if not self.on_device:  # pinned staging buffers, reused once their copy has finished
            self.ring = [(torch.empty((max_batch,) + u8.shape[1:], dtype=torch.uint8).pin_memory(),
                          torch.cuda.Event()) for _ in range(3)]
        self.turn = 0

    def batch(self, idx_dev, flip_dev, idx_cpu=None):
        if self.on_device:
            x = self.data.index_select(0, idx_dev)
        else:
            buf, done = self.ring[self.turn % len(self.ring)]
            self.turn += 1
            done.synchronize()
            b = buf[: len(idx_cpu)]
            torch.index_select(self.data, 0, idx_cpu, out=b)
            x = b.to(self.dev, non_blocking=True)
            done.record()
        return prep(x, flip_dev, self.cl)


def prep(x_nhwc, flip, channels_last):
    """uint8 NHWC -> flipped where `flip`, f32 NCHW `x/127.5 - 1`."""
    x = x_nhwc.permute(0, 3, 1, 2)
    if flip is not None:
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    x = x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return x.float().mul_(1 / 127.5).sub_(1.0)


# ---------------------------------------------------------------- model, loss, schedule


def build(r, num_classes, dev, channels_last):
    torch.manual_seed(r.seed)
    net = Net(PRESETS[r.backbone], r.width, r.input_size, r.num_features)
    for mod in net.modules():  # InsightFace iresnet.py: conv N(0, 0.1); BN 1/0, PReLU 0.25 by default
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.normal_(mod.weight, 0, 0.1)
    net = net.to(dev)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    head = torch.nn.Parameter(torch.randn(num_classes, r.num_features, device=dev) * 0.01)
    params = [p for p in net.parameters() if p.requires_grad] + [head]
    opt = torch.optim.SGD(params, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay,
                          nesterov=r.nesterov)
    return net, head, params, opt


def margin_loss(r, emb, head, labels):
    if r.loss == "cosface":
        cos = F.linear(F.normalize(emb), F.normalize(head)).clamp(-1, 1)
        logits = (cos - r.m * F.one_hot(labels, head.shape[0])) * r.scale
        return F.cross_entropy(logits, labels)
    return arcface_loss(emb, head, labels, s=r.scale, m=r.m if r.loss == "arcface" else 0.0)


def lr_at(r, step, warmup, total):
    """crates/train/src/schedule.rs, poly: per-step warm-up, then base * (1 - progress)^power."""
    if step < warmup:
        return r.lr * step / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return r.lr * (1.0 - progress) ** r.power


# ---------------------------------------------------------------- metrics (crates/eval)


def balanced_folds(same, k=10):
    """crates/eval/src/run.rs `balanced_folds`: fold = rank within its class * k / class size."""
    out = np.empty(len(same), np.int64)
    for cls in (True, False):
        where = np.flatnonzero(same == cls)
        out[where] = np.arange(len(where)) * k // max(len(where), 1)
    return out


def verification(scores, same, folds):
    """crates/eval/src/metrics.rs: per-fold accuracy at the threshold chosen on the other folds
    (candidates below, between and above the distinct scores; ties to the lowest), AUC with ties
    counting half, and the best global threshold."""
    values = np.unique(scores)
    cands = np.concatenate([[values[0] - 1], (values[:-1] + values[1:]) / 2, [values[-1] + 1]])
    rank = np.searchsorted(values, scores)
    correct = (rank[:, None] >= np.arange(len(cands))[None, :]) == same[:, None]
    accs, thresholds = [], []
    for f in np.unique(folds):
        test = folds == f
        k = int(np.argmax(correct[~test].sum(0)))
        accs.append(correct[test, k].mean())
        thresholds.append(cands[k])
    pos, neg = scores[same], scores[~same]
    auc = ((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())
    k = int(np.argmax(correct.sum(0)))
    return {"accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
            "fold_accuracies": [float(a) for a in accs], "fold_thresholds": [float(t) for t in thresholds],
            "auc": float(auc), "threshold": float(cands[k]), "best_accuracy": float(correct[:, k].mean())}


@torch.no_grad()
def embed(net, u8, dev, batch_size, channels_last):
    net.eval()
    rows = []
    for i in range(0, len(u8), batch_size):
        x = prep(u8[i:i + batch_size].to(dev), None, channels_last)
        e = net(x).float() + net(x.flip(3)).float()
        rows.append(F.normalize(e).cpu())
    return torch.cat(rows).double().numpy()


# ---------------------------------------------------------------- training


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def train(r, net, head, params, opt, images, labels, dev):
    n = len(labels)
    spe = n // r.batch_size
    if spe == 0:
        fail(f"{n} training images is less than one batch of {r.batch_size}")
    full = r.epochs * spe
    total = min(full, r.max_steps) if r.max_steps > 0 else full
    warmup = math.floor(r.warmup_epochs * spe + 0.5)
    skip = 10 if total > 10 else 0
    labels_dev = torch.as_tensor(labels, device=dev)
    amp = r.amp == "bf16"
    step, loss_sum, win_steps, t_win = 0, torch.zeros((), device=dev), 0, time.perf_counter()
    t0 = time.perf_counter() if skip == 0 else None
    last_loss = float("nan")
    net.train()
    for epoch in range(r.epochs):
        gen = torch.Generator().manual_seed(r.seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=gen)
        order_dev = order.to(dev)
        coins = torch.from_numpy(flip_coins(r.seed, epoch, n)).to(dev) if r.flip else None
        for b in range(spe):
            if step >= total:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(r, step, warmup, full)
            idx_dev = order_dev[b * r.batch_size:(b + 1) * r.batch_size]
            x = images.batch(idx_dev, None if coins is None else coins[idx_dev],
                             order[b * r.batch_size:(b + 1) * r.batch_size])
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                emb = net(x)
            loss = margin_loss(r, emb.float(), head, labels_dev[idx_dev])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if r.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, r.grad_clip)
            opt.step()
            loss_sum += loss.detach()
            step, win_steps = step + 1, win_steps + 1
            if step == skip and t0 is None:
                sync(dev)
                t0 = time.perf_counter()
            if step % r.log_every == 0 or step == total:
                last_loss = loss_sum.item() / win_steps  # syncs
                if not math.isfinite(last_loss):
                    fail(f"non-finite loss {last_loss} in steps {step - win_steps + 1}..{step} (epoch {epoch})")
                ips = win_steps * r.batch_size / (time.perf_counter() - t_win)
                print(f"step {step}/{total} epoch {epoch} loss {last_loss:.4f} "
                      f"lr {opt.param_groups[0]['lr']:.5f} {ips:.1f} img/s", flush=True)
                loss_sum.zero_()
                win_steps, t_win = 0, time.perf_counter()
    sync(dev)
    secs = time.perf_counter() - t0
    return {"steps": step, "timed_steps": step - skip, "steps_per_epoch": spe,
            "images_per_sec": (step - skip) * r.batch_size / secs, "final_loss": last_loss,
            "epochs_run": step / spe}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="r50_arcface", help="configs/<name>.toml or a path")
    p.add_argument("--lfw-dir", default=os.path.join(ROOT, "data/lfw"))
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--backbone", choices=sorted(PRESETS))
    p.add_argument("--width", type=int)
    p.add_argument("--input-size", type=int)
    p.add_argument("--min-images", type=int)
    p.add_argument("--crop", type=lambda s: [int(v) for v in s.split(",")],
                   help="x,y,w,h in the source image; default: the config's, else the LFW box on "
                        "250x250 originals and the whole image otherwise")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", choices=["bf16", "none"], help="default: the config's precision")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--no-tf32", action="store_true", help="f32 convolutions without TF32")
    p.add_argument("--data-on", choices=["device", "host"], default="device")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="JPEG decoding threads")
    p.add_argument("--seed", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--eval-batch-size", type=int)
    p.add_argument("--json", help="also write the final JSON object to this file")
    p.add_argument("--self-test", action="store_true", help="check the metrics and flip coin, then exit")
    args = p.parse_args()
    if args.self_test:
        return self_test()
    r = resolve_config(args)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            fail("--device cuda but torch sees no GPU")
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = not args.no_tf32

    paths, labels, classes, pair_paths, pairs, same = read_dev_split(args.lfw_dir, r.min_images)
    missing = [q for q in paths + pair_paths if not os.path.isfile(q)]
    if missing:
        fail(f"{len(missing)} images missing under {args.lfw_dir}, e.g. {missing[0]}")
    decode, decoder = make_decoder(r.input_size, r.crop)
    t = time.perf_counter()
    train_u8 = decode_all(paths, decode, args.workers)
    test_u8 = decode_all(pair_paths, decode, args.workers)
    decode_s = time.perf_counter() - t
    print(f"{r.name}: {len(paths)} training images of {len(classes)} people, {len(pairs)} pairs "
          f"({len(pair_paths)} images); decoded with {decoder} in {decode_s:.1f} s "
          f"({(len(paths) + len(pair_paths)) / decode_s:.0f} images/s, {args.workers} threads)", flush=True)

    net, head, params, opt = build(r, len(classes), dev, args.channels_last)
    images = Images(train_u8, dev, args.data_on == "device", args.channels_last, r.batch_size)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    res = train(r, net, head, params, opt, images, labels, dev)
    elapsed = time.perf_counter() - t
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t = time.perf_counter()
    emb = embed(net, test_u8, dev, r.eval_batch_size, args.channels_last)
    scores = (emb[pairs[:, 0]] * emb[pairs[:, 1]]).sum(1)
    m = verification(scores, same, balanced_folds(same))
    eval_s = time.perf_counter() - t
    print(f"LFW dev ({len(pairs)} pairs, flip test, 10 folds): accuracy {100 * m['accuracy_mean']:.2f}% "
          f"+- {100 * m['accuracy_std']:.2f}%, AUC {m['auc']:.4f} (eval {eval_s:.1f} s)", flush=True)
    out = {
        "images_per_sec": res["images_per_sec"], "peak_mem_mb": peak,
        "accuracy_mean": m["accuracy_mean"], "accuracy_std": m["accuracy_std"], "auc": m["auc"],
        "threshold": m["threshold"], "steps": res["steps"], "timed_steps": res["timed_steps"],
        "epochs": r.epochs, "epochs_run": res["epochs_run"], "elapsed_s": elapsed, "eval_s": eval_s,
        "final_loss": res["final_loss"], "decode_s": decode_s, "decoder": decoder,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__, "amp": r.amp, "channels_last": args.channels_last,
        "tf32_conv": dev.type == "cuda" and torch.backends.cudnn.allow_tf32,
        "data_on": "device" if images.on_device else "host",
        "data_mb": train_u8.numel() / 2**20 if images.on_device and dev.type == "cuda" else 0.0,
        "config": r.name, "backbone": r.backbone, "width": r.width, "input_size": r.input_size,
        "batch_size": r.batch_size, "train_images": len(paths), "classes": len(classes),
        "threads": torch.get_num_threads(),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    print(json.dumps(out))


def self_test():
    """The hand-computed case of crates/eval/src/metrics.rs and the flip coin's properties."""
    m = verification(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, True, False, True]),
                     np.array([0, 0, 1, 1]))
    assert np.allclose(m["fold_thresholds"], [0.375, 0.225]), m
    assert m["fold_accuracies"] == [1.0, 0.5] and abs(m["accuracy_std"] - 0.25) < 1e-12, m
    assert m["auc"] == 1.0 and abs(m["threshold"] - 0.375) < 1e-12 and m["best_accuracy"] == 1.0, m
    assert verification(np.array([0.3, 0.3]), np.array([True, False]), np.array([0, 1]))["auc"] == 0.5
    same = np.array([True] * 500 + [False] * 500)
    f = balanced_folds(same)
    assert all((f[same] == k).sum() == 50 and (f[~same] == k).sum() == 50 for k in range(10))
    assert list(f[:51:50]) == [0, 1] and f[500] == 0
    mask = (1 << 64) - 1

    def sm(z):  # the Rust code with Python integers
        z = (z + 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    coins = flip_coins(42, 3, 10_000)
    assert all(coins[i] == (sm(sm(sm(42) ^ 3) ^ i) >> 63 == 1) for i in range(0, 10_000, 97))
    assert 4800 <= coins.sum() <= 5200
    x = torch.arange(2 * 2 * 3, dtype=torch.uint8).reshape(1, 2, 2, 3) * 20
    y = prep(x, torch.tensor([True]), False)
    assert y.shape == (1, 3, 2, 2) and abs(y[0, 0, 0, 0].item() - (60 / 127.5 - 1)) < 1e-6
    print("self-test: ok")


if __name__ == "__main__":
    main()
