#!/bin/bash
# lab/portability (issue 14's portability measurement) and lab/summarize on
# the portability suite's files: the report counts cases, ran (passed +
# failed), passed, skipped and failed per test and device, takes a crashed
# file's cases from its plan and marks it CRASHED, totals each device,
# reports each target as met or MISSED with its numbers, groups the skip
# reasons per device, exits 3 when a target is MISSED and 0 when all are
# met, 1 when there is nothing to report;
# lab/summarize takes a portability file's unlisted skips as they come but
# fails its failing case and its crash like any other file's (and still
# fails the same unlisted skip in a file of another suite); the manifest
# writer files them under the suite "portability".
. "$(dirname "$0")/tap.sh"
echo "1..11"
d=$LAB_BUILD/vm/patched/out
mkdir -p "$d"
tapfile() { cat >"$d/$1.tap"; echo "$2" >"$d/$1.rc"; }
# ivshmem: 10 cases, 9 run (one fails); virtio_net: 10 cases, 6 run.
{ echo 1..10; for i in $(seq 8); do echo "ok $i a.c$i"; done
  echo "not ok 9 a.c9"; echo "ok 10 a.c10 # SKIP VFIO_SELFTESTS_IVSHMEM_SEED is not set"; } | tapfile portability-vfio_a_test@ivshmem 1
{ echo 1..10; for i in $(seq 6); do echo "ok $i a.c$i"; done
  for i in 7 8 9; do echo "ok $i a.c$i # SKIP no ivshmem device given"; done
  echo "ok 10 a.c10 # SKIP VFIO_SELFTESTS_IVSHMEM_SEED is not set"; } | tapfile portability-vfio_a_test@virtio_net 0
# A crash after 2 of 5 cases on virtio_net.
printf '1..5\nok 1 b.one\nok 2 b.two # SKIP no ivshmem device given\n' | tapfile portability-vfio_b_test@virtio_net 139
run() { out=$("$repo/lab/portability" "$@" 2>&1); rc=$?; }
show() { echo "# rc $rc:"; sed 's/^/#   /' <<<"$out"; }

run "$d"
{ [ $rc = 3 ] && grep -qE '^  vfio_a_test +ivshmem +10 +9 +8 +1 +1 +90\.0%$' <<<"$out" &&
  grep -qE '^  vfio_a_test +virtio_net +10 +6 +6 +4 +0 +60\.0%$' <<<"$out"; }; r=$?
[ $r = 0 ] || show; ok $r "per test and device: cases, ran (passed + failed), passed, skipped, failed, share that ran"
grep -qE '^  vfio_b_test +virtio_net +5 +1 +1 +1 +0 +20\.0%  CRASHED: exit 139 \(killed by signal 11\); plan 1\.\.5 but 2 results' <<<"$out"; r=$?
[ $r = 0 ] || show; ok $r "a crashed file counts its plan's cases (5), not its results (2), and is marked CRASHED"
grep -qE '^  all +virtio_net +15 +7 +7 +5 +0 +46\.7%$' <<<"$out" && grep -qE '^  all +ivshmem +10 +9 ' <<<"$out"; r=$?
[ $r = 0 ] || show; ok $r "each device's totals"
grep -qF "target virtio-net alone: >= 60% of all cases run: 7/15 ran (46.7%): MISSED" <<<"$out" &&
	grep -qF "target ivshmem alone without the seed: >= 90% of all cases run: 9/10 ran (90.0%): met" <<<"$out"; r=$?
[ $r = 0 ] || show; ok $r "targets: 46.7% of 60% MISSED, exactly 90% of 90% met, each with its numbers; a MISSED target is exit 3"
grep -qE '^    virtio_net +4: no ivshmem device given \[vfio_a_test 3, vfio_b_test 1\]$' <<<"$out" &&
	grep -qE '^    ivshmem +1: VFIO_SELFTESTS_IVSHMEM_SEED is not set \[vfio_a_test 1\]$' <<<"$out"; r=$?
[ $r = 0 ] || show; ok $r "skip reasons grouped per device, with their count per test"
rm "$d/portability-vfio_b_test@virtio_net".*
run "$d"
{ [ $rc = 0 ] && grep -qF "target virtio-net alone: >= 60% of all cases run: 6/10 ran (60.0%): met" <<<"$out"; }; r=$?
[ $r = 0 ] || show; ok $r "every target met (exactly 60% of 60% too): exit 0"
run "$tmp"
{ [ $rc = 1 ] && grep -q "no portability-\*.tap in" <<<"$out"; }; r=$?; [ $r = 0 ] || show
ok $r "no portability file: exit 1, named"

# lab/summarize: unlisted skips in portability files pass, failures do not.
sum() { out=$("$repo/lab/summarize" "$@" 2>&1); rc=$?; }
mv "$d/portability-vfio_a_test@ivshmem.tap" "$tmp/a.tap"
sum patched "$d" /dev/null
[ $rc = 0 ] || show; ok $rc "lab/summarize: a portability file's unlisted skips (4) are counted, not failed"
cp "$d/portability-vfio_a_test@virtio_net.tap" "$d/vfio_a_test.tap"; echo 0 >"$d/vfio_a_test.rc"
sum patched "$d" /dev/null
{ [ $rc = 1 ] && grep -q "vfio_a_test .*unexpected skip: a.c7" <<<"$out" && ! grep -q "portability-.*unexpected" <<<"$out"; }; r=$?
[ $r = 0 ] || show; ok $r "control: the same skips in a file of another suite are unexpected skips"
rm "$d"/vfio_a_test.*; mv "$tmp/a.tap" "$d/portability-vfio_a_test@ivshmem.tap"
printf '1..5\nok 1 b.one\n' | tapfile portability-vfio_b_test@bochs 139
sum patched "$d" /dev/null
{ [ $rc = 1 ] && grep -qE "portability-vfio_a_test@ivshmem .*fail +1" <<<"$out" &&
  grep -qE "portability-vfio_b_test@bochs .*exit 139 .*crashed" <<<"$out"; }; r=$?
[ $r = 0 ] || show; ok $r "lab/summarize: a failing portability case and a crashed portability file fail"
rm "$d/portability-vfio_b_test@bochs".*
m=$tmp/manifest; : >"$m"
"$repo/lab/summarize" --write-manifest "$m" patched "$d" >/dev/null 2>&1
grep -qE '^patched +portability +portability-vfio_a_test@virtio_net +10$' "$m"; r=$?
[ $r = 0 ] || sed 's/^/#   /' "$m"; ok $r "the manifest writer files them under the suite portability"
exit $bad
