#!/bin/bash
# lab/summarize fails on broken runs (audit D3): a crash mid-run, a plan that
# does not match the results, an xfail binary killed by a timeout on base, an
# XPASS, a binary exiting 4 with no case, a wildcard expectation, a listed
# expected failure that did not run, a KUnit suite cut short, a KUnit suite
# "not ok" whose cases all passed, an out dir with no TAP file, a label the
# manifest has no rows for, a skip listed only for another kernel or with
# another reason.  Controls: a clean file, a skip whose reason matches its
# entry, and a base file failing only listed cases pass.
. "$(dirname "$0")/tap.sh"
# case NAME: a fresh out dir $tmp/NAME/out; files via tapfile FILE RC <<TAP
tapfile() { mkdir -p "$dir"; cat >"$dir/$1.tap"; [ "$2" = none ] || echo "$2" >"$dir/$1.rc"; }
fresh() { dir=$tmp/$1/out; rm -rf "$tmp/$1"; mkdir -p "$dir"; }
# expect_fail TEXT DESCRIPTION ARGS...: summarize exits 1 and prints TEXT
expect_fail() {
	local text=$1 what=$2 out rc=0; shift 2
	out=$("$repo/lab/summarize" "$@" 2>&1) || rc=$?
	[ $rc = 1 ] && grep -qF -- "$text" <<<"$out"; local r=$?
	[ $r = 0 ] || { echo "# rc $rc, output:"; sed 's/^/#   /' <<<"$out"; }
	ok $r "$what"
}
expect_pass() {
	local what=$1 out rc=0; shift
	out=$("$repo/lab/summarize" "$@" 2>&1) || rc=$?
	[ $rc = 0 ] || { echo "# rc $rc, output:"; sed 's/^/#   /' <<<"$out"; }
	ok $rc "$what"
}
echo "1..19"

fresh crash
tapfile t 139 <<'T'
TAP version 13
1..5
ok 1 a.one
ok 2 a.two
T
expect_fail "plan 1..5 but 2 results" "crash mid-run (plan 1..5, 2 results, rc 139) is a failure naming the plan" patched "$dir"

fresh plan
tapfile t 0 <<'T'
TAP version 13
1..25
ok 1 a.one
ok 2 a.two
T
expect_fail "plan 1..25 but 2 results" "plan/result mismatch with rc 0 is a failure" patched "$dir"

fresh timeout
printf 't: a.listed\n' >"$tmp/list-xfail"
tapfile t 124 <<'T'
TAP version 13
1..3
not ok 1 a.listed
T
expect_fail "exit 124 (timed out)" "an xfail binary killed by timeout (rc 124) on base is a failure" base "$dir" /dev/null "$tmp/list-xfail"

fresh xpass
tapfile t 0 <<'T'
TAP version 13
1..2
ok 1 a.listed
ok 2 a.other
T
expect_fail "XPASS: a.listed" "a listed expected failure that passes is a failure named XPASS" base "$dir" /dev/null "$tmp/list-xfail"

fresh skip4
tapfile kunit 4 <<'T'
KTAP version 1
1..0
T
tapfile t 4 <<'T'
T
expect_fail "exit 4 (KSFT_SKIP) with no case" "a binary exiting 4 with no case is a failure" patched "$dir"

fresh wild
tapfile t 1 <<'T'
TAP version 13
1..1
not ok 1 a.listed
T
printf 't: *\n' >"$tmp/list-wild"
expect_fail "no wildcards" "a wildcard expected failure is refused" base "$dir" /dev/null "$tmp/list-wild"

fresh notrun
tapfile t 0 <<'T'
TAP version 13
1..1
ok 1 a.other
T
expect_fail "listed expected failure did not run: a.listed" "a listed expected failure that did not run is a failure" base "$dir" /dev/null "$tmp/list-xfail"

fresh kunitcut
tapfile kunit 0 <<'T'
KTAP version 1
1..1
    KTAP version 1
    # Subtest: s
    1..3
    ok 1 c1
    ok 2 c2
ok 1 s
T
expect_fail "suite s: plan 1..3 but 2 results" "a KUnit suite with fewer cases than its plan is a failure" patched "$dir"

fresh norc
tapfile t none <<'T'
TAP version 13
1..1
ok 1 a.one
T
expect_fail "no exit status" "a file with no .rc (the run died) is a failure" patched "$dir"

fresh skipunlisted
tapfile t 0 <<'T'
TAP version 13
1..1
ok 1 a.one # SKIP no device
T
expect_fail "unexpected skip: a.one" "an unlisted skip is a failure" patched "$dir" /dev/null

fresh clean
tapfile t 0 <<'T'
TAP version 13
1..2
ok 1 a.one
ok 2 a.two # SKIP listed
T
tapfile kunit 0 <<'T'
KTAP version 1
1..1
    KTAP version 1
    # Subtest: s
    1..2
    ok 1 c1
        ok 1 param
    ok 2 c2
ok 1 s
T
printf '# comment\npatched,debug t: a.two\n' >"$tmp/list-skips"
expect_pass "control: a complete clean run passes" patched "$dir" "$tmp/list-skips"
grep -qx '3 0 1 0' "$tmp/clean/totals"; ok $? "control: totals are 3 passed, 0 failed, 1 skipped (KUnit parameters not counted)"

fresh basexfail
tapfile t 1 <<'T'
TAP version 13
1..2
not ok 1 a.listed
ok 2 a.other
T
expect_pass "control: a base file failing only listed cases (rc 1) passes, as xfail" base "$dir" /dev/null "$tmp/list-xfail"
fresh kunitsuite
tapfile kunit 0 <<'T'
KTAP version 1
1..1
    KTAP version 1
    # Subtest: s
    1..2
    ok 1 c1
    ok 2 c2
not ok 1 s
T
expect_fail "suite s: not ok though all its cases passed" "a KUnit suite marked not ok whose cases all passed is a failure" patched "$dir"

fresh empty
expect_fail "no TAP file" "an out dir with no TAP file is a failure (not 'pass 0 fail 0')" patched "$dir"

fresh norows
tapfile t 0 <<'T'
TAP version 13
1..1
ok 1 a.one
T
printf 'lab lab x 1\n' >"$tmp/manifest"
expect_fail "has no rows for patched" "--manifest with no rows for the label is a failure" --manifest "$tmp/manifest" patched "$dir"

fresh otherkernel
tapfile t 0 <<'T'
TAP version 13
1..1
ok 1 a.two # SKIP listed
T
expect_fail "unexpected skip: a.two" "a skip listed only for other kernels is unexpected on this one" base "$dir" "$tmp/list-skips"

printf 'patched t: a.two # no MSI capability\n' >"$tmp/list-reason"
fresh reason
tapfile t 0 <<'T'
TAP version 13
1..1
ok 1 a.two # SKIP device went away
T
expect_fail "reason 'device went away' does not contain 'no MSI capability'" "a listed skip with another reason than its entry's is unexpected" patched "$dir" "$tmp/list-reason"

fresh reasonok
tapfile t 0 <<'T'
TAP version 13
1..1
ok 1 a.two # SKIP MSI: no MSI capability here
T
expect_pass "control: a listed skip whose reason contains the entry's substring is expected" patched "$dir" "$tmp/list-reason"
exit $bad
