#!/bin/bash
# lab/self-test: a test file that hangs is killed at the per-file timeout with
# everything it forked, recorded as rc 124 and counted as a failure; a test
# that fails makes lab/self-test exit non-zero; a good one passes.
. "$(dirname "$0")/tap.sh"
echo "1..5"
printf '#!/bin/bash\necho 1..1\necho ok 1 fine\n' >"$tmp/good.t"
printf '#!/bin/bash\necho 1..1\necho not ok 1 broken\nexit 1\n' >"$tmp/failing.t"
printf '#!/bin/bash\necho 1..2\necho ok 1 started\n(exec -a lab-selftest-orphan-%s sleep 300) &\nsleep 300\n' "$$" >"$tmp/hang.t"
start=$(date +%s) rc=0
LAB_SELFTEST_TIMEOUT=2 "$repo/lab/self-test" "$tmp/good.t" "$tmp/hang.t" >"$tmp/log" 2>&1 || rc=$?
took=$(( $(date +%s) - start ))
out=$LAB_BUILD/vm/lab/out
[ $rc != 0 ] && [ "$(cat "$out/hang.rc" 2>/dev/null)" = 124 ] && [ $took -lt 30 ]; r=$?
[ $r = 0 ] || { echo "# rc $rc after ${took}s"; sed 's/^/#   /' "$tmp/log"; }
ok $r "a hanging test is stopped at the timeout (rc 124, ${took}s) and self-test fails"
sleep 0.5
! pgrep -f "lab-selftest-orphan-$$" >/dev/null; r=$?
[ $r = 0 ] || pkill -f "lab-selftest-orphan-$$"   # only this test's own orphan
ok $r "what the hanging test forked is killed with it (process group)"
"$repo/lab/summarize" lab "$out" >"$tmp/sum" 2>&1; [ $? = 1 ] && grep -q "hang .*exit 124 (timed out)" "$tmp/sum"; r=$?
[ $r = 0 ] || sed 's/^/#   /' "$tmp/sum"; ok $r "lab/summarize counts the timed-out test as a failure"
rc=0; "$repo/lab/self-test" "$tmp/good.t" "$tmp/failing.t" >"$tmp/log" 2>&1 || rc=$?
[ $rc != 0 ] && [ "$(cat "$out/failing.rc")" = 1 ]; ok $? "a failing test makes lab/self-test exit non-zero"
rc=0; "$repo/lab/self-test" "$tmp/good.t" >"$tmp/log" 2>&1 || rc=$?
[ $rc = 0 ] && grep -qx 'ok 1 fine' "$out/good.tap" && [ ! -e "$out/failing.tap" ]; r=$?
[ $r = 0 ] || sed 's/^/#   /' "$tmp/log"; ok $r "control: a passing test passes, and old results are cleared"
exit $bad
