#!/usr/bin/env python3
"""Check a SimpleConvNet parameter file against the crate's own predictions.

The crate saves its trained parameters as safetensors (tensor names as in the book:
W1, b1, W2, b2, W3, b3) and writes its predictions on the embedded sample's test set.
This script knows nothing of the crate's code: it reads the test images from the IDX
files itself, runs its own forward pass written in numpy (convolution by sliding
windows, ReLU, 2x2 max pooling, Affine, ReLU, Affine) in float64, and checks that the
predicted labels agree with the crate's. If PyTorch is installed it also loads the
file into the equivalent `torch.nn` model and checks the same predictions.

Usage:
    python3 tools/check_params.py PARAMS.safetensors PREDICTIONS.txt \
        [--images data/...-images-idx3-ubyte.gz] [--labels data/...-labels-idx1-ubyte.gz]

PREDICTIONS.txt has one line per test image: the predicted label, then the network's
scores (logits, before softmax), separated by whitespace. Write it with
`cargo run --release --example train -- --dataset sample --save P --predictions FILE`.

Exit status 0 when every prediction agrees (a disagreement is accepted only where the
numpy scores of the two top classes tie within --tie), 1 otherwise, 2 on bad input.
"""

import argparse
import gzip
import json
import struct
import sys
from pathlib import Path

import numpy as np
import safetensors
from safetensors import safe_open
from safetensors.numpy import load_file

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO / "data" / "mnist-sample" / "t10k-images-idx3-ubyte.gz"
DEFAULT_LABELS = REPO / "data" / "mnist-sample" / "t10k-labels-idx1-ubyte.gz"
NAMES = ["W1", "b1", "W2", "b2", "W3", "b3"]


