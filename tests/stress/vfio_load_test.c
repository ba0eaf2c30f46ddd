// SPDX-License-Identifier: GPL-2.0-only
/*
 * Load: thousands of BAR mmap()s and exported DMABUFs in one process, each
 * verified against the host's ivshmem pattern, then torn down, with the
 * DMABUF, fd and VMA counts checked at every step. 4096 and 1024 fit the
 * defaults of vm.max_map_count (65530); RLIMIT_NOFILE is raised.
 *
 *   vfio_load_test IVSHMEM_BDF
 *
 * Environment: VFIO_LAB_SEED (the host's ivshmem pattern seed, required);
 * VFIO_LAB_LOAD_MMAPS (default 4096) and VFIO_LAB_LOAD_DMABUFS (default
 * 1024) change the counts.
 */
#include <linux/sizes.h>

#include <libvfio.h>

#include "kselftest_harness.h"
#include "stress_lib.h"

#define BAR		STRESS_IVSHMEM_BAR
#define PAGE		STRESS_PAGE
#define BAR_PAGES	(SZ_1G / PAGE)
#define LOAD_TIMEOUT	1200

static const char *ivshmem_bdf;

FIXTURE(load) {
	struct iommu *iommu;
	struct vfio_pci_device *dev;
	struct stress_caps caps;
	uint64_t seed;
	unsigned long nmaps;
	unsigned long ndmabufs;
	int closed_dmabufs;	/* DMABUF count without the device open */
	int base_dmabufs;	/* with it open (libvfio mmap()s its BARs) */
	int base_fds;
	int base_vmas;
	int dev_vmas;		/* libvfio's BAR mmap()s */
};

FIXTURE_SETUP(load)
{
	ASSERT_TRUE(stress_lab_seed(&self->seed)) TH_LOG("VFIO_LAB_SEED is not set");
	self->nmaps = stress_env_ul("VFIO_LAB_LOAD_MMAPS", 4096);
	self->ndmabufs = stress_env_ul("VFIO_LAB_LOAD_DMABUFS", 1024);
	ASSERT_TRUE(self->nmaps && self->nmaps <= BAR_PAGES);
	ASSERT_TRUE(self->ndmabufs && self->ndmabufs <= BAR_PAGES);
	ASSERT_LT(0, stress_raise_nofile(self->ndmabufs + 256));

	self->closed_dmabufs = stress_dmabuf_count();
	ASSERT_LE(0, self->closed_dmabufs) TH_LOG("%s not readable", STRESS_BUFINFO);
	self->iommu = iommu_init("iommufd");
	self->dev = vfio_pci_device_init(ivshmem_bdf, self->iommu);
	ASSERT_EQ(SZ_1G, self->dev->bars[BAR].info.size);
	stress_probe_caps(self->dev->fd, BAR, &self->caps);
	stress_install_handlers();

	self->base_dmabufs = stress_dmabuf_count();
	self->base_fds = stress_fd_count();
	self->base_vmas = stress_vma_count();
	for (int i = 0; i < PCI_STD_NUM_BARS; i++)
		self->dev_vmas += !!self->dev->bars[i].vaddr;
}

FIXTURE_TEARDOWN(load)
{
	if (self->dev)
		vfio_pci_device_cleanup(self->dev);
	if (self->iommu)
		iommu_cleanup(self->iommu);
}

/* BAR page of mapping @i of @n: spread evenly over the BAR. */
static uint64_t spread(unsigned long i, unsigned long n)
{
	return i * (BAR_PAGES / n);
}

/* Map one page of BAR2 at each of @n spread-out pages into @maps. */
static int map_bar_pages(struct vfio_pci_device *dev, void **maps,
			 unsigned long n)
{
	uint64_t off = dev->bars[BAR].info.offset;
	unsigned long i;

	for (i = 0; i < n; i++) {
		maps[i] = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, dev->fd,
			       off + spread(i, n) * PAGE);
		if (maps[i] == MAP_FAILED)
			return -1;
	}
	return 0;
}

/*
 * Export one page at each of @n spread-out pages (shifted by half a stride
 * from the BAR mmap()s) into @fds and, if @maps, mmap() each.
 */
static int export_pages(struct vfio_pci_device *dev, int *fds, void **maps,
			unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++) {
		fds[i] = stress_export1(dev->fd, BAR,
					(spread(i, n) + BAR_PAGES / n / 2) * PAGE,
					PAGE);
		if (fds[i] < 0)
			return -1;
		if (!maps)
			continue;
		maps[i] = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fds[i], 0);
		if (maps[i] == MAP_FAILED)
			return -1;
	}
	return 0;
}

/* Mismatching (or faulting) words among maps[i] (BAR page page_of(i)). */
static unsigned long verify(struct __test_metadata *_metadata, void **maps,
			    unsigned long n, uint64_t seed, uint64_t shift)
{
	unsigned long i, bad = 0;

	for (i = 0; i < n; i++) {
		uint64_t page = spread(i, n) + shift, got = 0;
		int sig = stress_read(stress_word(maps[i], 0, 0), &got);

		if (!sig && got == ivshmem_pattern(seed, page))
			continue;
		if (bad++ < 4)
			TH_LOG("mapping %lu (BAR page %#llx): %s %#llx want %#llx",
			       i, (unsigned long long)page,
			       sig ? strsignal(sig) : "read",
			       (unsigned long long)got,
			       (unsigned long long)ivshmem_pattern(seed, page));
	}
	return bad;
}

