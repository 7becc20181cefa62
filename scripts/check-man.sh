#!/usr/bin/env bash
# Fails when man/ no longer matches what the commands generate (run scripts/update-man.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
swift package --allow-writing-to-directory "$out" generate-manual --multi-page --date 2026-11-27 --authors "the wsctl developers" --output-directory "$out" >/dev/null
gen="$out"; ls "$out"/*.1 >/dev/null 2>&1 || gen=$(dirname "$(ls "$out"/*/*.1 | head -1)")
if ! diff -ru "$gen" man >/tmp/wsctl-man.diff 2>&1; then
    echo "man pages are out of date with the commands; run scripts/update-man.sh" >&2
    head -40 /tmp/wsctl-man.diff >&2
    exit 1
fi
echo "man pages: current ($(ls man | wc -l) pages)"
