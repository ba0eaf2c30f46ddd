#!/bin/bash
# lab/guest/run-suite: a series test binary that was not built is a failing
# TAP file, not silently dropped (audit 1.2); the "badinput" suite exists.
# Runs run-suite's own run_tap and its "selftests" case (taken from the
# script) on the host with stub upstream binaries and no series binaries.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export LAB_BUILD=$tmp/build LAB_CACHE=$tmp/cache
n=0 bad=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; bad=1; fi; }
echo "1..3"
rs=$repo/lab/guest/run-suite
OUT=$tmp/out BIN=$tmp/bin STEP=$tmp/step IVSHMEM=0000:00:01.0 BOCHS=0000:00:02.0 VIRTIO_NET=0000:00:03.0
mkdir -p "$OUT" "$BIN/selftests"; echo 0x1 >"$OUT/seed"
for t in vfio_pci_device_test vfio_dma_mapping_test vfio_dma_mapping_mmio_test vfio_iommufd_setup_test; do
	printf '#!/bin/sh\necho 1..1\necho ok 1 x\n' >"$BIN/selftests/$t"; chmod +x "$BIN/selftests/$t"
done
eval "$(sed -n '/^run_tap() {/,/^}/p' "$rs")"
body=$(sed -n '/^\tselftests)$/,/^\t\t;;$/p' "$rs" | sed '1d;$d')
eval "$body" >"$tmp/log" 2>&1
missing=0
for t in vfio_pci_bar_mmap_test vfio_pci_dmabuf_test vfio_pci_dmabuf_mmap_test vfio_pci_dmabuf_iommufd_test; do
	grep -q '^not ok 1 .*was not built' "$OUT/$t.tap" 2>/dev/null && [ "$(cat "$OUT/$t.rc")" = 1 ] || { echo "# no failing $t.tap"; missing=1; }
done
ok $missing "each series test binary that was not built leaves a failing TAP file"
"$repo/lab/summarize" patched "$OUT" >"$tmp/sum" 2>&1; [ $? = 1 ] && grep -q 'vfio_pci_dmabuf_test .*fail   1' "$tmp/sum"; r=$?
[ $r = 0 ] || sed 's/^/#   /' "$tmp/sum"; ok $r "lab/summarize counts them as failures"
grep -qE '^\s+badinput\)' "$rs" && grep -q 'run_tap stress-badinput' "$rs"; ok $? "run-suite has a badinput suite running stress-badinput"
exit $bad
