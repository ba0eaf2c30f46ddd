#!/bin/bash
# lab/guest/kunit-results: KUnit read from debugfs (<suite>/results) and
# checked against the kernel log; a disagreement, or no suite at all (rc 4,
# which lab/summarize fails unless the manifest says "skip"), are caught.
. "$(dirname "$0")/tap.sh"
echo "1..5"
kr=$repo/lab/guest/kunit-results
dbg=$tmp/debugfs/kunit
mkdir -p "$dbg/s1" "$tmp/out"
# What debugfs_print_results() writes for a suite.
printf 'KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: s1\n    1..2\n    ok 1 c1\n    ok 2 c2\n# s1: pass:2 fail:0 skip:0 total:2\nok 1 s1\n' >"$dbg/s1/results"
dmesg_ok='[    1.000000] KTAP version 1
[    1.000001] 1..1
[    1.000002]     KTAP version 1
[    1.000003]     # Subtest: s1
[    1.000004]     1..2
[    1.000005]     ok 1 c1
[    1.000006]     ok 2 c2
[    1.000007] ok 1 s1
[    1.100000] virtio_net virtio0: something else'
"$kr" "$tmp/out" "$dbg" <<<"$dmesg_ok"
grep -qx 0 "$tmp/out/kunit.rc" && grep -q '^ok 1 ' "$tmp/out/kunit-dmesg.tap" &&
	"$repo/lab/summarize" patched "$tmp/out" >"$tmp/sum" 2>&1 && grep -qx '3 0 0 0' "$tmp/totals"
r=$?; [ $r = 0 ] || sed 's/^/#   /' "$tmp/out/"*.tap "$tmp/sum"; ok $r "control: debugfs and dmesg agree: 2 cases + the agreement case pass"

"$kr" "$tmp/out" "$dbg" <<<"$(grep -v 'ok 2 c2' <<<"$dmesg_ok")"
grep -q '^not ok 1 ' "$tmp/out/kunit-dmesg.tap" && ! "$repo/lab/summarize" patched "$tmp/out" >/dev/null 2>&1
ok $? "a case missing from the kernel log (rotated out) is a failure"

sed -i 's/    ok 2 c2/    not ok 2 c2/' "$dbg/s1/results"
"$kr" "$tmp/out" "$dbg" <<<"$dmesg_ok"
grep -q '^not ok 1 ' "$tmp/out/kunit-dmesg.tap"; ok $? "debugfs says a case failed, dmesg says it passed: disagreement is a failure"

"$kr" "$tmp/out" "$tmp/nonexistent" <<<"$dmesg_ok"
grep -qx 4 "$tmp/out/kunit.rc" && ! "$repo/lab/summarize" patched "$tmp/out" >/dev/null 2>&1
ok $? "no KUnit suite in debugfs (no KUNIT_DEBUGFS, suite gone): rc 4 and a failure on a kernel with the series"

"$kr" "$tmp/out" "$tmp/nonexistent" </dev/null
printf 'base kunit kunit skip\nbase kunit kunit-dmesg 1\n' >"$tmp/m"
"$repo/lab/summarize" --manifest "$tmp/m" base "$tmp/out" >"$tmp/sum" 2>&1
r=$?; [ $r = 0 ] || sed 's/^/#   /' "$tmp/sum"; ok $r "control: no suite on base, where the manifest says skip, passes"
exit $bad
