// SPDX-License-Identifier: GPL-2.0-only
/*
 * The cost of importing a BAR slice into an iommufd IOAS, by address
 * (IOMMU_IOAS_MAP of a BAR mmap(), SPEC §2.9) against by DMABUF fd
 * (IOMMU_IOAS_MAP_FILE of an exported DMABUF), each followed by
 * IOMMU_IOAS_UNMAP, for one page and for 2 MiB of ivshmem's BAR2.
 *
 *   vfio_p2p_map_bench [N] IVSHMEM_BDF      (N: iterations, default 200)
 *
 * Prints one line per size and path: ns per map and per unmap (means over
 * N), or why the path is not available (base 7.3 and a kernel without the
 * by-address import fail IOMMU_IOAS_MAP of a BAR mapping with EFAULT).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/sizes.h>
#include <linux/vfio.h>

#include <libvfio.h>

#define BAR		2
#define BAR_OFF		(SZ_512M + SZ_256M)	/* clear of the p2p suite's windows */
#define IOVA		0x40000000ULL

static u64 ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int map_file(struct iommu *iommu, int fd, u64 len)
{
	u64 iova = IOVA;

	return iommufd_ioas_map_file(iommu->iommufd, iommu->ioas_id, fd, 0,
				     len, &iova, true);
}

/* Time @n map + unmap pairs of one path; @fd < 0: by address @va. */
static void run(struct iommu *iommu, const char *path, int fd, void *va,
		u64 len, int n)
{
	struct dma_region region = { .vaddr = va, .iova = IOVA, .size = len };
	u64 t_map = 0, t_unmap = 0, t0, t1, unmapped = 0;
	long long r;
	int i, ret;

	for (i = 0; i < n; i++) {
		t0 = ns();
		ret = fd < 0 ? __iommu_map(iommu, &region) : map_file(iommu, fd, len);
		t1 = ns();
		if (ret) {
			printf("p2p_map size=%llu path=%s unavailable: %s\n",
			       (unsigned long long)len, path, strerror(-ret));
			return;
		}
		if (fd < 0) {
			ret = __iommu_unmap(iommu, &region, &unmapped);
			r = ret ? ret : (long long)unmapped;
		} else {
			r = iommufd_ioas_unmap(iommu->iommufd, iommu->ioas_id, IOVA, len);
		}
		t_map += t1 - t0;
		t_unmap += ns() - t1;
		VFIO_ASSERT_EQ(r, (long long)len);
	}
	printf("p2p_map size=%llu path=%s n=%d map_ns=%llu unmap_ns=%llu\n",
	       (unsigned long long)len, path, n, (unsigned long long)(t_map / n),
	       (unsigned long long)(t_unmap / n));
}

int main(int argc, char *argv[])
{
	static const u64 sizes[] = { SZ_4K, SZ_2M };
	struct vfio_pci_device *dev;
	struct iommu *iommu;
	const char *bdf;
	unsigned int i;
	int n = 200, fd;
	void *va;

	bdf = vfio_selftests_get_bdf(&argc, argv);
	if (argc > 1)
		n = atoi(argv[1]);
	VFIO_ASSERT_GT(n, 0);
	iommu = iommu_init("iommufd");
	dev = vfio_pci_device_init(bdf, iommu);
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		va = vfio_pci_bar_mmap_aligned(dev, BAR, BAR_OFF, sizes[i], SZ_2M,
					       PROT_READ | PROT_WRITE);
		VFIO_ASSERT_NE(va, MAP_FAILED);
		fd = vfio_pci_dmabuf_export(dev, BAR, BAR_OFF, sizes[i]);
		VFIO_ASSERT_GE(fd, 0, "DMABUF export: %s\n", strerror(-fd));
		run(iommu, "vaddr", -1, va, sizes[i], n);
		run(iommu, "dmabuf", fd, NULL, sizes[i], n);
		close(fd);
		munmap(va, sizes[i]);
	}
	vfio_pci_device_cleanup(dev);
	iommu_cleanup(iommu);
	return 0;
}
