// SPDX-License-Identifier: GPL-2.0-only
/*
 * Peer-to-peer DMA from a real (emulated) device into ivshmem's BAR2, and
 * revocation stopping it.
 *
 *   vfio_p2p_dma_test [harness options] P2P_NET_BDF IVSHMEM_BDF
 *
 * A minimal userspace virtio-net driver over the VFIO cdev and iommufd
 * drives the lab's second virtio-net (iommu_platform=on, so its DMA goes
 * through the IOMMU): only the TX queue (1), split ring in anonymous
 * memory mapped in the IOAS, no interrupts (the used ring is polled with a
 * bounded wait). Each frame is a 12-byte virtio_net_hdr chained to a
 * payload descriptor whose IOVA is ivshmem's BAR2, imported either as a
 * DMABUF exported with VFIO_DEVICE_FEATURE_DMA_BUF (IOMMU_IOAS_MAP_FILE) or
 * by the address of an mmap() of the BAR (IOMMU_IOAS_MAP, SPEC §2.9).
 *
 * The outer QEMU dumps what the device sends to $LAB_OUT/p2p.pcap; each
 * case appends to $VFIO_LAB_P2P_FRAMES what the host must find there
 * (tests/p2p/check_frames.py):
 *   frame CASE BAR_OFFSET LEN  exactly one frame equals BAR2[off, off+len)
 *   none CASE BAR_OFFSET LEN   no frame holds those (secret) bytes
 * A "frame" line is written only once the device has reported the frame
 * sent (used ring), a "none" line before the attempt.
 *
 * What the device reports when the IOVA does not translate (QEMU 7.2,
 * measured here, see hw/virtio/virtio.c virtqueue_map_desc() and
 * softmmu/physmem.c address_space_map()): the IOMMU translation fails, the
 * address resolves to unassigned memory, which address_space_map() serves
 * through its bounce buffer, read as zeros. So the chain IS consumed (used
 * idx advances, device_status stays 0x0f, no NEEDS_RESET: virtio_error() is
 * reached only when the map itself fails) and a frame of zeros of the
 * payload's length goes out, while the vIOMMU records a DMAR fault that the
 * guest kernel logs ("DMAR: [DMA Read NO_PASID] Request device [BDF] fault
 * addr IOVA"), though QEMU compresses repeated faults of one device, so not
 * every fault is logged. Hence:
 *   - a phase that must reach BAR2 fails here if a DMAR fault of this
 *     device at the payload's IOVA page is logged, and on the host if its
 *     frame is not exactly the BAR2 bytes;
 *   - a phase that must not reach BAR2 writes "none" (no frame may hold the
 *     secret) and, if the device consumed the chain, "zeros CASE LEN": one
 *     all-zero frame of LEN bytes is explained by it. A device that reports
 *     NEEDS_RESET instead (virtio_error()) is accepted too, and restarted.
 * Payload bytes come from VFIO_LAB_SEED and the phase; they go to bytes
 * 2048..3071 of pages from BAR2 offset 512 MiB (the lab's other tests use
 * the first 32 bytes of pages), a 2 MiB window per case, one page per phase.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/sizes.h>
#include <linux/vfio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include <libvfio.h>

#include "ivshmem_pattern.h"
#include "kselftest_harness.h"

static const char *net_bdf, *ivshmem_bdf;

#define IVSHMEM_BAR	2
#define TXQ		1
#define QSIZE_MAX	256
#define RING_IOVA	0x100000ULL
#define RING_SIZE	(4 * SZ_4K)
#define WIN_IOVA	0x40000000ULL
#define WIN_SIZE	SZ_2M
#define WIN_BASE	SZ_512M		/* BAR2 offset of case 0's window */
#define PAYLOAD_OFF	2048		/* inside each page */
#define PAYLOAD_LEN	1024
#define TX_WAIT_MS	5000
#define HDR_LEN		12		/* virtio_net_hdr_v1 (VERSION_1) */

/*
 * How the case's window of BAR2 gets into the IOAS: IOMMU_IOAS_MAP_FILE of an
 * exported DMABUF; IOMMU_IOAS_MAP of a BAR mmap() (a slice 1 MiB into a
 * mapping that starts 1 MiB before the window, so the offset of the address
 * inside the mapping counts); IOMMU_IOAS_MAP of an mmap() of an exported
 * DMABUF (that DMABUF is imported).
 */
enum p2p_path { PATH_DMABUF, PATH_VADDR, PATH_DMABUF_VADDR };

