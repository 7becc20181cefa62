#!/usr/bin/env bash
# The whole test suite: set up, check the man pages are current, then swift test (last, so its
# summary line closes the output).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/check-man.sh
swift test 2>&1
