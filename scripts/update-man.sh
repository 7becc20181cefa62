#!/usr/bin/env bash
# Regenerates man/ from the commands with swift-argument-parser's generate-manual plugin.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
swift package --allow-writing-to-directory "$out" generate-manual --multi-page --date 2026-11-27 --authors "the wsctl developers" --output-directory "$out" >/dev/null
mkdir -p man
rm -f man/*.1
cp "$out"/*.1 man/ 2>/dev/null || cp "$out"/*/*.1 man/
ls man
