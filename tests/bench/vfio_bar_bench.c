// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-pci BAR mmap() benchmark: the same measurements on base 7.3 and on
 * the patched kernel (lab/bench boots both in turn and compares).
 *
 *   vfio_bar_bench -S SEED [-k KERNEL] [-r ROUND] [-s SCALE] [-o CSV] IVSHMEM BOCHS
 *
 * SEED: the host wrote ivshmem_pattern(SEED, p) into the first u64 of every
 * page p of ivshmem's BAR2 (ivshmem_prepare in lab/lib.sh).
 *
 * Items (each one TAP result on stdout; raw samples appended to CSV as
 * "kernel,round,item,case,metric,unit,iter,value"):
 *   1 mmap_munmap  mmap()+munmap() of a 2 MiB slice of ivshmem's BAR2 at a
 *                  2 MiB-aligned address, with and without reading one u64
 *                  (ops/s per batch, and each call timed apart); for
 *                  comparison, export+close of a 2 MiB DMABUF of the same
 *                  BAR, and userfaultfd()+close() (a file with its own
 *                  anonymous inode, like a DMABUF's)
 *   2 first_touch  read one u64 in every 4 KiB page of a fresh mapping: the
 *                  1 GiB BAR2 at 1 GiB, 2 MiB and 4 KiB alignment, bochs'
 *                  64 MiB BAR0 at 2 MiB alignment (time, minor faults)
 *   3 revoke       PCI_COMMAND memory decode off (and back on) through the
 *                  config region, and VFIO_DEVICE_RESET (elapsed, and CPU
 *                  time of the thread, which leaves out the reset's sleeps),
 *                  with 0/1/64/1024 live, touched 4 KiB mappings of BAR2
 *   4 dmabuf_fault first-touch time per page of an exported DMABUF of
 *                  1/16/256/4096 4 KiB ranges mmap()ed through its fd (n/a
 *                  where DMABUF fds cannot be mmap()ed), and the same through
 *                  plain BAR mmap()s at 4 KiB alignment
 *   5 concurrent_fault  4096 first touches of 4 KiB pages of BAR2 by 1
 *                  thread, then by 2 threads on CPUs 0 and 1 each touching its
 *                  own 2048 pages (disjoint), of one 16 MiB mapping and of two
 *                  8 MiB mappings (elapsed from the common start to the last
 *                  thread's end; ns per page; minor faults)
 *   6 memory       kernel memory (/proc/meminfo Slab, SUnreclaim; per-cache
 *                  /proc/slabinfo) per live BAR mapping over 4096 mappings
 *                  (many, so that slab slack averages out)
 *
 * Every item checks what it reads against the host's pattern in BAR2 (and
 * against a pattern the benchmark writes into bochs' BAR0); the revoke
 * item also checks that a mapping raises SIGBUS while memory decode is off.
 * A wrong read or a failing system call fails the item: no number without a
 * working mapping behind it.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <linux/pci_regs.h>
#include <linux/sizes.h>
#include <linux/userfaultfd.h>
#include <linux/vfio.h>

#include <libvfio.h>

#include "kselftest.h"
#include "ivshmem_pattern.h"

#define PAGE		4096UL
#define IVSHMEM_BAR	2
#define BOCHS_BAR	0
#define MAX_MAPS	1024	/* most live mappings for item 3 */
#define MEM_MAPS	4096	/* mappings per item-6 sample */
#define DMABUF_PAGES	4096	/* pages touched per item-4 sample */
#define RANGE_STRIDE	(2 * PAGE)	/* DMABUF range i is at BAR offset i * 8 KiB */
#define BOCHS_TAG	0xb0c5000000000000ULL	/* bochs' page p holds this | p */

static const char *kernel = "unknown";
static int round_nr = 1;
static double scale = 1.0;
static FILE *csv;

struct bar {
	struct vfio_pci_device *dev;
	int fd;
	uint64_t offset;	/* region offset on the device fd */
	uint64_t size;
	uint64_t sum;		/* sum of word(p) over the whole BAR */
};

static uint64_t seed;

/* First u64 of page p of ivshmem's BAR2: the host wrote it (lab/bench) */
static uint64_t ivshmem_word(uint64_t p)
{
	return ivshmem_pattern(seed, p);
}

static struct bar ivshmem, bochs;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* CPU time of this thread: excludes the time it sleeps (e.g. in a reset) */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * Let deferred work of earlier steps run before a timed window: releasing a
 * DMABUF frees its inode and dentry from RCU callbacks, which would
 * otherwise run inside the next measurement (and be counted there). Loops
 * that measure a steady rate (item 1) do not settle: there the deferred work
 * is part of the cost.
 */
static void settle(void)
{
	usleep(20000);
}

/* Iteration count scaled by -s, at least @min */
static int iters(int n, int min)
{
	int v = (int)(n * scale + 0.5);

	return v < min ? min : v;
}

static void sample(const char *item, const char *cas, const char *metric,
		   const char *unit, int iter, double value)
{
	fprintf(csv, "%s,%d,%s,%s,%s,%s,%d,%.6g\n", kernel, round_nr, item,
		cas, metric, unit, iter, value);
}

static void note(const char *item, const char *cas, const char *metric,
		 const char *text)
{
	fprintf(csv, "%s,%d,%s,%s,%s,note,0,%s\n", kernel, round_nr, item, cas,
		metric, text);
}

/* Read one u64 at the start of every page of [p, p + len) */
static uint64_t touch(const void *p, size_t len)
{
	const volatile uint64_t *q = p;
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < len / 8; i += PAGE / 8)
		sum += q[i];
	return sum;
}

/*
 * mmap() @len bytes of @fd at @off at an address that is @skew bytes past an
 * @align-aligned one. Returns MAP_FAILED with errno set on failure.
 */
static void *map_at(size_t len, size_t align, size_t skew, int prot, int fd,
		    uint64_t off)
{
	void *va = mmap_reserve(len, align, skew);
	void *p;

	p = mmap(va, len, prot, MAP_SHARED | MAP_FIXED, fd, off);
	if (p == MAP_FAILED) {
		int err = errno;

		munmap(va, len);
		errno = err;
	}
	return p;
}

/*
 * Bochs' VRAM starts out zeroed: write BOCHS_TAG | p into the first u64 of
 * every page p, through a BAR mmap().
 */
static void fill_bochs(void)
{
	volatile uint64_t *p;
	uint64_t i;

	p = map_at(bochs.size, SZ_1G, 0, PROT_READ | PROT_WRITE, bochs.fd,
		   bochs.offset);
	VFIO_ASSERT_NE(p, MAP_FAILED);
	bochs.sum = 0;
	for (i = 0; i < bochs.size / PAGE; i++) {
		p[i * PAGE / 8] = BOCHS_TAG | i;
		bochs.sum += BOCHS_TAG | i;
	}
	VFIO_ASSERT_EQ(munmap((void *)p, bochs.size), 0);
}

/*
 * Read ivshmem's whole BAR2 once: checks the host's pattern is there and
 * warms QEMU's side of the BAR, so that no item pays its host page faults.
 */
static void warm_ivshmem(void)
{
	uint64_t i;
	void *p;

	ivshmem.sum = 0;
	for (i = 0; i < ivshmem.size / PAGE; i++)
		ivshmem.sum += ivshmem_word(i);
	p = map_at(ivshmem.size, SZ_1G, 0, PROT_READ, ivshmem.fd, ivshmem.offset);
	VFIO_ASSERT_NE(p, MAP_FAILED);
	if (touch(p, ivshmem.size) != ivshmem.sum)
		ksft_exit_fail_msg("ivshmem's BAR2 does not hold the host's pattern for seed %#llx\n",
				   (unsigned long long)seed);
	VFIO_ASSERT_EQ(munmap(p, ivshmem.size), 0);
}

/* A free @len-byte hole at @skew past an @align boundary */
static uint8_t *hole_at(size_t len, size_t align, size_t skew)
{
	void *va = mmap_reserve(len, align, skew);

	VFIO_ASSERT_EQ(munmap(va, len), 0);
	return va;
}

static void bar_open(struct bar *b, const char *bdf, struct iommu *iommu,
		     int index)
{
	int i;

	b->dev = vfio_pci_device_init(bdf, iommu);
	b->fd = b->dev->fd;
	b->offset = b->dev->bars[index].info.offset;
	b->size = b->dev->bars[index].info.size;
	VFIO_ASSERT_TRUE(b->dev->bars[index].info.flags & VFIO_REGION_INFO_FLAG_MMAP);

	/* libvfio mmap()s every BAR: drop those so only ours are live */
	for (i = 0; i < PCI_STD_NUM_BARS; i++) {
		struct vfio_pci_bar *bar = &b->dev->bars[i];

		if (!bar->vaddr)
			continue;
		VFIO_ASSERT_EQ(munmap(bar->vaddr, bar->info.size), 0);
		bar->vaddr = NULL;
	}
}

/* Item 1: mmap()+munmap() rate of a 2 MiB slice */
static void bench_mmap_munmap(void)
{
	int batches = iters(16, 3), batch = iters(300, 20), b, i, t, bad = 0;
	uint8_t *va = hole_at(SZ_2M, SZ_2M, 0);
	uint64_t slices = ivshmem.size / SZ_2M, n = 0;

	for (b = 0; b < batches; b++) {
		for (t = 0; t < 2; t++) {
			/* alternate the two variants batch by batch */
			int tch = (b + t) % 2;
			uint64_t t0 = now_ns();

			for (i = 0; i < batch; i++, n++) {
				uint64_t off = ivshmem.offset + (n % slices) * SZ_2M;
				volatile uint8_t *p;

				p = mmap(va, SZ_2M, PROT_READ, MAP_SHARED |
					 MAP_FIXED_NOREPLACE, ivshmem.fd, off);
				if (p == MAP_FAILED) {
					ksft_test_result_fail("mmap_munmap: mmap: %s\n",
							      strerror(errno));
					return;
				}
				if (tch && *(volatile uint64_t *)p !=
					   ivshmem_word((n % slices) * (SZ_2M / PAGE)))
					bad++;
				if (munmap((void *)p, SZ_2M)) {
					ksft_test_result_fail("mmap_munmap: munmap: %s\n",
							      strerror(errno));
					return;
				}
			}
			sample("mmap_munmap", tch ? "2M_touch" : "2M_notouch",
			       "rate", "ops/s", b, batch * 1e9 / (now_ns() - t0));
		}
	}
	if (bad)
		ksft_test_result_fail("mmap_munmap: %d reads did not see the BAR's data\n",
				      bad);
	else
		ksft_test_result_pass("mmap_munmap (%d batches of %d)\n", batches, batch);
}

/*
 * Item 1, split: the same loop with mmap(), the touch and munmap() timed
 * separately (ns per call, averaged over a batch). Kept out of the rate loop
 * above, whose only overhead is two clock reads per batch.
 */
static void bench_mmap_split(void)
{
	int batches = iters(6, 2), batch = iters(300, 20), b, i, t, bad = 0;
	uint8_t *va = hole_at(SZ_2M, SZ_2M, 0);
	uint64_t slices = ivshmem.size / SZ_2M, n = 0;

	for (b = 0; b < batches; b++) {
		for (t = 0; t < 2; t++) {
			int tch = (b + t) % 2;
			const char *cas = tch ? "2M_touch" : "2M_notouch";
			uint64_t tm = 0, tt = 0, tu = 0;

			for (i = 0; i < batch; i++, n++) {
				uint64_t off = ivshmem.offset + (n % slices) * SZ_2M;
				uint64_t t0, t1, t2, t3;
				volatile uint8_t *p;

				t0 = now_ns();
				p = mmap(va, SZ_2M, PROT_READ, MAP_SHARED |
					 MAP_FIXED_NOREPLACE, ivshmem.fd, off);
				t1 = now_ns();
				if (p == MAP_FAILED) {
					ksft_test_result_fail("mmap_split: mmap: %s\n",
							      strerror(errno));
					return;
				}
				if (tch && *(volatile uint64_t *)p !=
					   ivshmem_word((n % slices) * (SZ_2M / PAGE)))
					bad++;
				t2 = now_ns();
				if (munmap((void *)p, SZ_2M)) {
					ksft_test_result_fail("mmap_split: munmap: %s\n",
							      strerror(errno));
					return;
				}
				t3 = now_ns();
				tm += t1 - t0;
				tt += t2 - t1;
				tu += t3 - t2;
			}
			sample("mmap_munmap", cas, "mmap", "ns/op", b, (double)tm / batch);
			if (tch)
				sample("mmap_munmap", cas, "touch", "ns/op", b,
				       (double)tt / batch);
			sample("mmap_munmap", cas, "munmap", "ns/op", b, (double)tu / batch);
		}
	}
	if (bad)
		ksft_test_result_fail("mmap_split: %d reads did not see the BAR's data\n",
				      bad);
	else
		ksft_test_result_pass("mmap_split (%d batches of %d)\n", batches, batch);
}

static int export_ranges(int nr, uint64_t len, uint64_t stride);

/*
 * Item 1, for comparison: export and close a 2 MiB single-range DMABUF,
 * roughly the work a patched BAR mmap()+munmap() adds to base 7.3's (DMABUF,
 * file, inode and dentry created and released). Works on every kernel with
 * VFIO_DEVICE_FEATURE_DMA_BUF.
 */
static void bench_export_close(void)
{
	int batches = iters(8, 3), batch = iters(300, 20), b, i, fd;

	for (b = 0; b < 2 * batches; b++) {
		/* even batches: the rate; odd ones: export and close timed apart */
		bool split = b % 2;
		uint64_t t0 = now_ns(), t1 = 0, t2 = 0, te = 0, tc = 0;

		for (i = 0; i < batch; i++) {
			if (split)
				t1 = now_ns();
			fd = export_ranges(1, SZ_2M, 0);
			if (split)
				t2 = now_ns();
			if (fd < 0) {
				note("mmap_munmap", "dmabuf_export_close", "rate",
				     strerror(errno));
				ksft_test_result_skip("dmabuf_export_close: %s\n",
						      strerror(errno));
				return;
			}
			close(fd);
			if (split) {
				te += t2 - t1;
				tc += now_ns() - t2;
			}
		}
		if (split) {
			sample("mmap_munmap", "dmabuf_export_close", "export",
			       "ns/op", b / 2, (double)te / batch);
			sample("mmap_munmap", "dmabuf_export_close", "close",
			       "ns/op", b / 2, (double)tc / batch);
		} else {
			sample("mmap_munmap", "dmabuf_export_close", "rate",
			       "ops/s", b / 2, batch * 1e9 / (now_ns() - t0));
		}
	}
	ksft_test_result_pass("dmabuf_export_close (%d batches of %d)\n",
			      batches, batch);
}

/*
 * Item 1, reference: userfaultfd() + close(), which, like a DMABUF export,
 * creates and releases a file with its own anonymous inode and dentry
 * (anon_inode_create_getfd()): the VFS share of a DMABUF's cost, on any
 * kernel.
 */
static void bench_anon_file(void)
{
	int batches = iters(8, 3), batch = iters(300, 20), b, i, fd;

	for (b = 0; b < batches; b++) {
		uint64_t t0 = now_ns();

		for (i = 0; i < batch; i++) {
			fd = syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
			if (fd < 0) {
				note("mmap_munmap", "userfaultfd_close", "rate",
				     strerror(errno));
				ksft_test_result_skip("userfaultfd_close: %s\n",
						      strerror(errno));
				return;
			}
			close(fd);
		}
		sample("mmap_munmap", "userfaultfd_close", "rate", "ops/s", b,
		       batch * 1e9 / (now_ns() - t0));
	}
	ksft_test_result_pass("userfaultfd_close (%d batches of %d)\n",
			      batches, batch);
}

struct touch_case {
	const char *name;
	struct bar *bar;
	size_t align, skew;
	int iters;
};

/* Item 2: first touch of a whole BAR mapping */
static void bench_first_touch(void)
{
	struct touch_case cases[] = {
		{ "ivshmem_1G_at_1G", &ivshmem, SZ_1G, 0, iters(6, 2) },
		{ "ivshmem_1G_at_2M", &ivshmem, SZ_1G, SZ_2M, iters(6, 2) },
		{ "ivshmem_1G_at_4K", &ivshmem, SZ_1G, PAGE, iters(4, 1) },
		{ "bochs_64M_at_2M", &bochs, SZ_1G, SZ_2M, iters(10, 2) },
	};
	unsigned int c;
	int i;

	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		struct touch_case *tc = &cases[c];

		for (i = 0; i < tc->iters; i++) {
			uint64_t t0, t1, sum;
			long f0, f1;
			void *p;

			p = map_at(tc->bar->size, tc->align, tc->skew, PROT_READ,
				   tc->bar->fd, tc->bar->offset);
			if (p == MAP_FAILED) {
				ksft_test_result_fail("first_touch %s: mmap: %s\n",
						      tc->name, strerror(errno));
				return;
			}
			settle();
			f0 = minflt();
			t0 = now_ns();
			sum = touch(p, tc->bar->size);
			t1 = now_ns();
			f1 = minflt();
			if (sum != tc->bar->sum) {
				ksft_test_result_fail("first_touch %s: wrong data through the mapping\n",
						      tc->name);
				return;
			}
			VFIO_ASSERT_EQ(munmap(p, tc->bar->size), 0);
			sample("first_touch", tc->name, "time", "ms", i, (t1 - t0) / 1e6);
			sample("first_touch", tc->name, "minflt", "faults", i, f1 - f0);
		}
	}
	ksft_test_result_pass("first_touch\n");
}

/* @n 4 KiB mappings of BAR2 pages 0..n-1, back to back from @va */
static int map_many(uint8_t *va, int n, int prot, void **maps)
{
	int i;

	for (i = 0; i < n; i++) {
		maps[i] = mmap(va + i * PAGE, PAGE, prot,
			       MAP_SHARED | MAP_FIXED_NOREPLACE, ivshmem.fd,
			       ivshmem.offset + i * PAGE);
		if (maps[i] == MAP_FAILED)
			return -errno;
	}
	return 0;
}

static void unmap_many(void **maps, int n)
{
	int i;

	for (i = 0; i < n; i++)
		VFIO_ASSERT_EQ(munmap(maps[i], PAGE), 0);
}

/*
 * Give every mapping (of BAR2 page i, see map_many()) its PTE and check what
 * it reads; a read of a revoked mapping would SIGBUS. Returns the number of
 * wrong reads.
 */
static int touch_many(void **maps, int n)
{
	int i, bad = 0;

	for (i = 0; i < n; i++)
		bad += *(volatile uint64_t *)maps[i] != ivshmem_word(i);
	return bad;
}

static sigjmp_buf sigbus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(sigbus_jmp, 1);
}

