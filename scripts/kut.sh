#!/bin/bash
# strata — run kvm-unit-tests under bhyverun:
#   scripts/kut.sh KUT_TREE [--arch x86|arm64] [--json FILE] [--timeout S] [-v] [TEST...]
# KUT_TREE is a kvm-unit-tests tree built outside strata (./configure &&
# make); strata neither vendors nor builds it. bhyverun is out/bin/bhyverun
# (scripts/build.sh) unless --bhyverun or $BHYVERUN says otherwise. See
# scripts/kut.py for how unittests.cfg is read and options are translated.
exec python3 "$(dirname "$0")/kut.py" "$@"
