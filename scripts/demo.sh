#!/bin/bash
# strata — set up, build bhyverun (out/bin/bhyverun) and boot the built-in
# demo guest (or pass bhyverun options, e.g. ./scripts/demo.sh -c 4).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
exec out/bin/bhyverun "$@"
