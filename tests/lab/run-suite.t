#!/bin/bash
# lab/guest/run-suite: a series test binary that was not built is a failing
# TAP file, not silently dropped (audit 1.2); the "badinput" suite exists.
# Every program tools/testing/selftests/vfio/Makefile builds beyond upstream
# 7.3's runs (a new one too) once per device, that device's BDF first and the
# others after it, with the host pattern, with the REQUIRE_* variables on
# every kernel;
# a binary built but not run is a failing TAP file; a missing binary makes
# run-suite's status non-zero; a test that ignores SIGTERM past its timeout
# is killed (timeout -k); the portability suite runs every series test once
# per device with that device alone, without the host pattern, with the
# REQUIRE_* variables on patched.  Runs run-suite's own functions and its
# "selftests" case (taken from the script) on the host with stub binaries.
. "$(dirname "$0")/tap.sh"
echo "1..11"
rs=$repo/lab/guest/run-suite
BUILD=$LAB_BUILD OUT=$tmp/out BIN=$tmp/bin STEP=$tmp/step IVSHMEM=0000:00:01.0 BOCHS=0000:00:02.0 VIRTIO_NET=0000:00:03.0
mkdir -p "$OUT" "$BIN/selftests" "$BUILD/linux/tools/testing/selftests/vfio"; echo 0x1 >"$OUT/seed"
# The tree's Makefile: upstream's seven, the series' tests, the revoke test, a new one.
{ echo 'CFLAGS = $(KHDR_INCLUDES)'
  for t in vfio_dma_mapping_test vfio_dma_mapping_mmio_test vfio_iommufd_setup_test vfio_pci_bar_mmap_test \
	vfio_pci_dmabuf_test vfio_pci_dmabuf_mmap_test vfio_pci_dmabuf_iommufd_test vfio_pci_revoke_test \
	vfio_pci_new_test vfio_pci_device_test vfio_pci_device_init_perf_test vfio_pci_driver_test vfio_pci_sriov_uapi_test; do
	echo "TEST_GEN_PROGS += $t"
  done; } >"$BUILD/linux/tools/testing/selftests/vfio/Makefile"
stubbin() {	# a test binary that reports its arguments and the REQUIRE_* variables
	printf '#!/bin/sh\necho 1..1\necho "# args: $*"\necho "# require: ${VFIO_SELFTESTS_REQUIRE_DMABUF_MMAP:-unset} ${VFIO_SELFTESTS_REQUIRE_RUNTIME_PM:-unset}"\necho "# pattern: ${VFIO_SELFTESTS_HOST_PATTERN-unset}"\necho ok 1 x\n' >"$BIN/selftests/$1"
	chmod +x "$BIN/selftests/$1"
}
for t in vfio_pci_device_test vfio_dma_mapping_test vfio_dma_mapping_mmio_test vfio_iommufd_setup_test \
	vfio_pci_revoke_test vfio_pci_new_test vfio_pci_driver_test vfio_pci_stray_test; do stubbin $t; done
: >"$BIN/selftests/vfio_pci_new_test.o"	# not executable: not a test
for f in run_tap series_progs run_series run_selftests run_portability; do eval "$(sed -n "/^$f() {/,/^}/p" "$rs")"; done
eval "$(grep -E '^SELFTESTS_[A-Z_]+=' "$rs")"
body=$(sed -n '/^\tselftests)$/,/^\t\t;;$/p' "$rs" | sed '1d;$d')
status=0
LAB_KERNEL=patched eval "$body" >"$tmp/log" 2>&1
missing=0
for t in vfio_pci_bar_mmap_test vfio_pci_dmabuf_test vfio_pci_dmabuf_mmap_test vfio_pci_dmabuf_iommufd_test; do
	for d in ivshmem bochs virtio_net; do
		grep -q '^not ok 1 .*was not built' "$OUT/$t@$d.tap" 2>/dev/null && [ "$(cat "$OUT/$t@$d.rc")" = 1 ] ||
			{ echo "# no failing $t@$d.tap"; missing=1; }
	done
done
ok $missing "each series test binary that was not built leaves a failing TAP file"
[ "$status" != 0 ]; ok $? "a binary that could not be started makes run-suite's status non-zero"
"$repo/lab/summarize" patched "$OUT" >"$tmp/sum" 2>&1; [ $? = 1 ] && grep -q 'vfio_pci_dmabuf_test@bochs .*fail   1' "$tmp/sum"; r=$?
[ $r = 0 ] || sed 's/^/#   /' "$tmp/sum"; ok $r "lab/summarize counts them as failures"
grep -qx "# args: $BOCHS $IVSHMEM $VIRTIO_NET" "$OUT/vfio_pci_new_test@bochs.tap" 2>/dev/null; r=$?
[ $r = 0 ] || { ls "$OUT" | sed 's/^/#   /'; }; ok $r "a new series test in the Makefile runs, on bochs with the other devices after it"
r=0
for d in "ivshmem:$IVSHMEM $BOCHS $VIRTIO_NET" "bochs:$BOCHS $IVSHMEM $VIRTIO_NET" "virtio_net:$VIRTIO_NET $IVSHMEM $BOCHS"; do
	f=$OUT/vfio_pci_revoke_test@${d%%:*}.tap
	grep -qx "# args: ${d#*:}" "$f" 2>/dev/null && grep -qx "# require: 1 1" "$f" || { echo "# $f:"; sed 's/^/#   /' "$f" 2>/dev/null; r=1; }
