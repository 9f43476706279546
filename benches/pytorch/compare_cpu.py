#!/usr/bin/env python3
"""Side-by-side CPU speed of our IResNet (candle, `cargo bench --bench backbone`) and the same
network in PyTorch (backbone_bench.py), in one run on one machine, with the ratio per row:
eval-mode forward at batch 1 and 32 and a training step (forward + backward) at batch 32.
PyTorch's best of its variants is the reference: its default (NCHW) and channels_last
layouts, for the forward rows also frozen TorchScript (torch.jit.freeze +
optimize_for_inference: BatchNorm folded, oneDNN fusions), as ours are the network frozen for
inference; each with glibc's allocator and with jemalloc preloaded (Debian's libjemalloc2),
which helps on some machines and hurts on others. Each allocator runs in its own child process.

Run (from the repository root):
    python3 benches/pytorch/compare_cpu.py [--models r34,r50] [--seconds 10] [--threads N] [--json FILE]
`--threads` (default: every CPU) sets both sides' thread count: RAYON_NUM_THREADS for ours,
torch.set_num_threads for PyTorch. Criterion's estimates are read from target/criterion/cpu_<model>_<work>/b<batch>/new/.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import warnings

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "crates", "backbone", "tests", "fixtures"))
from backbone_bench import measure  # noqa: E402
from make_fixture import PRESETS, Net  # noqa: E402

WORKS = [("forward", 1, False), ("forward", 32, False), ("train_step", 32, True)]
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def candle_rows(models, threads):
    env = dict(os.environ, ARCFACE_BENCH_MODELS=models, RAYON_NUM_THREADS=str(threads))
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


def torch_variants(models, seconds):
    """images/s of every PyTorch variant in this process: {(model, work, batch): {variant: ips}}."""
    rows = {}

    def record(key, variant, ips):
        rows.setdefault(key, {})[variant] = ips
        print(f"pytorch cpu/{key[0]}/{key[1]}/b{key[2]} {variant}: {ips:.2f} images/s", flush=True)

    for name in models.split(","):
        torch.manual_seed(0)
        net = Net(PRESETS[name])
        for fmt, label in ((torch.contiguous_format, "nchw"), (torch.channels_last, "channels_last")):
            net = net.to(memory_format=fmt)
            for work, batch, train in WORKS:
                net.train(train)
                x = torch.randn(batch, 3, 112, 112).to(memory_format=fmt)
                record((name, work, batch), label, measure(net, x, train, seconds))
        net = net.to(memory_format=torch.contiguous_format).eval()
        for work, batch, train in WORKS:
            if train:
                continue
            x = torch.randn(batch, 3, 112, 112)
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x)))
            record((name, work, batch), "jit_frozen", measure(frozen, x, False, seconds))
    return rows


def torch_rows(models, seconds, allocators, threads):
    """Runs torch_variants in a child process per allocator; {key: {variant+allocator: ips}}."""
    rows = {}
    for alloc in allocators:
        env = dict(os.environ)
        if alloc == "jemalloc":
            env["LD_PRELOAD"] = JEMALLOC
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [sys.executable, __file__, "--torch-only", out.name, "--models", models, "--seconds", str(seconds),
                   "--threads", str(threads)]
            print(f"+ [{alloc}]", " ".join(cmd[1:]), flush=True)
            subprocess.run(cmd, env=env, check=True)
            with open(out.name) as f:
                for r in json.load(f):
                    key = (r["model"], r["work"], r["batch"])
                    for variant, ips in r["variants"].items():
                        rows.setdefault(key, {})[f"{variant}+{alloc}"] = ips
    return rows


def isa():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(l for l in f if l.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "sse"


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
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads on both sides")
    ap.add_argument("--json", help="also write the table here as JSON")
    ap.add_argument("--no-jemalloc", action="store_true", help="PyTorch with glibc's allocator only")
    ap.add_argument("--torch-only", metavar="FILE", help=argparse.SUPPRESS)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.torch_only:
        rows = torch_variants(a.models, a.seconds)
        with open(a.torch_only, "w") as f:
            json.dump([{"model": k[0], "work": k[1], "batch": k[2], "variants": v} for k, v in rows.items()], f)
        return
    allocators = ["glibc"]
    if not a.no_jemalloc:
        if os.path.exists(JEMALLOC):
            allocators.append("jemalloc")
        else:
            print(f"note: {JEMALLOC} not found (apt install libjemalloc2); PyTorch with glibc only")
    ours = candle_rows(a.models, a.threads)
    ref = torch_rows(a.models, a.seconds, allocators, a.threads)
    print(f"\n{'row':28} {'candle':>10} {'pytorch':>10} {'ratio':>7}   best PyTorch variant"
          f"   (images/s, {a.threads} threads, {isa()}, torch {torch.__version__})")
    table = []
    for key in sorted(ours):
        name, work, batch = key
        variant, best = max(ref[key].items(), key=lambda kv: kv[1])
        r = ours[key] / best
        print(f"{name}/{work}/b{batch:<14} {ours[key]:10.2f} {best:10.2f} {r:6.2f}x   {variant}")
        table.append({"model": name, "work": work, "batch": batch, "candle": ours[key], "pytorch_best": best,
                      "pytorch_best_variant": variant, "pytorch_variants": ref[key], "ratio": r})
    if a.json:
        out = {
            "date": datetime.date.today().isoformat(),
            "cpu": cpu_name(),
            "isa": isa(),
            "threads": a.threads,
            "torch": torch.__version__,
            "allocators": allocators,
            "rows": table,
        }
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
