// SPDX-License-Identifier: GPL-2.0-only
/*
 * Every invalid mmap() and VFIO_DEVICE_FEATURE argument of SPEC section 2
 * gets its documented errno and leaks nothing: one TAP case per row of the
 * table below, which README.md repeats ("Bad input"). After each failing
 * call the DMABUF count (debugfs bufinfo), the number of open fds
 * (/proc/self/fd) and of VMAs (/proc/self/maps) must be what they were.
 *
 *   vfio_badinput_test IVSHMEM_BDF BOCHS_BDF
 *
 * ivshmem-plain's BAR2 (1 GiB) is the BAR under test; a DMABUF of
 * bochs-display's BAR0 is the "DMABUF of another device", a udmabuf the
 * "DMABUF of another exporter". Rows that need series part 2 (mmap() of
 * exported DMABUFs, DMA_BUF_REVOKE, DMA_BUF_MEMATTR) skip on kernels
 * without it.
 */
#include <linux/sizes.h>
#include <linux/udmabuf.h>

#include <sys/eventfd.h>

#include <libvfio.h>

#include "kselftest_harness.h"
#include "stress_lib.h"

static const char *ivshmem_bdf;
static const char *bochs_bdf;

#define BAR		STRESS_IVSHMEM_BAR
#define PAGE		STRESS_PAGE
#define REGION(i)	((uint64_t)(i) << STRESS_REGION_SHIFT)
#define DBUF_OFFSET	SZ_4M		/* the exported DMABUF under test */
#define DBUF_SIZE	SZ_2M

enum bad_call {
	/* mmap() of the VFIO device fd */
	MMAP_PRIVATE,
	MMAP_OFFSET_AT_END,
	MMAP_SPAN_PAST_END,
	MMAP_SPAN_INTO_NEXT_REGION,
	MMAP_OFFSET_OVERFLOW,
	MMAP_LENGTH_ZERO,
	MMAP_OFFSET_UNALIGNED,
	MMAP_CONFIG_REGION,
	MMAP_ROM_REGION,
	MMAP_VGA_REGION,
	MMAP_REGION_PAST_LAST,
	MMAP_BAR_ABSENT,
	MREMAP_GROW_BAR,
	/* mmap() of an exported DMABUF fd (part 2) */
	DMABUF_MMAP_PRIVATE,
	DMABUF_MMAP_OFFSET_AT_END,
	DMABUF_MMAP_SPAN_PAST_END,
	DMABUF_MMAP_OFFSET_OVERFLOW,
	DMABUF_MMAP_REVOKED,
	DMABUF_MMAP_DECODE_OFF,
	DMABUF_MMAP_DEVICE_CLOSED,
	MREMAP_GROW_DMABUF,
	/* VFIO_DEVICE_FEATURE_DMA_BUF */
	EXPORT_WITH_SET,
	EXPORT_WITHOUT_GET,
	EXPORT_GET_AND_SET,
	EXPORT_UNKNOWN_FEATURE_FLAG,
	EXPORT_ARGSZ_SHORT,
	EXPORT_FLAGS_NONZERO,
	EXPORT_NR_RANGES_ZERO,
	EXPORT_NR_RANGES_PAST_ARGSZ,
	EXPORT_NR_RANGES_HUGE,
	EXPORT_RANGES_UNREADABLE,
	EXPORT_ZERO_LENGTH,
	EXPORT_UNALIGNED_OFFSET,
	EXPORT_UNALIGNED_LENGTH,
	EXPORT_RANGE_PAST_BAR,
	EXPORT_RANGE_OFFSET_OVERFLOW,
	EXPORT_LENGTHS_OVERFLOW,
	EXPORT_LENGTH_TOO_BIG,
	EXPORT_CONFIG_REGION,
	EXPORT_ROM_REGION,
	EXPORT_REGION_PAST_BARS,
	EXPORT_BAR_ABSENT,
	/* VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE (part 2) */
	REVOKE_WITH_GET,
	REVOKE_WITHOUT_SET,
	REVOKE_ARGSZ_SHORT,
	REVOKE_FD_NEGATIVE,
	REVOKE_FD_NOT_OPEN,
	REVOKE_FD_NOT_DMABUF,
	REVOKE_FD_O_PATH,
	REVOKE_FD_OTHER_EXPORTER,
	REVOKE_FD_OTHER_DEVICE,
	REVOKE_ALREADY_REVOKED,
	/* VFIO_DEVICE_FEATURE_DMA_BUF_MEMATTR (part 2) */
	MEMATTR_UNKNOWN,
	MEMATTR_ALL_ONES,
	MEMATTR_WITH_GET,
	MEMATTR_ARGSZ_SHORT,
	MEMATTR_FD_NOT_OPEN,
	MEMATTR_FD_NOT_DMABUF,
	MEMATTR_FD_OTHER_EXPORTER,
	MEMATTR_FD_OTHER_DEVICE,
	MEMATTR_REVOKED,
	/* VFIO_DEVICE_FEATURE */
	FEATURE_UNKNOWN,
};

