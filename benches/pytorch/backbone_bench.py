#!/usr/bin/env python3
"""PyTorch CPU baseline for benches/benches/backbone.rs: the same IResNet (r34, r50 at
112x112) doing the same work, eval-mode forward at batch 1 and 32 and a training step
(train-mode forward + backward of mean(y^2)) at batch 32, in eager mode with the default
(NCHW) and channels_last memory formats. Prints images/s per row.

Run: python3 benches/pytorch/backbone_bench.py [--models r34,r50] [--threads 2] [--seconds 10]
The network is the one from crates/backbone/tests/fixtures/make_fixture.py.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "crates", "backbone", "tests", "fixtures"))
from make_fixture import PRESETS, Net  # noqa: E402


def step(net, x, train):
    if train:
        net.zero_grad(set_to_none=True)
        net(x).pow(2).mean().backward()
    else:
        with torch.no_grad():
            net(x)


def measure(net, x, train, seconds):
    step(net, x, train)  # warm-up
    n, start = 0, time.perf_counter()
    while n < 2 or time.perf_counter() - start < seconds:
        step(net, x, train)
        n += 1
    return n * x.shape[0] / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="r34,r50")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} threads")
    for name in a.models.split(","):
        torch.manual_seed(0)
        net = Net(PRESETS[name])
        for fmt_name, fmt in [("eager", torch.contiguous_format), ("channels_last", torch.channels_last)]:
            net = net.to(memory_format=fmt)
            for work, batch, train in [("forward", 1, False), ("forward", 32, False), ("train_step", 32, True)]:
                net.train(train)
                x = torch.randn(batch, 3, 112, 112).to(memory_format=fmt)
                ips = measure(net, x, train, a.seconds)
                print(f"cpu/{name}/{work}/b{batch} {fmt_name}: {ips:.2f} images/s", flush=True)


if __name__ == "__main__":
    main()
