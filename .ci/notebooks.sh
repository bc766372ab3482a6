#!/usr/bin/env bash
# CI step: execute every notebook in notebooks/ on the evcxr Rust kernel and check the result.
# Called from .ci/run. Installs what it needs (the kernel binary is kept in ~/.cargo/bin; the
# first install takes ~20 min on 2 cores), runs the notebooks one after another into
# .ci/out/notebooks with a build cache kept in ~/.cache/cnn-from-scratch-evcxr, then compares
# the executed notebooks with the committed ones (.ci/check_notebooks.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export NOTEBOOK_VENV=${NOTEBOOK_VENV:-.ci/venv} RUST_BACKTRACE=0
out=.ci/out/notebooks

t=$SECONDS
# lld links each cell's crate several times faster than the default linker (optional).
if ! command -v lld >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends lld; } >/dev/null 2>&1 ||
    echo "lld could not be installed; using the default linker"
fi
scripts/install-notebook-kernel.sh --ci --venv "$NOTEBOOK_VENV"
echo "set-up: $((SECONDS - t)) s"

rm -rf "$out"
# Run them all even if one fails, then check: the check reports every problem at once.
run_status=0
scripts/run-notebooks.sh --out "$out" || run_status=$?
"$NOTEBOOK_VENV/bin/python" .ci/check_notebooks.py --executed "$out" notebooks/*.ipynb
exit $run_status