/* What a row needs from the kernel under test. */
#define NEED_DMABUF_MMAP	(1 << 0)
#define NEED_REVOKE		(1 << 1)
#define NEED_MEMATTR		(1 << 2)
#define NEED_BOCHS		(1 << 3)	/* a DMABUF of another device */

FIXTURE(badinput) {
	struct iommu *iommu;
	struct vfio_pci_device *ivshmem;
	struct vfio_pci_device *bochs;
	struct stress_caps caps;
	bool ivshmem_closed;
	int dbuf;		/* DMABUF of ivshmem BAR2, DBUF_SIZE at DBUF_OFFSET */
	int bochs_dbuf;		/* DMABUF of bochs BAR0 */
	int udmabuf;		/* DMABUF of another exporter */
	int memfd;
	int efd;		/* an fd that is not a DMABUF */
	int closed_fd;		/* a number that is not an open fd */
	void *bar_map;		/* a BAR mmap() (holds the device open) */
	void *noaccess;		/* two pages: readable, then PROT_NONE */
};

FIXTURE_VARIANT(badinput) {
	enum bad_call call;
	int err;		/* the errno the row expects */
	int alt_err;		/* also accepted (0: none), see the row */
	unsigned int needs;
};

#define ROW(_name, _call, _err, _alt, _needs)				\
	FIXTURE_VARIANT_ADD(badinput, _name) {				\
		.call = _call, .err = _err, .alt_err = _alt,		\
		.needs = _needs,					\
	}

/* mmap() of the device fd: 7.3's errnos (SPEC 2.1) */
ROW(mmap_private, MMAP_PRIVATE, EINVAL, 0, 0);
ROW(mmap_offset_at_end, MMAP_OFFSET_AT_END, EINVAL, 0, 0);
ROW(mmap_span_past_end, MMAP_SPAN_PAST_END, EINVAL, 0, 0);
ROW(mmap_span_into_next_region, MMAP_SPAN_INTO_NEXT_REGION, EINVAL, 0, 0);
/* pgoff + pages wraps: the mm core refuses before the driver sees it */
ROW(mmap_offset_overflow, MMAP_OFFSET_OVERFLOW, EOVERFLOW, 0, 0);
ROW(mmap_length_zero, MMAP_LENGTH_ZERO, EINVAL, 0, 0);
ROW(mmap_offset_unaligned, MMAP_OFFSET_UNALIGNED, EINVAL, 0, 0);
ROW(mmap_config_region, MMAP_CONFIG_REGION, EINVAL, 0, 0);
ROW(mmap_rom_region, MMAP_ROM_REGION, EINVAL, 0, 0);
ROW(mmap_vga_region, MMAP_VGA_REGION, EINVAL, 0, 0);
ROW(mmap_region_past_last, MMAP_REGION_PAST_LAST, EINVAL, 0, 0);
ROW(mmap_bar_absent, MMAP_BAR_ABSENT, EINVAL, 0, 0);
/* Growing a mapping past its DMABUF: VM_DONTEXPAND, the mm core says EFAULT */
ROW(mremap_grow_bar, MREMAP_GROW_BAR, EFAULT, 0, 0);

/* mmap() of an exported DMABUF (SPEC 2.5) */
ROW(dmabuf_mmap_private, DMABUF_MMAP_PRIVATE, EINVAL, 0, NEED_DMABUF_MMAP);
ROW(dmabuf_mmap_offset_at_end, DMABUF_MMAP_OFFSET_AT_END, EINVAL, 0,
	NEED_DMABUF_MMAP);
ROW(dmabuf_mmap_span_past_end, DMABUF_MMAP_SPAN_PAST_END, EINVAL, 0,
	NEED_DMABUF_MMAP);
ROW(dmabuf_mmap_offset_overflow, DMABUF_MMAP_OFFSET_OVERFLOW, EOVERFLOW, 0,
	NEED_DMABUF_MMAP);
ROW(dmabuf_mmap_revoked, DMABUF_MMAP_REVOKED, ENODEV, 0,
	NEED_DMABUF_MMAP | NEED_REVOKE);
/*
 * No row for mmap() while memory decode is off: a DMABUF revoked for the
 * time being can be mmap()ed (SPEC 2.5), its accesses get SIGBUS.
 */
