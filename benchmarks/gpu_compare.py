#!/usr/bin/env python3
"""One markdown table of dscope's GPU benchmarks against PyTorch, from their JSON files (standard library only).

Reads any number of files in Google Benchmark's JSON format: those of bench_cuda_conv2d, bench_cuda_gemm and
bench_cuda_training (--benchmark_format=json --benchmark_out=...) and the one of torch_cuda_reference.py, which
writes the same shape. Every name reads <case>/<math>/<implementation>, e.g.
conv2d_forward/N128_C64_K64_64x64_3x3_s1/tf32/own (what Google Benchmark appends, /min_time:0.200/manual_time
and aggregate suffixes, is dropped; with repetitions, the median aggregate is used, else the median of the runs). Cases are joined on
<case>/<math>, and ratios are dscope / PyTorch (above 1: dscope is faster). Missing figures show as "-";
failed or skipped benchmarks are listed under the tables with their messages. A file that a timeout cut short
gives the entries it finished.

    benchmarks/gpu_compare.py bench-conv2d.json bench-gemm.json bench-training.json torch.json [--out table.md]
"""
import argparse
import json
import re
import statistics
import sys
from collections import defaultdict

PASSES = {"conv2d_forward": "forward", "conv2d_backward_input": "backward input",
          "conv2d_backward_weight": "backward weight"}
TIMERS = ("manual_time", "real_time", "process_time")


def parse(text):
    """The JSON document in text; for a Google Benchmark run cut short (a timeout), the entries it finished."""
    try:
        return json.loads(text), False
    except ValueError:
        # Entries end with a line "    }"; close the list and the document after the last whole one.
        end = len(text)
        for _ in range(3):
            end = text.rfind("\n    }", 0, end)
            if end < 0:
                break
            try:
                return json.loads(text[:end + 6] + "\n  ]\n}"), True
            except ValueError:
                continue
        raise


MEMORY = "peak memory of "


def load(paths):
    """({(case, math, implementation): figure}, [problem lines], [context lines]) over all files."""
    runs, medians, problems, contexts, failed = defaultdict(list), {}, [], [], defaultdict(list)
    for path in paths:
        try:
            with open(path) as file:
                data, truncated = parse(file.read())
        except (OSError, ValueError) as error:
            problems.append(f"{path}: not read ({error})")
            continue
        if truncated:
            problems.append(f"{path}: cut short; the benchmarks it finished are used")
        context = data.get("context", {})
        if "error" in context:
            problems.append(f"{path}: {context['error']}")
        described = [f"{key} {context[key]}" for key in ("torch", "cuda", "cudnn", "device") if key in context]
        if described:
            contexts.append(f"{path}: " + ", ".join(str(item) for item in described))
        for entry in data.get("benchmarks", []):
            name = entry.get("name", "")
            aggregate = entry.get("run_type") == "aggregate"
            if aggregate:
                if entry.get("aggregate_name") != "median":
                    continue
                name = name.removesuffix("_median")
            # Google Benchmark appends components of its own: min_time:0.200, repeats:3, manual_time.
            parts = [part for part in name.split("/") if part not in TIMERS and not re.match(r"\w+:", part)]
            name = "/".join(parts)
            if entry.get("error_occurred"):
                failed[str(entry.get("error_message", "failed"))[:300]].append(name)
                continue
            # A training step reports both; its tables are in images/s.
            figure = entry.get("images/s", entry.get("TFLOP/s"))
            if len(parts) < 3 or figure is None:
                continue
            key = ("/".join(parts[:-2]), parts[-2], parts[-1])
            if aggregate:
                medians[key] = float(figure)
            else:
                runs[key].append(float(figure))
            # A training step also reports its peak memory, kept under the case's name with MEMORY in front:
            # tensors and (ours) the kernels' scratch, whose two peaks added bound the footprint from above.
            if entry.get("peak MiB") is not None:
                peak = float(entry["peak MiB"]) + float(entry.get("scratch peak MiB") or 0.0)
                runs[(MEMORY + key[0], key[1], key[2])].append(peak)
    # One line per message, so that "no CUDA device" on every benchmark does not bury the rest.
    for message, names in failed.items():
        problems.append(f"{names[0]}: {message}" if len(names) == 1 else
                        f"{len(names)} benchmarks ({names[0]}, ...): {message}")
    figures = {key: statistics.median(values) for key, values in runs.items()}
    figures.update(medians)
    return figures, problems, contexts


