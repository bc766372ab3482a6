#!/usr/bin/env python3
"""PyTorch CPU reference for the crate's speed benchmark.

Trains and runs the book's SimpleConvNet (chapter 7 of "Deep Learning from
Scratch") in PyTorch with the same batch, optimiser, initialisation and thread
count as `cargo run --release --example bench`, and prints the same line
format (defined in benches/reference/README.md), so the two can be run side by
side in one session:

    conv(30 filters 5x5, stride 1, pad 0) -> ReLU -> max pool 2x2 stride 2
    -> flatten -> affine 4320->100 -> ReLU -> affine 100->10 -> softmax + cross-entropy

and (measurements train_step_deep, infer_deep) the book's DeepConvNet (chapter 8,
the crate's `deep_conv_net`):

    [conv 3x3 -> ReLU -> conv 3x3 -> ReLU -> max pool 2x2] x 3
        (16, 16 filters pad 1; 32 pad 1, 32 pad 2; 64, 64 pad 1)
    -> flatten -> affine 1024->50 -> ReLU -> dropout 0.5 -> affine 50->10 -> dropout 0.5
    -> softmax + cross-entropy

SimpleConvNet's weights are normal(0, 1) * 0.01 and biases zero (the book's
weight_init_std); DeepConvNet's are He-scaled, normal(0, 1) * sqrt(2 / fan_in),
Adam with lr 0.001 and betas (0.9, 0.999), f32.  The input is seeded random
data of MNIST shape in [0, 1): data loading is not what we measure.

Usage:
    python torch_simpleconvnet.py --threads 2
    python torch_simpleconvnet.py --threads 2 --channels-last
    python torch_simpleconvnet.py --what train_step,infer --steps 100
    python torch_simpleconvnet.py --threads 2 --compile    # torch.compile'd models

Exit status 2 if torch is not installed (or the arguments are wrong).
"""

import argparse
import platform
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print(
        "torch_simpleconvnet.py: PyTorch is not installed for this Python "
        f"({sys.executable}).\n"
        "Install it in a virtual environment, e.g.\n"
        "    python3 -m venv torchvenv && torchvenv/bin/pip install torch numpy\n"
        "and run this script with torchvenv/bin/python "
        "(see benches/reference/README.md).",
        file=sys.stderr,
    )
    sys.exit(2)

MEASUREMENTS = (
    "train_step",
    "infer",
    "train_step_deep",
    "infer_deep",
    "conv_forward",
    "conv_backward",
)
FILTERS, FILTER_SIZE, HIDDEN, CLASSES = 30, 5, 100, 10
IMAGE = (1, 28, 28)
WEIGHT_INIT_STD = 0.01


class SimpleConvNet(torch.nn.Module):
    """The book's SimpleConvNet, layer for layer."""

    def __init__(self):
        super().__init__()
        channels, height, width = IMAGE
        self.conv = torch.nn.Conv2d(channels, FILTERS, FILTER_SIZE, stride=1, padding=0)
        conv_out = height - FILTER_SIZE + 1  # 24, equation 7.1 with pad 0, stride 1
        pool_out = conv_out // 2  # 12
        self.affine1 = torch.nn.Linear(FILTERS * pool_out * pool_out, HIDDEN)  # 4320 -> 100
        self.affine2 = torch.nn.Linear(HIDDEN, CLASSES)
        # The book's initialisation, not PyTorch's default Kaiming-uniform.
        with torch.no_grad():
            for layer in (self.conv, self.affine1, self.affine2):
                layer.weight.normal_(0.0, 1.0).mul_(WEIGHT_INIT_STD)
                layer.bias.zero_()

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), kernel_size=2, stride=2)
        # flatten() gives the (C, H, W) order of the book's Affine layer in
        # either memory layout: a channels_last tensor is reshaped logically.
        x = F.relu(self.affine1(torch.flatten(x, 1)))
        return self.affine2(x)  # scores; softmax lives in the loss


class DeepConvNet(torch.nn.Module):
    """The book's DeepConvNet (deep_convnet.py), layer for layer, He initialisation."""

    # (filters, padding) of the six 3x3 convolutions; a 2x2 max pool after each pair.
    CONVS = ((16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1))

    def __init__(self):
        super().__init__()
        channels = IMAGE[0]
        convs = []
        for filters, pad in self.CONVS:
            convs.append(torch.nn.Conv2d(channels, filters, 3, stride=1, padding=pad))
            channels = filters
        self.convs = torch.nn.ModuleList(convs)
        self.affine1 = torch.nn.Linear(64 * 4 * 4, 50)
        self.affine2 = torch.nn.Linear(50, CLASSES)
        self.dropout = torch.nn.Dropout(0.5)
        with torch.no_grad():
            for layer in (*self.convs, self.affine1, self.affine2):
                fan_in = layer.weight[0].numel()
                layer.weight.normal_(0.0, 1.0).mul_((2.0 / fan_in) ** 0.5)
                layer.bias.zero_()

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i % 2 == 1:
                x = F.max_pool2d(x, kernel_size=2, stride=2)
        x = self.dropout(F.relu(self.affine1(torch.flatten(x, 1))))
        return self.dropout(self.affine2(x))