static void unmap_all(void **maps, unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++)
		if (maps[i] && maps[i] != MAP_FAILED)
			munmap(maps[i], PAGE);
}

static void close_all(int *fds, unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* 1024 exported DMABUFs held open at once, then closed. */
TEST_F_TIMEOUT(load, dmabufs_exported, LOAD_TIMEOUT)
{
	int *fds = malloc(self->ndmabufs * sizeof(*fds));

	ASSERT_NE(NULL, fds);
	memset(fds, -1, self->ndmabufs * sizeof(*fds));
	ASSERT_EQ(0, export_pages(self->dev, fds, NULL, self->ndmabufs))
		TH_LOG("export: %s", strerror(errno));
	ASSERT_EQ(self->base_dmabufs + (int)self->ndmabufs, stress_dmabuf_count());
	ASSERT_EQ(self->base_fds + (int)self->ndmabufs, stress_fd_count());

	close_all(fds, self->ndmabufs);
	free(fds);
	ASSERT_EQ(self->base_dmabufs, stress_dmabuf_count());
	ASSERT_EQ(self->base_fds, stress_fd_count());
}

/*
 * 4096 one-page BAR mmap()s (each its own DMABUF) and 1024 exported
 * DMABUFs, each mmap()ed too with part 2, all live at once and every one
 * read back. The DMABUF fds are closed first: their mappings keep working.
 * Then the device fd is closed: the BAR mmap()s keep the device open and
 * keep working. Once the last of them is unmapped the device closes, which
 * revokes the exported DMABUFs, whose mmap()s then raise SIGBUS; unmapping
 * those leaves nothing behind.
 */
TEST_F_TIMEOUT(load, all_at_once_then_close, LOAD_TIMEOUT)
{
	unsigned long nm = self->nmaps, nd = self->ndmabufs, bad, i;
	uint64_t shift = BAR_PAGES / nd / 2, got = 0, t0 = stress_now_ns();
	void **bmaps = calloc(nm, sizeof(*bmaps));
	void **dmaps = calloc(nd, sizeof(*dmaps));
	int *fds = malloc(nd * sizeof(*fds));
	bool mmap_ok = self->caps.dmabuf_mmap;
	int sig, nvmas = nm + (mmap_ok ? nd : 0);

	if (!mmap_ok)
		ksft_print_msg("%s: the DMABUFs are not mmap()ed\n", STRESS_NO_PART2);
	ASSERT_TRUE(bmaps && dmaps && fds);
	memset(fds, -1, nd * sizeof(*fds));
	ASSERT_EQ(0, map_bar_pages(self->dev, bmaps, nm))
		TH_LOG("BAR mmap: %s", strerror(errno));
	ASSERT_EQ(0, export_pages(self->dev, fds, mmap_ok ? dmaps : NULL, nd))
		TH_LOG("export/mmap: %s", strerror(errno));
	ASSERT_EQ(self->base_dmabufs + (int)(nm + nd), stress_dmabuf_count());
	ASSERT_EQ(self->base_vmas + nvmas, stress_vma_count());
	ASSERT_EQ(self->base_fds + (int)nd, stress_fd_count());
	ASSERT_EQ(0, verify(_metadata, bmaps, nm, self->seed, 0));
	if (mmap_ok)
		ASSERT_EQ(0, verify(_metadata, dmaps, nd, self->seed, shift));
	TH_LOG("%lu BAR mmap()s and %lu DMABUFs set up and read in %llu ms",
	       nm, nd, (unsigned long long)(stress_now_ns() - t0) / 1000000);

	/* The mmap()s of the DMABUFs outlive their fds */
	if (mmap_ok) {
		close_all(fds, nd);
		memset(fds, -1, nd * sizeof(*fds));
		ASSERT_EQ(self->base_fds, stress_fd_count());
		ASSERT_EQ(self->base_dmabufs + (int)(nm + nd), stress_dmabuf_count());
		ASSERT_EQ(0, verify(_metadata, dmaps, nd, self->seed, shift));
	}

	/* Close the device fd; the BAR mmap()s hold the device open */
	vfio_pci_device_cleanup(self->dev);
	self->dev = NULL;
	ASSERT_EQ(0, verify(_metadata, bmaps, nm, self->seed, 0));
	if (mmap_ok)
		ASSERT_EQ(0, verify(_metadata, dmaps, nd, self->seed, shift));

	/* The last BAR mmap() closes the device */
	unmap_all(bmaps, nm);
	ASSERT_EQ(self->closed_dmabufs + (int)nd, stress_dmabuf_count());
	if (mmap_ok) {
		for (i = 0, bad = 0; i < nd; i++) {
			sig = stress_read(stress_word(dmaps[i], 0, 0), &got);
			if (sig != SIGBUS && bad++ < 4)
				TH_LOG("DMABUF mmap %lu after device close: %s %#llx",
				       i, sig ? strsignal(sig) : "read",
				       (unsigned long long)got);
		}
		ASSERT_EQ(0, bad);
		unmap_all(dmaps, nd);
	}
	close_all(fds, nd);
	free(bmaps);
	free(dmaps);
	free(fds);
	ASSERT_EQ(self->closed_dmabufs, stress_dmabuf_count());
	ASSERT_EQ(self->base_vmas - self->dev_vmas, stress_vma_count());
	TH_LOG("%llu ms in all",
	       (unsigned long long)(stress_now_ns() - t0) / 1000000);
}

int main(int argc, char *argv[])
{
	ivshmem_bdf = vfio_selftests_get_bdf(&argc, argv);
	return test_harness_run(argc, argv);
}