#define WIN_PAD		SZ_1M		/* BAR mmap() before and after the window */

enum tx_result { TX_SENT, TX_FAULT, TX_TIMEOUT };

struct virtio_regs {
	int common_bar, notify_bar, device_bar;
	u64 common, notify, device;
	u32 notify_mult;
};

FIXTURE(p2p) {
	struct iommu *iommu;
	struct vfio_pci_device *net;
	struct vfio_pci_device *ivshmem;
	struct virtio_regs regs;
	void *ring;
	struct dma_region ring_region;
	u16 qsize;
	u16 avail_idx;
	u16 notify_off;
	u8 mac[6];
	u64 seed;
	FILE *frames;
	const char *name;
	int index;
	/* the BAR2 window: DMABUF import or mmap() + by-address import */
	int dmabuf;
	void *win;
	struct dma_region win_region;
	bool win_mapped;
	/* what the last TX saw */
	u8 status;
	u16 used_idx;
	int kmsg;	/* /dev/kmsg, read from the end, for DMAR faults */
	size_t win_len;	/* of the mmap() at win */
};

/* --- virtio-pci modern transport through the VFIO region --- */

static void reg_write(struct vfio_pci_device *d, int bar, u64 off,
		      u64 val, size_t len)
{
	VFIO_ASSERT_EQ(vfio_pci_bar_write(d, bar, off, &val, len), 0);
}

static u64 reg_read(struct vfio_pci_device *d, int bar, u64 off, size_t len)
{
	u64 val = 0;

	VFIO_ASSERT_EQ(vfio_pci_bar_read(d, bar, off, &val, len), 0);
	return val;
}

#define common_write(s, f, v, l) \
	reg_write((s)->net, (s)->regs.common_bar, (s)->regs.common + (f), v, l)
#define common_read(s, f, l) \
	reg_read((s)->net, (s)->regs.common_bar, (s)->regs.common + (f), l)

/* Find the common, notify and device config structures (virtio 1.x 4.1.4). */
static int find_virtio_caps(struct vfio_pci_device *d, struct virtio_regs *r)
{
	int found = 0, n = 0;
	u8 pos;

	pos = vfio_pci_config_readb(d, PCI_CAPABILITY_LIST) & ~3;
	while (pos >= 0x40 && n++ < 48) {
		u8 id = vfio_pci_config_readb(d, pos);
		u8 type = vfio_pci_config_readb(d, pos + 3);
		u8 bar = vfio_pci_config_readb(d, pos + 4);
		u32 off = vfio_pci_config_readl(d, pos + 8);

		if (id == PCI_CAP_ID_VNDR && bar < PCI_STD_NUM_BARS) {
			if (type == VIRTIO_PCI_CAP_COMMON_CFG && !(found & 1)) {
				r->common_bar = bar;
				r->common = off;
				found |= 1;
			} else if (type == VIRTIO_PCI_CAP_NOTIFY_CFG && !(found & 2)) {
				r->notify_bar = bar;
				r->notify = off;
				r->notify_mult = vfio_pci_config_readl(d, pos + 16);
				found |= 2;
			} else if (type == VIRTIO_PCI_CAP_DEVICE_CFG && !(found & 4)) {
				r->device_bar = bar;
				r->device = off;
				found |= 4;
			}
		}
		pos = vfio_pci_config_readb(d, pos + 1) & ~3;
	}
	return found == 7 ? 0 : -1;
}

static u8 vnet_status(FIXTURE_DATA(p2p) *self)
{
	return common_read(self, VIRTIO_PCI_COMMON_STATUS, 1);
}

static void vnet_set_status(FIXTURE_DATA(p2p) *self, u8 bits)
{
	common_write(self, VIRTIO_PCI_COMMON_STATUS, vnet_status(self) | bits, 1);
}