/* Does reading @p raise SIGBUS? */
static bool read_sigbus(const void *p)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	volatile bool hit = false;

	VFIO_ASSERT_EQ(sigaction(SIGBUS, &sa, &old), 0);
	if (sigsetjmp(sigbus_jmp, 1))
		hit = true;
	else
		(void)*(const volatile uint64_t *)p;
	VFIO_ASSERT_EQ(sigaction(SIGBUS, &old, NULL), 0);
	return hit;
}

static uint16_t cmd_read(void)
{
	return vfio_pci_config_readw(ivshmem.dev, PCI_COMMAND);
}

/* Write PCI_COMMAND through the config region; returns the time taken */
static double cmd_write_us(uint16_t cmd)
{
	uint64_t t0 = now_ns();

	vfio_pci_config_writew(ivshmem.dev, PCI_COMMAND, cmd);
	return (now_ns() - t0) / 1e3;
}

/* Item 3: revoke latency with n live mappings */
static void bench_revoke(void)
{
	static const int counts[] = { 0, 1, 64, 1024 };
	static void *maps[MAX_MAPS];
	int decode_iters = iters(40, 3), reset_iters = iters(10, 2);
	uint8_t *va = hole_at(MAX_MAPS * PAGE, SZ_2M, 0);
	bool reset_ok = true;
	unsigned int c;
	char cas[32];
	int i, ret, bad = 0;

	for (c = 0; c < ARRAY_SIZE(counts); c++) {
		int n = counts[c];
		uint16_t cmd;

		snprintf(cas, sizeof(cas), "%d_maps", n);
		ret = map_many(va, n, PROT_READ, maps);
		if (ret) {
			ksft_test_result_fail("revoke: mmap: %s\n", strerror(-ret));
			return;
		}
		bad += touch_many(maps, n);
		settle();
		cmd = cmd_read();
		if (!(cmd & PCI_COMMAND_MEMORY)) {
			ksft_test_result_fail("revoke: memory decode is off\n");
			return;
		}
		for (i = 0; i < decode_iters; i++) {
			sample("revoke", cas, "decode_off", "us", i,
			       cmd_write_us(cmd & ~PCI_COMMAND_MEMORY));
			/* what was measured must have been a revoke */
			if (n && !i && !read_sigbus(maps[n - 1])) {
				ksft_test_result_fail("revoke: %s readable with memory decode off\n",
						      cas);
				return;
			}
			sample("revoke", cas, "decode_on", "us", i,
			       cmd_write_us(cmd));
			bad += touch_many(maps, n);
		}
		for (i = 0; reset_ok && i < reset_iters; i++) {
			int tries = 20;
			uint64_t t0, c0;

			do {
				t0 = now_ns();
				c0 = cpu_ns();
				ret = __vfio_pci_device_reset(ivshmem.dev);
				if (ret == -EAGAIN)
					usleep(10000);
			} while (ret == -EAGAIN && tries--);
			if (ret) {
				note("revoke", cas, "reset", strerror(-ret));
				reset_ok = false;
				break;
			}
			sample("revoke", cas, "reset_cpu", "us", i, (cpu_ns() - c0) / 1e3);
			sample("revoke", cas, "reset", "ms", i, (now_ns() - t0) / 1e6);
			/* the reset restores the command register */
			VFIO_ASSERT_TRUE(cmd_read() & PCI_COMMAND_MEMORY);
			bad += touch_many(maps, n);
		}
		unmap_many(maps, n);
	}
	if (bad)
		ksft_test_result_fail("revoke: %d reads did not see the BAR's data\n", bad);
	else
		ksft_test_result_pass("revoke%s\n", reset_ok ? "" : " (VFIO_DEVICE_RESET failed)");
}

