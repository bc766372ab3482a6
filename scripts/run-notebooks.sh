#!/usr/bin/env bash
# Execute the notebooks headlessly on the evcxr Rust kernel, one after another.
#
# Usage: scripts/run-notebooks.sh [--update] [--out DIR] [NOTEBOOK...]
#   (no flag)   run notebooks/*.ipynb (or the ones named) and write the executed copies to
#               DIR (default .ci/out/notebooks); the committed notebooks are not touched
#   --update    write the outputs back into the notebooks themselves, to be committed
#               (a notebook that fails is left as it was; its partial run goes to DIR)
#
# Needs scripts/install-notebook-kernel.sh (or --ci) to have run. Settings, all optional:
#   NOTEBOOK_VENV     venv with nbclient             (default .venv-notebooks)
#   NOTEBOOK_CACHE    evcxr build cache kept between runs and shared by the notebooks
#                     (default ~/.cache/cnn-from-scratch-evcxr, ~1 GB)
#   NOTEBOOK_DEPS_OPT opt-level of the crate and its dependencies   (default 2)
#   NOTEBOOK_TIMEOUT  seconds one cell may take       (default 1800: the first cell compiles)
# A panic in a cell fails the run (exit 101 from a panic hook); so does a compile error.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

update=false
out=.ci/out/notebooks
notebooks=()
while (($#)); do
  case $1 in
    --update) update=true ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    *) notebooks+=("$1") ;;
  esac
  shift