ROW(dmabuf_mmap_device_closed, DMABUF_MMAP_DEVICE_CLOSED, ENODEV, 0,
	NEED_DMABUF_MMAP);
ROW(mremap_grow_dmabuf, MREMAP_GROW_DMABUF, EFAULT, 0, NEED_DMABUF_MMAP);

/* VFIO_DEVICE_FEATURE_DMA_BUF: 7.3's errnos */
ROW(export_with_set, EXPORT_WITH_SET, EINVAL, 0, 0);
ROW(export_without_get, EXPORT_WITHOUT_GET, EINVAL, 0, 0);
ROW(export_get_and_set, EXPORT_GET_AND_SET, EINVAL, 0, 0);
ROW(export_unknown_feature_flag, EXPORT_UNKNOWN_FEATURE_FLAG, EINVAL, 0, 0);
ROW(export_argsz_short, EXPORT_ARGSZ_SHORT, EINVAL, 0, 0);
ROW(export_flags_nonzero, EXPORT_FLAGS_NONZERO, EINVAL, 0, 0);
ROW(export_nr_ranges_zero, EXPORT_NR_RANGES_ZERO, EINVAL, 0, 0);
/*
 * 7.3 reads nr_ranges ranges whatever argsz says, so ranges past argsz on
 * an unmapped page give EFAULT; a kernel checking argsz says EINVAL.
 */
ROW(export_nr_ranges_past_argsz, EXPORT_NR_RANGES_PAST_ARGSZ, EFAULT, EINVAL,
	0);
/*
 * 2^32 - 1 ranges: above the series' cap of 262144, E2BIG; 7.3 has no cap
 * and cannot copy 64 GiB of ranges in: ENOMEM.
 */
ROW(export_nr_ranges_huge, EXPORT_NR_RANGES_HUGE, E2BIG, ENOMEM, 0);
ROW(export_ranges_unreadable, EXPORT_RANGES_UNREADABLE, EFAULT, 0, 0);
ROW(export_zero_length, EXPORT_ZERO_LENGTH, EINVAL, 0, 0);
ROW(export_unaligned_offset, EXPORT_UNALIGNED_OFFSET, EINVAL, 0, 0);
ROW(export_unaligned_length, EXPORT_UNALIGNED_LENGTH, EINVAL, 0, 0);
ROW(export_range_past_bar, EXPORT_RANGE_PAST_BAR, EINVAL, 0, 0);
ROW(export_range_offset_overflow, EXPORT_RANGE_OFFSET_OVERFLOW, EOVERFLOW, 0,
	0);
ROW(export_lengths_overflow, EXPORT_LENGTHS_OVERFLOW, EINVAL, 0, 0);
ROW(export_length_too_big, EXPORT_LENGTH_TOO_BIG, EINVAL, 0, 0);
ROW(export_config_region, EXPORT_CONFIG_REGION, ENODEV, 0, 0);
ROW(export_rom_region, EXPORT_ROM_REGION, ENODEV, 0, 0);
ROW(export_region_past_bars, EXPORT_REGION_PAST_BARS, ENODEV, 0, 0);
ROW(export_bar_absent, EXPORT_BAR_ABSENT, ENODEV, 0, 0);

/* VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE (SPEC 2.6) */
ROW(revoke_with_get, REVOKE_WITH_GET, EINVAL, 0, NEED_REVOKE);
ROW(revoke_without_set, REVOKE_WITHOUT_SET, EINVAL, 0, NEED_REVOKE);
ROW(revoke_argsz_short, REVOKE_ARGSZ_SHORT, EINVAL, 0, NEED_REVOKE);
ROW(revoke_fd_negative, REVOKE_FD_NEGATIVE, EBADF, 0, NEED_REVOKE);
ROW(revoke_fd_not_open, REVOKE_FD_NOT_OPEN, EBADF, 0, NEED_REVOKE);
ROW(revoke_fd_not_dmabuf, REVOKE_FD_NOT_DMABUF, EINVAL, 0, NEED_REVOKE);
/* An O_PATH fd of the DMABUF: not a file that can be used, EBADF */
ROW(revoke_fd_o_path, REVOKE_FD_O_PATH, EBADF, 0, NEED_REVOKE);
ROW(revoke_fd_other_exporter, REVOKE_FD_OTHER_EXPORTER, ENODEV, 0,
	NEED_REVOKE);
ROW(revoke_fd_other_device, REVOKE_FD_OTHER_DEVICE, ENODEV, 0,
	NEED_REVOKE | NEED_BOCHS);