/* An exported DMABUF of BAR2: @nr ranges of @len bytes, range i at i * @stride */
static int export_ranges(int nr, uint64_t len, uint64_t stride)
{
	struct vfio_device_feature *feat;
	struct vfio_device_feature_dma_buf *get;
	size_t sz = sizeof(*feat) + sizeof(*get) +
		    nr * sizeof(struct vfio_region_dma_range);
	int fd, i, err;

	feat = calloc(1, sz);
	VFIO_ASSERT_NOT_NULL(feat);
	feat->argsz = sz;
	feat->flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF;
	get = (void *)feat->data;
	get->region_index = IVSHMEM_BAR;
	get->open_flags = O_RDWR | O_CLOEXEC;
	get->nr_ranges = nr;
	for (i = 0; i < nr; i++) {
		get->dma_ranges[i].offset = i * stride;
		get->dma_ranges[i].length = len;
	}
	fd = ioctl(ivshmem.fd, VFIO_DEVICE_FEATURE, feat);
	err = errno;
	free(feat);
	errno = err;
	return fd;
}

/* DMABUF mappings: page k of each is range k, at BAR2 page 2k */
static uint64_t range_page(int i, int per_map)
{
	return (i % per_map) * (RANGE_STRIDE / PAGE);
}

/* BAR mappings: back to back in VA and in the BAR */
static uint64_t linear_page(int i, int per_map)
{
	return i;
}

