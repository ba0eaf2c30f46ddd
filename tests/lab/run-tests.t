#!/bin/bash
# lab/run-tests (audit D5, issue 12): results of an earlier run never reach
# the summary after a kernel build fails, and that kernel is a named
# failure; the lab's self-test runs first and counts as label "lab" (a
# failing self-test fails the run); LAB_BUILDS=1 adds lab/check-builds as
# label "builds"; the last line stays "N passed, N failed, N skipped";
# base runs stress's badinput table; a failing lab/build-tests is a named
# failure and the summary still comes; a guest that ran another kernel than
# the one just built (uname -v against the build's UTS_VERSION) is a named
# failure; the portability suite runs on patched only, by default
# (LAB_PORTABILITY=0 drops it, =1 adds it to LAB_SUITES), its report is in
# the summary, its skips are counted, not failed, and a failing portability
# case or a missed portability target fails the run; with less free disk than
# LAB_MIN_FREE_GB nothing is set up, built or booted and each label is a
# named failure (the summary still comes); LAB_COMPAT=1 adds the kernels
# compat and base-compat (both trees, compat variant, clients suite, base's
# own expected failures).  Runs a copy of lab/ whose host steps
# are stubs (setup-host, fetch-kernel, make-tree, check-series, build-tests,
# check-patches, self-test, check-builds, build-kernel, run-vm).
. "$(dirname "$0")/tap.sh"
echo "1..22"
root=$tmp/root
mkdir -p "$root/patches" "$root/tests" && cp -a "$repo/lab" "$root/" && cp -a "$repo/tests/smoke" "$root/tests/"
: >"$root/patches/0001-a-change.patch"
stub() { printf '#!/bin/bash\n%s\n' "$2" >"$root/lab/$1"; chmod +x "$root/lab/$1"; }
for s in setup-host fetch-kernel make-tree check-series build-tests; do stub $s 'exit 0'; done
stub check-patches 'o=$LAB_BUILD/vm/series/out; mkdir -p $o; printf "1..1\nok 1 0001-a-change.patch\n" >$o/checkpatch.tap; echo 0 >$o/checkpatch.rc'
stub self-test 'o=$LAB_BUILD/vm/lab/out; mkdir -p $o; printf "1..1\n${SELFTEST_RESULT:-ok} 1 x\n" >$o/x.tap; echo ${SELFTEST_RC:-0} >$o/x.rc; exit ${SELFTEST_RC:-0}'
stub check-builds 'printf "1..1\nok 1 i386\n"'
stub build-kernel 'echo "drivers/vfio/pci/x.c:1: error: boom" >&2; exit 1'
stub run-vm 'touch $LAB_BUILD/run-vm-was-called; exit 0'
printf 'lab lab x 1\nseries series checkpatch 1\nbuilds builds check-builds 1\n' >"$root/lab/expected-results"
mkdir -p "$LAB_BUILD/vm/patched/out"
echo "  patched  stale-test   pass 999  skip   0  fail   0" >"$LAB_BUILD/vm/patched/summary"
echo "999 0 0 0" >"$LAB_BUILD/vm/patched/totals"
printf '1..1\nok 1 stale\n' >"$LAB_BUILD/vm/patched/out/stale.tap"; echo 0 >"$LAB_BUILD/vm/patched/out/stale.rc"

rc=0
LAB_KERNELS=patched LAB_BUILDS=1 timeout 60 "$root/lab/run-tests" >"$tmp/out" 2>&1 || rc=$?
show() { sed 's/^/#   /' "$tmp/out"; }
[ $rc != 0 ] && [ $rc != 124 ]; r=$?; [ $r = 0 ] || show; ok $r "a failed kernel build fails the run (rc $rc)"
grep -q "patched: kernel build failed" "$tmp/out"; ok $? "the kernel whose build failed is named"
! grep -q "999\|stale-test" "$tmp/out" && [ ! -e "$LAB_BUILD/vm/patched/totals" ] && [ ! -e "$LAB_BUILD/vm/patched/out/stale.tap" ]
r=$?; [ $r = 0 ] || show; ok $r "the earlier run's totals, summary and TAP are gone, not counted"
[ ! -e "$LAB_BUILD/run-vm-was-called" ]; ok $? "no VM is booted after a failed build"
last=$(tail -1 "$tmp/out")
[ "$last" = "3 passed, 1 failed, 0 skipped" ]; r=$?; [ $r = 0 ] || { echo "# last line: $last"; show; }
ok $r "last line counts lab, series and builds (3 passed) and the failed build (1 failed)"
grep -qE '^  lab +x ' "$tmp/out" && grep -qE '^  builds +check-builds ' "$tmp/out"; r=$?; [ $r = 0 ] || show
ok $r "the self-test (label lab) and check-builds (label builds) are in the summary"

