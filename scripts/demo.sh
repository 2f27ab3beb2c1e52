#!/bin/bash
# strata — set up, build bhyverun and boot the built-in demo guest (or pass
# bhyverun options, e.g. ./scripts/demo.sh -c 4).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
bazel build --noshow_progress --ui_event_filters=-info //frontends/bhyverun:bhyverun
exec bazel-bin/frontends/bhyverun/bhyverun "$@"
