#!/bin/bash
# strata — build bhyverun in the default (normal, amd64) configuration and
# install it at out/bin/bhyverun: the one stable path to the VMM, whatever
# configuration Bazel built last (bazel-bin/ follows the last build, e.g. the
# ASan one after ./scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# -c opt: the VMM as shipped (the -O0 fastbuild made every exit measurably
# slower; tests keep building fastbuild).
bazel build -c opt --noshow_progress --show_result=0 --ui_event_filters=-info,-debug \
  //frontends/bhyverun:bhyverun
bin="$(bazel info -c opt --ui_event_filters=-info,-debug bazel-bin 2>/dev/null)/frontends/bhyverun/bhyverun"
mkdir -p out/bin
install -m 0755 "$bin" out/bin/bhyverun.new
mv -f out/bin/bhyverun.new out/bin/bhyverun