rc=0
SELFTEST_RESULT="not ok" SELFTEST_RC=1 LAB_KERNELS=" " timeout 60 "$root/lab/run-tests" >"$tmp/out" 2>&1 || rc=$?
[ $rc != 0 ] && [ "$(tail -1 "$tmp/out")" = "1 passed, 1 failed, 0 skipped" ]; r=$?; [ $r = 0 ] || show
ok $r "a failing lab self-test fails the run and is counted"

# The base kernel runs badinput (the stress table alone), not the whole stress suite.
eval "$(sed -n '/^kernel_suites() {/,/^}/p' "$repo/lab/run-tests")"
all_suites="kunit selftests smoke clients stress"
s=$(kernel_suites base); p=$(kernel_suites patched)
[[ " $s " == *" badinput "* && " $s " != *" stress "* && " $p " == *" stress "* ]]; r=$?
[ $r = 0 ] || echo "# base: $s; patched: $p"; ok $r "base runs the badinput suite, patched the whole stress suite"

# failnth (fault injection) runs on debug only, before kmemleak, even when
# LAB_SUITES names it for every kernel.
d=$(kernel_suites debug); s=$(kernel_suites base); p=$(kernel_suites patched)
all_suites="stress failnth"
sd=$(LAB_SUITES="$all_suites" kernel_suites debug); sp=$(LAB_SUITES="$all_suites" kernel_suites patched)
[[ "$d" == *" failnth kmemleak" && " $s $p $sp " != *" failnth "* && "$sd" == *" failnth kmemleak" ]]; r=$?
[ $r = 0 ] || echo "# debug: $d; base: $s; patched: $p; named: debug $sd, patched $sp"
ok $r "failnth runs on debug (before kmemleak), never on patched or base"
all_suites="kunit selftests smoke clients stress"

# lab/build-tests fails: named, the kernels are not run, the summary comes.
stub build-tests 'echo "vfio_pci_x_test.c:1: error: boom" >&2; exit 1'
rm -f "$LAB_BUILD/run-vm-was-called"
rc=0
LAB_KERNELS=patched timeout 60 "$root/lab/run-tests" >"$tmp/out" 2>&1 || rc=$?
{ [ $rc != 0 ] && [ $rc != 124 ] && grep -q "build-tests: lab/build-tests failed" "$tmp/out" &&
  grep -q "patched: not tested (the test binaries did not build)" "$tmp/out" && [ ! -e "$LAB_BUILD/run-vm-was-called" ]; }; r=$?
[ $r = 0 ] || show; ok $r "a failing lab/build-tests is a named failure (rc $rc), no kernel is run"
last=$(tail -1 "$tmp/out")
[ "$last" = "2 passed, 2 failed, 0 skipped" ]; r=$?; [ $r = 0 ] || { echo "# last line: $last"; show; }
ok $r "... and the summary line still comes (lab and series passed; build-tests and patched failed)"
stub build-tests 'exit 0'