done
((${#notebooks[@]})) || notebooks=(notebooks/*.ipynb)
[[ -e ${notebooks[0]} ]] || { echo "no notebooks found" >&2; exit 1; }

venv=${NOTEBOOK_VENV:-.venv-notebooks}
python=$venv/bin/python
if [[ ! -x $python ]] || ! "$python" -c 'import nbclient' 2>/dev/null; then
  echo "no nbclient in $venv: run scripts/install-notebook-kernel.sh first" >&2
  exit 1
fi
export PATH=${CARGO_HOME:-$HOME/.cargo}/bin:$PATH
command -v evcxr_jupyter >/dev/null || {
  echo "evcxr_jupyter not found: run scripts/install-notebook-kernel.sh first" >&2
  exit 1
}

# evcxr configuration for this run only (the user's ~/.config/evcxr is left alone):
# - prelude.rs: a panic must fail the run. evcxr catches panics and carries on, so the
#   hook prints the message and ends the child process; evcxr then reports
#   "Subprocess terminated with status: exit status: 101" and the cell fails.
# - init.evcxr: cells compile at opt-level 0 (each cell is a fresh crate: fast to build);
#   the library and its dependencies get NOTEBOOK_DEPS_OPT through the cargo config below,
#   so im2col and training still run at full speed.
config_dir=$(mktemp -d)
trap 'rm -rf "$config_dir"' EXIT
export EVCXR_CONFIG_DIR=$config_dir RUST_BACKTRACE=0
echo ':opt 0' >"$EVCXR_CONFIG_DIR/init.evcxr"
echo 'std::panic::set_hook(Box::new(|info| { eprintln!("{info}"); std::process::exit(101); }));' \
  >"$EVCXR_CONFIG_DIR/prelude.rs"

# One build directory for all notebooks and all runs: evcxr ignores CARGO_TARGET_DIR and
# builds under EVCXR_TMPDIR, so a kept EVCXR_TMPDIR means the dependencies compile once.
# Cargo reads .cargo/config.toml from the parent directories of its working directory.
cache=${NOTEBOOK_CACHE:-$HOME/.cache/cnn-from-scratch-evcxr}
export EVCXR_TMPDIR=$cache/build
mkdir -p "$EVCXR_TMPDIR" "$cache/.cargo" "$out"
cat >"$cache/.cargo/config.toml" <<TOML
# Written by scripts/run-notebooks.sh: notebook cells at evcxr's ':opt 0', everything
# they depend on (cnn-from-scratch included) optimised.
[profile.dev.package."*"]
opt-level = ${NOTEBOOK_DEPS_OPT:-2}
debug-assertions = false
overflow-checks = false

# ... except what only runs while building (proc macros, build-script helpers): "*" applies
# to them too and wins over build-override, and optimising syn & co. costs minutes. Nor
# image's glue around the png codec and the JSON reader of safetensors headers (as in the
# crate's own Cargo.toml): their speed does not matter here.
[profile.dev.package]
$(for crate in autocfg cc find-msvc-tools heck proc-macro2 quote serde_derive shlex syn \
    thiserror-impl version_check zerocopy-derive image serde_json; do
  echo "$crate.opt-level = 0"
done)
TOML

# evcxr 0.22 links each cell with a *relative* rpath to Rust's standard library that is one
# folder off; it only resolves when the path climbs all the way to "/", so it fails with
# "dlopen failed" (exit status 99) when EVCXR_TMPDIR and rustup share a parent such as $HOME.
# Pointing the loader at the standard library directly works wherever the cache is.
rust_lib=$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/lib
export LD_LIBRARY_PATH=$rust_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

if command -v mold >/dev/null || command -v lld >/dev/null; then
  echo "linker: $(command -v mold || command -v lld) (used by evcxr automatically)"
else
  echo "linker: system default (install lld for faster links)"
fi
echo "build cache: $EVCXR_TMPDIR ($(du -sh "$EVCXR_TMPDIR" 2>/dev/null | cut -f1))"

status=0
total_start=$SECONDS
for nb in "${notebooks[@]}"; do
  start=$SECONDS
  if $update; then dest=$nb; else dest=$out/$(basename "$nb"); fi
  echo "--- $nb"
  if "$python" - "$nb" "$dest" "$out/$(basename "$nb")" "${NOTEBOOK_TIMEOUT:-1800}" "$update" <<'PY'
import os, sys
from datetime import datetime

import nbformat
from nbclient import NotebookClient

src, dest, partial, timeout, update = sys.argv[1:6]
update = update == "true"
nb = nbformat.read(src, as_version=4)
client = NotebookClient(
    nb,
    kernel_name="rust",
    timeout=int(timeout),
    startup_timeout=300,
    record_timing=True,
    # The kernel's working directory is the notebook's folder, so `path = ".."` is the crate.
    resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}},
)
failure = None
try:
    client.execute()
except Exception as exc:  # CellExecutionError, DeadKernelError, CellTimeoutError, ...
    failure = exc


def seconds(cell):
    t = cell.metadata.get("execution", {})
    try:
        start = datetime.fromisoformat(t["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(t["shell.execute_reply"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return (end - start).total_seconds()


def output_text(out):
    if out.output_type == "stream":
        return out.text
    if out.output_type == "error":
        return "\n".join([f"{out.ename}: {out.evalue}", *out.traceback])
    return out.get("data", {}).get("text/plain", "")


code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
times = [(i, seconds(c)) for i, c in code_cells]
print("cell seconds:", " ".join(f"[{i}]{t:.1f}" for i, t in times if t is not None))

if failure is not None:
    # nbclient's own message is empty for evcxr (its error replies have no ename/evalue),
    # so show the last cell that ran, with everything it printed.
    ran = [(i, c) for i, c in code_cells if c.get("execution_count") is not None or c.outputs]
    reason = f"{type(failure).__name__}: {str(failure).strip()[:500]}"
    if not ran:
        print(f"FAILED before the first cell ran ({reason})")
    else:
        i, cell = ran[-1]
        print(f"FAILED in cell [{i}] ({reason})")
        print("  source:\n" + "\n".join("    " + line for line in cell.source.splitlines()))
        for out in cell.outputs:
            print("  output:\n" + "\n".join("    " + l for l in output_text(out).splitlines()))
    nbformat.write(nb, partial)
    print(f"partial run written to {partial}", flush=True)
    # os._exit: skip nbclient's exit-time kernel cleanup, which raises after a dead kernel.
    os._exit(1)

# evcxr numbers a cell's result one higher than the cell (JupyterLab then shows "[4]:" beside
# the output of cell [3]); give each result its cell's number, as other kernels do.
for cell in nb.cells:
    for out in cell.get("outputs", []):
        if out.output_type == "execute_result":
            out.execution_count = cell.execution_count

if update:
    # Keep committed notebooks free of run-specific noise: no timestamps.
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
nbformat.write(nb, dest)
PY
  then
    echo "ok: $nb in $((SECONDS - start)) s -> $dest"
  else
    echo "FAILED: $nb after $((SECONDS - start)) s"
    status=1
  fi
done
echo "notebooks: $((SECONDS - total_start)) s in all"
exit $status
