#!/bin/bash
# Guest side of the v1/v2 cleanup-vs-release demo: bind devices, run the
# lab's race test binary (all cases), print TAP and exit code.
cd /work/v1demo/main
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
. lab/guest/bind-devices || exit 1
echo "kernel: $(uname -r) $(uname -v)"
uname -v >"$LAB_OUT/uname"
VFIO_LAB_SEED=$(cat "$LAB_OUT/../seed") timeout -k 30 900 ${RACE_BIN:-build/tests/vfio_race_test} "$IVSHMEM" >"$LAB_OUT/stress-race.tap" 2>&1
rc=$?
cat "$LAB_OUT/stress-race.tap"
echo "=== stress-race: exit $rc"
echo $rc >"$LAB_OUT/stress-race.rc"
exit 0