# The guest must run the kernel just built: uname -v against UTS_VERSION.
stub build-kernel 'mkdir -p $LAB_BUILD/out-guest/include/generated; echo "#define UTS_VERSION \"#2 SMP PREEMPT_DYNAMIC built now\"" >$LAB_BUILD/out-guest/include/generated/utsversion.h'
stub run-vm 'mkdir -p $LAB_BUILD/vm/patched/out; echo "$FAKE_UNAME" >$LAB_BUILD/vm/patched/out/uname'
rc=0
FAKE_UNAME="#1 SMP PREEMPT_DYNAMIC an old build" LAB_KERNELS=patched LAB_SUITES="kunit selftests" timeout 60 "$root/lab/run-tests" >"$tmp/out" 2>&1 || rc=$?
{ [ $rc != 0 ] && grep -q "patched: the guest ran '#1 SMP PREEMPT_DYNAMIC an old build', not the kernel just built ('#2 SMP PREEMPT_DYNAMIC built now'" "$tmp/out"; }; r=$?
[ $r = 0 ] || show; ok $r "a guest that booted another kernel than the one just built is a named failure (rc $rc)"
FAKE_UNAME="#2 SMP PREEMPT_DYNAMIC built now" LAB_KERNELS=patched LAB_SUITES="kunit selftests" timeout 60 "$root/lab/run-tests" >"$tmp/out" 2>&1
! grep -q "not the kernel just built" "$tmp/out" && tail -1 "$tmp/out" | grep -qE '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$'; r=$?; [ $r = 0 ] || show
ok $r "control: the kernel just built (same UTS_VERSION) is not flagged"

# LAB_PORTABILITY=1: the portability suite, on patched only.
d=$(bash -c "$(declare -f kernel_suites); all_suites='kunit stress portability'; kernel_suites debug; kernel_suites base; kernel_suites patched")
[ "$(sed -n 3p <<<"$d")" = "kunit stress portability" ] && ! head -2 <<<"$d" | grep -q portability; r=$?
[ $r = 0 ] || sed 's/^/#   /' <<<"$d"; ok $r "the portability suite runs on patched, never on debug or base"
stub run-vm 'o=$LAB_BUILD/vm/patched/out; mkdir -p $o; echo "#2 SMP PREEMPT_DYNAMIC built now" >$o/uname; echo "$*" >$LAB_BUILD/vm/patched/cmd
printf "1..3\nok 1 a # SKIP no ivshmem device given\n${PORT_C:-ok 2 c}\n${PORT_RESULT:-ok} 3 b\n" >"$o/portability-vfio_x_test@virtio_net.tap"; echo ${PORT_RC:-0} >"$o/portability-vfio_x_test@virtio_net.rc"'
echo "patched portability portability-vfio_x_test@virtio_net 3" >>"$root/lab/expected-results"
rc=0
LAB_KERNELS=patched LAB_SUITES=kunit LAB_PORTABILITY=1 timeout 60 "$root/lab/run-tests" >"$tmp/out" 2>&1 || rc=$?
{ [ $rc = 0 ] && grep -q 'run-suite $LAB_OUT kunit portability$' "$LAB_BUILD/vm/patched/cmd" &&
  [ "$(tail -1 "$tmp/out")" = "4 passed, 0 failed, 1 skipped" ]; }; r=$?
[ $r = 0 ] || { echo "# rc $rc, cmd: $(cat "$LAB_BUILD/vm/patched/cmd")"; show; }
ok $r "LAB_PORTABILITY=1 runs the portability suite on patched; its unlisted skip is counted, not failed"
grep -qE '^ +vfio_x_test +virtio_net +3 +2 +2 +1 +0 ' "$tmp/out" && grep -q "target virtio-net alone: >= 60% of all cases run: 2/3 ran (66.7%): met" "$tmp/out"
r=$?; [ $r = 0 ] || show; ok $r "the summary has the portability report: its row and the met target"
rc=0
PORT_C="ok 2 c # SKIP no ivshmem device given" LAB_KERNELS=patched LAB_SUITES=kunit LAB_PORTABILITY=1 timeout 60 "$root/lab/run-tests" >"$tmp/out" 2>&1 || rc=$?
{ [ $rc != 0 ] && grep -q "patched: portability target virtio-net alone: >= 60% of all cases run: 1/3 ran (33.3%): MISSED" "$tmp/out" &&
  [ "$(tail -1 "$tmp/out")" = "3 passed, 1 failed, 2 skipped" ]; }; r=$?
