#!/usr/bin/env python3
"""Side-by-side CPU speed of our IResNet (candle, `cargo bench --bench backbone`) and the same
network in PyTorch (backbone_bench.py), in one run on one machine, with the ratio per row:
eval-mode forward at batch 1 and 32 and a training step (forward + backward) at batch 32.
PyTorch's best of its default (NCHW) and channels_last layouts is the reference, and for the
forward rows also of frozen TorchScript (torch.jit.freeze + optimize_for_inference: BatchNorm
folded, oneDNN fusions), as ours are the network frozen for inference.

Run (from the repository root):
    python3 benches/pytorch/compare_cpu.py [--models r34,r50] [--seconds 10] [--json FILE]
Criterion's estimates are read from target/criterion/cpu_<model>_<work>/b<batch>/new/.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import warnings

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "crates", "backbone", "tests", "fixtures"))
from backbone_bench import measure  # noqa: E402
from make_fixture import PRESETS, Net  # noqa: E402

WORKS = [("forward", 1, False), ("forward", 32, False), ("train_step", 32, True)]


def candle_rows(models):
    env = dict(os.environ, ARCFACE_BENCH_MODELS=models)
    cmd = ["cargo", "bench", "-p", "arcface-benches", "--bench", "backbone", "--", "--noplot", "cpu/"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    rows = {}
    for name in models.split(","):
        for work, batch, _ in WORKS:
            path = os.path.join(target, "criterion", f"cpu_{name}_{work}", f"b{batch}", "new", "estimates.json")
            with open(path) as f:
                ns = json.load(f)["mean"]["point_estimate"]
            rows[(name, work, batch)] = batch / (ns * 1e-9)
    return rows


def torch_rows(models, seconds):
    rows = {}
    for name in models.split(","):
        torch.manual_seed(0)
        net = Net(PRESETS[name])
        for fmt in (torch.contiguous_format, torch.channels_last):
            net = net.to(memory_format=fmt)
            for work, batch, train in WORKS:
                net.train(train)
                x = torch.randn(batch, 3, 112, 112).to(memory_format=fmt)
                ips = measure(net, x, train, seconds)
                key = (name, work, batch)
                rows[key] = max(rows.get(key, 0.0), ips)
                print(f"pytorch cpu/{name}/{work}/b{batch} {fmt}: {ips:.2f} images/s", flush=True)
        net = net.to(memory_format=torch.contiguous_format).eval()
        for work, batch, train in WORKS:
            if train:
                continue
            x = torch.randn(batch, 3, 112, 112)
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x)))
            ips = measure(frozen, x, False, seconds)
            key = (name, work, batch)
            rows[key] = max(rows.get(key, 0.0), ips)
            print(f"pytorch cpu/{name}/{work}/b{batch} jit frozen: {ips:.2f} images/s", flush=True)
    return rows


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="r34,r50")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", help="also write the table here as JSON")
    a = ap.parse_args()
    ours = candle_rows(a.models)
    torch.set_num_threads(os.cpu_count())
    ref = torch_rows(a.models, a.seconds)
    print(f"\n{'row':28} {'candle':>10} {'pytorch':>10} {'ratio':>7}   (images/s, {os.cpu_count()} threads, torch {torch.__version__})")
    table = []
    for key in sorted(ours):
        name, work, batch = key
        r = ours[key] / ref[key]
        print(f"{name}/{work}/b{batch:<14} {ours[key]:10.2f} {ref[key]:10.2f} {r:6.2f}x")
        table.append({"model": name, "work": work, "batch": batch, "candle": ours[key], "pytorch_best": ref[key], "ratio": r})
    if a.json:
        out = {
            "date": datetime.date.today().isoformat(),
            "cpu": cpu_name(),
            "threads": os.cpu_count(),
            "torch": torch.__version__,
            "rows": table,
        }
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