/*
 * Page i of the @n pages at @va must hold BAR2 page @page_of(i, @per_map)'s
 * word; the first mismatch is printed and sets *@bad.
 */
static void check_pages(const uint8_t *va, int n, int per_map,
			uint64_t (*page_of)(int i, int per_map), bool *bad)
{
	int i;

	for (i = 0; i < n; i++) {
		uint64_t want = ivshmem_word(page_of(i, per_map));
		uint64_t got = *(const volatile uint64_t *)(va + i * PAGE);

		if (got != want && !*bad) {
			ksft_print_msg("page %d: got %#llx want %#llx\n", i,
				       (unsigned long long)got,
				       (unsigned long long)want);
			*bad = true;
		}
	}
}

/*
 * Map @fd (@pages_per_map pages from offset @off, @step bytes further for
 * each next mapping) DMABUF_PAGES / @pages_per_map times back to back at 4 KiB
 * (not 2 MiB) alignment, touch every page, and return the time per page in
 * ns; -errno if a mmap() fails. Checks the data: page i of the whole span
 * must show BAR2 page @page_of(i, @pages_per_map).
 */
static double fault_pages(int fd, uint64_t off, uint64_t step, int pages_per_map,
			  uint64_t (*page_of)(int i, int per_map), long *faults,
			  bool *bad)
{
	static void *maps[DMABUF_PAGES];
	int nmaps = DMABUF_PAGES / pages_per_map, i, err;
	size_t len = pages_per_map * PAGE;
	uint8_t *va = hole_at(DMABUF_PAGES * PAGE, SZ_2M, PAGE);
	uint64_t t0, t1;
	long f0;

	for (i = 0; i < nmaps; i++) {
		maps[i] = mmap(va + i * len, len, PROT_READ,
			       MAP_SHARED | MAP_FIXED_NOREPLACE, fd, off + i * step);
		if (maps[i] == MAP_FAILED) {
			err = errno;
			while (i--)
				munmap(maps[i], len);
			return -err;
		}
	}
	settle();
	f0 = minflt();
	t0 = now_ns();
	touch(va, DMABUF_PAGES * PAGE);
	t1 = now_ns();
	*faults = minflt() - f0;

	check_pages(va, DMABUF_PAGES, pages_per_map, page_of, bad);
	for (i = 0; i < nmaps; i++)
		VFIO_ASSERT_EQ(munmap(maps[i], len), 0);
	return (double)(t1 - t0) / DMABUF_PAGES;
}

