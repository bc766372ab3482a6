#!/usr/bin/env python3
"""This crate's `bench` next to the PyTorch reference, interleaved, with ratios.

Runs, round after round (A B A B ...), the crate's `bench` example and
benches/reference/torch_simpleconvnet.py in both memory layouts (NCHW and
channels_last), each also with glibc's malloc set to keep freed memory
(`GLIBC_TUNABLES`, the setting this crate makes itself, see
src/full_cnn/memory.rs: it speeds PyTorch up too) and through torch.compile
(slower than eager mode for training here, faster for inference at batch
100), one program at a time with
the same thread count, then prints for every measurement the images/s of each
side (median, min-max over the rounds) and the ratio of this crate to
PyTorch's *best* setting of the same round, with its min/median/max over the
rounds. Interleaving spreads whatever else the machine is doing over all sides
alike.

    scripts/bench-vs-pytorch.py                       # 3 rounds, 2 threads, everything
    scripts/bench-vs-pytorch.py --rounds 5 --what train_step,train_step_deep
    scripts/bench-vs-pytorch.py --baseline /tmp/bench-old   # also an older bench binary
    scripts/bench-vs-pytorch.py --markdown            # the README's table too
    scripts/bench-vs-pytorch.py --no-compile          # without the torch.compile runs

PyTorch comes from $TORCH_PYTHON if set, else .venv-torch/bin/python, else this Python.
Without it the script prints how to install it and exits with status 2.
Only the standard library is needed here; the line format is
benches/reference/README.md's.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(ROOT, "benches", "reference", "torch_simpleconvnet.py")
# The measurements both sides know (conv_naive is the crate's alone).
SHARED = "train_step,infer,train_step_deep,infer_deep,conv_forward,conv_backward"
INSTALL = f"""PyTorch is not installed for {{python}}.
Install it (CPU use only; the PyPI wheel is large) in a virtual environment:

    python3 -m venv {ROOT}/.venv-torch
    {ROOT}/.venv-torch/bin/pip install torch numpy

