#!/usr/bin/env bash
# Screenshots of the notebooks as a reader sees them in a browser, to look at (and for CI to
# check with .ci/check_screenshots.py that every notebook renders).
#
# Usage: scripts/screenshot-notebooks.sh [--out DIR] [--lab] [NOTEBOOK...]
#   Converts notebooks/*.ipynb (or the ones named), with the outputs they hold, to HTML with
#   `jupyter nbconvert --to html` (JupyterLab's look), opens each page in headless Chromium and
#   saves into DIR (default target/notebook-screens/):
#     NAME.html              the page itself (open it in any browser)
#     NAME-top.png           the top of the page, 1280x2000
#     NAME-picture.png       the first cell with a picture (PNG output) at the top, 1280x1200
#     NAME-table.png         the first cell with a table (HTML output), 1280x1200, if any
#   --lab  also opens each notebook in JupyterLab itself (installed into the venv if missing,
#          run on a free local port with copies of the notebooks, stopped at the end):
#     NAME-lab-top.png       the top of the notebook in JupyterLab, 1280x2000
#     NAME-lab-picture.png   the first picture cell in JupyterLab, 1280x1200
#          With the Rust kernel registered (scripts/install-notebook-kernel.sh) JupyterLab
#          starts it for each notebook (no cell is run); without it a "Select Kernel" dialog
#          covers the middle of these screenshots.
#
# Works offline: nbconvert's page loads require.js, MathJax and mermaid from a CDN, which the
# notebooks do not need (no widgets, no formulas, no diagrams), so the page is made without
# them and Chromium is kept off the network; a page asking for anything remote fails the run.
# Needs Debian's `chromium` and a font with Japanese (any; fonts-ipafont-gothic, 3.5 MB, is
# installed if there is none): installed with apt-get when missing and running as root.
# Settings, all optional:
#   NOTEBOOK_VENV  Python venv for nbconvert (and JupyterLab)   (default .venv-notebooks)
#   CHROMIUM       the browser binary                           (default: chromium on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."

NBCONVERT_VERSION=7.17.2
JUPYTERLAB_VERSION=4.6.6 # as scripts/install-notebook-kernel.sh

out=target/notebook-screens
lab=false
notebooks=()
while (($#)); do
  case $1 in
    --out) out=${2:?--out needs a directory}; shift ;;
    --lab) lab=true ;;
    -h | --help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    *) notebooks+=("$1") ;;
  esac
  shift
