# strata — the nested testbeds' run mode (scripts/nested.sh MODE --run
# ARGS...): runs bhyverun once with ARGS (one per line in /run_args)
# against the L1's /dev/kvm, e.g. the demo on a host that has no KVM of
# its own (scripts/demo.sh). Its output follows as `nested-run: | ` lines,
# then `nested-run: status N`. Sourced by tests/nested/init.sh.
set --
while IFS= read -r a; do set -- "$@" "$a"; done < /run_args
echo "run" > /tmp/case
/bin/bhyverun "$@" </dev/null >/tmp/run.out 2>&1
rc=$?
sed 's/^/nested-run: | /' /tmp/run.out
echo "nested-run: status $rc"
