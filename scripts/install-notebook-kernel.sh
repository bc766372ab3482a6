#!/usr/bin/env bash
# Install what the notebooks in notebooks/ need, idempotently (a second run only checks):
#   1. evcxr_jupyter, the Rust kernel for Jupyter: a prebuilt binary through `cargo binstall`
#      when cargo-binstall is installed (seconds), else `cargo install` (~20 min the first
#      time on 2 cores); a failing binstall (no network to GitHub) falls back to cargo install;
#   2. a Python venv with Jupyter (JupyterLab) to open the notebooks in;
#   3. the kernel spec, so Jupyter lists a "Rust" kernel.
#
# Usage: scripts/install-notebook-kernel.sh [--ci] [--venv DIR]
#   --ci        install only the headless runner (nbclient) instead of JupyterLab, and put
#               the kernel spec inside the venv instead of ~/.local/share/jupyter
#   --venv DIR  where the venv goes (default: .venv-notebooks in the repository, or
#               $NOTEBOOK_VENV)
set -euo pipefail
cd "$(dirname "$0")/.."

EVCXR_VERSION=0.22.0
JUPYTERLAB_VERSION=4.6.6
NBCLIENT_VERSION=0.11.0

ci=false
venv=${NOTEBOOK_VENV:-.venv-notebooks}
while (($#)); do
  case $1 in
    --ci) ci=true ;;
    --venv) venv=${2:?--venv needs a directory}; shift ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin
export PATH=$cargo_bin:$PATH

# 1. The kernel. `evcxr_jupyter` has no --version flag; cargo's install list knows it
# (cargo binstall records what it installs there too).
if cargo install --list | grep -q "^evcxr_jupyter v$EVCXR_VERSION:"; then
  echo "evcxr_jupyter $EVCXR_VERSION: already installed"
else
  installed=false
  # cargo-binstall downloads the binary evcxr publishes on its GitHub releases page; it needs
  # a network to GitHub. --disable-strategies compile: if there is no prebuilt binary, fail
  # here and let the plain cargo install below build it with --locked.
  if cargo binstall -V >/dev/null 2>&1; then
    echo "evcxr_jupyter $EVCXR_VERSION: installing a prebuilt binary with cargo binstall"
    if cargo binstall -y --disable-strategies compile evcxr_jupyter --version "$EVCXR_VERSION"; then
      installed=true
    else
      echo "cargo binstall failed (no prebuilt binary or no network to GitHub?); building it instead" >&2
    fi
  fi
  if ! $installed; then
    echo "evcxr_jupyter $EVCXR_VERSION: installing with cargo install (about 20 minutes on 2 cores, once;"
    echo "  'cargo install cargo-binstall' first makes this take seconds)"
    cargo install --locked evcxr_jupyter --version "$EVCXR_VERSION"
  fi
fi

# 2. Python side, in its own venv so nothing touches the system Python.
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv" || {
    echo "python3 -m venv failed: on Debian/Ubuntu run 'apt-get install python3-venv'" >&2
    exit 1
  }
fi
if $ci; then
  packages=("nbclient==$NBCLIENT_VERSION")
else
  packages=("jupyterlab==$JUPYTERLAB_VERSION" "nbclient==$NBCLIENT_VERSION")
fi
# pip returns at once when the pinned versions are already there.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
echo "venv $venv: ${packages[*]}"

# 3. The kernel spec (kernels/rust/kernel.json). For CI it goes inside the venv, which
# Jupyter searches on its own (<prefix>/share/jupyter), so nothing in $HOME changes.
if $ci; then
  JUPYTER_PATH=$(cd "$venv" && pwd)/share/jupyter evcxr_jupyter --install
else
  evcxr_jupyter --install
fi

if ! $ci; then
  cat <<MSG

Done. Open the notebooks with:
  $venv/bin/jupyter lab notebooks/
and pick the "Rust" kernel. The first cell compiles the crate and its dependencies (a few
minutes the first time); see notebooks/README.md.
MSG
fi