done
((${#notebooks[@]})) || notebooks=(notebooks/*.ipynb)
[[ -e ${notebooks[0]} ]] || { echo "no notebooks found" >&2; exit 1; }

# Debian packages: the browser, and a font with Japanese (the notebooks' headings quote the
# book's note; without such a font every kana and kanji shows as a box). Any font that
# covers Japanese will do (fonts-noto-cjk looks nicer but is a 56 MB download).
missing=()
command -v "${CHROMIUM:-chromium}" >/dev/null || missing+=(chromium)
if ! command -v fc-list >/dev/null || [[ -z $(fc-list :lang=ja family) ]]; then
  missing+=(fonts-ipafont-gothic)
fi
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  else
    echo "missing: ${missing[*]}; install them (Debian/Ubuntu: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
chromium=$(command -v "${CHROMIUM:-chromium}")

venv=${NOTEBOOK_VENV:-.venv-notebooks}
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv" || {
    echo "python3 -m venv failed: on Debian/Ubuntu run 'apt-get install python3-venv'" >&2
    exit 1
  }
fi
packages=()
"$venv/bin/python" -c 'import nbconvert' 2>/dev/null || packages+=("nbconvert==$NBCONVERT_VERSION")
if $lab && ! "$venv/bin/python" -c 'import jupyterlab' 2>/dev/null; then
  packages+=("jupyterlab==$JUPYTERLAB_VERSION")
fi
if ((${#packages[@]})); then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
fi

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# JupyterLab's page (nbconvert's "lab" template) without the three scripts it fetches from
# cdnjs.cloudflare.com.
cat >"$work/offline.html.j2" <<'J2'
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
J2

"$venv/bin/python" - "$chromium" "$out" "$work" "$lab" "${notebooks[@]}" <<'PY'
import copy, json, os, re, socket, subprocess, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

chromium, out, work, lab = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
lab = lab == "true"
notebooks = [Path(p) for p in sys.argv[5:]]

# What each extra screenshot shows: the first code cell with an output of this kind.
SHOTS = {
    "picture": lambda out: "image/png" in out.get("data", {}),
    "table": lambda out: "<table" in "".join(out.get("data", {}).get("text/html", "")),
}
# What a page would fetch by itself: scripts, styles, images, frames, module imports, CSS
# url(...). Links (<a href>) are only followed when clicked.
REMOTE = re.compile(
    r"""<(?:script|link|img|iframe|source|video|audio|embed)\b[^>]*?\s(?:src|href)\s*=\s*["']?(?:https?:)?//"""
    r"""|\bimport\s*\(\s*["'](?:https?:)?//|\burl\(\s*["']?(?:https?:)?//""",
    re.IGNORECASE,
)
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]


def screenshot(url, png_path, height, wait_ms=None):
    """One Chromium run with a fresh profile, offline: every host but this machine (where
    JupyterLab runs) fails to resolve, so a page that needs something remote shows it
    missing instead of waiting for it."""
    flags = [*CHROMIUM_FLAGS, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
    if wait_ms:
        # JupyterLab draws the notebook with JavaScript after the page has loaded.
        flags.append(f"--virtual-time-budget={wait_ms}")
    cmd = [
        chromium, *flags, f"--user-data-dir={work / ('profile-' + png_path.stem)}",
        f"--window-size=1280,{height}", f"--screenshot={png_path.resolve()}", url,
    ]
    png_path.unlink(missing_ok=True)
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if run.returncode != 0 or not png_path.exists():
        sys.exit(f"chromium failed on {url} (exit {run.returncode}):\n{run.stderr[-2000:]}")


def label(nb, i):
    """How the reader sees cell i: its "In [n]" prompt (cell numbers count from 0)."""
    count = nb.cells[i].get("execution_count")
    return f"In [{count}]" if count is not None else f"cell {i}"


exporter = HTMLExporter(template_file=str(work / "offline.html.j2"))
failures = []
found_by_notebook = {}
shots_to_take = []  # (url, png, window height)
start = time.monotonic()
for path in notebooks:
    nb = copy.deepcopy(nbformat.read(path, as_version=4))
    found = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for shot, wanted in SHOTS.items():
            if shot not in found and any(wanted(o) for o in cell.get("outputs", [])):
                found[shot] = i
                # In this copy only: the lab template turns a tag into the class
                # "celltag_<tag>", which the screenshot's page picks the cell by.
                cell.metadata.setdefault("tags", []).append(f"screenshot-{shot}")
    found_by_notebook[path] = found
    if "picture" not in found:
        failures.append(f"{path}: no cell with a picture (image/png output)")

    html, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
    remote = sorted(set(m.group(0) for m in REMOTE.finditer(html)))
    if remote:
        failures.append(f"{path}: the page loads something remote: {remote}")
    page = out / f"{path.stem}.html"
    page.write_text(html, encoding="utf-8")
    shots_to_take.append((page.resolve().as_uri(), out / f"{path.stem}-top.png", 2000))

    for shot, i in found.items():
        # Chromium's --screenshot always shows the top of the page (scrolled by an anchor or
        # a script it comes out blank), so the page for this shot hides every earlier cell.
        hide = f".jp-Cell:has(~ .celltag_screenshot-{shot}) {{ display: none; }}"
        variant = work / f"{path.stem}-{shot}.html"
        variant.write_text(html.replace("</head>", f"<style>{hide}</style></head>", 1), "utf-8")
        shots_to_take.append((variant.resolve().as_uri(), out / f"{path.stem}-{shot}.png", 1200))
    shots = "".join(f", {shot} = {label(nb, i)}" for shot, i in found.items())
    print(f"{path}: top{shots}", flush=True)
# Most of a shot is Chromium starting up and waiting for it, so three at a time.
with ThreadPoolExecutor(max_workers=3) as pool:
    for done in [pool.submit(screenshot, *shot) for shot in shots_to_take]:
        done.result()
print(f"nbconvert + Chromium: {len(shots_to_take)} screenshots in {time.monotonic() - start:.0f} s")

if lab:
    # JupyterLab serves copies (it writes checkpoints next to what it opens); settings,
    # workspaces and runtime files go to the scratch folder, so nothing of the user's changes.
    start = time.monotonic()
    root = work / "lab"
    settings = work / "lab-settings" / "@jupyterlab" / "apputils-extension"
    for folder in (root, settings, work / "lab-workspaces", work / "lab-runtime"):
        folder.mkdir(parents=True, exist_ok=True)
    # No "Would you like to get notified about Jupyter news?" box over the notebook.
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    pages = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nbformat.write(nb, root / path.name)
        pages.append((path.name, f"{path.stem}-lab-top.png", 2000))
        if "picture" in found_by_notebook[path]:
            # JupyterLab draws only the cells in view, so the copy starts at the picture.
            nb.cells = nb.cells[found_by_notebook[path]["picture"]:]
            nbformat.write(nb, root / f"{path.stem}-picture.ipynb")
            pages.append((f"{path.stem}-picture.ipynb", f"{path.stem}-lab-picture.png", 1200))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(work / "lab-runtime"))
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root",
            f"--port={port}", "--ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={work / 'lab-settings'}",
            f"--LabApp.workspaces_dir={work / 'lab-workspaces'}",
        ],
        stdout=subprocess.DEVNULL, stderr=open(work / "lab.log", "w"), env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    sys.exit("jupyter lab stopped:\n" + (work / "lab.log").read_text()[-2000:])
                time.sleep(0.5)
        kernels = json.load(urllib.request.urlopen(f"{base}/api/kernelspecs"))["kernelspecs"]
        if "rust" not in kernels:
            print("no Rust kernel registered: a 'Select Kernel' dialog covers the JupyterLab "
                  "screenshots (scripts/install-notebook-kernel.sh registers it)")
        for name, png, height in pages:
            # /doc is JupyterLab's one-notebook view (no file browser beside it).
            screenshot(f"{base}/doc/tree/{name}", out / png, height, wait_ms=30000)
            print(f"JupyterLab: {name} -> {png}", flush=True)
            # The page has closed but its kernel lives on in the server (an evcxr kernel
            # holds about 500 MB): shut it down before the next notebook starts another.
            for session in json.load(urllib.request.urlopen(f"{base}/api/sessions")):
                urllib.request.urlopen(urllib.request.Request(
                    f"{base}/api/sessions/{session['id']}", method="DELETE"))
    finally:
        # Through the API the server shuts its kernels down before it exits; a plain SIGTERM
        # can leave a kernel behind.
        try:
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/shutdown", method="POST"))
            server.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    print(f"JupyterLab: {time.monotonic() - start:.0f} s")

print(f"screenshots in {out}/")
if failures:
    sys.exit("\n".join(failures))
PY