def number(value, decimals=2):
    return "-" if value is None else f"{value:,.{decimals}f}"


def ratio(ours, theirs):
    return "-" if ours is None or theirs is None or theirs == 0 else f"{ours / theirs:.2f}"


def shape_of(label):
    """N128_C64_K128_64x64_3x3_s2 -> '64→128, 64×64, stride 2'."""
    match = re.fullmatch(r"N\d+_C(\d+)_K(\d+)_(\d+)x(\d+)_\d+x\d+_s(\d+)", label)
    if not match:
        return label
    c, k, h, w, stride = match.groups()
    return f"{c}→{k}, {h}×{w}" + (f", stride {stride}" if stride != "1" else "")


def conv_table(figures):
    labels = []
    for case, _, _ in figures:
        pass_name, _, label = case.partition("/")
        if pass_name in PASSES and label not in labels:
            labels.append(label)
    if not labels:
        return []
    batch = labels[0].split("_")[0][1:]
    lines = [f"### conv2d, TFLOP/s (batch {batch}, 3×3, padding 1; PyTorch = cuDNN through torch)", "",
             "| shape | pass | own fp32 | PyTorch fp32 | ratio | own tf32 | PyTorch tf32 | ratio | own bf16 | "
             "PyTorch bf16 | ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    # dscope's own cuDNN backend against PyTorch's cuDNN: near 1 when both sides measure alike.
    same_library = defaultdict(list)
    for label in labels:
        for pass_name, pass_title in PASSES.items():
            case = f"{pass_name}/{label}"
            cells = []
            for math in ("fp32", "tf32", "bf16"):
                ours, theirs = figures.get((case, math, "own")), figures.get((case, math, "torch"))
                cells += [number(ours), number(theirs), ratio(ours, theirs)]
                cudnn = figures.get((case, math, "cudnn"))
                if cudnn is not None and theirs:
                    same_library[math].append(cudnn / theirs)
            lines.append(f"| {shape_of(label)} | {pass_title} | " + " | ".join(cells) + " |")
    if same_library:
        summary = ", ".join(f"{math} median {statistics.median(values):.2f} over {len(values)} cases"
                            for math, values in sorted(same_library.items()))
        lines += ["", f"dscope's cuDNN backend / PyTorch's cuDNN (a check of the method): {summary}."]
    lines += ["", "In bf16 both convolve bfloat16 activations; ours keeps float weights (the master weights of mixed "
              "precision), widens the activations in its layout copies and rounds the operands to bf16 on their "
              "way into the tensor cores."]
    return lines + [""] + departures_table(figures, labels)


def departures_table(figures, labels):
    """Our kernels against our plain products (`direct`) where they depart from them."""
    rows = []
    for label in labels:
        for pass_name, pass_title in PASSES.items():
            case = f"{pass_name}/{label}"
            for math in ("fp32", "tf32", "bf16"):
                own, direct, theirs = (figures.get((case, math, name)) for name in ("own", "direct", "torch"))
                if direct is not None:
                    rows.append(f"| {shape_of(label)} | {pass_title} | {math} | {number(own)} | {number(direct)} | "
                                f"{ratio(own, direct)} | {number(theirs)} | {ratio(own, theirs)} |")
    if not rows:
        return []
    return ["### own against our plain products (direct), TFLOP/s: Winograd in fp32 from 64 channels, layout "
            "copies (channels-last, shifted) in tf32, the few-channel input gradient for the stem", "",
            "| shape | pass | math | own | direct | own / direct | PyTorch | own / PyTorch |",
            "|---|---|---|---:|---:|---:|---:|---:|"] + rows + [""]


def gemm_table(figures):
    cases = sorted({case for case, _, _ in figures if case.startswith("gemm/")})
    if not cases:
        return []
    lines = []
    for case in cases:
        size = case.split("/", 1)[1]
        lines += [f"### GEMM {size}, TFLOP/s", "",
                  "| math | own | cuBLAS (dscope) | own / cuBLAS | PyTorch (torch.mm) | own / PyTorch |",
                  "|---|---:|---:|---:|---:|---:|"]
        for math in ("fp32", "tf32", "bf16"):
            own, cublas, torch = (figures.get((case, math, name)) for name in ("own", "cublas", "torch"))
            lines.append(f"| {math} | {number(own)} | {number(cublas)} | {ratio(own, cublas)} | {number(torch)} | "
                         f"{ratio(own, torch)} |")
        lines.append("")
        lines += ["bf16: dscope multiplies float matrices, rounding each operand as it is read (own; cuBLAS with "
                  "CUBLAS_COMPUTE_32F_FAST_16BF); torch.mm multiplies bf16 matrices.", ""]
    return lines


def training_table(figures):
    cases = sorted({case for case, _, _ in figures if case.startswith("training_step/")})
    if not cases:
        return []
    lines = []
    for case in cases:
        _, model, shape = (case.split("/") + ["", ""])[:3]
        lines += [f"### training step, {model} at {shape}, images/s", "",
                  "| math | dscope | PyTorch | ratio |", "|---|---:|---:|---:|"]
        for math in ("fp32", "tf32"):
            ours, theirs = figures.get((case, math, "own")), figures.get((case, math, "torch"))
            lines.append(f"| {math} | {number(ours, 1)} | {number(theirs, 1)} | {ratio(ours, theirs)} |")
        autocast = figures.get((case, "bf16", "torch"))
        rows = (("bf16 mixed precision (both: autocast, bf16 activations, NCHW)", "own_autocast", autocast),
                ("bf16 (dscope: bf16 products on float tensors; PyTorch: autocast, NCHW)", "own", autocast),
                ("bf16 (dscope: mixed precision, NCHW; PyTorch: autocast, channels_last)", "own_autocast",
                 figures.get((case, "bf16", "torch_channels_last"))))
        for label, implementation, theirs in rows:
            ours = figures.get((case, "bf16", implementation))
            if ours is not None or theirs is not None:
                lines.append(f"| {label} | {number(ours, 1)} | {number(theirs, 1)} | {ratio(ours, theirs)} |")
        lines.append("")
        memory = [(label, figures.get((MEMORY + case, math, ours)), figures.get((MEMORY + case, math, theirs)))
                  for label, math, ours, theirs in
                  (("fp32", "fp32", "own", "torch"), ("tf32", "tf32", "own", "torch"),
                   ("bf16, float tensors (dscope) / autocast (PyTorch)", "bf16", "own", "torch"),
                   ("bf16 mixed precision (both autocast, NCHW)", "bf16", "own_autocast", "torch"))]
        if any(ours is not None or theirs is not None for _, ours, theirs in memory):
            lines += [f"Peak GPU memory of a step of {model} at {shape}, MiB (weights, optimizer state, batch, "
                      "activations and workspaces; dscope: the peaks of its tensors and of its kernels' scratch "
                      "added, an upper bound; PyTorch: max_memory_allocated, both over the timed steps):", "",
                      "| math | dscope | PyTorch | dscope / PyTorch (above 1: dscope holds more) |",
                      "|---|---:|---:|---:|"]
            lines += [f"| {label} | {number(ours, 0)} | {number(theirs, 0)} | {ratio(ours, theirs)} |"
                      for label, ours, theirs in memory]
            lines.append("")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="Google Benchmark / torch_cuda_reference.py JSON files")
    parser.add_argument("--out", help="also write the table to this file")
    arguments = parser.parse_args()
    figures, problems, contexts = load(arguments.files)
    lines = ["## dscope on the GPU against PyTorch", "",
             "Ratios are dscope / PyTorch (or / cuBLAS): above 1, dscope is faster.", ""]
    lines += conv_table(figures) + gemm_table(figures) + training_table(figures)
    if not figures:
        lines += ["No figures were found.", ""]
    if contexts:
        lines += ["Measured with: " + "; ".join(contexts), ""]
    if problems:
        lines += ["### Problems", ""] + [f"- {problem}" for problem in problems] + [""]
    text = "\n".join(lines)
    print(text)
    if arguments.out:
        with open(arguments.out, "w") as file:
            file.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
