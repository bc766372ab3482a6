#!/usr/bin/env python3
"""Check the notebooks: the committed ones, and (with --executed DIR) a fresh run of them.

Usage: .ci/check_notebooks.py [--executed DIR] NOTEBOOK...

Committed notebook (what a reader sees on GitHub):
  - ran before it was committed: every code cell has an execution count;
  - shows no error: no error output, nothing on stderr (where evcxr puts an Err returned
    through `?`), no "panicked at", "error[E", "Subprocess terminated";
  - stays small: file <= 2 MB, each picture or HTML output within the limits below;
  - all `:dep` lines in one cell (evcxr then resolves and builds the crates once).
Executed copy DIR/<same name> (written by scripts/run-notebooks.sh):
  - same cells as the committed notebook (count, kinds, sources);
  - every code cell ran, and none shows an error (same rules as above);
  - a cell has an image/png output in the run exactly when it has one in the committed
    notebook, so committed pictures are not stale or missing.
Standard library only: the notebook format is plain JSON.
"""

import json
import sys
from pathlib import Path

MAX_FILE_BYTES = 2 * 1024 * 1024
# Per output, in characters of the stored (base64 for PNG) text.
MAX_OUTPUT_CHARS = {
    "image/png": 400_000,
    "image/svg+xml": 200_000,
    "text/html": 200_000,
}
MAX_OTHER_OUTPUT_CHARS = 20_000
BAD_TEXT = ("panicked at", "error[E", "Subprocess terminated")


def text(value):
    """Notebook JSON stores multi-line strings either as one string or a list of lines."""
    return "".join(value) if isinstance(value, list) else (value or "")


def code_cells(nb):
    return [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]


def has_png(cell):
    return any("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def output_problems(where, nb):
    """Errors shown in the outputs, and cells that never ran."""
    problems = []
    for i, cell in code_cells(nb):
        if cell.get("execution_count") is None:
            problems.append(f"{where}: cell [{i}] did not run")
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream" and out.get("name") == "stderr":
                # evcxr reports an Err returned through `?` on stderr without failing the
                # cell; the notebooks print nothing to stderr on purpose, so any is a failure.
                first = text(out.get("text")).strip().splitlines()[:1]
                problems.append(f"{where}: cell [{i}] wrote to stderr: {first[0][:200] if first else ''}")
            if out["output_type"] == "error":
                problems.append(
                    f"{where}: cell [{i}] has an error output: "
                    f"{out.get('ename', '')}: {out.get('evalue', '')}"
                )
            shown = [text(out.get("text"))] + [text(v) for v in out.get("data", {}).values()]
            for bad in BAD_TEXT:
                hit = next((s for s in shown if bad in s), None)
                if hit is not None:
                    line = next(l for l in hit.splitlines() if bad in l)
                    problems.append(f"{where}: cell [{i}] output contains {bad!r}: {line[:200]}")
    return problems


def committed_problems(path, nb):
    where = str(path)
    problems = output_problems(where, nb)
    if problems:
        problems.append(
            f"{where}: commit it with fresh outputs: scripts/run-notebooks.sh --update {path}"
        )
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        problems.append(f"{where}: file is {size} bytes, limit {MAX_FILE_BYTES}")
    for i, cell in code_cells(nb):
        for out in cell.get("outputs", []):
            for mime, value in out.get("data", {}).items():
                n = len(text(value))
                limit = MAX_OUTPUT_CHARS.get(mime, MAX_OTHER_OUTPUT_CHARS)
                if n > limit:
                    hint = ""
                    if mime == "text/plain" and text(value).startswith("Picture {"):
                        hint = " (a Picture shown with Debug, not as an image: see notebooks/README.md)"
                    problems.append(
                        f"{where}: cell [{i}] {mime} output is {n} chars, limit {limit}{hint}"
                    )
            n = len(text(out.get("text")))
            if n > MAX_OTHER_OUTPUT_CHARS:
                problems.append(f"{where}: cell [{i}] prints {n} chars, limit {MAX_OTHER_OUTPUT_CHARS}")
    dep_cells = [i for i, c in code_cells(nb)
                 if any(l.lstrip().startswith(":dep") for l in text(c["source"]).splitlines())]
    if len(dep_cells) > 1:
        problems.append(f"{where}: `:dep` lines in cells {dep_cells}; put them all in one cell")
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "rust":
        problems.append(f"{where}: kernelspec is {kernel!r}, expected 'rust' (evcxr)")
    return problems


def executed_problems(committed_path, committed, executed_path):
    where = str(executed_path)
    if not executed_path.exists():
        return [f"{where}: missing: {committed_path} was not executed"]
    executed = json.loads(executed_path.read_text(encoding="utf-8"))
    problems = output_problems(where, executed)
    a, b = committed["cells"], executed["cells"]
    if len(a) != len(b):
        return problems + [f"{where}: {len(b)} cells, the committed notebook has {len(a)}"]
    for i, (c, e) in enumerate(zip(a, b)):
        if c["cell_type"] != e["cell_type"] or text(c["source"]) != text(e["source"]):
            problems.append(f"{where}: cell [{i}] differs from the committed notebook")
        elif c["cell_type"] == "code" and has_png(c) != has_png(e):
            if has_png(e):
                why = "the run shows a PNG picture that the committed notebook lacks"
            else:
                why = "the committed notebook shows a PNG picture that the run did not make"
            problems.append(
                f"{where}: cell [{i}]: {why}; refresh it with scripts/run-notebooks.sh --update"
            )
    return problems


def main(argv):
    executed_dir = None
    paths = []
    args = iter(argv)
    for arg in args:
        if arg == "--executed":
            executed_dir = Path(next(args))
        elif arg in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            paths.append(Path(arg))
    if not paths:
        print("no notebooks given", file=sys.stderr)
        return 2

    passed = failed = 0
    for path in paths:
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            problems = [f"{path}: cannot read: {exc}"]
        else:
            problems = committed_problems(path, nb)
            if executed_dir is not None:
                problems += executed_problems(path, nb, executed_dir / path.name)
        for p in problems:
            print(f"  {p}")
        print(f"{'FAIL' if problems else 'ok'}: {path}")
        failed += bool(problems)
        passed += not problems
    print(f"notebooks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
