#!/usr/bin/env python3
"""Whole-model training and inference speed, dscope against PyTorch on this machine, for the models of
bench_training: a training step (forward, cross-entropy, backward, SGD with momentum 0.9 and weight decay
5e-4) and an inference pass (evaluation mode, no graph) of

    resnet8   small stem, widths 16/32/64, one BasicBlock per stage, batch 64
    resnet18  small stem, widths 64/128/256/512, BasicBlocks [2,2,2,2], batch 32

on 3x64x64 images with 7 classes. Runs our bench_training (found through $DSCOPE_BUILD_DIR, default build/
beside this folder) with JSON output, then the same models in PyTorch (defined here, so torchvision is not
needed) with the same number of threads, and prints images per second and the ratios dscope / PyTorch.

PyTorch timings are the median of several steps after a warm-up. --glibc-keep adds a second PyTorch column
with glibc told to keep freed memory (GLIBC_TUNABLES, see MEASURED.md): PyTorch loses much of its time to
page faults here otherwise, and that figure is the honest bar. Without torch installed (use /usr/bin/python3,
which has it) the PyTorch columns are skipped with a message. Other work on the machine skews both sides.

    /usr/bin/python3 benchmarks/compare_torch_training.py [--threads 2] [--repeats 3] [--glibc-keep]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLASSES, IMAGE_SIZE = 7, 64
# name: (stage widths, BasicBlocks per stage, batch); the same list as kModels in bench_training.cpp.
MODELS = {
    "resnet8": ((16, 32, 64), (1, 1, 1), 64),
    "resnet18": ((64, 128, 256, 512), (2, 2, 2, 2), 32),
}
PASSES = ("training_step", "inference")
GLIBC_KEEP = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184"


def run_dscope(threads, repeats):
    """Images per second per (pass, model) from bench_training's JSON, the median over repetitions."""
    build = Path(os.environ.get("DSCOPE_BUILD_DIR", Path(__file__).resolve().parent.parent / "build"))
    binary = build / "benchmarks" / "bench_training"
    if not binary.exists():
        sys.exit(f"compare_torch_training: {binary} not found; build it with `make -C {build} bench_training` "
                 "or set DSCOPE_BUILD_DIR")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    command = [str(binary), "--benchmark_format=json", f"--benchmark_repetitions={repeats}",
               "--benchmark_report_aggregates_only=true"]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    results = {}
    for entry in json.loads(output)["benchmarks"]:
        if "error_message" in entry:
            sys.exit(f"compare_torch_training: {entry['run_name']}: {entry['error_message']}")
        if entry.get("aggregate_name") != "median":
            continue
        pass_name, model = entry["run_name"].split("/")[:2]
        results[(pass_name, model)] = entry["items_per_second"]
    return results


def run_torch(threads, repeats):
    """Images per second per (pass, model) measured with PyTorch in this process."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class BasicBlock(nn.Module):
        def __init__(self, in_channels, width, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, width, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.downsample = None
            if stride != 1 or in_channels != width:
                self.downsample = nn.Sequential(nn.Conv2d(in_channels, width, 1, stride, bias=False),
                                                nn.BatchNorm2d(width))

        def forward(self, x):
            branch = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            return F.relu(branch + (self.downsample(x) if self.downsample is not None else x))

    class ResNet(nn.Module):
        """Small stem (3x3 conv, no max pool), as nn::StemKind::Small."""

        def __init__(self, widths, blocks):
            super().__init__()
            self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            layers, channels = [], widths[0]
            for stage, (width, count) in enumerate(zip(widths, blocks)):
                for index in range(count):
                    layers.append(BasicBlock(channels, width, 2 if stage > 0 and index == 0 else 1))
                    channels = width
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(channels, CLASSES)

        def forward(self, x):
            x = self.layers(F.relu(self.bn1(self.conv1(x))))
            return self.fc(x.mean(dim=(2, 3)))

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    def median_seconds(step):
        for _ in range(2):  # warm-up: oneDNN picks and caches its kernels on the first calls
            step()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    results = {}
    for name, (widths, blocks, batch) in MODELS.items():
        model = ResNet(widths, blocks)
        images = torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE)
        labels = torch.randint(0, CLASSES, (batch,))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def training_step():
            optimizer.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()

        model.train()
        results[("training_step", name)] = batch / median_seconds(training_step)

        def inference():
            with torch.no_grad():
                model(images)

        model.eval()
        results[("inference", name)] = batch / median_seconds(inference)
    return results


def run_torch_in_child(threads, repeats, glibc_keep):
    """Runs run_torch in a fresh interpreter (so GLIBC_TUNABLES can take effect)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    if glibc_keep:
        env["GLIBC_TUNABLES"] = GLIBC_KEEP
    command = [sys.executable, __file__, "--torch-only", "--threads", str(threads), "--repeats", str(repeats)]
    child = subprocess.run(command, env=env, capture_output=True, text=True)
    if child.returncode != 0:
        sys.exit(f"compare_torch_training: the PyTorch run failed:\n{child.stderr}")
    return {(row["pass"], row["model"]): row["images_per_second"] for row in json.loads(child.stdout)}


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def print_table(ours, columns):
    header = f"{'model':<10} {'batch':>5} {'pass':<14} {'dscope':>8}"
    for name, _ in columns:
        header += f" {name:>13} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for pass_name in PASSES:
        for model, (_, _, batch) in MODELS.items():
            key = (pass_name, model)
            line = f"{model:<10} {batch:>5} {pass_name:<14} {ours[key]:8.1f}"
            for _, theirs in columns:
                line += f" {theirs[key]:13.1f} {ours[key] / theirs[key]:6.2f}"
            print(line)
    print("images per second; ratio = dscope / PyTorch (above 1: dscope is faster)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="threads for both (default 2, the machine's cores)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (default 3)")
    parser.add_argument("--glibc-keep", action="store_true", help="add PyTorch with glibc keeping freed memory")
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.torch_only:
        results = run_torch(args.threads, args.repeats)
        print(json.dumps([{"pass": p, "model": m, "images_per_second": v} for (p, m), v in results.items()]))
        return

    ours = run_dscope(args.threads, args.repeats)
    columns = []
    if torch_available():
        columns.append(("PyTorch", run_torch_in_child(args.threads, args.repeats, glibc_keep=False)))
        if args.glibc_keep:
            columns.append(("PyTorch keep", run_torch_in_child(args.threads, args.repeats, glibc_keep=True)))
    else:
        print(f"compare_torch_training: torch is not installed for {sys.executable}; showing dscope alone "
              "(try /usr/bin/python3)")
    print(f"ResNet training step and inference on 3x{IMAGE_SIZE}x{IMAGE_SIZE} images, {CLASSES} classes, "
          f"{args.threads} threads")
    print_table(ours, columns)


if __name__ == "__main__":
    main()