/* Item 4: per-page fault time through DMABUF mmap()s and BAR mmap()s */
static void bench_dmabuf_fault(void)
{
	static const int ranges[] = { 1, 16, 256, 4096 };
	int reps = iters(10, 2), i, fd;
	bool bad = false, dmabuf_mmap = true;
	unsigned int c;
	char cas[32];
	double ns;
	long flt;

	/* Reference: plain BAR mmap()s, one of 16 MiB and 4096 of 4 KiB */
	for (i = 0; i < reps; i++) {
		ns = fault_pages(ivshmem.fd, ivshmem.offset, 0, DMABUF_PAGES,
				 linear_page, &flt, &bad);
		if (ns < 0) {
			ksft_test_result_fail("dmabuf_fault: BAR mmap: %s\n",
					      strerror((int)-ns));
			return;
		}
		sample("dmabuf_fault", "bar_1x16M", "per_page", "ns", i, ns);
		sample("dmabuf_fault", "bar_1x16M", "minflt", "faults", i, flt);
		ns = fault_pages(ivshmem.fd, ivshmem.offset, PAGE, 1,
				 linear_page, &flt, &bad);
		if (ns < 0) {
			ksft_test_result_fail("dmabuf_fault: BAR mmap: %s\n",
					      strerror((int)-ns));
			return;
		}
		sample("dmabuf_fault", "bar_4096x4K", "per_page", "ns", i, ns);
		sample("dmabuf_fault", "bar_4096x4K", "minflt", "faults", i, flt);
	}

	for (c = 0; c < ARRAY_SIZE(ranges); c++) {
		int nr = ranges[c];

		snprintf(cas, sizeof(cas), "dmabuf_%d_ranges", nr);
		fd = export_ranges(nr, PAGE, RANGE_STRIDE);
		if (fd < 0) {
			ksft_test_result_fail("dmabuf_fault: export of %d ranges: %s\n",
					      nr, strerror(errno));
			return;
		}
		for (i = 0; dmabuf_mmap && i < reps; i++) {
			ns = fault_pages(fd, 0, 0, nr, range_page, &flt, &bad);
			if (ns < 0) {
				/* base 7.3 and part 1: no mmap() of DMABUF fds */
				note("dmabuf_fault", cas, "per_page", strerror((int)-ns));
				dmabuf_mmap = false;
				break;
			}
			sample("dmabuf_fault", cas, "per_page", "ns", i, ns);
			sample("dmabuf_fault", cas, "minflt", "faults", i, flt);
		}
		close(fd);
		if (!dmabuf_mmap)
			break;
	}
	if (bad)
		ksft_test_result_fail("dmabuf_fault: wrong data through a mapping\n");
	else if (!dmabuf_mmap)
		ksft_test_result_skip("dmabuf_fault: DMABUF fds cannot be mmap()ed (n/a); BAR reference measured\n");
	else
		ksft_test_result_pass("dmabuf_fault\n");
}

