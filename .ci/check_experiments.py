#!/usr/bin/env python3
"""Check the output folder of `experiments --quick`: every table and every number is there
and in range. Not the full run's targets: a quick run trains tiny networks for 2 epochs.

Usage: .ci/check_experiments.py DIR

DIR/results.tsv must hold, under the expected header:
  - experiment 1: the four cases (FC and CNN, pixels as they are and shuffled), one row per
    seed each; the FC net scores about the same on both (within 5 points); the CNN as is
    beats the CNN on shuffled pixels;
  - experiment 2: the four networks, each with the unshifted accuracy and 4 directions for
    every shift 1..4; no network is better at 4 pixels than unshifted;
  - experiment 3: SimpleConvNet without and with shift augmentation (2 px), same layout;
  - every accuracy in [0, 1] and the unshifted ones well above chance (> 50%).
DIR/tables.md must hold the tables of experiments 1, 2 and 3.
Standard library only.
"""

import csv
import sys
from collections import defaultdict
from pathlib import Path

HEADER = ["experiment", "network", "pixels", "augment_shift", "seed", "shift", "direction",
          "test_accuracy"]
DIRECTIONS = {"right", "left", "down", "up"}


def main(out: Path) -> int:
    problems = []
    with open(out / "results.tsv", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or rows[0] != HEADER:
        print(f"error: results.tsv header is {rows[:1]}, expected {HEADER}")
        return 1
    records = [dict(zip(HEADER, r)) for r in rows[1:]]
    for r in records:
        acc = float(r["test_accuracy"])
        if not 0.0 <= acc <= 1.0:
            problems.append(f"accuracy out of [0, 1]: {r}")
        if r["shift"] == "0" and acc <= 0.5:
            problems.append(f"unshifted accuracy at or below 50%: {r}")

    # Experiment 1: mean accuracy per (network, pixels).
    exp1 = defaultdict(list)
    for r in records:
        if r["experiment"] == "1_shuffled_pixels":
            exp1[(r["network"], r["pixels"])].append(float(r["test_accuracy"]))
    cases = {("fc", "as_is"), ("fc", "shuffled"), ("cnn_max_pool", "as_is"),
             ("cnn_max_pool", "shuffled")}
    if set(exp1) != cases or len({len(v) for v in exp1.values()}) != 1:
        problems.append(f"experiment 1: expected the same number of seeds for {sorted(cases)}, "
                        f"got { {k: len(v) for k, v in exp1.items()} }")
    else:
        mean = {k: sum(v) / len(v) for k, v in exp1.items()}
        if abs(mean[("fc", "as_is")] - mean[("fc", "shuffled")]) > 0.05:
            problems.append(f"experiment 1: FC differs by more than 5 points: {mean}")
        if mean[("cnn_max_pool", "as_is")] <= mean[("cnn_max_pool", "shuffled")]:
            problems.append(f"experiment 1: the CNN is no worse on shuffled pixels: {mean}")
        print("experiment 1 (mean accuracy):",
              ", ".join(f"{n} {p} {100 * a:.1f}%" for (n, p), a in sorted(mean.items())))

    # Experiments 2 and 3: a full curve for every run and seed.
    def curves(experiment):
        found = defaultdict(dict)
        for r in records:
            if r["experiment"] == experiment:
                key = (r["network"], r["augment_shift"], r["seed"])
                found[key][(int(r["shift"]), r["direction"])] = float(r["test_accuracy"])
        return found

    expected_cells = {(0, "none")} | {(k, d) for k in range(1, 5) for d in DIRECTIONS}
    for experiment, runs in [
        ("2_shifted_digits", {("fc", "0"), ("cnn_no_pool", "0"), ("cnn_max_pool", "0"),
                              ("cnn_avg_pool", "0")}),
        ("3_learned_robustness_full", {("cnn_max_pool", "0"), ("cnn_max_pool", "2")}),
    ]:
        found = curves(experiment)
        if {(n, a) for n, a, _ in found} != runs:
            problems.append(f"{experiment}: runs {sorted(found)}, expected {sorted(runs)}")
        for key, cells in found.items():
            if set(cells) != expected_cells:
                problems.append(f"{experiment} {key}: {len(cells)} cells, expected "
                                f"{len(expected_cells)} (shift 0, then 1-4 x 4 directions)")
                continue
            at4 = sum(cells[(4, d)] for d in DIRECTIONS) / 4
            if at4 > cells[(0, "none")]:
                problems.append(f"{experiment} {key}: better at 4 px ({at4:.3f}) than unshifted")
            print(f"{experiment} {key}: unshifted {100 * cells[(0, 'none')]:.1f}%, "
                  f"4 px {100 * at4:.1f}%")

    tables = (out / "tables.md").read_text()
    for heading in ["### 1.", "### 2.", "### 3a."]:
        if heading not in tables:
            problems.append(f"tables.md has no table starting {heading!r}")

    for p in problems:
        print("error:", p)
    if not problems:
        print(f"check_experiments: {len(records)} numbers in range, all tables present")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1])))
