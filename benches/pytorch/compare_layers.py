#!/usr/bin/env python3
"""Per-layer GFLOP/s of our convolutions (`cargo bench --bench layers`) beside PyTorch's
`torch.nn.functional.conv2d` on the same shapes, in one run on one machine, each as a share of
the FMA peak the layers bench measures (a register-only loop per vector extension, on one
thread and on all). Forward alone (`fwd`, the training forward), forward plus the input and
weight gradients (`fwd_bwd`, counted as three forwards), and the inference forward of a kernel
prepared once (`infer`, our `FrozenConv`, against the same no-grad PyTorch forward as `fwd`).
PyTorch's reference is its best of NCHW and channels_last.

Run (from the repository root):
    python3 benches/pytorch/compare_layers.py [--seconds 1] [--json FILE]
The layer shapes are read from benches/benches/layers.rs, the one list both sides use.
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from compare_cpu import cpu_name, isa  # noqa: E402


def layers():
    """(name, cin, cout, side, kernel, stride) rows and BATCH from layers.rs."""
    with open(os.path.join(ROOT, "benches", "benches", "layers.rs")) as f:
        text = f.read()
    batch = int(re.search(r"const BATCH: usize = (\d+);", text).group(1))
    rows = re.findall(r'\("(\w+)", (\d+), (\d+), (\d+), (\d+), (\d+)\)', text)
    return batch, [(n, *map(int, r)) for n, *r in rows]


def flops(batch, cin, cout, side, kernel, stride):
    pad = kernel // 2
    out = (side + 2 * pad - kernel) // stride + 1
    return 2 * batch * cout * cin * kernel * kernel * out * out


def estimate(*parts):
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    with open(os.path.join(target, "criterion", *parts, "new", "estimates.json")) as f:
        return json.load(f)["mean"]["point_estimate"] * 1e-9  # seconds per iteration


def ours(batch, rows):
    cmd = ["cargo", "bench", "-p", "arcface-benches", "--bench", "layers", "--", "--noplot"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)
    threads = os.cpu_count()
    peak = {}
    for ext, lanes in (("avx512", 16), ("avx2", 8)):
        for t in sorted({1, threads}):
            try:
                secs = estimate("cpu_peak", ext, f"{t}t")
            except FileNotFoundError:
                continue
            peak[f"{ext}_{t}t"] = 2 * lanes * 12 * (1 << 20) * t / secs / 1e9
    gflops = {}
    for mode, mult in MODES:
        for name, *shape in rows:
            gflops[(name, mode)] = mult * flops(batch, *shape) / estimate(f"cpu_layer_{mode}", name) / 1e9
    return peak, gflops


MODES = (("fwd", 1), ("fwd_bwd", 3), ("infer", 1))


def timed(fn, seconds):
    fn()
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n


def torch_gflops(batch, rows, seconds):
    out = {}
    for name, cin, cout, side, kernel, stride in rows:
        for fmt in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(batch, cin, side, side).to(memory_format=fmt).requires_grad_(True)
            w = (torch.randn(cout, cin, kernel, kernel) * 0.05).to(memory_format=fmt).requires_grad_(True)

            def fwd():
                with torch.no_grad():
                    F.conv2d(x, w, stride=stride, padding=kernel // 2)

            def fwd_bwd():
                F.conv2d(x, w, stride=stride, padding=kernel // 2).sum().backward()

            for mode, fn, mult in (("fwd", fwd, 1), ("fwd_bwd", fwd_bwd, 3)):
                g = mult * flops(batch, cin, cout, side, kernel, stride) / timed(fn, seconds) / 1e9
                out[(name, mode)] = max(out.get((name, mode), 0.0), g)
        out[(name, "infer")] = out[(name, "fwd")]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0, help="PyTorch time per layer and mode")
    ap.add_argument("--json", help="also write the table here as JSON")
    a = ap.parse_args()
    batch, rows = layers()
    peak, mine = ours(batch, rows)
    torch.set_num_threads(os.cpu_count())
    ref = torch_gflops(batch, rows, a.seconds)
    threads = os.cpu_count()
    best = max((v for k, v in peak.items() if k.endswith(f"_{threads}t")), default=float("nan"))
    print(f"\nFMA peak (GFLOP/s): " + ", ".join(f"{k} {v:.1f}" for k, v in peak.items()))
    print(f"{'layer (batch %d)' % batch:26} {'mode':8} {'ours':>8} {'torch':>8} {'ratio':>6} {'ours/peak':>9} {'torch/peak':>10}"
          f"   (GFLOP/s, {threads} threads, {isa()}, torch {torch.__version__})")
    table = []
    for name, *_ in rows:
        for mode, _ in MODES:
            o, t = mine[(name, mode)], ref[(name, mode)]
            print(f"{name:26} {mode:8} {o:8.1f} {t:8.1f} {o / t:5.2f}x {o / best:8.0%} {t / best:9.0%}")
            table.append({"layer": name, "mode": mode, "ours_gflops": o, "torch_gflops": t, "ratio": o / t,
                          "ours_of_peak": o / best, "torch_of_peak": t / best})
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"date": datetime.date.today().isoformat(), "cpu": cpu_name(), "isa": isa(), "threads": threads,
                       "torch": torch.__version__, "batch": batch, "peak_gflops": peak, "rows": table}, f, indent=2)


if __name__ == "__main__":
    main()