static u64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* Reset the device; 0 once it reads back 0 (bounded wait). */
static int vnet_reset(FIXTURE_DATA(p2p) *self)
{
	u64 end = now_ms() + TX_WAIT_MS;

	common_write(self, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	while (vnet_status(self)) {
		if (now_ms() > end)
			return -1;
		usleep(1000);
	}
	return 0;
}

static struct vring_desc *ring_desc(FIXTURE_DATA(p2p) *self)
{
	return self->ring;
}

static struct vring_avail *ring_avail(FIXTURE_DATA(p2p) *self)
{
	return (struct vring_avail *)((char *)self->ring + SZ_4K);
}

static struct vring_used *ring_used(FIXTURE_DATA(p2p) *self)
{
	return (struct vring_used *)((char *)self->ring + 2 * SZ_4K);
}

#define HDR_OFFSET	(3 * SZ_4K)

/*
 * Reset, negotiate VERSION_1 + ACCESS_PLATFORM, set up the TX queue only,
 * DRIVER_OK (virtio 1.x 3.1.1). Returns NULL or what went wrong.
 */
static const char *vnet_start(FIXTURE_DATA(p2p) *self)
{
	u32 hi, q;

	if (vnet_reset(self))
		return "device_status does not read back 0 after reset";
	memset(self->ring, 0, RING_SIZE);
	self->avail_idx = 0;
	vnet_set_status(self, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	vnet_set_status(self, VIRTIO_CONFIG_S_DRIVER);
	common_write(self, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	hi = common_read(self, VIRTIO_PCI_COMMON_DF, 4);
	if (!(hi & (1U << (VIRTIO_F_VERSION_1 - 32))))
		return "the device does not offer VIRTIO_F_VERSION_1";
	if (!(hi & (1U << (VIRTIO_F_ACCESS_PLATFORM - 32))))
		return "the device does not offer VIRTIO_F_ACCESS_PLATFORM (iommu_platform=on?)";
	common_write(self, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	common_write(self, VIRTIO_PCI_COMMON_GF, 0, 4);
	common_write(self, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	common_write(self, VIRTIO_PCI_COMMON_GF,
		     (1U << (VIRTIO_F_VERSION_1 - 32)) |
		     (1U << (VIRTIO_F_ACCESS_PLATFORM - 32)), 4);
	vnet_set_status(self, VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(vnet_status(self) & VIRTIO_CONFIG_S_FEATURES_OK))
		return "the device refused FEATURES_OK";
	common_write(self, VIRTIO_PCI_COMMON_MSIX, VIRTIO_MSI_NO_VECTOR, 2);
	common_write(self, VIRTIO_PCI_COMMON_Q_SELECT, TXQ, 2);
	q = common_read(self, VIRTIO_PCI_COMMON_Q_SIZE, 2);
	if (!q)
		return "TX queue size 0";
	if (q > QSIZE_MAX) {
		q = QSIZE_MAX;
		common_write(self, VIRTIO_PCI_COMMON_Q_SIZE, q, 2);
	}
	self->qsize = q;
	common_write(self, VIRTIO_PCI_COMMON_Q_MSIX, VIRTIO_MSI_NO_VECTOR, 2);
	common_write(self, VIRTIO_PCI_COMMON_Q_DESCLO, RING_IOVA, 4);
	common_write(self, VIRTIO_PCI_COMMON_Q_DESCHI, RING_IOVA >> 32, 4);
	common_write(self, VIRTIO_PCI_COMMON_Q_AVAILLO, RING_IOVA + SZ_4K, 4);
	common_write(self, VIRTIO_PCI_COMMON_Q_AVAILHI, (RING_IOVA + SZ_4K) >> 32, 4);
	common_write(self, VIRTIO_PCI_COMMON_Q_USEDLO, RING_IOVA + 2 * SZ_4K, 4);
	common_write(self, VIRTIO_PCI_COMMON_Q_USEDHI, (RING_IOVA + 2 * SZ_4K) >> 32, 4);
	self->notify_off = common_read(self, VIRTIO_PCI_COMMON_Q_NOFF, 2);
	common_write(self, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	vnet_set_status(self, VIRTIO_CONFIG_S_DRIVER_OK);
	if (vnet_status(self) & (VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED))
		return "the device reports an error right after DRIVER_OK";
	return NULL;
}

/*
 * Send one frame: the header chained to @len bytes at @iova. Polls the used
 * ring and device_status for up to TX_WAIT_MS.
 */
static enum tx_result vnet_tx(FIXTURE_DATA(p2p) *self, u64 iova, u32 len)
{
	struct vring_desc *desc = ring_desc(self);
	struct vring_avail *avail = ring_avail(self);
	struct vring_used *used = ring_used(self);
	u16 want = self->avail_idx + 1;
	u64 end = now_ms() + TX_WAIT_MS;

	desc[0].addr = RING_IOVA + HDR_OFFSET;
	desc[0].len = HDR_LEN;
	desc[0].flags = VRING_DESC_F_NEXT;
	desc[0].next = 1;
	desc[1].addr = iova;
	desc[1].len = len;
	desc[1].flags = 0;
	desc[1].next = 0;
	avail->ring[self->avail_idx % self->qsize] = 0;
	__sync_synchronize();
	avail->idx = want;
	self->avail_idx = want;
	__sync_synchronize();
	reg_write(self->net, self->regs.notify_bar,
		  self->regs.notify + (u64)self->notify_off * self->regs.notify_mult,
		  TXQ, 2);
	for (;;) {
		self->used_idx = READ_ONCE(used->idx);
		self->status = vnet_status(self);
		if (self->used_idx == want)
			return TX_SENT;
		if (self->status & VIRTIO_CONFIG_S_NEEDS_RESET)
			return TX_FAULT;
		if (now_ms() > end)
			return TX_TIMEOUT;
		usleep(1000);
	}
}

/* --- the guest kernel's log: DMAR faults of the device --- */

/* Skip what the log holds so far. */
static void kmsg_skip(FIXTURE_DATA(p2p) *self)
{
	if (self->kmsg >= 0)
		lseek(self->kmsg, 0, SEEK_END);
}

/*
 * Wait up to @ms for a logged DMAR fault of the device at the page of
 * @iova. Returns true if one was logged.
 */
static bool kmsg_dmar_fault(FIXTURE_DATA(p2p) *self, u64 iova, int ms)
{
	char rec[8192], want[96];
	u64 end = now_ms() + ms;
	ssize_t n;

	if (self->kmsg < 0)
		return false;
	snprintf(want, sizeof(want), "%s] fault addr %#llx ", net_bdf,
		 (unsigned long long)(iova & ~(u64)(SZ_4K - 1)));
	for (;;) {
		n = read(self->kmsg, rec, sizeof(rec) - 1);
		if (n > 0) {
			rec[n] = 0;
			if (strstr(rec, "DMAR") && strstr(rec, want))
				return true;
			continue;
		}
		if (n < 0 && errno == EPIPE)
			continue;
		if (now_ms() > end)
			return false;
		usleep(10000);
	}
}

/*
 * Does the device's IOMMU page table translate @iova? The oracle is the
 * Intel IOMMU driver's debugfs dump of the second-level table of the
 * device's domain (CONFIG_INTEL_IOMMU_DEBUGFS; the lab's vIOMMU runs in
 * legacy mode): one line per present leaf, "0x<IOVA PFN> | <PML5E> <PML4E>
 * <PDPE> [<PDE> [<PTE>]]", the leaf being a 1 GiB, 2 MiB or 4 KiB page by
 * the number of entries printed. Returns 1 or 0, or -errno when the dump
 * cannot be read. It tells a revoked import from one QEMU merely cannot
 * reach: with memory decode off QEMU unmaps the BAR itself, so the device
 * would read zeros through a stale IOMMU entry too.
 */
static int iova_mapped(u64 iova)
{
	char path[128], line[512];
	int found = 0, ok = 0;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/kernel/debug/iommu/intel/%s/domain_translation_struct",
		 net_bdf);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long pfn, e[5];
		int n;

		if (strstr(line, "IOVA_PFN"))
			ok = 1;
		n = sscanf(line, "0x%llx | 0x%llx 0x%llx 0x%llx 0x%llx 0x%llx",
			   &pfn, &e[0], &e[1], &e[2], &e[3], &e[4]);
		if (n < 4)
			continue;
		/* 4 values: a 1 GiB leaf, 5: 2 MiB, 6: 4 KiB */
		if (iova >> 12 >= pfn &&
		    iova >> 12 < pfn + (n == 4 ? 1ULL << 18 : n == 5 ? 1ULL << 9 : 1))
			found = 1;
	}
	fclose(f);
	return ok ? found : -ENOENT;
}

#define ASSERT_IOVA_MAPPED(_iova, _want) do {				\
	int __m = iova_mapped(_iova);					\
									\
	ASSERT_EQ((_want), __m) TH_LOG("IOVA %#llx in %s's IOMMU page table: %s", \
				       (unsigned long long)(_iova), net_bdf, \
				       __m < 0 ? strerror(-__m) :	\
				       __m ? "mapped" : "not mapped");	\
} while (0)

/* --- payloads in ivshmem's BAR2 --- */

static u64 win_base(FIXTURE_DATA(p2p) *self)
{
	return WIN_BASE + (u64)self->index * WIN_SIZE;
}

/* BAR2 offset of phase @k's payload (page k of the case's window) */
static u64 phase_off(FIXTURE_DATA(p2p) *self, int k)
{
	return win_base(self) + (u64)k * SZ_4K + PAYLOAD_OFF;
}

static u64 phase_iova(int k)
{
	return WIN_IOVA + (u64)k * SZ_4K + PAYLOAD_OFF;
}

/*
 * Write phase @k's payload into BAR2 through the VFIO region: an Ethernet
 * header (locally administered destination, the NIC's MAC, the local
 * experimental EtherType 0x88b5, which the user netdev ignores) and
 * pseudo-random bytes of (seed, case, phase).
 */
static int write_payload(FIXTURE_DATA(p2p) *self, int k)
{
	static const u8 dst[6] = { 0x02, 0x1a, 0xb0, 0x00, 0x00, 0x01 };
	u8 buf[PAYLOAD_LEN];
	u64 x = 0;
	int i;

	for (i = 0; i < PAYLOAD_LEN; i++) {
		if (!(i % 8))
			x = ivshmem_pattern(self->seed ^ ((u64)self->index << 40) ^
					    ((u64)k << 32), i / 8);
		buf[i] = x >> (8 * (i % 8));
	}
	memcpy(buf, dst, 6);
	memcpy(buf + 6, self->mac, 6);
	buf[12] = 0x88;
	buf[13] = 0xb5;
	return vfio_pci_bar_write(self->ivshmem, IVSHMEM_BAR, phase_off(self, k),
				  buf, sizeof(buf));
}

static void record(FIXTURE_DATA(p2p) *self, const char *what, int k)
{
	if (!strcmp(what, "zeros"))
		fprintf(self->frames, "zeros %s %d\n", self->name, PAYLOAD_LEN);
	else
		fprintf(self->frames, "%s %s %#llx %d\n", what, self->name,
			(unsigned long long)phase_off(self, k), PAYLOAD_LEN);
	fflush(self->frames);
}

/* --- the BAR2 window in the IOAS --- */

/* Import the case's 2 MiB window of BAR2 at WIN_IOVA by @path; 0 or -errno */
static int map_window(FIXTURE_DATA(p2p) *self, enum p2p_path path)
{
	u64 iova = WIN_IOVA;
	int ret;

	if (path == PATH_DMABUF) {
		self->dmabuf = vfio_pci_dmabuf_export(self->ivshmem, IVSHMEM_BAR,
						      win_base(self), WIN_SIZE);
		if (self->dmabuf < 0)
			return self->dmabuf;
		ret = iommufd_ioas_map_file(self->iommu->iommufd,
					    self->iommu->ioas_id, self->dmabuf,
					    0, WIN_SIZE, &iova, true);
	} else {
		u64 off = win_base(self) - WIN_PAD;

		self->win_len = WIN_SIZE + 2 * WIN_PAD;
		if (path == PATH_DMABUF_VADDR) {
			self->dmabuf = vfio_pci_dmabuf_export(self->ivshmem, IVSHMEM_BAR,
							      off, self->win_len);
			if (self->dmabuf < 0)
				return self->dmabuf;
			self->win = mmap(NULL, self->win_len, PROT_READ | PROT_WRITE,
					 MAP_SHARED, self->dmabuf, 0);
		} else {
			self->win = vfio_pci_bar_mmap(self->ivshmem, IVSHMEM_BAR,
						      off, self->win_len,
						      PROT_READ | PROT_WRITE);
		}
		if (self->win == MAP_FAILED) {
			self->win = NULL;
			return -errno;
		}
		self->win_region.vaddr = (char *)self->win + WIN_PAD;
		self->win_region.iova = WIN_IOVA;
		self->win_region.size = WIN_SIZE;
		ret = __iommu_map(self->iommu, &self->win_region);
	}
	self->win_mapped = !ret;
	return ret;
}

static const char *path_name(enum p2p_path path)
{
	return path == PATH_DMABUF ? "IOMMU_IOAS_MAP_FILE of a BAR2 DMABUF" :
	       path == PATH_VADDR ? "IOMMU_IOAS_MAP of a BAR2 mmap()" :
				    "IOMMU_IOAS_MAP of an mmap() of a BAR2 DMABUF";
}

static const char *tx_name(enum tx_result r)
{
	return r == TX_SENT ? "sent" : r == TX_FAULT ? "NEEDS_RESET" : "timeout";
}

FIXTURE_SETUP(p2p)
{
	const char *seed = getenv("VFIO_LAB_SEED");
	const char *frames = getenv("VFIO_LAB_P2P_FRAMES");
	const char *err;
	int i;

	ASSERT_NE(NULL, seed) TH_LOG("VFIO_LAB_SEED is not set");
	ASSERT_NE(NULL, frames) TH_LOG("VFIO_LAB_P2P_FRAMES is not set");
	self->seed = strtoull(seed, NULL, 0);
	self->frames = fopen(frames, "a");
	ASSERT_NE(NULL, self->frames) TH_LOG("%s: %s", frames, strerror(errno));
	self->dmabuf = -1;
	self->kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_GE(self->kmsg, 0) TH_LOG("/dev/kmsg: %s", strerror(errno));
	self->iommu = iommu_init("iommufd");
	self->net = vfio_pci_device_init(net_bdf, self->iommu);
	self->ivshmem = vfio_pci_device_init(ivshmem_bdf, self->iommu);
	ASSERT_TRUE(vfio_pci_device_match(self->net, 0x1af4, 0x1041))
		TH_LOG("%s is not a modern virtio-net", net_bdf);
	ASSERT_GE(self->ivshmem->bars[IVSHMEM_BAR].info.size,
		  (u64)WIN_BASE + 16 * WIN_SIZE);
	ASSERT_EQ(0, find_virtio_caps(self->net, &self->regs))
		TH_LOG("no virtio common/notify/device capabilities on %s", net_bdf);
	for (i = 0; i < 6; i++)
		self->mac[i] = reg_read(self->net, self->regs.device_bar,
					self->regs.device + i, 1);
	vfio_pci_cmd_set(self->net, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	self->ring = mmap(NULL, RING_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->ring);
	memset(self->ring, 0, RING_SIZE);
	self->ring_region.vaddr = self->ring;
	self->ring_region.iova = RING_IOVA;
	self->ring_region.size = RING_SIZE;
	iommu_map(self->iommu, &self->ring_region);
	err = vnet_start(self);
	ASSERT_EQ(NULL, err) TH_LOG("%s: %s", net_bdf, err);
	TH_LOG("%s: MAC %02x:%02x:%02x:%02x:%02x:%02x, TX queue size %u, notify %d:%#llx",
	       net_bdf, self->mac[0], self->mac[1], self->mac[2], self->mac[3],
	       self->mac[4], self->mac[5], self->qsize, self->regs.notify_bar,
	       (unsigned long long)(self->regs.notify +
				    (u64)self->notify_off * self->regs.notify_mult));
}

FIXTURE_TEARDOWN(p2p)
{
	if (self->net) {
		vnet_reset(self);
		vfio_pci_device_cleanup(self->net);
	}
	if (self->win)
		munmap(self->win, self->win_len);
	if (self->ivshmem)
		vfio_pci_device_cleanup(self->ivshmem);
	if (self->dmabuf >= 0)
		close(self->dmabuf);
	if (self->iommu)
		iommu_cleanup(self->iommu);
	if (self->frames)
		fclose(self->frames);
	if (self->kmsg >= 0)
		close(self->kmsg);
}

/* Start the case: its name and window index, then import the window. */
#define P2P_BEGIN(_index, _path) do {					\
	int __ret;							\
									\
	self->name = _metadata->name;					\
	self->index = (_index);						\
	__ret = map_window(self, (_path));				\
	ASSERT_EQ(0, __ret) TH_LOG("%s of BAR2 [%#llx, +%#x): %s",	\
				   path_name(_path),			\
				   (unsigned long long)win_base(self),	\
				   WIN_SIZE, strerror(-__ret));		\
} while (0)

/*
 * Phase @k must reach the wire: payload written, sent without a DMAR fault,
 * recorded (a frame sent despite a logged fault is the zeros QEMU read).
 */
#define EXPECT_FRAME(_k) do {						\
	enum tx_result _r;						\
	bool _fault;							\
									\
	ASSERT_EQ(0, write_payload(self, (_k)));			\
	ASSERT_IOVA_MAPPED(phase_iova(_k), 1);				\
	kmsg_skip(self);						\
	_r = vnet_tx(self, phase_iova(_k), PAYLOAD_LEN);		\
	_fault = kmsg_dmar_fault(self, phase_iova(_k), 300);		\
	TH_LOG("phase %d: %s, device_status %#x, used idx %u%s",	\
	       (_k), tx_name(_r), self->status, self->used_idx,		\
	       _fault ? ", DMAR fault logged" : "");			\
	ASSERT_EQ(TX_SENT, _r);						\
	record(self, _fault ? "zeros" : "frame", (_k));			\
	ASSERT_FALSE(_fault) TH_LOG("the IOVA did not translate: the device sent zeros"); \
} while (0)

/*
 * Phase @k's payload (already written, a secret) must not reach the wire:
 * QEMU 7.2 sends zeros instead (chain consumed, no NEEDS_RESET); a device
 * that reports NEEDS_RESET without consuming the chain is accepted and
 * restarted. What the wire saw is the host's to check.
 */
#define EXPECT_NO_FRAME(_k) do {					\
	enum tx_result _r;						\
	u16 _prev = self->avail_idx;					\
	bool _fault;							\
									\
	record(self, "none", (_k));					\
	ASSERT_IOVA_MAPPED(phase_iova(_k), 0);				\
	ASSERT_EQ(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |	\
		  VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,	\
		  vnet_status(self));					\
	kmsg_skip(self);						\
	_r = vnet_tx(self, phase_iova(_k), PAYLOAD_LEN);		\
	_fault = kmsg_dmar_fault(self, phase_iova(_k), 1000);		\
	TH_LOG("phase %d: %s, device_status %#x, used idx %u, %s",	\
	       (_k), tx_name(_r), self->status, self->used_idx,		\
	       _fault ? "DMAR fault logged" :				\
			"no DMAR fault logged (QEMU compresses them)");	\
	ASSERT_NE(TX_TIMEOUT, _r);					\
	if (_r == TX_SENT) {						\
		record(self, "zeros", (_k));				\
		ASSERT_EQ(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | \
			  VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK, \
			  self->status);				\
	} else {							\
		ASSERT_EQ(_prev, self->used_idx);			\
		RESTART();						\
	}								\
} while (0)

#define RESTART() do {							\
	const char *__err = vnet_start(self);				\
									\
	ASSERT_EQ(NULL, __err) TH_LOG("%s", __err);			\
} while (0)

