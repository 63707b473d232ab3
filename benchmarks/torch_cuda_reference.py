#!/usr/bin/env python3
"""PyTorch on the GPU doing the work of our GPU benchmarks, for benchmarks/gpu_compare.py to set beside them.

  conv      the layers of bench_cuda_conv2d (batch 128, 3x3 filters, padding 1): forward (F.conv2d), and the
            input and weight gradients alone (aten.convolution_backward with one output asked for), through
            cuDNN, in FP32 and TF32, and in BF16 on bf16 tensors (the reference for our BF16 products; ours
            read float tensors). TFLOP/s counts 2*N*K*P*Q*C*R*S per pass, as the C++ benchmark does.
  gemm      torch.mm at 4096^3, FP32 and TF32 (cuBLAS), and BF16 on bf16 matrices. TFLOP/s counts 2*M*N*K.
  training  one training step (forward, cross-entropy, backward, SGD with momentum 0.9 and weight decay 5e-4)
            of the small-stem ResNet-18 of nn/resnet.cpp (3x3 stem conv with stride 1, no max pool, BasicBlocks
            [2,2,2,2] of widths 64/128/256/512, 7 classes) at batch 256 on random 3x64x64 images, in FP32, TF32,
            bf16 autocast on NCHW tensors (the reference for our mixed precision, which is NCHW too), and, for
            information, bf16 autocast with channels_last (what a PyTorch user would run). images/s, and
            "peak MiB", torch.cuda.max_memory_allocated over the timed steps (after the warm-up).

FP32 means torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32 off; TF32 both on.
cudnn.benchmark is on, so cuDNN picks its fastest algorithm for each shape during the warm-up, as a PyTorch
training script usually asks. Each case is timed with torch.cuda.Event after a warm-up: a repetition is enough
calls back to back to last about 20 ms (training: one step each, as our step waits for its loss), and the figure
is the median over the repetitions.

The output is a JSON file shaped like Google Benchmark's (a "benchmarks" list of entries with "name",
"real_time" in ms, counters such as "TFLOP/s" or "images/s", and "error_occurred"/"error_message" for a case
that failed), with names <case>/<math>/<implementation> where our benchmarks have <case>/<math>/<own|cudnn|...>:
    conv2d_forward/N128_C64_K64_64x64_3x3_s1/fp32/torch
    gemm/M4096_N4096_K4096/tf32/torch
    training_step/resnet18/N256_3x64x64/bf16/torch_channels_last

    benchmarks/torch_cuda_reference.py --out torch.json [--only conv,gemm,training] [--repeats 7]
"""
import argparse
import json
import os
import statistics
import sys
import time
import traceback

CONV_BATCH = 128
# (C, H, K, stride): square H x H input, 3x3 filter, padding 1; kLayers in bench_cuda_conv2d.cpp.
CONV_LAYERS = [(3, 64, 64, 1), (64, 64, 64, 1), (64, 64, 128, 2), (128, 32, 128, 1), (256, 16, 256, 1),
               (512, 8, 512, 1)]
CONV_PASSES = ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight")
GEMM_SIZE = 4096
TRAIN_BATCH, CLASSES, IMAGE_SIZE = 256, 7, 64
WIDTHS, BLOCKS = (64, 128, 256, 512), (2, 2, 2, 2)
REPETITION_MS = 20.0


def progress(message):
    print(f"torch_cuda_reference: {message}", file=sys.stderr, flush=True)


def set_tf32(torch, enabled):
    """Both switches of TensorFloat-32 (cuDNN convolutions, cuBLAS matrix products)."""
    try:
        torch.backends.cudnn.allow_tf32 = enabled
        torch.backends.cuda.matmul.allow_tf32 = enabled
    except (AttributeError, RuntimeError):  # a PyTorch that accepts only the fp32_precision settings
        precision = "tf32" if enabled else "ieee"
        torch.backends.cudnn.conv.fp32_precision = precision
        torch.backends.cuda.matmul.fp32_precision = precision


