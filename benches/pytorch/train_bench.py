#!/usr/bin/env python3
"""PyTorch reference for `arcface bench`: the same training step (IResNet forward, ArcFace head
with s=64 m=0.5 over C classes, cross-entropy, backward, SGD momentum 0.9 wd 5e-4) on the same
synthetic batch, timed the same way (warm-up steps, then timed steps between device syncs).

The IResNet is our own PyTorch implementation (crates/backbone/tests/fixtures/make_fixture.py),
written from DESIGN.md with InsightFace's architecture. bf16 uses torch.autocast (AMP) with f32
master weights; `--channels-last` tries the channels-last memory format, `--best` runs both
layouts and reports the faster. The last stdout line is JSON for `arcface bench --pytorch`.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../crates/backbone/tests/fixtures"))
from make_fixture import Net  # noqa: E402

LAYERS = {"r18": [2, 2, 2, 2], "r34": [3, 4, 6, 3], "r50": [3, 4, 14, 3], "r100": [3, 13, 30, 3]}


def arcface_loss(emb, weight, labels, s=64.0, m=0.5):
    cos = F.linear(F.normalize(emb), F.normalize(weight)).clamp(-1, 1)
    sin = (1.0 - cos * cos).clamp(0, 1).sqrt()
    phi = cos * math.cos(m) - sin * math.sin(m)
    th, mm = math.cos(math.pi - m), math.sin(math.pi - m) * m
    phi = torch.where(cos > th, phi, cos - mm)
    onehot = F.one_hot(labels, weight.shape[0]).bool()
    logits = torch.where(onehot, phi, cos) * s
    return F.cross_entropy(logits.float(), labels)


def run(args, channels_last):
    dev = torch.device(args.device)
    torch.manual_seed(0)
    net = Net(LAYERS[args.backbone]).to(dev)
    head = torch.nn.Parameter(torch.randn(args.classes, 512, device=dev) * 0.01)
    opt = torch.optim.SGD(list(net.parameters()) + [head], lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch_size, 3, 112, 112, device=dev)
    labels = (torch.arange(args.batch_size, device=dev) * 7919) % args.classes
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    net.train()
    amp = args.precision == "bf16"

    def step():
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            emb = net(x)
            loss = arcface_loss(emb.float(), head, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    def faults():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_minflt + r.ru_majflt

    f0, t0 = faults(), time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    secs = time.perf_counter() - t0
    page_faults = faults() - f0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "variant": "channels_last" if channels_last else "contiguous",
        "images_per_sec": args.batch_size * args.steps / secs,
        "step_ms": secs * 1e3 / args.steps,
        "peak_memory_mb": peak,
        "page_faults_per_step": page_faults / args.steps,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--backbone", default="r50", choices=sorted(LAYERS))
    p.add_argument("--precision", default="f32", choices=["f32", "bf16"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--classes", type=int, default=10000)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--best", action="store_true", help="run both layouts, report the faster")
    p.add_argument("--json", action="store_true", help="print only the JSON line")
    args = p.parse_args()
    variants = [False, True] if args.best else [args.channels_last]
    results = [run(args, cl) for cl in variants]
    best = max(results, key=lambda r: r["images_per_sec"])
    if not args.json:
        for r in results:
            print(f"pytorch {args.device} {args.backbone} {args.precision} {r['variant']}: "
                  f"{r['images_per_sec']:.2f} images/s ({r['step_ms']:.1f} ms/step, "
                  f"{r['page_faults_per_step']:.0f} page faults/step)")
    print(json.dumps(best))


if __name__ == "__main__":
    main()
