#!/usr/bin/env bash
# The whole test suite: set up, check the man pages are current, run Autobahn|Testsuite's quick
# set against `wsctl serve`, then swift test (last, so that its summary line closes the output).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/check-man.sh
# The conformance suite is a tool beside the project (../shared/tools/autobahn); the full set
# (517 cases, ~10 min on a debug build) is `scripts/autobahn.sh full`.
if [ -d ../shared/tools/autobahn ] || [ -n "${AUTOBAHN_TOOL:-}" ]; then
    WSCTL_CONFIG=debug scripts/autobahn.sh quick
else
    echo "autobahn: skipped, ../shared/tools/autobahn is not beside this checkout"
fi
swift test 2>&1
