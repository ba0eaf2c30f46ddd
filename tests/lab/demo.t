#!/bin/bash
# lab/demo must fail when the demo fails (issue 12, defect 7), not only when
# the VM does. lab/demo and lab/lib.sh run from a scratch copy of the lab in
# which every other script is a stub: run-vm writes the serial log and
# demo.rc the way lab/guest/run-suite does (FAKE_VM_RC, FAKE_DEMO_RC, "none"
# for no demo.rc), build-kernel fails when FAKE_BUILD=fail.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export LAB_BUILD=$tmp/build LAB_CACHE=$tmp/cache
fake=$tmp/root
mkdir -p "$fake/lab" "$fake/tests/smoke" "$LAB_BUILD/linux/.git"
cp "$root/lab/demo" "$root/lab/lib.sh" "$fake/lab/"
for s in setup-host fetch-kernel make-tree build-tests; do printf '#!/bin/sh\nexit 0\n' >"$fake/lab/$s"; done
printf '#!/bin/sh\n[ "${FAKE_BUILD:-}" != fail ] || { echo "build-kernel: error (stub)" >&2; exit 1; }\n' >"$fake/lab/build-kernel"
printf 'import sys\n' >"$fake/tests/smoke/ivshmem_pattern.py"
cat >"$fake/lab/run-vm" <<'STUB'
#!/bin/bash
touch "$LAB_BUILD/run-vm.called"
mkdir -p "$LAB_BUILD/vm/demo/out" "$LAB_BUILD/logs"
printf '=== demo: bar_mmap_demo\ndemo output\n=== demo: exit %s\n' "$FAKE_DEMO_RC" >"$LAB_BUILD/logs/demo.log"
[ "$FAKE_DEMO_RC" = none ] || echo "$FAKE_DEMO_RC" >"$LAB_BUILD/vm/demo/out/demo.rc"
exit "$FAKE_VM_RC"
STUB
chmod +x "$fake/lab"/*
n=0 failed=0
t() { n=$((n + 1)); if "${@:2}"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=1; fi; }
demo() {	# demo VM_RC DEMO_RC [BUILD]
	rc=0
	rm -rf "$LAB_BUILD/vm/demo" "$LAB_BUILD/run-vm.called"
	FAKE_VM_RC=$1 FAKE_DEMO_RC=$2 FAKE_BUILD=${3:-} timeout 60 "$fake/lab/demo" >"$tmp/out" 2>"$tmp/err" || rc=$?
	sed 's/^/# /' "$tmp/err" | grep -v '^# \[' | tail -2
}

echo 1..5
demo 0 1
t "the demo program exits 1 in a clean VM run: lab/demo fails (rc $rc) naming the log" \
	eval '[ $rc != 0 ] && grep -q "demo.log" "$tmp/err"'
demo 0 none
t "no demo.rc (the demo never finished): lab/demo fails (rc $rc)" [ $rc != 0 ]
demo 3 0
t "the VM run fails (run-vm rc 3): lab/demo fails (rc $rc)" [ $rc != 0 ]
demo 0 0 fail
t "the kernel build fails: lab/demo fails (rc $rc) and boots nothing" \
	eval '[ $rc != 0 ] && [ ! -e "$LAB_BUILD/run-vm.called" ]'
demo 0 0
t "the demo passes: lab/demo exits 0 (rc $rc) and shows its output" \
	eval '[ $rc = 0 ] && grep -q "demo output" "$tmp/out"'
exit $failed
