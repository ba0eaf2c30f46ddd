// SPDX-License-Identifier: GPL-2.0-only
/*
 * What a person sees: mmap() a slice of ivshmem's BAR2 through the VFIO
 * device fd, show the /proc/self/maps line and the data the host wrote,
 * then export the same slice as a DMABUF and try to mmap() that fd.
 *
 *   bar_mmap_demo BDF
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/sizes.h>
#include <linux/vfio.h>

#include <libvfio.h>

#include "ivshmem_pattern.h"

static void show_maps(void *addr)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f))
		if (strtoul(line, NULL, 16) == (unsigned long)addr)
			printf("  /proc/self/maps: %s", line);
	if (f)
		fclose(f);
}

static int count_dmabufs(void)
{
	char line[512];
	int n = -1;
	FILE *f = fopen("/sys/kernel/debug/dma_buf/bufinfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		int count, end = 0;

		/* Not the per-buffer "Total N devices attached" lines. */
		if (sscanf(line, "Total %d objects%n", &count, &end) == 1 && end)
			n = count;
	}
	if (f)
		fclose(f);
	return n;
}

static int export_dmabuf(int device_fd, __u64 offset, __u64 length)
{
	struct {
		struct vfio_device_feature feature;
		struct vfio_device_feature_dma_buf get;
		struct vfio_region_dma_range range;
	} __attribute__((packed)) arg = {
		.feature.argsz = sizeof(arg),
		.feature.flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF,
		.get.region_index = 2,
		.get.open_flags = O_RDWR | O_CLOEXEC,
		.get.nr_ranges = 1,
		.range.offset = offset,
		.range.length = length,
	};

	return ioctl(device_fd, VFIO_DEVICE_FEATURE, &arg);
}

int main(int argc, char *argv[])
{
	const char *bdf = vfio_selftests_get_bdf(&argc, argv);
	struct iommu *iommu = iommu_init("iommufd");
	struct vfio_pci_device *dev = vfio_pci_device_init(bdf, iommu);
	__u64 off = 4 * SZ_1M, len = 2 * SZ_1M;
	volatile __u64 *p;
	void *q;
	int fd;

	printf("device %s, BAR2 %llu MiB, DMABUFs before: %d\n", bdf,
	       (unsigned long long)dev->bars[2].info.size >> 20, count_dmabufs());

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, dev->fd,
		 dev->bars[2].info.offset + off);
	if (p == MAP_FAILED) {
		printf("BAR mmap failed: %s\n", strerror(errno));
		return 1;
	}
	printf("BAR mmap at offset %#llx: first word %#llx", (unsigned long long)off,
	       (unsigned long long)p[0]);
	if (getenv("VFIO_LAB_SEED"))
		printf(" (%s the host's pattern)",
		       p[0] == ivshmem_pattern(strtoull(getenv("VFIO_LAB_SEED"), NULL, 0),
				       off / 4096) ? "matches" : "DOES NOT MATCH");
	printf("\n");
	show_maps((void *)p);
	printf("DMABUFs with the BAR mapped: %d\n", count_dmabufs());

	fd = export_dmabuf(dev->fd, off, len);
	if (fd < 0) {
		printf("DMABUF export: %s\n", strerror(errno));
	} else {
		q = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
		if (q == MAP_FAILED) {
			printf("DMABUF fd %d: mmap() %s\n", fd, strerror(errno));
		} else {
			__u64 w = *(volatile __u64 *)q;

			printf("DMABUF mmap: first word %#llx", (unsigned long long)w);
			if (getenv("VFIO_LAB_SEED"))
				printf(" (%s the host's pattern)",
				       w == ivshmem_pattern(strtoull(getenv("VFIO_LAB_SEED"), NULL, 0),
							    off / 4096) ? "matches" : "DOES NOT MATCH");
			printf("\n");
			show_maps(q);
			munmap(q, len);
		}
		close(fd);
	}
	munmap((void *)p, len);
	vfio_pci_device_cleanup(dev);
	iommu_cleanup(iommu);
	printf("DMABUFs after cleanup: %d\n", count_dmabufs());
	return 0;
}
