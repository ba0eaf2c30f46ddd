// SPDX-License-Identifier: GPL-2.0-only
/*
 * The end of the stress suite: nothing was lost, and the device still
 * works after everything the other tests did to it.
 *
 *   vfio_final_test IVSHMEM_BDF
 *
 * Environment: VFIO_LAB_SEED (the host's ivshmem pattern seed) and
 * VFIO_LAB_DMABUF_START, the DMABUF count of debugfs bufinfo when the lab
 * run started (lab/guest/run-suite records it before any test).
 */
#include <linux/sizes.h>

#include <libvfio.h>

#include "kselftest_harness.h"
#include "stress_lib.h"

#define BAR		STRESS_IVSHMEM_BAR
#define PAGE		STRESS_PAGE

#define FINAL_TIMEOUT	600

static const char *ivshmem_bdf;

FIXTURE(final) {
};

FIXTURE_SETUP(final)
{
}

FIXTURE_TEARDOWN(final)
{
}

/*
 * A fresh open of ivshmem: a new mmap() of the whole BAR shows the host's
 * pattern in the first page of every MiB and in random pages, an exported
 * DMABUF can be imported into iommufd and (part 2) mmap()ed and read, and
 * closing it all leaves the DMABUF count where it was.
 */
TEST_F_TIMEOUT(final, device_still_works, FINAL_TIMEOUT)
{
	uint64_t seed, rnd, i, got = 0, bad = 0;
	struct vfio_pci_device *dev;
	struct stress_caps caps;
	struct iommu *iommu;
	uint64_t iova = 0;
	int before, fd;
	char *bar;

	ASSERT_TRUE(stress_lab_seed(&seed)) TH_LOG("VFIO_LAB_SEED is not set");
	before = stress_dmabuf_count();
	ASSERT_LE(0, before) TH_LOG("%s not readable", STRESS_BUFINFO);
	stress_install_handlers();
	iommu = iommu_init("iommufd");
	dev = vfio_pci_device_init(ivshmem_bdf, iommu);
	ASSERT_EQ(SZ_1G, dev->bars[BAR].info.size);
	stress_probe_caps(dev->fd, BAR, &caps);

	bar = mmap(NULL, SZ_1G, PROT_READ, MAP_SHARED, dev->fd,
		   dev->bars[BAR].info.offset);
	ASSERT_NE(MAP_FAILED, bar) TH_LOG("mmap: %s", strerror(errno));
	rnd = seed;
	for (i = 0; i < SZ_1G / SZ_1M + 256; i++) {
		uint64_t page = i < SZ_1G / SZ_1M ? i * (SZ_1M / PAGE) :
				stress_rand(&rnd) % (SZ_1G / PAGE);
		int sig = stress_read(stress_word(bar, page, 0), &got);

		if (!sig && got == ivshmem_pattern(seed, page))
			continue;
		if (bad++ < 4)
			TH_LOG("BAR page %#llx: %s %#llx want %#llx",
			       (unsigned long long)page,
			       sig ? strsignal(sig) : "read",
			       (unsigned long long)got,
			       (unsigned long long)ivshmem_pattern(seed, page));
	}
	ASSERT_EQ(0, bad);
	ASSERT_EQ(0, munmap(bar, SZ_1G));

	fd = stress_export1(dev->fd, BAR, SZ_16M, SZ_2M);
	ASSERT_LE(0, fd) TH_LOG("export: %s", strerror(errno));
	ASSERT_EQ(0, stress_ioas_map_file(iommu->iommufd, iommu->ioas_id, fd,
					  SZ_2M, &iova));
	ASSERT_EQ(0, stress_ioas_unmap(iommu->iommufd, iommu->ioas_id, iova,
				       SZ_2M));
	if (caps.dmabuf_mmap) {
		char *map = mmap(NULL, SZ_2M, PROT_READ, MAP_SHARED, fd, 0);
		uint64_t done, page;

		ASSERT_NE(MAP_FAILED, map) TH_LOG("DMABUF mmap: %s", strerror(errno));
		ASSERT_EQ(0, stress_check_pages(map, SZ_16M / PAGE, SZ_2M / PAGE,
						seed, &done, &page, &got))
			TH_LOG("DMABUF page %llu: %#llx", (unsigned long long)done,
			       (unsigned long long)got);
		ASSERT_EQ(0, munmap(map, SZ_2M));
	}
	ASSERT_EQ(0, close(fd));

	vfio_pci_device_cleanup(dev);
	iommu_cleanup(iommu);
	ASSERT_EQ(before, stress_dmabuf_count());
}

/* Every DMABUF any test of the run created is gone again. */
TEST_F_TIMEOUT(final, dmabuf_count_back_to_start, FINAL_TIMEOUT)
{
	const char *start = getenv("VFIO_LAB_DMABUF_START");
	int now = stress_dmabuf_count();

	ASSERT_NE(NULL, start) TH_LOG("VFIO_LAB_DMABUF_START is not set");
	ASSERT_LE(0, now) TH_LOG("%s not readable", STRESS_BUFINFO);
	TH_LOG("DMABUFs at the start of the run: %s, now: %d", start, now);
	ASSERT_EQ(atoi(start), now);
}

int main(int argc, char *argv[])
{
	ivshmem_bdf = vfio_selftests_get_bdf(&argc, argv);
	return test_harness_run(argc, argv);
}