done
ok $r "vfio_pci_revoke_test runs once per device (@ivshmem, @bochs, @virtio_net: that BDF first) with REQUIRE_DMABUF_MMAP=1 and REQUIRE_RUNTIME_PM=1 on patched"
grep -q '^not ok 1 vfio_pci_stray_test: built .* but run-suite does not run it' "$OUT/vfio_pci_stray_test.tap" 2>/dev/null &&
	[ "$(cat "$OUT/vfio_pci_stray_test.rc")" = 1 ] && [ ! -e "$OUT/vfio_pci_driver_test.tap" ] && [ ! -e "$OUT/vfio_pci_new_test.o.tap" ]; r=$?
[ $r = 0 ] || { ls "$OUT" | sed 's/^/#   /'; }
ok $r "a built binary that run-suite does not run is a failing TAP file (upstream's deliberately unrun ones are not)"
rm -rf "$OUT"; mkdir -p "$OUT"; echo 0x1 >"$OUT/seed"
LAB_KERNEL=base eval "$body" >"$tmp/log" 2>&1
grep -qx "# require: 1 1" "$OUT/vfio_pci_revoke_test@bochs.tap" 2>/dev/null; ok $? "on base the REQUIRE_* variables are set too (what needs the series fails there, listed)"
# A test that ignores SIGTERM at its timeout is killed.
printf '#!/bin/bash\ntrap "" TERM\necho 1..1\nsleep 100 & while :; do wait; done\n' >"$tmp/hang"; chmod +x "$tmp/hang"
status=0 s0=$SECONDS
LAB_TEST_TIMEOUT=1 LAB_TEST_KILL_SECS=1 timeout 15 bash -c "$(declare -f run_tap); $(declare -p OUT STEP); status=0; run_tap hang $tmp/hang; exit \$status" >"$tmp/log" 2>&1; r=$?
[ $r = 1 ] && [ "$(cat "$OUT/hang.rc" 2>/dev/null)" = 137 ]; r2=$?
[ $r2 = 0 ] || { echo "# rc $r after $((SECONDS - s0))s, hang.rc $(cat "$OUT/hang.rc" 2>/dev/null)"; sed 's/^/#   /' "$tmp/log"; }
ok $r2 "a test ignoring SIGTERM past its timeout is killed (rc 137) and run-suite's status is non-zero"
grep -qE '^\s+badinput\)' "$rs" && grep -q 'run_tap stress-badinput' "$rs"; ok $? "run-suite has a badinput suite running stress-badinput"
# The portability suite: every series test, each device alone, no seed.
rm -rf "$OUT"; mkdir -p "$OUT"; echo 0x1 >"$OUT/seed"
for t in vfio_pci_bar_mmap_test vfio_pci_dmabuf_test vfio_pci_dmabuf_mmap_test vfio_pci_dmabuf_iommufd_test; do stubbin $t; done
body=$(sed -n '/^\tportability)$/,/^\t\t;;$/p' "$rs" | sed '1d;$d')
status=0
VFIO_SELFTESTS_HOST_PATTERN="$IVSHMEM 2 0x2" LAB_KERNEL=patched eval "$body" >"$tmp/log" 2>&1
r=0
for t in vfio_pci_bar_mmap_test vfio_pci_dmabuf_test vfio_pci_dmabuf_mmap_test vfio_pci_dmabuf_iommufd_test vfio_pci_revoke_test vfio_pci_new_test; do
	for d in ivshmem:$IVSHMEM bochs:$BOCHS virtio_net:$VIRTIO_NET; do
		f=$OUT/portability-$t@${d%%:*}.tap
		grep -qx "# args: ${d#*:}" "$f" 2>/dev/null && grep -qx "# require: 1 1" "$f" && grep -qx "# pattern: unset" "$f" ||
			{ echo "# $f:"; sed 's/^/#   /' "$f" 2>/dev/null; r=1; }
	done
done
[ "$(ls "$OUT" | grep -c '^portability-.*\.tap$')" = 18 ] && [ $status = 0 ] || { r=1; ls "$OUT" | sed 's/^/#   /'; }
ok $r "portability runs each series test (a new one too) once per device, with that BDF alone, no host pattern, REQUIRE_* set (18 files)"
# ... and upstream's tests are not in it; the selftests suite still gets the host pattern.
rm -rf "$OUT"; mkdir -p "$OUT"; echo 0x1 >"$OUT/seed"
body=$(sed -n '/^\tselftests)$/,/^\t\t;;$/p' "$rs" | sed '1d;$d')
LAB_KERNEL=patched eval "$body" >"$tmp/log" 2>&1
grep -qx "# pattern: $IVSHMEM 2 0x1" "$OUT/vfio_pci_dmabuf_test@virtio_net.tap" 2>/dev/null && grep -qx "# pattern: $IVSHMEM 2 0x1" "$OUT/vfio_pci_revoke_test@bochs.tap"; r=$?
[ $r = 0 ] || sed 's/^/#   /' "$OUT/vfio_pci_dmabuf_test@virtio_net.tap"; ok $r "control: the selftests suite passes the host pattern (ivshmem's BAR2 and the seed) to the series tests"
exit $bad