#define P2P_TEST(name) TEST_F_TIMEOUT(p2p, name, 300)

/* DMA from the device reaches BAR2 through each import. */
P2P_TEST(dmabuf_dma)
{
	P2P_BEGIN(0, PATH_DMABUF);
	EXPECT_FRAME(0);
	EXPECT_FRAME(1);
}

P2P_TEST(vaddr_dma)
{
	P2P_BEGIN(1, PATH_VADDR);
	EXPECT_FRAME(0);
	EXPECT_FRAME(1);
}

/* Memory decode off: the import is revoked, the DMA faults. */
static void decode_off(struct __test_metadata *_metadata,
		       FIXTURE_DATA(p2p) *self, int index, enum p2p_path path)
{
	P2P_BEGIN(index, path);
	EXPECT_FRAME(0);
	ASSERT_EQ(0, write_payload(self, 1));
	vfio_pci_cmd_clear(self->ivshmem, PCI_COMMAND_MEMORY);
	EXPECT_NO_FRAME(1);
}

P2P_TEST(dmabuf_decode_off)
{
	decode_off(_metadata, self, 2, PATH_DMABUF);
}

P2P_TEST(vaddr_decode_off)
{
	decode_off(_metadata, self, 3, PATH_VADDR);
}

/* Memory decode back on: the same IOVA reaches BAR2 again (SPEC §2.4). */
static void decode_on(struct __test_metadata *_metadata,
		      FIXTURE_DATA(p2p) *self, int index, enum p2p_path path)
{
	P2P_BEGIN(index, path);
	EXPECT_FRAME(0);
	vfio_pci_cmd_clear(self->ivshmem, PCI_COMMAND_MEMORY);
	vfio_pci_cmd_set(self->ivshmem, PCI_COMMAND_MEMORY);
	EXPECT_FRAME(1);
}