def read_idx(path):
    """An IDX file (the MNIST format), gzip-compressed or not, as a numpy array."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {data.size} bytes")
    return data.reshape(dims)


def conv2d(x, w, b, stride, pad):
    """Cross-correlation as the book computes it: x (N,C,H,W), w (FN,C,FH,FW)."""
    fh, fw = w.shape[2:]
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (fh, fw), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]  # (N, C, OH, OW, FH, FW)
    return np.einsum("nchwij,fcij->nfhw", windows, w) + b[None, :, None, None]


def max_pool(x, size, stride):
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))
    return windows[:, :, ::stride, ::stride].max(axis=(4, 5))


def forward_numpy(p, images, stride, pad, pool):
    x = images.astype(np.float64)
    h = np.maximum(conv2d(x, p["W1"], p["b1"], stride, pad), 0.0)
    h = max_pool(h, pool, pool)
    h = h.reshape(len(h), -1)  # C-order flatten: channel, then row, then column
    h = np.maximum(h @ p["W2"] + p["b2"], 0.0)
    return h @ p["W3"] + p["b3"]


def forward_torch(p32, images, stride, pad, pool):
    import torch

    fn, c, fh, _ = p32["W1"].shape
    model = torch.nn.Sequential(
        torch.nn.Conv2d(c, fn, fh, stride=stride, padding=pad),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(pool, pool),
        torch.nn.Flatten(),
        torch.nn.Linear(*p32["W2"].shape),
        torch.nn.ReLU(),
        torch.nn.Linear(*p32["W3"].shape),
    )
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
    with torch.no_grad():
        model[0].weight.copy_(t(p32["W1"]))
        model[0].bias.copy_(t(p32["b1"]))
        # The book's Affine computes x @ W + b; torch's Linear computes x @ W.T + b.
        model[4].weight.copy_(t(p32["W2"].T))
        model[4].bias.copy_(t(p32["b2"]))
        model[6].weight.copy_(t(p32["W3"].T))
        model[6].bias.copy_(t(p32["b3"]))
        return model(t(images.astype(np.float32))).numpy().astype(np.float64)


def compare(name, scores, crate_labels, crate_scores, tie, score_tol):
    """Count real disagreements; a disagreement where the top two scores tie is allowed.

    When the crate wrote its scores too, they must also match ours within `score_tol`
    relative to the largest score (float32 sums in another order differ slightly)."""
    labels = scores.argmax(axis=1)
    top2 = np.sort(scores, axis=1)[:, -2:]
    differ = labels != crate_labels
    ties = differ & (top2[:, 1] - top2[:, 0] <= tie)
    bad = differ & ~ties
    msg = f"{name}: {len(labels) - differ.sum()}/{len(labels)} predictions agree"
    if ties.any():
        msg += f", {ties.sum()} differ only on a tie (top-2 gap <= {tie})"
    scores_ok = True
    if crate_scores is not None:
        diff = np.abs(scores - crate_scores).max()
        limit = score_tol * max(1.0, np.abs(scores).max())
        scores_ok = bool(diff <= limit)
        msg += f"; max |score difference| = {diff:.3g} (limit {limit:.3g})"
    print(msg)
    for i in np.flatnonzero(bad)[:10]:
        print(f"  image {i}: crate says {crate_labels[i]}, {name} says {labels[i]}")
    return scores_ok and not bad.any()


def read_predictions(path):
    rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    labels = np.array([int(r[0]) for r in rows])
    if all(len(r) > 1 for r in rows) and len({len(r) for r in rows}) == 1:
        return labels, np.array([[float(v) for v in r[1:]] for r in rows])
    return labels, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("params", help="safetensors file saved by the crate")
    ap.add_argument("predictions", help="the crate's predictions, one test image per line")
    ap.add_argument("--images", default=DEFAULT_IMAGES, help="IDX test images (.gz or raw)")
    ap.add_argument("--labels", default=DEFAULT_LABELS, help="IDX test labels (.gz or raw)")
    ap.add_argument("--tie", type=float, default=1e-4, help="scores closer than this tie")
    ap.add_argument("--score-tol", type=float, default=1e-4,
                    help="allowed score difference, relative to the largest score")
    args = ap.parse_args()

    try:
        p32 = load_file(args.params)
        with safe_open(args.params, framework="numpy") as f:
            meta = f.metadata() or {}
        missing = [n for n in NAMES if n not in p32]
        if missing:
            raise ValueError(f"{args.params}: missing tensors {missing}")
        images = read_idx(args.images)
        labels = read_idx(args.labels)
        crate_labels, crate_scores = read_predictions(args.predictions)
        # The crate stores its network configuration as JSON under the metadata key
        # "config"; without it the file is taken to be the book's network.
        config = json.loads(meta.get("config", "{}"))
    except (OSError, ValueError, safetensors.SafetensorError) as e:
        print(f"check_params: {e}", file=sys.stderr)
        return 2

    stride, pad, pool = config.get("stride", 1), config.get("pad", 0), config.get("pool", 2)
    # Pixels are scaled to [0, 1], as the book's load_mnist(normalize=True) does.
    images = images.reshape(len(images), 1, *images.shape[-2:]) / 255.0
    if len(crate_labels) != len(images):
        print(f"check_params: {len(crate_labels)} predictions for {len(images)} images",
              file=sys.stderr)
        return 2
    shapes = ", ".join(f"{n} {p32[n].shape}" for n in NAMES)
    print(f"{args.params}: {shapes}; stride {stride}, pad {pad}, pool {pool}")

    p64 = {n: p32[n].astype(np.float64) for n in NAMES}
    scores = forward_numpy(p64, images, stride, pad, pool)
    acc = (scores.argmax(axis=1) == labels).mean()
    print(f"numpy forward: test accuracy {acc:.4f} on {len(images)} images")
    ok = compare("numpy", scores, crate_labels, crate_scores, args.tie, args.score_tol)

    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch: not installed, skipped")
    else:
        ok &= compare("torch", forward_torch(p32, images, stride, pad, pool),
                      crate_labels, crate_scores, args.tie, args.score_tol)

    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