/*
 * Item 5: concurrent first-touch faults. SPEC §2.3: the fault path of a BAR
 * mmap() takes memory_lock for read and nothing that serializes faults, so
 * two threads faulting disjoint pages must not wait for each other more
 * than on 7.3. Each thread is pinned to its own CPU and touches its half of
 * the pages (2048 pages, 8 MiB, so each half has its own page tables); the
 * halves are one 16 MiB mapping or two 8 MiB mappings, at 4 KiB alignment
 * (no huge faults).
 */
#define CF_PAGES	4096

struct cf_thread {
	pthread_t tid;
	pthread_barrier_t *start;
	int cpu;
	const uint8_t *va;
	size_t len;
	uint64_t t0, t1;
	int err;
};

static void *cf_run(void *arg)
{
	struct cf_thread *t = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(t->cpu, &set);
	t->err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	pthread_barrier_wait(t->start);
	t->t0 = now_ns();
	touch(t->va, t->len);
	t->t1 = now_ns();
	return NULL;
}

/*
 * Touch the CF_PAGES pages at @va with @nthreads threads, thread i on CPU i
 * touching the i-th of @nthreads equal parts; returns the elapsed ns from the
 * first thread's start to the last one's end (or -errno), and the minor
 * faults in *@faults.
 */
static double cf_touch(uint8_t *va, int nthreads, long *faults)
{
	struct cf_thread t[2];
	pthread_barrier_t start;
	size_t part = CF_PAGES / nthreads * PAGE;
	uint64_t t0 = UINT64_MAX, t1 = 0;
	long f0;
	int i, err = 0;

	pthread_barrier_init(&start, NULL, nthreads);
	settle();
	f0 = minflt();
	for (i = 0; i < nthreads; i++) {
		t[i] = (struct cf_thread){ .start = &start, .cpu = i,
					   .va = va + i * part, .len = part };
		err = pthread_create(&t[i].tid, NULL, cf_run, &t[i]);
		VFIO_ASSERT_EQ(err, 0);
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(t[i].tid, NULL);
		if (t[i].err)
			err = t[i].err;
		t0 = t[i].t0 < t0 ? t[i].t0 : t0;
		t1 = t[i].t1 > t1 ? t[i].t1 : t1;
	}
	*faults = minflt() - f0;
	pthread_barrier_destroy(&start);
	return err ? -err : (double)(t1 - t0);
}