P2P_TEST(dmabuf_decode_on)
{
	decode_on(_metadata, self, 4, PATH_DMABUF);
}

P2P_TEST(vaddr_decode_on)
{
	decode_on(_metadata, self, 5, PATH_VADDR);
}

/* VFIO_DEVICE_RESET of ivshmem: once it returns, DMA reaches BAR2 again. */
static void device_reset(struct __test_metadata *_metadata,
			 FIXTURE_DATA(p2p) *self, int index, enum p2p_path path)
{
	P2P_BEGIN(index, path);
	ASSERT_TRUE(self->ivshmem->info.flags & VFIO_DEVICE_FLAGS_RESET)
		TH_LOG("%s: no VFIO_DEVICE_RESET", ivshmem_bdf);
	EXPECT_FRAME(0);
	vfio_pci_device_reset(self->ivshmem);
	EXPECT_FRAME(1);
}

P2P_TEST(dmabuf_reset)
{
	device_reset(_metadata, self, 6, PATH_DMABUF);
}

P2P_TEST(vaddr_reset)
{
	device_reset(_metadata, self, 7, PATH_VADDR);
}

/*
 * VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE of the imported DMABUF: no frame, and
 * neither memory decode off/on nor a reset brings the IOVA back.
 */
P2P_TEST(dmabuf_revoke)
{
	int ret;

	P2P_BEGIN(8, PATH_DMABUF);
	EXPECT_FRAME(0);
	ASSERT_EQ(0, write_payload(self, 1));
	ASSERT_EQ(0, write_payload(self, 2));
	ASSERT_EQ(0, write_payload(self, 3));
	ret = vfio_pci_dmabuf_revoke(self->ivshmem, self->dmabuf);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE: %s",
				 strerror(-ret));
	EXPECT_NO_FRAME(1);
	vfio_pci_cmd_clear(self->ivshmem, PCI_COMMAND_MEMORY);
	vfio_pci_cmd_set(self->ivshmem, PCI_COMMAND_MEMORY);
	RESTART();
	EXPECT_NO_FRAME(2);
	if (self->ivshmem->info.flags & VFIO_DEVICE_FLAGS_RESET) {
		vfio_pci_device_reset(self->ivshmem);
		RESTART();
		EXPECT_NO_FRAME(3);
	}
}