ROW(revoke_already_revoked, REVOKE_ALREADY_REVOKED, EBADFD, 0, NEED_REVOKE);

/*
 * VFIO_DEVICE_FEATURE_DMA_BUF_MEMATTR is not part of the series any more
 * (write-combining comes back as an export-time flag): no rows for it.
 */

/* A feature number vfio-pci does not know */
ROW(feature_unknown, FEATURE_UNKNOWN, ENOTTY, 0, 0);

/* A udmabuf of a sealed memfd: a DMABUF vfio-pci did not export. */
static int make_udmabuf(int *memfd)
{
	struct udmabuf_create create = { .size = PAGE };
	int dev, fd;

	*memfd = memfd_create("badinput", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	if (*memfd < 0)
		return -1;
	if (ftruncate(*memfd, PAGE) ||
	    fcntl(*memfd, F_ADD_SEALS, F_SEAL_SHRINK))
		return -1;
	dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -1;
	create.memfd = *memfd;
	create.flags = UDMABUF_FLAGS_CLOEXEC;
	fd = ioctl(dev, UDMABUF_CREATE, &create);
	close(dev);
	return fd;
}

FIXTURE_SETUP(badinput)
{
	int fd;

	self->dbuf = -1;
	self->bochs_dbuf = -1;
	self->udmabuf = -1;
	self->memfd = -1;
	self->efd = -1;
	ASSERT_LE(0, stress_dmabuf_count()) TH_LOG("%s not readable", STRESS_BUFINFO);

	self->iommu = iommu_init("iommufd");
	self->ivshmem = vfio_pci_device_init(ivshmem_bdf, self->iommu);
	ASSERT_EQ(SZ_1G, self->ivshmem->bars[BAR].info.size);
	stress_probe_caps(self->ivshmem->fd, BAR, &self->caps);

	if ((variant->needs & NEED_DMABUF_MMAP) && !self->caps.dmabuf_mmap)
		SKIP(return, STRESS_NO_PART2 ": DMABUF mmap() says %s",
		     strerror(self->caps.dmabuf_mmap_errno));
	if ((variant->needs & NEED_REVOKE) && !self->caps.revoke)
		SKIP(return, STRESS_NO_PART2 ": no DMA_BUF_REVOKE");
	if ((variant->needs & NEED_MEMATTR) && !self->caps.memattr)
		SKIP(return, STRESS_NO_PART2 ": no DMA_BUF_MEMATTR");

	self->dbuf = stress_export1(self->ivshmem->fd, BAR, DBUF_OFFSET,
				    DBUF_SIZE);
	ASSERT_LE(0, self->dbuf) TH_LOG("export: %s", strerror(errno));
	/* Opening a device resets it, which takes a while: only if needed */
	if (variant->needs & NEED_BOCHS) {
		self->bochs = vfio_pci_device_init(bochs_bdf, self->iommu);
		self->bochs_dbuf = stress_export1(self->bochs->fd, 0, 0, PAGE);
		ASSERT_LE(0, self->bochs_dbuf)
			TH_LOG("bochs export: %s", strerror(errno));
	}
	self->udmabuf = make_udmabuf(&self->memfd);
	ASSERT_LE(0, self->udmabuf) TH_LOG("udmabuf: %s", strerror(errno));
	self->efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, self->efd);
	fd = dup(self->efd);
	ASSERT_LE(0, fd);
	close(fd);
	self->closed_fd = fd;

	self->bar_map = mmap(NULL, PAGE, PROT_READ, MAP_SHARED,
			     self->ivshmem->fd, self->ivshmem->bars[BAR].info.offset);
	ASSERT_NE(MAP_FAILED, self->bar_map);

	self->noaccess = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->noaccess);
	ASSERT_EQ(0, mprotect((char *)self->noaccess + PAGE, PAGE, PROT_NONE));
}