[ $r = 0 ] || { echo "# rc $rc"; show; }; ok $r "a missed portability target (1 of 3 cases ran on virtio-net alone) fails the run, named (rc $rc)"
rc=0
LAB_KERNELS=patched timeout 60 "$root/lab/run-tests" >/dev/null 2>&1 || rc=$?
c1=$(cat "$LAB_BUILD/vm/patched/cmd")
LAB_PORTABILITY=0 LAB_KERNELS=patched timeout 60 "$root/lab/run-tests" >/dev/null 2>&1
c2=$(cat "$LAB_BUILD/vm/patched/cmd")
[[ " $c1 " == *" portability "* && " $c2 " != *" portability "* && "$c2" == *selftests* ]]; r=$?
[ $r = 0 ] || echo "# default: $c1; LAB_PORTABILITY=0: $c2"; ok $r "the portability suite is in the default run; LAB_PORTABILITY=0 drops it"
rc=0
PORT_RESULT="not ok" PORT_RC=1 LAB_KERNELS=patched LAB_SUITES=kunit LAB_PORTABILITY=1 timeout 60 "$root/lab/run-tests" >"$tmp/out" 2>&1 || rc=$?
{ [ $rc != 0 ] && [ "$(tail -1 "$tmp/out")" = "3 passed, 1 failed, 1 skipped" ]; }; r=$?
[ $r = 0 ] || { echo "# rc $rc"; show; }; ok $r "a failing portability case fails the run like any other (rc $rc)"

# LAB_COMPAT=1: both trees built as the compat variant, named in the summary.
stub build-kernel 'echo "$*" >>$LAB_BUILD/built; exit 1'
rm -f "$LAB_BUILD/built"
rc=0
LAB_COMPAT=1 LAB_KERNELS=patched timeout 60 "$root/lab/run-tests" >"$tmp/out" 2>&1 || rc=$?
{ [ $rc != 0 ] && grep -qx "guest $LAB_BUILD/linux" "$LAB_BUILD/built" && grep -qx "compat $LAB_BUILD/linux" "$LAB_BUILD/built" &&
  grep -qx "compat $LAB_BUILD/base/linux" "$LAB_BUILD/built" && [ "$(wc -l <"$LAB_BUILD/built")" = 3 ] &&
  grep -q "^  compat: kernel build failed (lab/build-kernel compat " "$tmp/out" &&
  grep -q "^  base-compat: kernel build failed (lab/build-kernel compat " "$tmp/out"; }; r=$?
[ $r = 0 ] || { echo "# rc $rc; built:"; sed 's/^/# /' "$LAB_BUILD/built"; show; }
ok $r "LAB_COMPAT=1 builds the patched and the base tree as the compat variant, each a named kernel"
rm -f "$LAB_BUILD/built"
LAB_KERNELS=patched timeout 60 "$root/lab/run-tests" >/dev/null 2>&1
[ "$(cat "$LAB_BUILD/built")" = "guest $LAB_BUILD/linux" ]; r=$?
[ $r = 0 ] || { echo "# built:"; sed 's/^/# /' "$LAB_BUILD/built"; }
c=$(LAB_SUITES= all_suites="kunit selftests smoke clients stress portability" kernel_suites base-compat)
[ $r = 0 ] && [ "$c" = clients ]; r=$?
ok $r "without LAB_COMPAT no compat kernel is built; the compat kernels run the clients suite ($c)"

stub setup-host 'touch $LAB_BUILD/setup-host-was-called'
stub run-vm 'touch $LAB_BUILD/run-vm-was-called'
rm -f "$LAB_BUILD/run-vm-was-called"
rc=0
LAB_MIN_FREE_GB=999999999 LAB_KERNELS=patched LAB_SUITES=kunit timeout 60 "$root/lab/run-tests" >"$tmp/out" 2>&1 || rc=$?
{ [ $rc != 0 ] && [ "$(tail -1 "$tmp/out")" = "1 passed, 3 failed, 0 skipped" ] &&
  grep -q "disk: only [0-9]* GiB free in .*, a run needs 999999999 GiB" "$tmp/out" &&
  grep -q "patched: not tested (no disk space)" "$tmp/out" &&
  [ ! -e "$LAB_BUILD/setup-host-was-called" ] && [ ! -e "$LAB_BUILD/run-vm-was-called" ]; }; r=$?
[ $r = 0 ] || { echo "# rc $rc"; show; }
ok $r "too little free disk: nothing set up or booted, the disk and each label are named failures (rc $rc)"
exit $bad