/*
 * By address, the import is independent of the mapping it was made from
 * (Type1 semantics): after munmap() DMA still reaches BAR2, until
 * IOMMU_IOAS_UNMAP.
 */
P2P_TEST(vaddr_munmap)
{
	P2P_BEGIN(9, PATH_VADDR);
	ASSERT_EQ(0, munmap(self->win, self->win_len));
	self->win = NULL;
	EXPECT_FRAME(0);
	iommu_unmap(self->iommu, &self->win_region);
	self->win_mapped = false;
	ASSERT_EQ(0, write_payload(self, 1));
	EXPECT_NO_FRAME(1);
}

/* Closing ivshmem's device fd revokes the DMABUF: no frame. */
P2P_TEST(dmabuf_close)
{
	P2P_BEGIN(10, PATH_DMABUF);
	EXPECT_FRAME(0);
	ASSERT_EQ(0, write_payload(self, 1));
	vfio_pci_device_cleanup(self->ivshmem);
	self->ivshmem = NULL;
	EXPECT_NO_FRAME(1);
}

/*
 * Closing ivshmem's device revokes a by-address import for good too: the
 * slice does not keep the device open (the BAR mapping would, so it goes
 * first) and no frame carries BAR data afterwards.
 */
P2P_TEST(vaddr_close)
{
	P2P_BEGIN(11, PATH_VADDR);
	EXPECT_FRAME(0);
	ASSERT_EQ(0, write_payload(self, 1));
	ASSERT_EQ(0, munmap(self->win, self->win_len));
	self->win = NULL;
	vfio_pci_device_cleanup(self->ivshmem);
	self->ivshmem = NULL;
	EXPECT_NO_FRAME(1);
}