FIXTURE_TEARDOWN(badinput)
{
	int fds[] = { self->dbuf, self->bochs_dbuf, self->udmabuf, self->memfd,
		      self->efd };
	unsigned int i;

	if (self->bar_map && self->bar_map != MAP_FAILED)
		munmap(self->bar_map, PAGE);
	if (self->noaccess && self->noaccess != MAP_FAILED)
		munmap(self->noaccess, 2 * PAGE);
	for (i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (self->bochs)
		vfio_pci_device_cleanup(self->bochs);
	if (self->ivshmem && !self->ivshmem_closed)
		vfio_pci_device_cleanup(self->ivshmem);
	else if (self->ivshmem)
		vfio_pci_device_free(self->ivshmem);
	if (self->iommu)
		iommu_cleanup(self->iommu);
}

/*
 * VFIO_DEVICE_FEATURE of DMA_BUF with @nr ranges in the argument and
 * nr_ranges @claimed; @argsz_delta is added to the honest argsz.
 */
static int export_raw(int devfd, uint32_t flags, uint32_t region,
		      uint32_t dmabuf_flags, uint32_t claimed,
		      const struct vfio_region_dma_range *ranges, uint32_t nr,
		      long argsz_delta)
{
	struct {
		struct vfio_device_feature f;
		struct vfio_device_feature_dma_buf get;
		struct vfio_region_dma_range r[2];
	} __packed arg = {};

	arg.f.argsz = sizeof(arg.f) + sizeof(arg.get) + nr * sizeof(*ranges) +
		      argsz_delta;
	arg.f.flags = flags;
	arg.get.region_index = region;
	arg.get.open_flags = O_RDWR | O_CLOEXEC;
	arg.get.flags = dmabuf_flags;
	arg.get.nr_ranges = claimed;
	memcpy(arg.r, ranges, nr * sizeof(*ranges));
	return ioctl(devfd, VFIO_DEVICE_FEATURE, &arg);
}

#define GET_DMA_BUF	(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF)

/*
 * The DMA_BUF feature with its argument placed so that the header and
 * struct vfio_device_feature_dma_buf end right where @noaccess's second,
 * PROT_NONE page starts: the ranges are unreadable.
 */
static int export_unreadable_ranges(int devfd, void *noaccess, uint32_t nr,
				    uint32_t argsz_ranges)
{
	size_t hdr = sizeof(struct vfio_device_feature) +
		     sizeof(struct vfio_device_feature_dma_buf);
	struct vfio_device_feature *f;
	struct vfio_device_feature_dma_buf *get;

	f = (void *)((char *)noaccess + PAGE - hdr);
	get = (void *)f->data;
	f->argsz = hdr + argsz_ranges * sizeof(struct vfio_region_dma_range);
	f->flags = GET_DMA_BUF;
	get->region_index = BAR;
	get->open_flags = O_RDWR | O_CLOEXEC;
	get->flags = 0;
	get->nr_ranges = nr;
	return ioctl(devfd, VFIO_DEVICE_FEATURE, f);
}

/* An O_PATH open of the file behind @fd. */
static int open_o_path(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_PATH | O_CLOEXEC);
}

enum result_kind { RES_FD, RES_MAP, RES_INT };

