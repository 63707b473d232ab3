#!/usr/bin/env python3
"""conv2d speed, dscope against PyTorch on this machine, at the shapes of bench_conv2d.

Runs our bench_conv2d (found through $DSCOPE_BUILD_DIR, default build/ beside this folder) with JSON output,
then the same shapes through PyTorch with the same number of threads, and prints one table of GFLOP/s and
ratios (dscope / PyTorch) for the forward and the forward+backward. GFLOP/s counts 2*N*K*P*Q*C*R*S per
pass, and forward+backward is three passes (forward, input gradient, weight gradient), as in bench_conv2d.

PyTorch timings are the median of several runs after a warm-up. --glibc-keep adds a second PyTorch column
with glibc told to keep freed memory (GLIBC_TUNABLES, see MEASURED.md): PyTorch loses much of its time to
page faults here otherwise, and that figure is the honest bar. Without torch installed (use /usr/bin/python3,
which has it) the PyTorch columns are skipped with a message.

    /usr/bin/python3 benchmarks/compare_torch_conv2d.py [--threads 2] [--repeats 5] [--glibc-keep]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BATCH = 32
# (C, H, K, stride): square H x H input, 3x3 filter, padding 1; the same list as kLayers in bench_conv2d.cpp.
LAYERS = [(3, 64, 64, 1), (64, 64, 64, 1), (64, 64, 128, 2), (128, 32, 128, 1), (256, 16, 256, 1), (512, 8, 512, 1)]
GLIBC_KEEP = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184"


def label(layer):
    c, h, k, stride = layer
    return f"N{BATCH}_C{c}_K{k}_{h}x{h}_3x3_s{stride}"


def flops_per_pass(layer):
    c, h, k, stride = layer
    p = (h + 2 - 3) // stride + 1
    return 2.0 * BATCH * k * p * p * c * 9


def run_dscope(threads, repeats):
    """GFLOP/s per (pass, label) from bench_conv2d's JSON, the median over repetitions."""
    build = Path(os.environ.get("DSCOPE_BUILD_DIR", Path(__file__).resolve().parent.parent / "build"))
    binary = build / "benchmarks" / "bench_conv2d"
    if not binary.exists():
        sys.exit(f"compare_torch_conv2d: {binary} not found; build it with `make -C {build} bench_conv2d` "
                 "or set DSCOPE_BUILD_DIR")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    command = [str(binary), "--benchmark_format=json", "--benchmark_filter=^conv2d_forward(_backward)?/",
               f"--benchmark_repetitions={repeats}"]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    runs = {}
    for entry in json.loads(output)["benchmarks"]:
        if entry.get("run_type") != "iteration":
            continue  # the aggregates: the median is taken below, which works for one repetition too
        if "error_message" in entry:
            sys.exit(f"compare_torch_conv2d: {entry['run_name']}: {entry['error_message']}")
        pass_name, shape = entry["run_name"].split("/")[:2]
        runs.setdefault((pass_name, shape), []).append(entry["GFLOP/s"])
    results = {key: statistics.median(values) for key, values in runs.items()}
    missing = [f"{p}/{label(layer)}" for p in ("conv2d_forward", "conv2d_forward_backward") for layer in LAYERS
               if (p, label(layer)) not in results]
    if missing:
        sys.exit(f"compare_torch_conv2d: bench_conv2d reported no result for {', '.join(missing)}")
    return results


def run_torch(threads, repeats):
    """GFLOP/s per (pass, label) measured with PyTorch in this process."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    results = {}

    def median_seconds(step):
        for _ in range(2):  # warm-up: oneDNN picks and caches its kernels on the first calls
            step()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    for layer in LAYERS:
        c, h, k, stride = layer
        x = torch.randn(BATCH, c, h, h)
        w = torch.randn(k, c, 3, 3) * 0.05

        def forward():
            with torch.no_grad():
                F.conv2d(x, w, None, stride, 1)

        results[("conv2d_forward", label(layer))] = flops_per_pass(layer) / median_seconds(forward) / 1e9

        xg = x.clone().requires_grad_()
        wg = w.clone().requires_grad_()
        grad_y = torch.randn_like(F.conv2d(x, w, None, stride, 1))

        def forward_backward():
            xg.grad = None  # fresh gradients each step, as bench_conv2d does
            wg.grad = None
            F.conv2d(xg, wg, None, stride, 1).backward(grad_y)

        results[("conv2d_forward_backward", label(layer))] = (
            3 * flops_per_pass(layer) / median_seconds(forward_backward) / 1e9)
    return results


def run_torch_in_child(threads, repeats, glibc_keep):
    """Runs run_torch in a fresh interpreter (so GLIBC_TUNABLES can take effect); None without torch."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    if glibc_keep:
        env["GLIBC_TUNABLES"] = GLIBC_KEEP
    command = [sys.executable, __file__, "--torch-only", "--threads", str(threads), "--repeats", str(repeats)]
    child = subprocess.run(command, env=env, capture_output=True, text=True)
    if child.returncode != 0:
        sys.exit(f"compare_torch_conv2d: the PyTorch run failed:\n{child.stderr}")
    rows = json.loads(child.stdout)
    return {(row["pass"], row["shape"]): row["gflops"] for row in rows}


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def print_table(ours, columns):
    names = [name for name, _ in columns]
    header = f"{'shape':<26} {'pass':<17} {'dscope':>8}"
    for name in names:
        header += f" {name:>15} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for pass_name, pass_label in (("conv2d_forward", "forward"), ("conv2d_forward_backward", "forward+backward")):
        for layer in LAYERS:
            key = (pass_name, label(layer))
            line = f"{label(layer):<26} {pass_label:<17} {ours[key]:8.1f}"
            for _, theirs in columns:
                line += f" {theirs[key]:15.1f} {ours[key] / theirs[key]:6.2f}"
            print(line)
    print("GFLOP/s" + ("; ratio = dscope / PyTorch (above 1: dscope is faster)" if columns else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="threads for both (default 2, the machine's cores)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (default 5)")
    parser.add_argument("--glibc-keep", action="store_true", help="add PyTorch with glibc keeping freed memory")
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.torch_only:
        results = run_torch(args.threads, args.repeats)
        print(json.dumps([{"pass": p, "shape": s, "gflops": g} for (p, s), g in results.items()]))
        return

    ours = run_dscope(args.threads, args.repeats)
    columns = []
    if torch_available():
        columns.append(("PyTorch", run_torch_in_child(args.threads, args.repeats, glibc_keep=False)))
        if args.glibc_keep:
            columns.append(("PyTorch keep", run_torch_in_child(args.threads, args.repeats, glibc_keep=True)))
    else:
        print(f"compare_torch_conv2d: torch is not installed for {sys.executable}; showing dscope alone "
              "(try /usr/bin/python3)")
    print(f"conv2d, batch {BATCH}, 3x3 filters, padding 1, {args.threads} threads")
    print_table(ours, columns)


if __name__ == "__main__":
    main()