def median_ms(torch, function, warmup, repeats, calls=None):
    """Median milliseconds per call of `function` over `repeats` repetitions of `calls` calls (None: as many as
    take about REPETITION_MS), timed with CUDA events after `warmup` untimed calls."""
    for _ in range(warmup):
        function()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    if calls is None:
        start.record()
        function()
        end.record()
        end.synchronize()
        calls = max(1, min(1000, int(REPETITION_MS / max(start.elapsed_time(end), 1e-3))))
    times = []
    for _ in range(repeats):
        start.record()
        for _ in range(calls):
            function()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / calls)
    return statistics.median(times)


def conv_label(c, h, k, stride):
    return f"N{CONV_BATCH}_C{c}_K{k}_{h}x{h}_3x3_s{stride}"


def conv_cases(torch, repeats):
    """Yields (name, milliseconds, counters) for every layer, pass and precision."""
    import torch.nn.functional as F
    for c, h, k, stride in CONV_LAYERS:
        p = (h + 2 - 3) // stride + 1
        flops = 2.0 * CONV_BATCH * k * p * p * c * 9
        generator = torch.Generator(device="cuda").manual_seed(1)
        x = torch.randn(CONV_BATCH, c, h, h, device="cuda", generator=generator)
        w = 0.05 * torch.randn(k, c, 3, 3, device="cuda", generator=generator)
        grad_y = torch.randn(CONV_BATCH, k, p, p, device="cuda", generator=generator)
        tensors = {"fp32": (x, w, grad_y), "tf32": (x, w, grad_y),
                   "bf16": (x.bfloat16(), w.bfloat16(), grad_y.bfloat16())}
        backward = torch.ops.aten.convolution_backward
        # Arguments after the three tensors: bias sizes, stride, padding, dilation, transposed, output padding,
        # groups, and which of (grad_input, grad_weight, grad_bias) to compute.
        geometry = (None, [stride, stride], [1, 1], [1, 1], False, [0, 0], 1)

        def run_pass(pass_name, x, w, grad_y):
            if pass_name == "conv2d_forward":
                return F.conv2d(x, w, None, stride, 1)
            wanted = [True, False, False] if pass_name == "conv2d_backward_input" else [False, True, False]
            return backward(grad_y, x, w, *geometry, wanted)

        for pass_name in CONV_PASSES:
            for math in ("fp32", "tf32", "bf16"):
                name = f"{pass_name}/{conv_label(c, h, k, stride)}/{math}/torch"
                set_tf32(torch, math == "tf32")
                yield name, lambda: median_ms(torch, lambda: run_pass(pass_name, *tensors[math]), 3, repeats), \
                    lambda ms: {"TFLOP/s": flops / (ms * 1e-3) / 1e12}


def gemm_cases(torch, repeats):
    flops = 2.0 * GEMM_SIZE ** 3
    generator = torch.Generator(device="cuda").manual_seed(1)
    a = torch.randn(GEMM_SIZE, GEMM_SIZE, device="cuda", generator=generator)
    b = torch.randn(GEMM_SIZE, GEMM_SIZE, device="cuda", generator=generator)
    c = torch.empty(GEMM_SIZE, GEMM_SIZE, device="cuda")
    matrices = {"fp32": (a, b, c), "tf32": (a, b, c), "bf16": (a.bfloat16(), b.bfloat16(), c.bfloat16())}
    for math in ("fp32", "tf32", "bf16"):
        set_tf32(torch, math == "tf32")
        yield (f"gemm/M{GEMM_SIZE}_N{GEMM_SIZE}_K{GEMM_SIZE}/{math}/torch",
               lambda math=math: median_ms(torch, lambda: torch.mm(*matrices[math][:2], out=matrices[math][2]),
                                           3, repeats),
               lambda ms: {"TFLOP/s": flops / (ms * 1e-3) / 1e12})


def resnet18(torch):
    """The small-stem ResNet-18 of nn/resnet.cpp (torchvision's module layout, as our state dicts follow)."""
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
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, WIDTHS[0], 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(WIDTHS[0])
            layers, channels = [], WIDTHS[0]
            for stage, (width, count) in enumerate(zip(WIDTHS, BLOCKS)):
                for index in range(count):
                    layers.append(BasicBlock(channels, width, 2 if stage > 0 and index == 0 else 1))
                    channels = width
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(channels, CLASSES)

        def forward(self, x):
            x = self.layers(F.relu(self.bn1(self.conv1(x))))
            return self.fc(x.mean(dim=(2, 3)))

    return ResNet()


