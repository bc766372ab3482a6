#!/usr/bin/env bash
# Run the chapter 7 example quickly into a temporary folder, read the table of files it
# prints at the end, and check that every listed file exists and decodes (PNG pictures,
# the safetensors parameters). Also checks that a bad flag and an unwritable --out fail
# with a one-line error and a non-zero exit, not a panic.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cargo build --release --example chapter7 --example check_pngs
# Run the binaries directly: `cargo run` could wait for other builds' lock and spoil the timing.
bin="${CARGO_TARGET_DIR:-target}/release/examples"
start=$(date +%s)
"$bin/chapter7" --quick --out "$tmp/out" | tee "$tmp/stdout.txt"
echo "chapter7 --quick took $(( $(date +%s) - start )) s"

# The table sits between two marker lines, one file per line: "  <file>  <what it shows>".
files=$(sed -n '/^=== files written ===$/,/^=== end of files ===$/p' "$tmp/stdout.txt" \
    | sed '1d;$d' | awk '{print $1}')
if [ -z "$files" ]; then
    echo "error: no table of files found in the output of chapter7" >&2
    exit 1
fi
count=$(echo "$files" | wc -l)
echo "the table lists $count files"

# The manifest written beside the pictures must list the same files.
if ! diff <(echo "$files") <(cut -f1 "$tmp/out/files.tsv"); then
    echo "error: files.tsv differs from the printed table" >&2
    exit 1
fi

paths=()
while IFS= read -r f; do paths+=("$tmp/out/$f"); done <<< "$files"
"$bin/check_pngs" "${paths[@]}"

# Bad input: one-line error, non-zero exit, no panic.
expect_failure() {
    local what=$1; shift
    set +e
    "$bin/chapter7" "$@" >/dev/null 2>"$tmp/err.txt"
    local status=$?
    set -e
    if [ "$status" -eq 0 ] || grep -q "panicked" "$tmp/err.txt" || [ "$(wc -l < "$tmp/err.txt")" -ne 1 ]; then
        echo "error: $what: expected a one-line error and a non-zero exit, got status $status:" >&2
        cat "$tmp/err.txt" >&2
        exit 1
    fi
    echo "ok   $what -> exit $status: $(cat "$tmp/err.txt")"
}
expect_failure "unknown flag" --no-such-flag
expect_failure "bad --dataset" --dataset cifar
touch "$tmp/a-file"
expect_failure "unwritable --out" --quick --out "$tmp/a-file/sub"

echo "check_chapter7: all $count files present and decodable"