TEST_F(badinput, rejected)
{
	struct vfio_pci_device *iv = self->ivshmem;
	uint64_t bar_off = iv->bars[BAR].info.offset;
	struct vfio_region_dma_range r[2] = {
		{ .offset = 0, .length = PAGE },
	};
	int devfd = iv->fd, dmabufs, fds, vmas, err, ret = -1;
	enum result_kind kind = RES_INT;
	void *map = MAP_FAILED, *helper_map = MAP_FAILED;
	size_t len = PAGE;
	int helper = -1;

	ASSERT_EQ(REGION(BAR), bar_off);

	/* Set-up a row needs, done before counting */
	switch (variant->call) {
	case DMABUF_MMAP_REVOKED:
	case MEMATTR_REVOKED:
	case REVOKE_ALREADY_REVOKED:
		ASSERT_EQ(0, stress_revoke(devfd, self->dbuf))
			TH_LOG("revoke: %s", strerror(errno));
		break;
	case DMABUF_MMAP_DECODE_OFF:
		ASSERT_EQ(0, stress_set_decode(devfd, false));
		break;
	case DMABUF_MMAP_DEVICE_CLOSED:
		/* Every BAR mmap() holds the device open */
		munmap(self->bar_map, PAGE);
		self->bar_map = NULL;
		stress_close_device(iv);
		self->ivshmem_closed = true;
		break;
	case MREMAP_GROW_DMABUF:
		helper_map = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, self->dbuf, 0);
		ASSERT_NE(MAP_FAILED, helper_map) TH_LOG("mmap: %s", strerror(errno));
		break;
	case REVOKE_FD_O_PATH:
		helper = open_o_path(self->dbuf);
		ASSERT_LE(0, helper) TH_LOG("O_PATH: %s", strerror(errno));
		break;
	default:
		break;
	}

	dmabufs = stress_dmabuf_count();
	fds = stress_fd_count();
	vmas = stress_vma_count();

	errno = 0;
	switch (variant->call) {
	case MMAP_PRIVATE:
		kind = RES_MAP;
		map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, devfd, bar_off);
		break;
	case MMAP_OFFSET_AT_END:
		kind = RES_MAP;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, devfd,
			   bar_off + SZ_1G);
		break;
	case MMAP_SPAN_PAST_END:
		kind = RES_MAP;
		len = 2 * PAGE;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, devfd,
			   bar_off + SZ_1G - PAGE);
		break;
	case MMAP_SPAN_INTO_NEXT_REGION:
		kind = RES_MAP;
		len = 2 * PAGE;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, devfd,
			   bar_off + REGION(1) - PAGE);
		break;
	case MMAP_OFFSET_OVERFLOW:
		kind = RES_MAP;
		len = 2 * PAGE;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, devfd,
			   (off_t)(UINT64_MAX - PAGE + 1));
		break;
	case MMAP_LENGTH_ZERO:
		kind = RES_MAP;
		len = 0;
		map = mmap(NULL, 0, PROT_READ, MAP_SHARED, devfd, bar_off);
		break;
	case MMAP_OFFSET_UNALIGNED:
		kind = RES_MAP;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, devfd, bar_off + 8);
		break;
	case MMAP_CONFIG_REGION:
		kind = RES_MAP;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, devfd,
			   REGION(VFIO_PCI_CONFIG_REGION_INDEX));
		break;
	case MMAP_ROM_REGION:
		kind = RES_MAP;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, devfd,
			   REGION(VFIO_PCI_ROM_REGION_INDEX));
		break;
	case MMAP_VGA_REGION:
		kind = RES_MAP;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, devfd,
			   REGION(VFIO_PCI_VGA_REGION_INDEX));
		break;
	case MMAP_REGION_PAST_LAST:
		kind = RES_MAP;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, devfd,
			   REGION(iv->info.num_regions));
		break;
	case MMAP_BAR_ABSENT:
		ASSERT_EQ(0, iv->bars[1].info.size);
		kind = RES_MAP;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, devfd, REGION(1));
		break;
	case MREMAP_GROW_BAR:
		kind = RES_MAP;
		len = 2 * PAGE;
		map = mremap(self->bar_map, PAGE, len, MREMAP_MAYMOVE);
		if (map != MAP_FAILED)
			self->bar_map = NULL;	/* moved: unmapped below */
		break;
	case MREMAP_GROW_DMABUF:
		kind = RES_MAP;
		len = 2 * PAGE;
		map = mremap(helper_map, PAGE, len, MREMAP_MAYMOVE);
		if (map != MAP_FAILED)
			helper_map = MAP_FAILED;
		break;

	case DMABUF_MMAP_PRIVATE:
		kind = RES_MAP;
		map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, self->dbuf, 0);
		break;
	case DMABUF_MMAP_OFFSET_AT_END:
		kind = RES_MAP;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, self->dbuf,
			   DBUF_SIZE);
		break;
	case DMABUF_MMAP_SPAN_PAST_END:
		kind = RES_MAP;
		len = 2 * PAGE;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, self->dbuf,
			   DBUF_SIZE - PAGE);
		break;
	case DMABUF_MMAP_OFFSET_OVERFLOW:
		kind = RES_MAP;
		len = 2 * PAGE;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, self->dbuf,
			   (off_t)(UINT64_MAX - PAGE + 1));
		break;
	case DMABUF_MMAP_REVOKED:
	case DMABUF_MMAP_DECODE_OFF:
	case DMABUF_MMAP_DEVICE_CLOSED:
		kind = RES_MAP;
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, self->dbuf, 0);
		break;

	case EXPORT_WITH_SET:
		kind = RES_FD;
		ret = export_raw(devfd, VFIO_DEVICE_FEATURE_SET |
				 VFIO_DEVICE_FEATURE_DMA_BUF, BAR, 0, 1, r, 1, 0);
		break;
	case EXPORT_WITHOUT_GET:
		kind = RES_FD;
		ret = export_raw(devfd, VFIO_DEVICE_FEATURE_DMA_BUF, BAR, 0, 1,
				 r, 1, 0);
		break;
	case EXPORT_GET_AND_SET:
		kind = RES_FD;
		ret = export_raw(devfd, GET_DMA_BUF | VFIO_DEVICE_FEATURE_SET,
				 BAR, 0, 1, r, 1, 0);
		break;
	case EXPORT_UNKNOWN_FEATURE_FLAG:
		kind = RES_FD;
		ret = export_raw(devfd, GET_DMA_BUF | (1u << 20), BAR, 0, 1, r,
				 1, 0);
		break;
	case EXPORT_ARGSZ_SHORT:
		kind = RES_FD;
		/* argsz ends in the middle of struct vfio_device_feature_dma_buf */
		ret = export_raw(devfd, GET_DMA_BUF, BAR, 0, 1, r, 1,
				 -(long)sizeof(r[0]) - 8);
		break;
	case EXPORT_FLAGS_NONZERO:
		/* a flag no kernel defines (bit 0 is VFIO_DMA_BUF_FLAG_MMAP_WC) */
		kind = RES_FD;
		ret = export_raw(devfd, GET_DMA_BUF, BAR, 1u << 31, 1, r, 1, 0);
		break;
	case EXPORT_NR_RANGES_ZERO:
		kind = RES_FD;
		ret = export_raw(devfd, GET_DMA_BUF, BAR, 0, 0, r, 0, 0);
		break;
	case EXPORT_NR_RANGES_PAST_ARGSZ:
		kind = RES_FD;
		ret = export_unreadable_ranges(devfd, self->noaccess, 1, 0);
		break;
	case EXPORT_NR_RANGES_HUGE:
		kind = RES_FD;
		ret = export_unreadable_ranges(devfd, self->noaccess,
					       UINT32_MAX, 0);
		break;
	case EXPORT_RANGES_UNREADABLE:
		kind = RES_FD;
		/* argsz covers the range, but its page is PROT_NONE */
		ret = export_unreadable_ranges(devfd, self->noaccess, 1, 1);
		break;
	case EXPORT_ZERO_LENGTH:
		kind = RES_FD;
		r[0].length = 0;
		ret = export_raw(devfd, GET_DMA_BUF, BAR, 0, 1, r, 1, 0);
		break;
	case EXPORT_UNALIGNED_OFFSET:
		kind = RES_FD;
		r[0].offset = 8;
		ret = export_raw(devfd, GET_DMA_BUF, BAR, 0, 1, r, 1, 0);
		break;
	case EXPORT_UNALIGNED_LENGTH:
		kind = RES_FD;
		r[0].length = PAGE + 8;
		ret = export_raw(devfd, GET_DMA_BUF, BAR, 0, 1, r, 1, 0);
		break;
	case EXPORT_RANGE_PAST_BAR:
		kind = RES_FD;
		r[0].offset = SZ_1G - PAGE;
		r[0].length = 2 * PAGE;
		ret = export_raw(devfd, GET_DMA_BUF, BAR, 0, 1, r, 1, 0);
		break;
	case EXPORT_RANGE_OFFSET_OVERFLOW:
		kind = RES_FD;
		r[0].offset = UINT64_MAX - PAGE + 1;
		ret = export_raw(devfd, GET_DMA_BUF, BAR, 0, 1, r, 1, 0);
		break;
	case EXPORT_LENGTHS_OVERFLOW:
		kind = RES_FD;
		r[0].length = 1ULL << 63;
		r[1].length = 1ULL << 63;
		ret = export_raw(devfd, GET_DMA_BUF, BAR, 0, 2, r, 2, 0);
		break;
	case EXPORT_LENGTH_TOO_BIG:
		kind = RES_FD;
		r[0].length = 1ULL << 63;
		ret = export_raw(devfd, GET_DMA_BUF, BAR, 0, 1, r, 1, 0);
		break;
	case EXPORT_CONFIG_REGION:
		kind = RES_FD;
		ret = export_raw(devfd, GET_DMA_BUF, VFIO_PCI_CONFIG_REGION_INDEX,
				 0, 1, r, 1, 0);
		break;
	case EXPORT_ROM_REGION:
		kind = RES_FD;
		ret = export_raw(devfd, GET_DMA_BUF, VFIO_PCI_ROM_REGION_INDEX,
				 0, 1, r, 1, 0);
		break;
	case EXPORT_REGION_PAST_BARS:
		kind = RES_FD;
		ret = export_raw(devfd, GET_DMA_BUF, 100, 0, 1, r, 1, 0);
		break;
	case EXPORT_BAR_ABSENT:
		kind = RES_FD;
		ret = export_raw(devfd, GET_DMA_BUF, 1, 0, 1, r, 1, 0);
		break;

	case REVOKE_WITH_GET: {
		struct vfio_device_feature_dma_buf_revoke a = { self->dbuf };

		ret = stress_feature(devfd, VFIO_DEVICE_FEATURE_GET |
				     VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE,
				     &a, sizeof(a));
		break;
	}
	case REVOKE_WITHOUT_SET: {
		struct vfio_device_feature_dma_buf_revoke a = { self->dbuf };

		ret = stress_feature(devfd, VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE,
				     &a, sizeof(a));
		break;
	}
	case REVOKE_ARGSZ_SHORT:
		ret = stress_feature(devfd, VFIO_DEVICE_FEATURE_SET |
				     VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE, NULL, 0);
		break;
	case REVOKE_FD_NEGATIVE:
		ret = stress_revoke(devfd, -1);
		break;
	case REVOKE_FD_NOT_OPEN:
		ret = stress_revoke(devfd, self->closed_fd);
		break;
	case REVOKE_FD_NOT_DMABUF:
		ret = stress_revoke(devfd, self->efd);
		break;
	case REVOKE_FD_O_PATH:
		ret = stress_revoke(devfd, helper);
		break;
	case REVOKE_FD_OTHER_EXPORTER:
		ret = stress_revoke(devfd, self->udmabuf);
		break;
	case REVOKE_FD_OTHER_DEVICE:
		ret = stress_revoke(devfd, self->bochs_dbuf);
		break;
	case REVOKE_ALREADY_REVOKED:
		ret = stress_revoke(devfd, self->dbuf);
		break;

	case MEMATTR_UNKNOWN:
		ret = stress_memattr(devfd, self->dbuf, 2);
		break;
	case MEMATTR_ALL_ONES:
		ret = stress_memattr(devfd, self->dbuf, UINT32_MAX);
		break;
	case MEMATTR_WITH_GET: {
		struct vfio_device_feature_dma_buf_memattr a = {
			self->dbuf, VFIO_DMA_BUF_MEMATTR_WC
		};

		ret = stress_feature(devfd, VFIO_DEVICE_FEATURE_GET |
				     VFIO_DEVICE_FEATURE_DMA_BUF_MEMATTR,
				     &a, sizeof(a));
		break;
	}
	case MEMATTR_ARGSZ_SHORT: {
		int32_t a = self->dbuf;

		ret = stress_feature(devfd, VFIO_DEVICE_FEATURE_SET |
				     VFIO_DEVICE_FEATURE_DMA_BUF_MEMATTR,
				     &a, sizeof(a));
		break;
	}
	case MEMATTR_FD_NOT_OPEN:
		ret = stress_memattr(devfd, self->closed_fd, VFIO_DMA_BUF_MEMATTR_WC);
		break;
	case MEMATTR_FD_NOT_DMABUF:
		ret = stress_memattr(devfd, self->efd, VFIO_DMA_BUF_MEMATTR_WC);
		break;
	case MEMATTR_FD_OTHER_EXPORTER:
		ret = stress_memattr(devfd, self->udmabuf, VFIO_DMA_BUF_MEMATTR_WC);
		break;
	case MEMATTR_FD_OTHER_DEVICE:
		ret = stress_memattr(devfd, self->bochs_dbuf,
				     VFIO_DMA_BUF_MEMATTR_WC);
		break;
	case MEMATTR_REVOKED:
		ret = stress_memattr(devfd, self->dbuf, VFIO_DMA_BUF_MEMATTR_WC);
		break;

	case FEATURE_UNKNOWN:
		ret = stress_feature(devfd, VFIO_DEVICE_FEATURE_SET | 0x7ff,
				     NULL, 0);
		break;
	}
	err = errno;

	if (variant->call == DMABUF_MMAP_DECODE_OFF)
		ASSERT_EQ(0, stress_set_decode(devfd, true));

	if (kind == RES_MAP) {
		TH_LOG("mmap(len %#zx) = %p, errno %d (%s)", len, map, err,
		       strerror(err));
		if (map != MAP_FAILED)
			munmap(map, len);
		ASSERT_EQ(MAP_FAILED, map);
	} else {
		TH_LOG("ioctl = %d, errno %d (%s)", ret, err, strerror(err));
		if (kind == RES_FD && ret >= 0)
			close(ret);
		ASSERT_EQ(-1, ret);
	}
	if (variant->alt_err && err == variant->alt_err)
		TH_LOG("errno %d (%s) accepted instead of %d (%s)", err,
		       strerror(err), variant->err, strerror(variant->err));
	else
		ASSERT_EQ(variant->err, err);

	/* Nothing left behind */
	ASSERT_EQ(dmabufs, stress_dmabuf_count());
	ASSERT_EQ(fds, stress_fd_count());
	ASSERT_EQ(vmas, stress_vma_count());
	if (helper >= 0)
		close(helper);
	if (helper_map != MAP_FAILED)
		munmap(helper_map, PAGE);
}

int main(int argc, char *argv[])
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s IVSHMEM_BDF BOCHS_BDF [harness options]\n",
			argv[0]);
		return KSFT_FAIL;
	}
	ivshmem_bdf = argv[1];
	bochs_bdf = argv[2];
	/* Harness options (-t, -v, ...) may follow the BDFs */
	argv[2] = argv[0];
	return test_harness_run(argc - 2, argv + 2);
}
