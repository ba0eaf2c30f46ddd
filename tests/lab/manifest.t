#!/bin/bash
# lab/expected-results enforced by lab/summarize --manifest: a TAP file the
# manifest lists that did not appear, a shrunken case count, a file the
# manifest does not list, a whole-file skip not listed as "skip" all fail;
# --suites limits what is required; lab/update-manifest regenerates it from
# a run and leaves out a file that crashed, prints every changed row, and
# refuses to drop the row of a file that vanished unless --allow-remove.
. "$(dirname "$0")/tap.sh"
run() { out=$("$repo/lab/summarize" "$@" 2>&1); rc=$?; }
show() { echo "# rc $rc:"; sed 's/^/#   /' <<<"$out"; }
echo "1..13"

d=$LAB_BUILD/vm/patched/out
mkdir -p "$d"
tap() { { echo "1..$2"; for i in $(seq "$2"); do echo "ok $i c$i"; done; } >"$d/$1.tap"; echo 0 >"$d/$1.rc"; }
tap vfio_a_test 3
tap stress-badinput 2
printf '1..0\n' >"$d/kunit.tap"; echo 4 >"$d/kunit.rc"
m=$tmp/expected-results
cat >"$m" <<'M'
# test manifest
patched  selftests  vfio_a_test      3
patched  selftests  vfio_b_test      5
patched  stress     stress-badinput  2
patched  kunit      kunit            13
base     kunit      kunit            skip
M

run --manifest "$m" patched "$d"
{ [ $rc = 1 ] && grep -q "MISSING:.*vfio_b_test" <<<"$out"; }; r=$?; [ $r = 0 ] || show; ok $r "a listed binary that did not run is a named failure (MISSING)"
grep -q "kunit .*0 cases, expected-results says 13" <<<"$out" || grep -q "kunit.*exit 4" <<<"$out"; ok $? "KUnit required on a kernel with the series: no case is a failure"

tap vfio_b_test 4
run --manifest "$m" patched "$d"
{ [ $rc = 1 ] && grep -q "vfio_b_test .*4 cases, expected-results says 5" <<<"$out"; }; r=$?; [ $r = 0 ] || show; ok $r "a shrunken case count (5 -> 4) is a failure"

tap vfio_c_test 1
run --manifest "$m" --suites "selftests stress" patched "$d"
{ [ $rc = 1 ] && grep -q "vfio_c_test .*not in" <<<"$out"; }; r=$?; [ $r = 0 ] || show; ok $r "a TAP file the manifest does not list is a failure"
rm "$d/vfio_c_test.tap" "$d/vfio_c_test.rc"

tap vfio_b_test 5
run --manifest "$m" --suites "selftests stress" patched "$d.none"
{ [ $rc = 1 ] && grep -q "no such directory" <<<"$out" && grep -q "MISSING:.*vfio_a_test" <<<"$out"; }; r=$?; [ $r = 0 ] || show; ok $r "no output directory at all (nothing ran): every listed file is missing"

rm "$d/kunit.tap" "$d/kunit.rc"
run --manifest "$m" --suites "selftests stress" patched "$d"
[ $rc = 0 ] || show; ok $rc "control: all listed files with their counts pass; --suites leaves out kunit"

b=$LAB_BUILD/vm/base/out
mkdir -p "$b"; printf '1..0\n' >"$b/kunit.tap"; echo 4 >"$b/kunit.rc"
run --manifest "$m" --suites kunit base "$b"
[ $rc = 0 ] || show; ok $rc "control: a whole-file skip listed as 'skip' for that kernel passes"
run --manifest "$m" --suites kunit debug "$b"
{ [ $rc = 1 ] && grep -q "kunit .*exit 4 (KSFT_SKIP) with no case" <<<"$out"; }; r=$?; [ $r = 0 ] || show; ok $r "the same whole-file skip on a kernel whose manifest does not say skip fails"

# Regenerate: the run has vfio_b_test with 4 cases now, and a crashed file.
tap vfio_b_test 4
printf '1..3\nok 1 x\n' >"$d/stress-load.tap"; echo 139 >"$d/stress-load.rc"
echo "selftests stress" >"$LAB_BUILD/vm/patched/suites"
LAB_MANIFEST=$m "$repo/lab/update-manifest" patched >"$tmp/upd.log" 2>&1; urc=$?
grep -qE '^patched +selftests +vfio_b_test +4$' "$m" && grep -qE '^patched +kunit +kunit +13$' "$m" &&
	grep -qE '^base +kunit +kunit +skip$' "$m" && ! grep -q stress-load "$m" && grep -q '^# test manifest' "$m"
r=$?; [ $r = 0 ] || { sed 's/^/#   /' "$m" "$tmp/upd.log"; }
ok $r "lab/update-manifest rewrites the suites that ran (4 cases), keeps the rest and the header, leaves out a crashed file"
{ [ $urc = 0 ] && grep -q "changed: patched selftests vfio_b_test 5 -> selftests 4" "$tmp/upd.log"; }; r=$?
[ $r = 0 ] || { echo "# rc $urc"; sed 's/^/#   /' "$tmp/upd.log"; }; ok $r "lab/update-manifest prints the changed row (5 -> 4)"
rm "$d/stress-load.tap" "$d/stress-load.rc"
run --manifest "$m" --suites "selftests stress" patched "$d"
[ $rc = 0 ] || show; ok $rc "the regenerated manifest passes the run it came from"

# A file vanished: its row is not dropped silently.
mv "$d/vfio_a_test.tap" "$tmp/"; mv "$d/vfio_a_test.rc" "$tmp/"
cp "$m" "$tmp/m.before"
LAB_MANIFEST=$m "$repo/lab/update-manifest" patched >"$tmp/upd.log" 2>&1; urc=$?
{ [ $urc != 0 ] && cmp -s "$m" "$tmp/m.before" && grep -q "removed: patched selftests vfio_a_test 3" "$tmp/upd.log"; }; r=$?
[ $r = 0 ] || { echo "# rc $urc"; sed 's/^/#   /' "$tmp/upd.log" "$m"; }
ok $r "a row whose file vanished: update-manifest refuses (rc $urc), names it, leaves the manifest as it was"
LAB_MANIFEST=$m "$repo/lab/update-manifest" --allow-remove patched >"$tmp/upd.log" 2>&1; urc=$?
{ [ $urc = 0 ] && ! grep -q vfio_a_test "$m" && grep -q "removed: patched selftests vfio_a_test 3" "$tmp/upd.log"; }; r=$?
[ $r = 0 ] || { echo "# rc $urc"; sed 's/^/#   /' "$tmp/upd.log" "$m"; }
ok $r "with --allow-remove the row goes, and is printed"
exit $bad