static void bench_concurrent_fault(void)
{
	static const struct {
		const char *name;
		int threads, maps;
	} cases[] = {
		{ "1thread_1map", 1, 1 },
		{ "2threads_1map", 2, 1 },
		{ "2threads_2maps", 2, 2 },
	};
	int reps = iters(10, 3), i, m;
	size_t total = CF_PAGES * PAGE;
	unsigned int c;
	bool bad = false;
	double ns;
	long flt;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		ksft_test_result_skip("concurrent_fault: needs 2 CPUs, have %ld\n",
				      sysconf(_SC_NPROCESSORS_ONLN));
		return;
	}
	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		size_t len = total / cases[c].maps;

		for (i = 0; i < reps; i++) {
			uint8_t *va = hole_at(total, SZ_2M, PAGE);

			for (m = 0; m < cases[c].maps; m++)
				VFIO_ASSERT_NE(mmap(va + m * len, len, PROT_READ,
						    MAP_SHARED | MAP_FIXED_NOREPLACE,
						    ivshmem.fd, ivshmem.offset + m * len),
					       MAP_FAILED);
			ns = cf_touch(va, cases[c].threads, &flt);
			if (ns < 0) {
				ksft_test_result_fail("concurrent_fault: %s: %s\n",
						      cases[c].name, strerror((int)-ns));
				return;
			}
			check_pages(va, CF_PAGES, CF_PAGES, linear_page, &bad);
			if (flt < CF_PAGES && !bad) {
				ksft_print_msg("%s: %ld minor faults for %d pages\n",
					       cases[c].name, flt, CF_PAGES);
				bad = true;
			}
			for (m = 0; m < cases[c].maps; m++)
				VFIO_ASSERT_EQ(munmap(va + m * len, len), 0);
			sample("concurrent_fault", cases[c].name, "elapsed", "us", i, ns / 1e3);
			sample("concurrent_fault", cases[c].name, "per_page", "ns", i, ns / CF_PAGES);
			sample("concurrent_fault", cases[c].name, "minflt", "faults", i, flt);
		}
	}
	if (bad)
		ksft_test_result_fail("concurrent_fault: wrong data or missing faults\n");
	else
		ksft_test_result_pass("concurrent_fault\n");
}

/* kB value of @key in /proc/meminfo */
static long meminfo(const char *key)
{
	char line[256];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	VFIO_ASSERT_NOT_NULL(f);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

struct slab {
	char name[64];
	long bytes;
};

/* Bytes in active objects per cache in /proc/slabinfo; returns the count */
static int slabinfo(struct slab *s, int max)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/slabinfo", "r");

	if (!f)
		return 0;
	while (n < max && fgets(line, sizeof(line), f)) {
		long active, total, objsize;

		if (sscanf(line, "%63s %ld %ld %ld", s[n].name, &active, &total,
			   &objsize) != 4)
			continue;
		s[n].bytes = active * objsize;
		n++;
	}
	fclose(f);
	return n;
}

