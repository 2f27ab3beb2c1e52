#!/bin/bash
# Runs bringup_bench with the smp guest: bringup.sh BENCH GUEST [ARGS...]
set -euo pipefail
bench=$1 guest=$2
shift 2
exec "$bench" --guest "$guest" "$@"