/*
 * By address, an mmap() of an exported DMABUF imports that DMABUF, so its
 * permanent revoke reaches the IOVA: memory decode stays on, the BAR stays
 * reachable for QEMU, only the IOMMU page table can stop the DMA.
 */
P2P_TEST(vaddr_dmabuf_revoke)
{
	int ret;

	P2P_BEGIN(12, PATH_DMABUF_VADDR);
	EXPECT_FRAME(0);
	ASSERT_EQ(0, write_payload(self, 1));
	ret = vfio_pci_dmabuf_revoke(self->ivshmem, self->dmabuf);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE: %s",
				 strerror(-ret));
	ASSERT_TRUE(vfio_pci_config_readw(self->ivshmem, PCI_COMMAND) &
		    PCI_COMMAND_MEMORY);
	EXPECT_NO_FRAME(1);
}

int main(int argc, char *argv[])
{
	char **bdfs;
	int nr;

	bdfs = vfio_selftests_get_bdfs(&argc, argv, &nr);
	if (nr != 2) {
		fprintf(stderr, "usage: %s [options] P2P_NET_BDF IVSHMEM_BDF\n", argv[0]);
		return KSFT_FAIL;
	}
	net_bdf = bdfs[0];
	ivshmem_bdf = bdfs[1];
	return test_harness_run(argc, argv);
}
