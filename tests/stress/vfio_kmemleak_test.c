// SPDX-License-Identifier: GPL-2.0-only
/*
 * The last test of a debug-kernel run: kmemleak finds nothing.
 *
 *   vfio_kmemleak_test
 *
 * The debug config builds kmemleak with automatic scanning off, so scan
 * now: twice, with a pause longer than kmemleak's minimum object age (5 s)
 * in between, so that objects freed late in the run are not reported and
 * leaks that the first scan saw as too young are. Any "unreferenced object"
 * in /sys/kernel/debug/kmemleak then fails, and its report is printed
 * (lab/run-vm fails the run on it as well).
 *
 * Environment: VFIO_LAB_KMEMLEAK_PAUSE, seconds between the scans
 * (default 6).
 */
#include "kselftest_harness.h"
#include "stress_lib.h"

#define KMEMLEAK	STRESS_KMEMLEAK
#define REPORT_LINES	60

FIXTURE(kmemleak) {
};

FIXTURE_SETUP(kmemleak)
{
}

FIXTURE_TEARDOWN(kmemleak)
{
}

TEST_F_TIMEOUT(kmemleak, nothing_unreferenced, 1800)
{
	unsigned long pause = stress_env_ul("VFIO_LAB_KMEMLEAK_PAUSE", 6);
	int leaks = 0, lines = 0, ret;
	uint64_t t0 = stress_now_ns();
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	ret = stress_kmemleak_scan();
	ASSERT_EQ(0, ret) TH_LOG("scan %s: %s (a kernel without CONFIG_DEBUG_KMEMLEAK, or kmemleak disabled itself: see dmesg)",
				 KMEMLEAK, strerror(-ret));
	sleep(pause);
	ASSERT_EQ(0, stress_kmemleak_scan());
	TH_LOG("two scans in %llu ms",
	       (unsigned long long)(stress_now_ns() - t0) / 1000000);

	f = fopen(KMEMLEAK, "r");
	ASSERT_NE(NULL, f) TH_LOG("%s: %s", KMEMLEAK, strerror(errno));
	while (getline(&line, &cap, f) > 0) {
		if (strstr(line, "unreferenced object"))
			leaks++;
		if (lines++ < REPORT_LINES)
			ksft_print_msg("%s", line);
	}
	free(line);
	fclose(f);
	ASSERT_EQ(0, leaks);
}

TEST_HARNESS_MAIN