def seconds_per_step(step, steps, warmup, repeats):
    """Median over `repeats` of the mean time of one call of `step`."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def report(name, layout, batch, threads, seconds, steps, repeats, is_compiled=False):
    """One result line; the format is defined in benches/reference/README.md."""
    print(
        f"{name} impl=torch layout={layout} batch={batch} threads={threads} "
        f"images_per_s={batch / seconds:.1f} ms_per_step={seconds * 1e3:.3f} "
        f"steps={steps} repeats={repeats}" + (" compiled=1" if is_compiled else ""),
        flush=True,
    )


def batch_of(batch, memory_format, generator):
    images = torch.rand((batch, *IMAGE), generator=generator, dtype=torch.float32)
    labels = torch.randint(0, CLASSES, (batch,), generator=generator)
    return images.contiguous(memory_format=memory_format), labels


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument(
        "--channels-last", action="store_true", help="NHWC memory layout (default NCHW)"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="run the networks through torch.compile (inductor; needs a C++ compiler); "
        "the warm-up steps absorb the compilation",
    )
    parser.add_argument("--batch", type=int, default=100, help="batch size (default 100)")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per repeat (default 50)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="repeats; the median is reported (default 5)"
    )
    parser.add_argument(
        "--what",
        default=",".join(MEASUREMENTS),
        help=f"comma-separated subset of {','.join(MEASUREMENTS)} (default all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and data")
    args = parser.parse_args(argv)
    args.what = [w.strip() for w in args.what.split(",") if w.strip()]
    unknown = [w for w in args.what if w not in MEASUREMENTS]
    if unknown:
        parser.error(f"unknown --what {','.join(unknown)}; choose from {','.join(MEASUREMENTS)}")
    for name in ("threads", "batch", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be at least 0, got {args.warmup}")
    if args.compile and args.warmup < 2:
        parser.error(f"--compile needs --warmup of at least 2 (the first steps compile), got {args.warmup}")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    layout = "channels_last" if args.channels_last else "nchw"
    timing = dict(steps=args.steps, warmup=args.warmup, repeats=args.repeats)

    print(
        f"# impl=torch torch={torch.__version__} threads={torch.get_num_threads()} "
        f"interop_threads={torch.get_num_interop_threads()} layout={layout} "
        f"mkldnn={torch.backends.mkldnn.is_available()} python={platform.python_version()} "
        f"machine={platform.machine()} compiled={int(args.compile)}",
        flush=True,
    )

    net = SimpleConvNet().to(memory_format=memory_format)
    images, labels = batch_of(args.batch, memory_format, generator)

    def measure(name, step, batch=args.batch, network=True):
        seconds = seconds_per_step(step, **timing)
        # Only the networks go through torch.compile; the convolution alone calls its
        # kernels directly.
        is_compiled = args.compile and network
        report(name, layout, batch, args.threads, seconds, args.steps, args.repeats, is_compiled)

    def compiled(model):
        # torch.compile traces the model on its first calls (the warm-up steps) and
        # runs generated kernels after; the parameters stay the model's own.
        return torch.compile(model) if args.compile else model

    def train_step(name, model_class, source):
        # A copy, so that training does not change the weights the other
        # measurements use.
        train_net = model_class().to(memory_format=memory_format)
        train_net.load_state_dict(source.state_dict())
        train_net.train()
        optimizer = torch.optim.Adam(train_net.parameters(), lr=0.001, betas=(0.9, 0.999))
        model = compiled(train_net)
        losses = []

        def step():
            # Forward, softmax-with-loss (mean over the batch), backward, Adam update.
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())

        measure(name, step)
        # Random labels: the loss should start near ln 10 = 2.303 and fall as
        # the network memorises this one batch; a sanity check, not a result.
        print(f"# {name} loss first={losses[0]:.4f} last={losses[-1]:.4f}", flush=True)

    def infer(name, model):
        # The same batch, then one image at a time (latency), like the Rust bench.
        model.eval()
        model = compiled(model)
        for batch in dict.fromkeys((args.batch, 1)):
            x = images[:batch].contiguous(memory_format=memory_format)

            def step(x=x):
                with torch.inference_mode():
                    model(x).argmax(dim=1)

            measure(name, step, batch)

    if "train_step" in args.what:
        train_step("train_step", SimpleConvNet, net)
    if "infer" in args.what:
        infer("infer", net)
    if "train_step_deep" in args.what or "infer_deep" in args.what:
        deep = DeepConvNet().to(memory_format=memory_format)
        if "train_step_deep" in args.what:
            train_step("train_step_deep", DeepConvNet, deep)
        if "infer_deep" in args.what:
            infer("infer_deep", deep)

    if "conv_forward" in args.what or "conv_backward" in args.what:
        conv = net.conv
        weight, bias = conv.weight.detach(), conv.bias.detach()

    if "conv_forward" in args.what:
        # The convolution layer alone (with bias), no autograd bookkeeping.
        def conv_forward():
            with torch.inference_mode():
                F.conv2d(images, weight, bias, stride=1, padding=0)

        measure("conv_forward", conv_forward, network=False)

    if "conv_backward" in args.what:
        # The convolution layer's backward alone: from an upstream gradient
        # dout (N, 30, 24, 24) to dx, dW and db (the book's Convolution.backward
        # computes all three), by calling the kernel autograd itself would call.
        with torch.no_grad():
            out = F.conv2d(images, weight, bias)
        dout = torch.randn(out.shape, generator=generator).contiguous(memory_format=memory_format)

        def conv_backward():
            with torch.inference_mode():
                torch.ops.aten.convolution_backward(
                    dout, images, weight, [FILTERS],
                    [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
                    [True, True, True],
                )  # fmt: skip

        measure("conv_backward", conv_backward, network=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