/* Item 6: kernel memory per live BAR mapping */
static void bench_memory(void)
{
	static struct slab before[512], after[512];
	static void *maps[MEM_MAPS];
	int reps = iters(5, 2), i, j, k, nb, na, ret;
	uint8_t *va = hole_at(MEM_MAPS * PAGE, SZ_2M, 0);
	long slab0, sunr0, pt0;

	for (i = 0; i < reps; i++) {
		settle();
		nb = slabinfo(before, ARRAY_SIZE(before));
		slab0 = meminfo("Slab");
		sunr0 = meminfo("SUnreclaim");
		pt0 = meminfo("PageTables");
		ret = map_many(va, MEM_MAPS, PROT_READ, maps);
		if (ret) {
			ksft_test_result_fail("memory: mmap: %s\n", strerror(-ret));
			return;
		}
		if (touch_many(maps, MEM_MAPS)) {
			ksft_test_result_fail("memory: wrong data through a mapping\n");
			return;
		}
		sample("memory", "4096_maps", "slab", "B/map", i,
		       (meminfo("Slab") - slab0) * 1024.0 / MEM_MAPS);
		sample("memory", "4096_maps", "sunreclaim", "B/map", i,
		       (meminfo("SUnreclaim") - sunr0) * 1024.0 / MEM_MAPS);
		sample("memory", "4096_maps", "pagetables", "B/map", i,
		       (meminfo("PageTables") - pt0) * 1024.0 / MEM_MAPS);
		na = slabinfo(after, ARRAY_SIZE(after));
		/* per-cache: only caches that grew by >= 16 bytes per mapping */
		for (j = 0; j < na; j++) {
			long d = after[j].bytes;

			for (k = 0; k < nb; k++) {
				if (!strcmp(before[k].name, after[j].name)) {
					d -= before[k].bytes;
					break;
				}
			}
			if (d >= 16L * MEM_MAPS)
				sample("memory", after[j].name, "slabinfo", "B/map",
				       i, (double)d / MEM_MAPS);
		}
		unmap_many(maps, MEM_MAPS);
	}
	ksft_test_result_pass("memory\n");
}

static const struct {
	const char *name;
	void (*fn)(void);
} items[] = {
	{ "mmap_munmap", bench_mmap_munmap },
	{ "mmap_split", bench_mmap_split },
	{ "dmabuf_export_close", bench_export_close },
	{ "userfaultfd_close", bench_anon_file },
	{ "first_touch", bench_first_touch },
	{ "revoke", bench_revoke },
	{ "dmabuf_fault", bench_dmabuf_fault },
	{ "concurrent_fault", bench_concurrent_fault },
	{ "memory", bench_memory },
};

int main(int argc, char *argv[])
{
	const char *out = NULL;
	struct iommu *iommu;
	unsigned int i;
	bool have_seed = false;
	uint64_t t0;
	int opt;

	while ((opt = getopt(argc, argv, "k:r:s:o:S:")) != -1) {
		switch (opt) {
		case 'S': seed = strtoull(optarg, NULL, 0); have_seed = true; break;
		case 'k': kernel = optarg; break;
		case 'r': round_nr = atoi(optarg); break;
		case 's': scale = atof(optarg); break;
		case 'o': out = optarg; break;
		default:
			fprintf(stderr, "usage: %s -S SEED [-k kernel] [-r round] [-s scale] [-o csv] IVSHMEM BOCHS\n",
				argv[0]);
			return 2;
		}
	}
	if (argc - optind != 2 || scale <= 0 || !have_seed) {
		fprintf(stderr, "%s: need -S SEED, the ivshmem and bochs BDFs and a scale > 0\n",
			argv[0]);
		return 2;
	}
	csv = out ? fopen(out, "a") : stdout;
	if (!csv) {
		perror(out);
		return 1;
	}

	ksft_print_header();
	ksft_set_plan(ARRAY_SIZE(items));
	ksft_print_msg("kernel %s round %d scale %g\n", kernel, round_nr, scale);

	iommu = iommu_init("iommufd");
	bar_open(&ivshmem, argv[optind], iommu, IVSHMEM_BAR);
	bar_open(&bochs, argv[optind + 1], iommu, BOCHS_BAR);
	VFIO_ASSERT_EQ(ivshmem.size, (uint64_t)SZ_1G);
	VFIO_ASSERT_EQ(bochs.size, (uint64_t)SZ_64M);

	t0 = now_ns();
	warm_ivshmem();
	fill_bochs();
	ksft_print_msg("warm-up took %.1f s\n", (now_ns() - t0) / 1e9);

	for (i = 0; i < ARRAY_SIZE(items); i++) {
		uint64_t t0 = now_ns();

		items[i].fn();
		fflush(csv);
		ksft_print_msg("%s took %.1f s\n", items[i].name, (now_ns() - t0) / 1e9);
	}

	vfio_pci_device_cleanup(bochs.dev);
	vfio_pci_device_cleanup(ivshmem.dev);
	iommu_cleanup(iommu);
	if (csv != stdout)
		fclose(csv);
	ksft_finished();
}
