// SPDX-License-Identifier: GPL-2.0-only
/*
 * Lab smoke test: mmap() ivshmem's BAR2 through the VFIO cdev and check that
 * what the outer host wrote into the backing file is there, then write a
 * reply the host checks after the VM exits.
 *
 * Pattern (tests/include/ivshmem_pattern.h): the host wrote pattern(seed, p)
 * at the start of every 4 KiB page p; the guest writes ~pattern(seed, p) 8
 * bytes further in the first page of every MiB.
 * The seed comes from VFIO_LAB_SEED so a stale backing file cannot pass.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/sizes.h>
#include <linux/vfio.h>

#include <libvfio.h>

#include "kselftest_harness.h"
#include "ivshmem_pattern.h"

#define PAGES_PER_MIB (SZ_1M / 4096)

static const char *device_bdf;

FIXTURE(bar_smoke) {
	struct iommu *iommu;
	struct vfio_pci_device *device;
	uint64_t seed;
	uint64_t bar_size;
	uint64_t bar_offset;
};

FIXTURE_SETUP(bar_smoke)
{
	const char *seed = getenv("VFIO_LAB_SEED");

	ASSERT_NE(NULL, seed) TH_LOG("VFIO_LAB_SEED is not set");
	self->seed = strtoull(seed, NULL, 0);
	self->iommu = iommu_init("iommufd");
	self->device = vfio_pci_device_init(device_bdf, self->iommu);
	self->bar_size = self->device->bars[2].info.size;
	self->bar_offset = self->device->bars[2].info.offset;
	ASSERT_EQ(SZ_1G, self->bar_size);
	ASSERT_TRUE(self->device->bars[2].info.flags & VFIO_REGION_INFO_FLAG_MMAP);
}

FIXTURE_TEARDOWN(bar_smoke)
{
	vfio_pci_device_cleanup(self->device);
	iommu_cleanup(self->iommu);
}

/* The host's pattern is visible through a fresh mmap() of the whole BAR. */
TEST_F(bar_smoke, host_pattern_visible)
{
	volatile uint64_t *bar;
	uint64_t i, bad = 0;

	bar = mmap(NULL, self->bar_size, PROT_READ, MAP_SHARED,
		   self->device->fd, self->bar_offset);
	ASSERT_NE(MAP_FAILED, bar);
	for (i = 0; i < self->bar_size / SZ_1M; i++) {
		uint64_t want = ivshmem_pattern(self->seed, i * PAGES_PER_MIB);
		uint64_t got = bar[i * SZ_1M / 8];

		if (got != want && bad++ < 4)
			TH_LOG("MiB %lu: got %#lx want %#lx", (unsigned long)i,
			       (unsigned long)got, (unsigned long)want);
	}
	ASSERT_EQ(0, bad);
	ASSERT_EQ(0, munmap((void *)bar, self->bar_size));
}

/* Same data through a mapping at a non-zero offset into the BAR. */
TEST_F(bar_smoke, host_pattern_at_offset)
{
	uint64_t off = 5 * SZ_1M + 7 * 4096, len = 3 * SZ_1M;
	volatile uint64_t *p;
	uint64_t i;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->device->fd,
		 self->bar_offset + off);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < len / 4096; i++)
		ASSERT_EQ(ivshmem_pattern(self->seed, off / 4096 + i), p[i * 4096 / 8]);
	ASSERT_EQ(0, munmap((void *)p, len));
}

/* Write the reply the host checks once the VM is gone. */
TEST_F(bar_smoke, guest_reply_written)
{
	volatile uint64_t *bar;
	uint64_t i;

	bar = mmap(NULL, self->bar_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   self->device->fd, self->bar_offset);
	ASSERT_NE(MAP_FAILED, bar);
	for (i = 0; i < self->bar_size / SZ_1M; i++)
		bar[i * SZ_1M / 8 + 1] = ~ivshmem_pattern(self->seed, i * PAGES_PER_MIB);
	for (i = 0; i < self->bar_size / SZ_1M; i++)
		ASSERT_EQ(~ivshmem_pattern(self->seed, i * PAGES_PER_MIB), bar[i * SZ_1M / 8 + 1]);
	ASSERT_EQ(0, munmap((void *)bar, self->bar_size));
}

int main(int argc, char *argv[])
{
	device_bdf = vfio_selftests_get_bdf(&argc, argv);
	return test_harness_run(argc, argv);
}
