#!/usr/bin/env bash
# The playground in a real browser: start the server on a free port, wait for the line that
# says it is ready, run .ci/playground_browser.py against it, and stop the server (also when
# the test fails). The screenshot goes to $1 (default target/playground.png; the README's is
# docs/images/playground.png, made the same way).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/playground.png}"

cargo build --release --example playground --example check_pngs
bin="${CARGO_TARGET_DIR:-target}/release/examples"
log=$(mktemp)
"$bin/playground" --port 0 --no-progress >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT

# Training at start takes seconds; allow two minutes on a busy machine.
url=""
for _ in $(seq 600); do
    url=$(grep -o 'http://[^ ]*' "$log" || true)
    [ -n "$url" ] && break
    if ! kill -0 "$server" 2>/dev/null; then
        cat "$log"
        echo "error: the playground exited before it was ready" >&2
        exit 1
    fi
    sleep 0.2
done
cat "$log"
if [ -z "$url" ]; then
    echo "error: the playground was not ready after two minutes" >&2
    exit 1
fi

.ci/venv/bin/python .ci/playground_browser.py --url "$url" --screenshot "$out"
"$bin/check_pngs" "$out"