def training_cases(torch, repeats):
    import torch.nn.functional as F
    shape = f"resnet18/N{TRAIN_BATCH}_3x{IMAGE_SIZE}x{IMAGE_SIZE}"
    for math, implementation in (("fp32", "torch"), ("tf32", "torch"), ("bf16", "torch"),
                                 ("bf16", "torch_channels_last")):
        peak = {}

        def measure(math=math, implementation=implementation, peak=peak):
            set_tf32(torch, math != "fp32")
            torch.manual_seed(1)
            model = resnet18(torch).cuda().train()
            images = torch.randn(TRAIN_BATCH, 3, IMAGE_SIZE, IMAGE_SIZE, device="cuda")
            labels = torch.randint(0, CLASSES, (TRAIN_BATCH,), device="cuda")
            if implementation == "torch_channels_last":
                model = model.to(memory_format=torch.channels_last)
                images = images.contiguous(memory_format=torch.channels_last)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

            def step():
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=math == "bf16"):
                    loss = F.cross_entropy(model(images), labels)
                loss.backward()
                optimizer.step()

            # The peak of the timed steps, as dscope's: after the warm-up, whose first step also holds
            # cudnn.benchmark's trial workspaces.
            for _ in range(3):
                step()
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            milliseconds = median_ms(torch, step, 0, max(repeats, 5), calls=1)
            peak["MiB"] = torch.cuda.max_memory_allocated() / 2**20
            return milliseconds

        yield (f"training_step/{shape}/{math}/{implementation}", measure,
               lambda ms, peak=peak: {"images/s": TRAIN_BATCH / (ms * 1e-3), "peak MiB": peak.get("MiB")})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--only", default="conv,gemm,training", help="comma-separated parts to run")
    parser.add_argument("--repeats", type=int, default=7, help="timed repetitions per case (median)")
    arguments = parser.parse_args()
    parts = set(arguments.only.split(","))
    report = {"context": {"executable": "torch_cuda_reference.py", "date": time.strftime("%Y-%m-%dT%H:%M:%S")},
              "benchmarks": []}

    def write():  # whole or not at all: a run cut short keeps the cases it finished
        with open(arguments.out + ".partial", "w") as file:
            json.dump(report, file, indent=1)
        os.replace(arguments.out + ".partial", arguments.out)

    try:
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device")
    except Exception as error:  # no torch, or no GPU: say so in the file too
        report["context"]["error"] = f"{type(error).__name__}: {error}"
        write()
        progress(report["context"]["error"])
        return 1
    torch.backends.cudnn.benchmark = True
    report["context"].update({"torch": torch.__version__, "cuda": torch.version.cuda,
                              "cudnn": torch.backends.cudnn.version(),
                              "device": torch.cuda.get_device_name(0)})
    progress(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
             f"{torch.cuda.get_device_name(0)}")
    # The training steps first: they are the comparison a short run must not lose.
    sources = [(part, cases) for part, cases in
               (("training", training_cases), ("gemm", gemm_cases), ("conv", conv_cases)) if part in parts]
    failures = 0
    for part, cases in sources:
        started = time.time()
        try:
            for name, measure, counters in cases(torch, arguments.repeats):
                entry = {"name": name, "run_type": "iteration", "time_unit": "ms"}
                try:
                    milliseconds = measure()
                    entry.update({"real_time": milliseconds, **counters(milliseconds)})
                except Exception as error:  # one case failing (out of memory, say) must not lose the others
                    failures += 1
                    entry.update({"error_occurred": True, "error_message": f"{type(error).__name__}: {error}"})
                    traceback.print_exc()
                report["benchmarks"].append(entry)
                write()
        except Exception:  # the setup of a whole part failed
            failures += 1
            traceback.print_exc()
        progress(f"{part}: {time.time() - started:.1f} s")
    write()
    for entry in report["benchmarks"]:
        figures = ", ".join(f"{key} {entry[key]:.2f}" for key in ("TFLOP/s", "images/s") if key in entry)
        print(f"{entry['name']}: {figures or entry.get('error_message')}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
