#!/bin/bash
# build-race.sh BUILD_DIR: compile only tests/stress/vfio_race_test.c against BUILD_DIR/headers and BUILD_DIR/tests/selftests/libvfio
set -e
cd /work/v1demo/main
B=$1; TREE=$B/linux; out=$B/tests; hdr=$B/headers; sel=$TREE/tools/testing/selftests
libvfio=$(find "$out/selftests/libvfio" -name '*.o' | sort)
cflags=(-O2 -Wall -Werror -D_GNU_SOURCE -isystem "$hdr/usr/include" -I"$TREE/tools/include" -I"$sel" -I"$sel/vfio/lib/include" -I"$PWD/tests/include" -pthread)
nice -n 10 gcc "${cflags[@]}" -o "$out/vfio_race_test" tests/stress/vfio_race_test.c $libvfio -luuid
ls -la "$out/vfio_race_test"
