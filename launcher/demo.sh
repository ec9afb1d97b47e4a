#!/usr/bin/env bash
# launcher/demo.sh BUILD_DIR - the demo that `make demo` runs.
set -euo pipefail
BUILD=${1:-build}
"$BUILD/dure" --version