then run this script again (or point TORCH_PYTHON at another Python with torch)."""


def torch_python():
    """The Python that has torch, or None (after printing how to install it)."""
    if os.environ.get("TORCH_PYTHON"):
        candidates = [os.environ["TORCH_PYTHON"]]  # only the one asked for
    else:
        venv = os.path.join(ROOT, ".venv-torch", "bin", "python")
        candidates = [venv] if os.path.exists(venv) else []
        candidates.append(sys.executable)
    for python in candidates:
        try:
            probe = subprocess.run([python, "-c", "import torch"], capture_output=True)
        except OSError:
            continue
        if probe.returncode == 0:
            return python
    print(INSTALL.format(python=" or ".join(candidates)), file=sys.stderr)
    return None


def parse(output):
    """Result lines as {(name, batch): images_per_s} and the extra keys of each."""
    results = {}
    for line in output.splitlines():
        if not line or line.startswith("#"):
            continue
        name, *pairs = line.split(" ")
        keys = dict(p.split("=", 1) for p in pairs if "=" in p)
        results[(name, int(keys["batch"]))] = keys
    return results


# What the crate sets with mallopt (src/full_cnn/memory.rs), for PyTorch's process.
KEEP_MEMORY = "glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=33554432"
# PyTorch's settings: (label, extra arguments, GLIBC_TUNABLES or None).
TORCH_SETTINGS = [
    ("nchw", [], None),
    ("channels_last", ["--channels-last"], None),
    ("nchw kept", [], KEEP_MEMORY),
    ("channels_last kept", ["--channels-last"], KEEP_MEMORY),
]
# Through torch.compile (inductor), unless --no-compile: slower than eager mode for these
# networks' training steps on the Intel Xeon of docs/performance-log.md (2026-12-07), but
# faster for their inference at batch 100, so they count for PyTorch's best. Each run
# compiles first (half a minute to a minute, in the warm-up steps, not timed).
COMPILED_SETTINGS = [
    ("nchw compiled", ["--compile"], None),
    ("channels_last compiled", ["--channels-last", "--compile"], None),
]


def run(command, tunables=None):
    env = dict(os.environ)
    if tunables:
        env["GLIBC_TUNABLES"] = tunables
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return parse(done.stdout)


def load_average():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "unknown"


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def spread(values):
    """`median (min-max)` of images/s."""
    if not values:
        return "-"
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="A B A B rounds (default 3, at least 3)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both sides (default 2)")
    parser.add_argument("--what", default=SHARED, help=f"measurements (default {SHARED})")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per repeat (default 50)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per run (default 5)")
    parser.add_argument("--bench", help="the crate's bench binary (default: cargo build --release)")
    parser.add_argument("--baseline", help="another bench binary (an older commit) to run in each round")
    parser.add_argument("--markdown", action="store_true", help="also print the README's table")
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="leave out the torch.compile runs of PyTorch (they take a minute or two per round)",
    )
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")

    python = torch_python()
    if python is None:
        return 2
    bench = args.bench
    if bench is None:
        build = ["cargo", "build", "--release", "--example", "bench"]
        subprocess.run(build, cwd=ROOT, check=True)
        bench = os.path.join(ROOT, "target", "release", "examples", "bench")

    common = ["--threads", str(args.threads), "--steps", str(args.steps), "--repeats", str(args.repeats)]
    sides = [("rust", "nchw", [bench, "--what", args.what, *common], None)]
    if args.baseline:
        sides.append(("baseline", "nchw", [args.baseline, "--what", args.what, *common], None))
    reference = [python, REFERENCE, *common]
    # torch.compile changes only the networks: the convolution alone (conv_forward,
    # conv_backward) would run the same eager kernels again.
    networks_only = ",".join(w for w in args.what.split(",") if not w.startswith("conv_"))
    settings = TORCH_SETTINGS + ([] if args.no_compile or not networks_only else COMPILED_SETTINGS)
    for label, extra, tunables in settings:
        what = networks_only if "--compile" in extra else args.what
        sides.append(("torch", label, [*reference, "--what", what, *extra], tunables))
    torch_sides = [("torch", label) for label, _, _ in settings]

    print(f"# machine: {cpu_name()}, {os.cpu_count()} logical CPUs; load average before: {load_average()}")
    # rounds[r][(impl, layout)] = {(name, batch): keys}
    rounds = []
    for r in range(args.rounds):
        this = {}
        for impl, layout, command, tunables in sides:
            print(f"# round {r + 1}/{args.rounds}: {impl} {layout} (load {load_average()})", file=sys.stderr)
            this[(impl, layout)] = run(command, tunables)
        rounds.append(this)
    print(f"# load average after: {load_average()}; {args.rounds} rounds, threads={args.threads}")

    measurements = sorted(
        {m for rnd in rounds for side in rnd.values() for m in side},
        key=lambda m: (args.what.split(",").index(m[0]) if m[0] in args.what.split(",") else 99, -m[1]),
    )

    def values(impl, layout, m, key="images_per_s"):
        return [float(rnd[(impl, layout)][m][key]) for rnd in rounds if m in rnd[(impl, layout)]]

    header = ["measurement", "batch", "rust img/s", *(f"torch {label}" for _, label in torch_sides), "rust / best torch (min med max)", "rust cores_busy"]
    if args.baseline:
        header[3:3] = ["baseline img/s", "rust / baseline (min med max)"]
    rows = []
    for m in measurements:
        rust = values("rust", "nchw", m)
        ratios = []
        for rnd in rounds:
            torch_best = max(
                (float(rnd[side][m]["images_per_s"]) for side in torch_sides if m in rnd[side]),
                default=None,
            )
            if m in rnd[("rust", "nchw")] and torch_best:
                ratios.append(float(rnd[("rust", "nchw")][m]["images_per_s"]) / torch_best)
        ratio = f"{min(ratios):.2f} {statistics.median(ratios):.2f} {max(ratios):.2f}" if ratios else "-"
        busy = values("rust", "nchw", m, "cores_busy") if all("cores_busy" in rnd[("rust", "nchw")].get(m, {}) for rnd in rounds) else []
        torch_cells = [spread(values(*side, m)) for side in torch_sides]
        row = [m[0], str(m[1]), spread(rust), *torch_cells, ratio, f"{statistics.median(busy):.2f}" if busy else "-"]
        if args.baseline:
            base = values("baseline", "nchw", m)
            pairs = [
                float(rnd[("rust", "nchw")][m]["images_per_s"]) / float(rnd[("baseline", "nchw")][m]["images_per_s"])
                for rnd in rounds
                if m in rnd[("rust", "nchw")] and m in rnd[("baseline", "nchw")]
            ]
            vs = f"{min(pairs):.2f} {statistics.median(pairs):.2f} {max(pairs):.2f}" if pairs else "-"
            row[3:3] = [spread(base), vs]
        rows.append(row)

    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())

    if args.markdown:
        print()
        names = {
            "nchw": "NCHW",
            "channels_last": "channels_last",
            "nchw kept": "NCHW, memory kept",
            "channels_last kept": "channels_last, memory kept",
            "nchw compiled": "NCHW, torch.compile",
            "channels_last compiled": "channels_last, torch.compile",
        }
        torch_headers = " | ".join(f"PyTorch {names.get(label, label)}" for _, label in torch_sides)
        print(f"| measurement | batch | this crate | {torch_headers} | this crate / best PyTorch |")
        print("|---|---|---|" + "---|" * len(torch_sides) + "---|")
        for m, r in zip(measurements, rows):
            med = lambda vals: f"{statistics.median(vals):,.0f}" if vals else "-"
            rust = med(values("rust", "nchw", m))
            ratio = r[-2].split()
            ratio_text = f"**{ratio[1]}x** ({ratio[0]}-{ratio[2]})" if len(ratio) == 3 else "-"
            torch_cells = " | ".join(med(values(*side, m)) for side in torch_sides)
            print(f"| {m[0]} | {m[1]} | **{rust}** | {torch_cells} | {ratio_text} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
