// SPDX-License-Identifier: GPL-2.0-only
/*
 * Allocation-failure walk of every path the series adds (debug kernel only).
 *
 *   vfio_failnth_test IVSHMEM_BDF
 *
 * For each operation below (the first touch of a mapping included: its page
 * fault runs armed), per-task fault injection
 * (/proc/thread-self/fail-nth, failslab and fail_page_alloc with
 * ignore-gfp-wait off, so GFP_KERNEL allocations count) makes the 1st, 2nd,
 * 3rd, ... injection point the operation hits fail, one value per run of the
 * operation, until it succeeds with the injection still armed: then every
 * allocation on its path has been failed once. After every run:
 *  - a run that failed returned ENOMEM (open_close_live may also return
 *    EBUSY where the PCI region request failed: pci_request_selected_regions()
 *    reports every failure so), a first touch never fails (a fault whose
 *    allocation failed is retried, never SIGBUS), and a run that succeeded,
 *    with or without a failed allocation on the way (a fallback), works
 *    completely: data read back through the mapping, and the mapping is
 *    revoked (SIGBUS) while memory decode is off and works again after, so
 *    its DMABUF is on the device's list;
 *  - the DMABUF count (debugfs bufinfo), the process's fd and VMA counts are
 *    back where they were;
 *  - the device still works: a fresh mmap() of one page of BAR2 reads the
 *    host's pattern.
 * The number of injection points walked per operation must not drop below
 * the checked-in minimum ($VFIO_LAB_FAILNTH_MIN, tests/stress/failnth-min-counts);
 * more is fine and printed. The count alone is loose (it includes mm, VFS,
 * iommufd and kmemleak allocations and varies by a few points between runs),
 * so the call sites listed for the operation in $VFIO_LAB_FAILNTH_SITES
 * (tests/stress/failnth-sites) must also have been injected, each with the
 * outcome listed: an allocation of the series that the walk no longer
 * reaches fails its operation. A run can make one allocation more or less
 * than the one before (a slab refill), which can skip a site, so an
 * operation missing one is walked again, up to MAX_WALKS times. The test
 * mlock()s what it has mapped first, so that its own page faults are not
 * among the points. Each operation runs in its own process (the
 * harness forks per test); the leak.* cases at the end scan kmemleak and
 * fail an operation whose process allocated an unreferenced object.
 * The call site of every injected failure is taken from the stack trace
 * the fault injection prints (verbose 2). The leak.* cases attribute an
 * object to the process that allocated it: a leak allocated by a kworker
 * or an RCU callback on an operation's behalf is caught by the kmemleak
 * suite that runs after this one, without naming the operation. A leaked
 * reference (to the device's registration, or a file that keeps it open)
 * is not memory kmemleak could see: device.unbind_rebind, after the leak
 * cases, unbinds the device from vfio-pci, which waits for every
 * reference, within a bound, and binds it again; a leak leaves the unbind
 * stuck and the VM unable to power off (lab/run-vm kills it: POWEROFF).
 * The lockdep cases come last.
 *
 * export_wc is a write-combined export (VFIO_DMA_BUF_FLAG_MMAP_WC) of the
 * prepared range and a page apart from it (two memory type reservations):
 * after a success the x86 PAT memory type list must hold exactly one
 * write-combining entry of the prepared range, after a failure no entry for
 * BAR2 at all. Not walked, as the series does not have it yet: iommufd's
 * import of a BAR mapping by address (SPEC 2.9).
 *
 * Environment: VFIO_LAB_SEED, VFIO_LAB_FAILNTH_MIN, VFIO_LAB_FAILNTH_SITES,
 * and VFIO_LAB_LOCKDEP_START: /proc/lockdep as it was before any test ran
 * (lab/guest/run-suite saves it on the debug kernel), checked for the
 * lock order vfio-pci primes at boot.
 */
#include <malloc.h>

#include <linux/sizes.h>

#include <libvfio.h>

#include "kselftest_harness.h"
#include "stress_lib.h"

#define BAR		STRESS_IVSHMEM_BAR
#define PAGE		STRESS_PAGE
#define BAR_PAGES	(SZ_1G / PAGE)
#define MAX_NTH		4000
#define MANY_RANGES	512
#define FAILNTH_TIMEOUT	1200
#define REPORT_MAX	(4 << 20)
#define FAULT_DIR	"/sys/kernel/debug"
#define MAX_SITES	512
#define MAX_WALKS	10
#define NR_FRAMES	8		/* frames kept of each injection's stack */
#define UNBIND_SECS	60

static const char *ivshmem_bdf;
static uint64_t seed;

enum op_id {
	OP_BAR_MMAP_FULL,
	OP_BAR_MMAP_PARTIAL,
	OP_BAR_MMAP_HUGE,
	OP_EXPORT_ONE,
	OP_EXPORT_MANY,
	OP_DMABUF_MMAP,
	OP_REVOKE,
	OP_IOMMUFD_MAP_FILE,
	OP_OPEN_CLOSE_LIVE,
	OP_BAR_FAULT,
	OP_DMABUF_FAULT,
	OP_EXPORT_WC,
	NR_OPS,
};

static const char *const op_names[NR_OPS] = {
	"bar_mmap_full", "bar_mmap_partial", "bar_mmap_huge",
	"export_1_range", "export_512_ranges", "dmabuf_mmap",
	"dmabuf_revoke", "iommufd_map_file", "open_close_live",
	"bar_fault_huge", "dmabuf_fault", "export_wc",
};

/* Shared by the harness's per-test processes (mapped before the fork). */
struct shared {
	pid_t pid[NR_OPS];		/* process that walked the operation */
	int points[NR_OPS];		/* -1: not walked */
	bool scanned;
	int scan_err;
	size_t report_len;
	char report[REPORT_MAX];
};
static struct shared *shared;

/* ------------------------------------------------------------------ */
/* Fault injection */

/*
 * GFP_KERNEL allocations are ignored by default; count every allocation but
 * __GFP_NOFAIL ones, of every order, and print the stack of each injected
 * failure. Returns 0 or -errno.
 */
static int fault_knobs_set(bool on)
{
	static const char *const knobs[][3] = {
		/* knob, on, off (the defaults) */
		{ "failslab/ignore-gfp-wait", "N", "Y" },
		{ "failslab/verbose", "2", "2" },
		{ "fail_page_alloc/ignore-gfp-wait", "N", "Y" },
		{ "fail_page_alloc/ignore-gfp-highmem", "N", "Y" },
		{ "fail_page_alloc/min-order", "0", "1" },
		{ "fail_page_alloc/verbose", "2", "2" },
		/* a report per failure: its stack names the site */
		{ "failslab/verbose_ratelimit_interval_ms", "0", "0" },
		{ "fail_page_alloc/verbose_ratelimit_interval_ms", "0", "0" },
	};
	char path[256];
	unsigned int i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		snprintf(path, sizeof(path), FAULT_DIR "/%s", knobs[i][0]);
		ret = stress_write_str(path, knobs[i][on ? 1 : 2]);
		if (ret)
			return ret;
	}
	return 0;
}

struct walker {
	int nth_fd;		/* /proc/thread-self/fail-nth */
	int kmsg_fd;		/* /dev/kmsg, read from the end */
	char site[256];		/* where the last injected failure hit */
	char key[96];		/* its first frame with offset: one call site */
	char chain[640];	/* up to NR_FRAMES frames, matched by failnth-sites */
};

static int walker_init(struct walker *w)
{
	w->nth_fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (w->nth_fd < 0)
		return -errno;
	w->kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (w->kmsg_fd >= 0)
		lseek(w->kmsg_fd, 0, SEEK_END);
	return 0;
}

static void walker_fini(struct walker *w)
{
	close(w->nth_fd);
	if (w->kmsg_fd >= 0)
		close(w->kmsg_fd);
}

/* Make the @n-th injection point this thread hits from now on fail. */
static void arm(struct walker *w, int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", n);

	if (pwrite(w->nth_fd, buf, len, 0) != len)
		abort();
}

/* Disarm; returns true if the armed failure was injected. */
static bool disarm(struct walker *w)
{
	char buf[16] = "";
	ssize_t r = pread(w->nth_fd, buf, sizeof(buf) - 1, 0);

	if (pwrite(w->nth_fd, "0", 1, 0) != 1 || r <= 0)
		abort();
	return atoi(buf) == 0;
}

/* Frames of the allocators and of the fault injection itself. */
static bool boring_frame(const char *f)
{
	static const char *const prefixes[] = {
		"dump_stack", "fail_dump", "should_fail", "__should_fail",
		"should_failslab", "slab_", "__slab", "___slab", "kmem_cache_alloc",
		"__kmem_cache", "__kmalloc", "kmalloc", "__kvmalloc", "kvmalloc",
		"kvzalloc", "kzalloc", "kvcalloc", "kcalloc", "__alloc_pages",
		"alloc_pages", "__alloc_frozen", "alloc_frozen", "prepare_alloc_pages",
		"alloc_slab", "new_slab", "allocate_slab", "__vmalloc", "vmalloc",
		"__get_free_pages", "get_zeroed_page", "alloc_pages_mpol",
		"__kmalloc_node", "kmalloc_node", "kmemdup", "vmemdup", "memdup",
		"krealloc", "kvrealloc", "__kvrealloc", "kstrdup", "kmalloc_trace",
		"__kvmalloc_node", "alloc_pages_noprof", "__folio_alloc",
		"folio_alloc", "__pte_alloc", "alloc_slab_obj_exts", "pte_alloc_one",
		"__alloc_pages_noprof", "__vmalloc_node", "__vmalloc_area_node",
		"vm_area_alloc", "show_stack",
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (!strncmp(f, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

/*
 * Read what the kernel logged since the last call and describe the last
 * injected failure: the fault attribute and the first three frames outside
 * the allocators ("failslab: vm_area_dup < __split_vma < ..."). Allocations
 * with __GFP_NOWARN are failed without a report.
 */
static void read_site(struct walker *w)
{
	char rec[8192], name[32] = "", frames[NR_FRAMES][64], first[96] = "";
	size_t off;
	int i;
	int nframes = 0;
	bool in_trace = false, found = false;
	ssize_t r;

	snprintf(w->site, sizeof(w->site), "(no report: a __GFP_NOWARN allocation)");
	w->key[0] = '\0';
	snprintf(w->chain, sizeof(w->chain), "%s", w->site);
	if (w->kmsg_fd < 0)
		return;
	for (;;) {
		char *msg, *end;

		r = read(w->kmsg_fd, rec, sizeof(rec) - 1);
		if (r < 0 && errno == EPIPE)
			continue;	/* overwritten records */
		if (r <= 0)
			break;
		rec[r] = '\0';
		msg = strchr(rec, ';');
		if (!msg)
			continue;
		msg++;
		end = strchr(msg, '\n');
		if (end)
			*end = '\0';
		if (strstr(msg, "FAULT_INJECTION: forcing a failure")) {
			found = true;
			in_trace = false;
			nframes = 0;
			name[0] = '\0';
			/* the next line may be in the same record ("\x0a") */
			msg = strstr(msg, "name ");
			if (msg)
				sscanf(msg, "name %31[^,],", name);
			continue;
		}
		if (!found)
			continue;
		if (!name[0] && sscanf(msg, "name %31[^,],", name) == 1)
			continue;
		if (strstr(msg, "Call Trace:")) {
			in_trace = true;
			continue;
		}
		if (strstr(msg, "</TASK>")) {
			in_trace = false;
			continue;
		}
		if (!in_trace || nframes == NR_FRAMES)
			continue;
		while (*msg == ' ')
			msg++;
		if (*msg == '?' || *msg == '<')
			continue;
		end = strchr(msg, '+');
		if (!end || boring_frame(msg))
			continue;
		if (!nframes)	/* "func+0x1a/0x80" -> "func+0x1a" */
			snprintf(first, sizeof(first), "%.*s", (int)strcspn(msg, "/ "),
				 msg);
		*end = '\0';
		snprintf(frames[nframes++], sizeof(frames[0]), "%s", msg);
	}
	if (!found)
		return;
	snprintf(w->key, sizeof(w->key), "%s", first);
	/* the deeper frames name the caller of, e.g., vmalloc's internals */
	off = snprintf(w->chain, sizeof(w->chain), "%s:", name);
	for (i = 0; i < nframes && off < sizeof(w->chain); i++)
		off += snprintf(w->chain + off, sizeof(w->chain) - off, "%s%s",
				i ? " < " : " ", frames[i]);
	snprintf(w->site, sizeof(w->site), "%s: %s%s%s%s%s", name,
		 nframes > 0 ? frames[0] : "?",
		 nframes > 1 ? " < " : "", nframes > 1 ? frames[1] : "",
		 nframes > 2 ? " < " : "", nframes > 2 ? frames[2] : "");
}

/* ------------------------------------------------------------------ */
/* What the process holds, and whether the device still works */

struct counts {
	int dmabufs, fds, vmas;
};

static void get_counts(struct counts *c)
{
	c->dmabufs = stress_dmabuf_count();
	c->fds = stress_fd_count();
	c->vmas = stress_vma_count();
}

static bool same_counts(const struct counts *a, const struct counts *b)
{
	return a->dmabufs == b->dmabufs && a->fds == b->fds &&
	       a->vmas == b->vmas;
}

/* Check @npages pages of @map, the first being BAR page @bar_page. */
static int check_map(void *map, uint64_t bar_page, uint64_t npages,
		     char *why, size_t len)
{
	uint64_t done = 0, bad = 0, got = 0;
	int ret = stress_check_pages(map, bar_page, npages, seed, &done, &bad,
				     &got);

	if (ret > 0)
		snprintf(why, len, "%s reading page %llu of the mapping",
			 strsignal(ret), (unsigned long long)done);
	else if (ret < 0)
		snprintf(why, len, "page %llu of the mapping reads %#llx, want %#llx",
			 (unsigned long long)done, (unsigned long long)got,
			 (unsigned long long)ivshmem_pattern(seed, bad));
	return ret;
}

/* A fresh mmap() of BAR page @page of @devfd reads the host's pattern. */
static int device_works(int devfd, uint64_t bar_off, uint64_t page,
			char *why, size_t len)
{
	void *map = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, devfd,
			 bar_off + page * PAGE);
	int ret;

	if (map == MAP_FAILED) {
		snprintf(why, len, "fresh mmap() of BAR page %llu: %s",
			 (unsigned long long)page, strerror(errno));
		return -1;
	}
	ret = check_map(map, page, 1, why, len);
	munmap(map, PAGE);
	return ret;
}

/*
 * @map (BAR page @bar_page first) is revoked while memory decode is off
 * and reads the pattern again after: the DMABUF behind it is on the
 * device's list, which every revoke walks. Returns 0, or -1 with @why.
 */
static int revocable(int devfd, void *map, uint64_t bar_page, char *why,
		     size_t len)
{
	uint64_t got = 0;
	int sig;

	if (stress_set_decode(devfd, false)) {
		snprintf(why, len, "memory decode off: %s", strerror(errno));
		return -1;
	}
	sig = stress_read(stress_word(map, 0, 0), &got);
	if (stress_set_decode(devfd, true)) {
		snprintf(why, len, "memory decode on: %s", strerror(errno));
		return -1;
	}
	if (sig != SIGBUS) {
		snprintf(why, len, "with memory decode off the mapping %s: its DMABUF is not revoked with the device",
			 sig ? strsignal(sig) : "still reads (no SIGBUS)");
		return -1;
	}
	return check_map(map, bar_page, 1, why, len);
}

/* ------------------------------------------------------------------ */
/* The operations */

struct ctx {
	enum op_id op;
	struct iommu *iommu;
	struct vfio_pci_device *dev;	/* NULL for OP_OPEN_CLOSE_LIVE */
	uint64_t bar_off;		/* region offset of BAR2 */
	uint64_t bar_phys;		/* physical address of BAR2 */
	struct vfio_region_dma_range ranges[MANY_RANGES];
	/* prepared before arming */
	struct vfio_device_feature *feat;	/* the export request */
	char *cdev_path;			/* OP_OPEN_CLOSE_LIVE */
	int prep_fd;			/* a DMABUF of BAR2 */
	void *prep_map;			/* its mmap() */
	uint64_t prep_iova;
	bool prep_imported;
	/* made by the operation */
	void *hint;			/* bar_mmap_huge: 2 MiB aligned */
	void *map;
	size_t map_len;
	uint64_t map_page;		/* BAR page of the first page of map */
	uint64_t touched[3];		/* fault ops: what the armed reads got */
	int sig;			/* fault ops: the signal an armed read got */
	int fd;
	uint64_t iova;
	/* OP_OPEN_CLOSE_LIVE */
	int devfd;
	void *bar_map;
	void *dmabuf_map;
};

#define PREP_OFFSET	SZ_16M		/* BAR offset of the prepared DMABUF */
#define PREP_LEN	SZ_2M
#define PARTIAL_PAGE	5		/* bar_mmap_partial: pages 5..7 */
#define PARTIAL_PAGES	3
#define HUGE_OFFSET	SZ_2M		/* bar_mmap_huge: 4 MiB at 2 MiB */
#define HUGE_LEN	SZ_4M
#define MANY_BASE_PAGE	1024		/* export_512_ranges: every other page */
/* Fault operations: far from every other mapping (each 512 GiB slot) */
#define FAULT_BAR_ADDR		0x200000000000UL
#define FAULT_DMABUF_ADDR	(0x280000000000UL + PAGE)

/* The pages a fault operation touches: first, middle and last of map */
static uint64_t touch_page(const struct ctx *c, int i)
{
	uint64_t pages = c->map_len / PAGE;

	return i == 0 ? 0 : i == 1 ? pages / 2 : pages - 1;
}

static void *huge_hint(void)
{
	/* A free, 2 MiB aligned address: reserve more, then give it back */
	char *p = mmap(NULL, HUGE_LEN + SZ_2M, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	munmap(p, HUGE_LEN + SZ_2M);
	a = ((uintptr_t)p + SZ_2M - 1) & ~((uintptr_t)SZ_2M - 1);
	return (void *)a;
}

/*
 * A VFIO_DEVICE_FEATURE_DMA_BUF request for BAR2: one 2 MiB range at
 * PREP_OFFSET, or the @nr one-page @ranges. NULL if out of memory.
 */
static struct vfio_device_feature *
export_request(uint32_t nr, const struct vfio_region_dma_range *ranges)
{
	static const struct vfio_region_dma_range prep = {
		.offset = PREP_OFFSET, .length = PREP_LEN,
	};

	return stress_export_request(BAR, nr == 1 ? &prep : ranges, nr);
}

/* A VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE request for @fd, or NULL. */
static struct vfio_device_feature *revoke_request(int fd)
{
	struct vfio_device_feature_dma_buf_revoke r = { .dmabuf_fd = fd };

	return stress_feature_request(VFIO_DEVICE_FEATURE_SET |
				      VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE,
				      &r, sizeof(r));
}

/*
 * Set up what the operation works on; not armed. Everything the armed
 * operation passes to the kernel is built here: a malloc() while armed
 * could fail in brk() or mmap() and pass for the operation's ENOMEM.
 * 0 or -errno.
 */
static int op_prep(struct ctx *c, int devfd)
{
	c->feat = NULL;
	c->cdev_path = NULL;
	c->prep_fd = -1;
	c->prep_map = NULL;
	c->prep_imported = false;
	c->map = NULL;
	c->fd = -1;
	c->devfd = -1;
	c->bar_map = NULL;
	c->dmabuf_map = NULL;
	c->sig = 0;

	switch (c->op) {
	case OP_BAR_FAULT:
	case OP_DMABUF_FAULT:
		/*
		 * Mapped here, first touched armed, alone in its own top-level
		 * page table slot, so that every fault allocates its page
		 * tables (freed again by the munmap()): the BAR mapping
		 * PMD-aligned (huge), the DMABUF mapping 4 KiB past a PMD
		 * boundary (PTEs).
		 */
		c->hint = (void *)(c->op == OP_BAR_FAULT ? FAULT_BAR_ADDR :
				   FAULT_DMABUF_ADDR);
		if (c->op == OP_BAR_FAULT) {
			c->map_len = HUGE_LEN;
			c->map_page = HUGE_OFFSET / PAGE;
			c->map = mmap(c->hint, c->map_len, PROT_READ,
				      MAP_SHARED | MAP_FIXED_NOREPLACE, devfd,
				      c->bar_off + HUGE_OFFSET);
		} else {
			c->prep_fd = stress_export1(devfd, BAR, PREP_OFFSET,
						    PREP_LEN);
			if (c->prep_fd < 0)
				return -errno;
			c->map_len = PREP_LEN;
			c->map_page = PREP_OFFSET / PAGE;
			c->map = mmap(c->hint, c->map_len, PROT_READ,
				      MAP_SHARED | MAP_FIXED_NOREPLACE,
				      c->prep_fd, 0);
		}
		if (c->map == MAP_FAILED) {
			c->map = NULL;
			return -errno;
		}
		return 0;
	case OP_BAR_MMAP_HUGE:
		c->hint = huge_hint();
		return c->hint ? 0 : -ENOMEM;
	case OP_EXPORT_ONE:
	case OP_EXPORT_MANY:
		/* built and touched here: no user page fault while armed */
		c->feat = export_request(c->op == OP_EXPORT_ONE ? 1 : MANY_RANGES,
					 c->ranges);
		return c->feat ? 0 : -ENOMEM;
	case OP_EXPORT_WC: {
		/*
		 * The prepared range and one page apart from it,
		 * write-combined: two memory type reservations, so that a
		 * failure of the second one unwinds the first.
		 */
		const struct vfio_region_dma_range wc[2] = {
			{ .offset = PREP_OFFSET, .length = PREP_LEN },
			{ .offset = PREP_OFFSET + PREP_LEN + PAGE,
			  .length = PAGE },
		};

		c->feat = stress_export_request(BAR, wc, 2);
		if (!c->feat)
			return -ENOMEM;
		((struct vfio_device_feature_dma_buf *)c->feat->data)->flags =
			VFIO_DMA_BUF_FLAG_MMAP_WC;
		return 0;
	}
	case OP_OPEN_CLOSE_LIVE:
		/* libvfio asserts when the lookup fails: not armed */
		c->cdev_path = (char *)vfio_pci_get_cdev_path(ivshmem_bdf);
		c->feat = export_request(1, NULL);
		return c->cdev_path && c->feat ? 0 : -ENOMEM;
	case OP_DMABUF_MMAP:
	case OP_REVOKE:
	case OP_IOMMUFD_MAP_FILE:
		c->prep_fd = stress_export1(devfd, BAR, PREP_OFFSET, PREP_LEN);
		if (c->prep_fd < 0)
			return -errno;
		if (c->op != OP_REVOKE)
			return 0;
		c->feat = revoke_request(c->prep_fd);
		if (!c->feat)
			return -ENOMEM;
		/* Revoke a DMABUF that is mmap()ed and imported */
		c->prep_map = mmap(NULL, PREP_LEN, PROT_READ, MAP_SHARED,
				   c->prep_fd, 0);
		if (c->prep_map == MAP_FAILED) {
			c->prep_map = NULL;
			return -errno;
		}
		/* with a page mapped, so that the revoke has PTEs to zap */
		if (check_map(c->prep_map, PREP_OFFSET / PAGE, 1, NULL, 0))
			return -EIO;
		if (stress_ioas_map_file(c->iommu->iommufd, c->iommu->ioas_id,
					 c->prep_fd, PREP_LEN, &c->prep_iova))
			return -errno;
		c->prep_imported = true;
		return 0;
	default:
		return 0;
	}
}

static void op_unprep(struct ctx *c)
{
	free(c->feat);
	c->feat = NULL;
	free(c->cdev_path);
	c->cdev_path = NULL;
	if (c->prep_imported)
		stress_ioas_unmap(c->iommu->iommufd, c->iommu->ioas_id,
				  c->prep_iova, PREP_LEN);
	if (c->prep_map)
		munmap(c->prep_map, PREP_LEN);
	if (c->prep_fd >= 0)
		close(c->prep_fd);
}

static int open_close_live(struct ctx *c)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = c->iommu->iommufd,
	};
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = c->iommu->ioas_id,
	};
	struct vfio_region_info info = {
		.argsz = sizeof(info),
		.index = BAR,
	};

	c->devfd = open(c->cdev_path, O_RDWR | O_CLOEXEC);
	if (c->devfd < 0 || ioctl(c->devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind) ||
	    ioctl(c->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach) ||
	    ioctl(c->devfd, VFIO_DEVICE_GET_REGION_INFO, &info))
		return -errno;
	c->bar_map = mmap(NULL, PREP_LEN, PROT_READ, MAP_SHARED, c->devfd,
			  info.offset + PREP_OFFSET);
	if (c->bar_map == MAP_FAILED) {
		c->bar_map = NULL;
		return -errno;
	}
	c->fd = ioctl(c->devfd, VFIO_DEVICE_FEATURE, c->feat);
	if (c->fd < 0)
		return -errno;
	c->dmabuf_map = mmap(NULL, PREP_LEN, PROT_READ, MAP_SHARED, c->fd, 0);
	if (c->dmabuf_map == MAP_FAILED) {
		c->dmabuf_map = NULL;
		return -errno;
	}
	/* Close with both mappings live; the BAR mapping holds the device */
	close(c->fd);
	c->fd = -1;
	close(c->devfd);
	c->devfd = -1;
	munmap(c->bar_map, PREP_LEN);	/* the device closes here */
	c->bar_map = NULL;
	return 0;
}

/* The operation itself, armed. 0 or -errno. */
static int op_run(struct ctx *c, int devfd)
{
	int i;

	switch (c->op) {
	case OP_BAR_MMAP_FULL:
		c->map_len = SZ_1G;
		c->map = mmap(NULL, c->map_len, PROT_READ, MAP_SHARED, devfd,
			      c->bar_off);
		break;
	case OP_BAR_MMAP_PARTIAL:
		c->map_len = PARTIAL_PAGES * PAGE;
		c->map = mmap(NULL, c->map_len, PROT_READ, MAP_SHARED, devfd,
			      c->bar_off + PARTIAL_PAGE * PAGE);
		break;
	case OP_BAR_MMAP_HUGE:
		c->map_len = HUGE_LEN;
		c->map = mmap(c->hint, c->map_len, PROT_READ,
			      MAP_SHARED | MAP_FIXED_NOREPLACE, devfd,
			      c->bar_off + HUGE_OFFSET);
		break;
	case OP_EXPORT_ONE:
	case OP_EXPORT_MANY:
	case OP_EXPORT_WC:
		c->fd = ioctl(devfd, VFIO_DEVICE_FEATURE, c->feat);
		return c->fd < 0 ? -errno : 0;
	case OP_DMABUF_MMAP:
		c->map_len = PREP_LEN;
		c->map = mmap(NULL, c->map_len, PROT_READ, MAP_SHARED,
			      c->prep_fd, 0);
		break;
	case OP_REVOKE:
		return ioctl(devfd, VFIO_DEVICE_FEATURE, c->feat) ? -errno : 0;
	case OP_IOMMUFD_MAP_FILE:
		return stress_ioas_map_file(c->iommu->iommufd,
					    c->iommu->ioas_id, c->prep_fd,
					    PREP_LEN, &c->iova);
	case OP_OPEN_CLOSE_LIVE:
		return open_close_live(c);
	case OP_BAR_FAULT:
	case OP_DMABUF_FAULT:
		/* The first touch: the faults run armed */
		for (i = 0; i < 3; i++) {
			c->sig = stress_read(stress_word(c->map, touch_page(c, i), 0),
					     &c->touched[i]);
			if (c->sig)
				return -EFAULT;
		}
		return 0;
	default:
		return -EINVAL;
	}
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		return -errno;
	}
	return 0;
}

/*
 * After a successful run (injected failure or not): does the result work?
 * @c0 are the counts before the run. Returns 0, or -1 with @why filled in.
 */
static int op_check(struct ctx *c, int devfd, const struct counts *c0,
		    char *why, size_t len)
{
	struct counts now;
	uint64_t got = 0;
	void *map;
	long long un;
	int sig, i;

	get_counts(&now);
	switch (c->op) {
	case OP_BAR_MMAP_FULL:
		if (now.dmabufs != c0->dmabufs + 1 || now.vmas != c0->vmas + 1)
			goto counts;
		/* first, last and a middle page of the 1 GiB BAR */
		if (check_map(c->map, 0, 1, why, len) ||
		    check_map((char *)c->map + (BAR_PAGES - 1) * PAGE,
			      BAR_PAGES - 1, 1, why, len) ||
		    check_map((char *)c->map + 77777 * PAGE, 77777, 1, why, len))
			return -1;
		return revocable(devfd, c->map, 0, why, len);
	case OP_BAR_MMAP_PARTIAL:
		if (now.dmabufs != c0->dmabufs + 1 || now.vmas != c0->vmas + 1)
			goto counts;
		if (check_map(c->map, PARTIAL_PAGE, PARTIAL_PAGES, why, len))
			return -1;
		return revocable(devfd, c->map, PARTIAL_PAGE, why, len);
	case OP_BAR_MMAP_HUGE:
		if (now.dmabufs != c0->dmabufs + 1 || now.vmas != c0->vmas + 1)
			goto counts;
		if (c->map != c->hint) {
			snprintf(why, len, "mapped at %p, not at %p", c->map,
				 c->hint);
			return -1;
		}
		if (check_map(c->map, HUGE_OFFSET / PAGE, HUGE_LEN / PAGE,
			      why, len))
			return -1;
		return revocable(devfd, c->map, HUGE_OFFSET / PAGE, why, len);
	case OP_DMABUF_MMAP:
		if (now.dmabufs != c0->dmabufs || now.vmas != c0->vmas + 1)
			goto counts;
		if (check_map(c->map, PREP_OFFSET / PAGE, PREP_LEN / PAGE,
			      why, len))
			return -1;
		return revocable(devfd, c->map, PREP_OFFSET / PAGE, why, len);
	case OP_BAR_FAULT:
	case OP_DMABUF_FAULT:
		/* The mapping was made before arming: nothing new */
		if (!same_counts(&now, c0))
			goto counts;
		for (i = 0; i < 3; i++) {
			uint64_t page = c->map_page + touch_page(c, i);

			if (c->touched[i] != ivshmem_pattern(seed, page)) {
				snprintf(why, len, "the armed first touch of BAR page %llu read %#llx, want %#llx",
					 (unsigned long long)page,
					 (unsigned long long)c->touched[i],
					 (unsigned long long)ivshmem_pattern(seed, page));
				return -1;
			}
		}
		if (check_map(c->map, c->map_page, c->map_len / PAGE, why, len))
			return -1;
		return revocable(devfd, c->map, c->map_page, why, len);
	case OP_EXPORT_ONE:
	case OP_EXPORT_MANY:
	case OP_EXPORT_WC:
		if (now.dmabufs != c0->dmabufs + 1 || now.fds != c0->fds + 1)
			goto counts;
		if (c->op == OP_EXPORT_WC &&
		    pat_memtype_types(c->bar_phys + PREP_OFFSET,
				      c->bar_phys + PREP_OFFSET + PREP_LEN) !=
		    PAT_WC_EXACT) {
			snprintf(why, len, "no write-combining entry of exactly the DMABUF's range in %s (types %d)",
				 PAT_MEMTYPE_LIST,
				 pat_memtype_types(c->bar_phys + PREP_OFFSET,
						   c->bar_phys + PREP_OFFSET +
						   PREP_LEN));
			return -1;
		}
		if (c->op != OP_EXPORT_MANY) {
			map = mmap(NULL, PREP_LEN, PROT_READ, MAP_SHARED, c->fd, 0);
			if (map == MAP_FAILED)
				goto map_failed;
			i = check_map(map, PREP_OFFSET / PAGE, PREP_LEN / PAGE,
				      why, len);
			if (!i)
				i = revocable(devfd, map, PREP_OFFSET / PAGE,
					      why, len);
			munmap(map, PREP_LEN);
			return i;
		}
		/* range i is BAR page MANY_BASE_PAGE + 2 i, back to back */
		map = mmap(NULL, MANY_RANGES * PAGE, PROT_READ, MAP_SHARED,
			   c->fd, 0);
		if (map == MAP_FAILED)
			goto map_failed;
		for (i = 0; i < MANY_RANGES; i++)
			if (check_map((char *)map + i * PAGE,
				      MANY_BASE_PAGE + 2 * i, 1, why, len))
				break;
		if (i == MANY_RANGES)
			i = revocable(devfd, map, MANY_BASE_PAGE, why, len) ?
			    0 : MANY_RANGES;
		munmap(map, MANY_RANGES * PAGE);
		return i < MANY_RANGES ? -1 : 0;
	case OP_REVOKE:
		if (!same_counts(&now, c0))
			goto counts;
		sig = stress_read(stress_word(c->prep_map, 0, 0), &got);
		if (sig != SIGBUS) {
			snprintf(why, len, "read after the revoke: %s",
				 sig ? strsignal(sig) : "no SIGBUS");
			return -1;
		}
		if (!stress_revoke(devfd, c->prep_fd) || errno != EBADFD) {
			snprintf(why, len, "second revoke: %s, want EBADFD",
				 strerror(errno));
			return -1;
		}
		return 0;
	case OP_IOMMUFD_MAP_FILE:
		if (!same_counts(&now, c0))
			goto counts;
		un = iommufd_ioas_unmap(c->iommu->iommufd, c->iommu->ioas_id,
					c->iova, PREP_LEN);
		if (un != PREP_LEN) {
			snprintf(why, len, "unmap of the import: %lld, want %d",
				 un, PREP_LEN);
			return -1;
		}
		return 0;
	case OP_OPEN_CLOSE_LIVE:
		/* Only the DMABUF mapping is left, of a closed device */
		if (now.dmabufs != c0->dmabufs + 1 || now.vmas != c0->vmas + 1 ||
		    now.fds != c0->fds)
			goto counts;
		sig = stress_read(stress_word(c->dmabuf_map, 0, 0), &got);
		if (sig != SIGBUS) {
			snprintf(why, len, "DMABUF mapping after close: %s",
				 sig ? strsignal(sig) : "no SIGBUS");
			return -1;
		}
		return 0;
	default:
		return -1;
	}
counts:
	snprintf(why, len, "after success: %d DMABUFs, %d fds, %d VMAs; before %d, %d, %d",
		 now.dmabufs, now.fds, now.vmas, c0->dmabufs, c0->fds, c0->vmas);
	return -1;
map_failed:
	snprintf(why, len, "mmap() of the exported DMABUF: %s", strerror(errno));
	return -1;
}

/*
 * After a failed run: for single-call operations nothing may have changed
 * (checked by the caller before this); an iommufd import left nothing in the
 * IOAS; a failed revoke left the DMABUF readable. Returns 0 or -1.
 */
static int op_check_failed(struct ctx *c, char *why, size_t len)
{
	long long un;

	switch (c->op) {
	case OP_REVOKE:
		return check_map(c->prep_map, PREP_OFFSET / PAGE, 1, why, len);
	case OP_EXPORT_WC:
		if (pat_memtype_types(c->bar_phys,
				      c->bar_phys + SZ_1G) != 0) {
			snprintf(why, len, "the failed export left memory type entries for BAR2 in %s (types %d)",
				 PAT_MEMTYPE_LIST,
				 pat_memtype_types(c->bar_phys,
						   c->bar_phys + SZ_1G));
			return -1;
		}
		return 0;
	case OP_IOMMUFD_MAP_FILE:
		un = iommufd_ioas_unmap(c->iommu->iommufd, c->iommu->ioas_id,
					0, UINT64_MAX);
		if (un != 0 && un != -ENOENT) {
			snprintf(why, len, "the failed import left %lld bytes mapped in the IOAS",
				 un);
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

/* Undo what a (partly) successful run made; not armed. */
static void op_undo(struct ctx *c)
{
	if (c->map)
		munmap(c->map, c->map_len);
	if (c->fd >= 0)
		close(c->fd);
	if (c->dmabuf_map)
		munmap(c->dmabuf_map, PREP_LEN);
	if (c->bar_map)
		munmap(c->bar_map, PREP_LEN);
	if (c->devfd >= 0)
		close(c->devfd);
	c->map = NULL;
	c->fd = -1;
	c->dmabuf_map = NULL;
	c->bar_map = NULL;
	c->devfd = -1;
}

/* ------------------------------------------------------------------ */
/* The walk */

static int min_points(const char *op)
{
	FILE *f = stress_env_file("VFIO_LAB_FAILNTH_MIN");
	char line[256], name[64];
	int n, ret = -1;

	if (!f)
		return -2;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#')
			continue;
		if (sscanf(line, "%63s %d", name, &n) == 2 && !strcmp(name, op))
			ret = n;
	}
	fclose(f);
	return ret;
}

/*
 * The call sites a walk injected, each once per outcome: the operation
 * failed with an errno, or succeeded anyway (a fallback). A call site is
 * its first frame with offset, so two allocations in one function count
 * as two.
 */
struct site {
	char text[256];		/* "attr: frame < frame < frame" */
	char key[96];		/* "frame+0x1a" */
	char chain[640];	/* "attr: frame < ..." up to NR_FRAMES deep */
	bool failed;
};

struct sites {
	int n;
	struct site site[MAX_SITES];
};

static void add_site(struct sites *s, const struct walker *w, bool failed)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (s->site[i].failed == failed &&
		    !strcmp(s->site[i].key, w->key) &&
		    !strcmp(s->site[i].chain, w->chain))
			return;
	if (s->n == MAX_SITES)
		return;
	snprintf(s->site[s->n].text, sizeof(s->site[0].text), "%s", w->site);
	snprintf(s->site[s->n].key, sizeof(s->site[0].key), "%s", w->key);
	snprintf(s->site[s->n].chain, sizeof(s->site[0].chain), "%s", w->chain);
	s->site[s->n++].failed = failed;
}

/* Does a frame name end at @c (end, next frame, or a ".isra.0" suffix)? */
static bool frame_end(char c)
{
	return c == '\0' || c == ' ' || c == '.';
}

/* Does @st, injected with outcome @failed, have a stack starting with @want? */
static bool site_matches(const struct site *st, bool failed, const char *want)
{
	const char *frames = strstr(st->chain, ": ");
	size_t len = strlen(want);

	if (st->failed != failed || !st->key[0] || !frames)
		return false;
	frames += 2;
	/*
	 * whole frames: "foo" does not match "foo_bar", but matches the
	 * compiler's clones ("foo.isra.0", "foo.part.0", "foo.constprop.0")
	 */
	return !strncmp(frames, want, len) && frame_end(frames[len]);
}

/* Is @frame one of the frames of @chain ("attr: f0 < f1 < ...")? */
static bool chain_has_frame(const char *chain, const char *frame)
{
	const char *p = strstr(chain, ": ");
	size_t len = strlen(frame);

	for (p = p ? p + 2 : chain; p && *p; p = strstr(p, " < "), p = p ? p + 3 : NULL)
		if (!strncmp(p, frame, len) && frame_end(p[len]))
			return true;
	return false;
}

/*
 * Check what $VFIO_LAB_FAILNTH_SITES requires of @op, lines of
 * "<op> <n> <failed|fallback> <frames>": at least <n> distinct call sites
 * whose stack ("attr: frame < caller < ...", NR_FRAMES frames outside the
 * allocators) starts with <frames> were injected with that outcome. Returns the number of requirements not met (each printed
 * if @print), or -1 if the file is not readable or a line is malformed.
 */
static int missing_sites(const char *op, const struct sites *s, bool print)
{
	FILE *f = stress_env_file("VFIO_LAB_FAILNTH_SITES");
	char line[512], name[64], outcome[16];
	int missing = 0, i, j, at, want_n, got;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *want, *end;
		bool failed;

		if (line[0] == '#' || sscanf(line, "%63s", name) != 1 ||
		    strcmp(name, op))
			continue;
		at = -1;
		if (sscanf(line, "%63s %d %15s %n", name, &want_n, outcome,
			   &at) != 3 || want_n < 1 || at < 0 || !line[at] ||
		    line[at] == '\n' ||
		    (strcmp(outcome, "failed") && strcmp(outcome, "fallback"))) {
			ksft_print_msg("VFIO_LAB_FAILNTH_SITES: malformed line: %s",
				       line);
			fclose(f);
			return -1;
		}
		failed = !strcmp(outcome, "failed");
		want = line + at;
		end = strchr(want, '\n');
		if (end)
			*end = '\0';
		/* distinct call sites: one reached by two stacks counts once */
		for (i = 0, got = 0; i < s->n; i++) {
			if (!site_matches(&s->site[i], failed, want))
				continue;
			for (j = 0; j < i; j++)
				if (site_matches(&s->site[j], failed, want) &&
				    !strcmp(s->site[j].key, s->site[i].key))
					break;
			got += j == i;
		}
		if (got < want_n) {
			if (print)
				ksft_print_msg("%s: %d call sites \"%s\" %s, %d required\n",
					       op, got, want, outcome, want_n);
			missing++;
		}
	}
	fclose(f);
	return missing;
}

/*
 * A failed run's errno: ENOMEM, or EBUSY from a failed PCI region request
 * (pci_request_selected_regions() reports every failure as EBUSY).
 */
static bool expected_errno(enum op_id op, int err, const char *site)
{
	if (err == ENOMEM)
		return true;
	return op == OP_OPEN_CLOSE_LIVE && err == EBUSY &&
	       strstr(site, "__request_region");
}

FIXTURE(failnth) {
	struct ctx c;
	struct walker w;
	bool have_walker;
};

FIXTURE_SETUP(failnth)
{
	int i;

	ASSERT_TRUE(stress_lab_seed(&seed)) TH_LOG("VFIO_LAB_SEED is not set");
	ASSERT_LE(0, stress_dmabuf_count()) TH_LOG("%s not readable", STRESS_BUFINFO);
	ASSERT_EQ(0, fault_knobs_set(true))
		TH_LOG("cannot set up %s/fail*: a kernel without CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC and CONFIG_FAULT_INJECTION_DEBUG_FS",
		       FAULT_DIR);
	ASSERT_EQ(0, walker_init(&self->w))
		TH_LOG("/proc/thread-self/fail-nth: %s (CONFIG_FAULT_INJECTION)",
		       strerror(errno));
	self->have_walker = true;
	stress_install_handlers();
	memset(&self->c, 0, sizeof(self->c));
	self->c.iommu = iommu_init("iommufd");
	for (i = 0; i < MANY_RANGES; i++) {
		self->c.ranges[i].offset = (MANY_BASE_PAGE + 2 * i) * PAGE;
		self->c.ranges[i].length = PAGE;
	}
}

FIXTURE_TEARDOWN(failnth)
{
	if (self->have_walker)
		walker_fini(&self->w);
}

static void walk(struct __test_metadata *_metadata, struct ctx *c,
		 struct walker *w, enum op_id op)
{
	int errnos[256] = {}, n, ret, points = -1, fallbacks = 0, min, check_fd = -1;
	int pass, pass_points, missing;
	void *room;
	struct sites *sites = calloc(1, sizeof(*sites));
	struct vfio_pci_device *dev = NULL;
	struct vfio_region_info *info;
	struct counts base, c0, now;
	char why[256] = "";
	bool injected;
	int devfd = -1;

	c->op = op;
	shared->pid[op] = getpid();
	if (op != OP_OPEN_CLOSE_LIVE) {
		dev = vfio_pci_device_init(ivshmem_bdf, c->iommu);
		ASSERT_EQ(SZ_1G, dev->bars[BAR].info.size);
		info = &dev->bars[BAR].info;
		c->bar_off = info->offset;
		devfd = dev->fd;
		{
			uint64_t end, flags;

			ASSERT_EQ(0, sysfs_pci_resource(ivshmem_bdf, BAR,
							&c->bar_phys, &end,
							&flags));
		}
		/* libvfio's uncached mmap() of BAR2 would make WC EBUSY */
		if (op == OP_EXPORT_WC) {
			ASSERT_EQ(0, munmap(dev->bars[BAR].vaddr, SZ_1G));
			dev->bars[BAR].vaddr = NULL;
		}
		check_fd = dev->fd;
	}
	ASSERT_NE(NULL, sites);
	/*
	 * Everything the test has mapped is faulted in now, so that the
	 * test's own code, data and stack never take a page fault (which
	 * allocates) while armed; BAR and DMABUF mappings are VM_PFNMAP,
	 * which mlock leaves alone.
	 */
	/*
	 * A locked heap cannot grow by merging: leave it room first, so
	 * that a malloc() in the loop does not add a VMA.
	 */
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 32 << 20);	/* from the heap, not mmap() */
	room = malloc(8 << 20);
	ASSERT_NE(NULL, room);
	memset(room, 0, 8 << 20);
	free(room);
	ASSERT_EQ(0, mlockall(MCL_CURRENT)) TH_LOG("mlockall: %s", strerror(errno));
	get_counts(&base);
	ASSERT_LE(0, base.dmabufs);

	/*
	 * How many allocations a run makes varies a little (slab refills,
	 * kmemleak's own metadata), so the n-th failure of one run and the
	 * (n+1)-th of the next can skip a site between them. A site the
	 * walk requires but missed gets another whole walk, up to
	 * MAX_WALKS; one the code no longer reaches is missed by all.
	 */
	for (pass = 1; pass <= MAX_WALKS; pass++) {
		pass_points = -1;
		for (n = 1; n <= MAX_NTH; n++) {
			ret = op_prep(c, op == OP_OPEN_CLOSE_LIVE ? -1 : devfd);
			ASSERT_EQ(0, ret) TH_LOG("n=%d: setting up %s: %s", n,
						 op_names[op], strerror(-ret));
			get_counts(&c0);

			arm(w, n);
			ret = op_run(c, devfd);
			injected = disarm(w);
			if (injected) {
				read_site(w);
				add_site(sites, w, ret != 0);
			}

			if (ret) {
				ASSERT_EQ(0, c->sig)
					TH_LOG("n=%d%s%s%s: the first touch of the mapping got %s: a fault whose allocation fails must be retried (VM_FAULT_OOM), not kill the process",
					       n, injected ? " (" : "",
					       injected ? w->site : "",
					       injected ? ")" : "", strsignal(c->sig));
				ASSERT_TRUE(injected)
					TH_LOG("n=%d: %s failed (%s) though no failure was injected",
					       n, op_names[op], strerror(-ret));
				ASSERT_TRUE(expected_errno(op, -ret, w->site))
					TH_LOG("n=%d (%s): %s failed with %s, want ENOMEM",
					       n, w->site, op_names[op], strerror(-ret));
				errnos[-ret & 255]++;
				/* Single calls: nothing changed. Sequences: undo first */
				if (op != OP_OPEN_CLOSE_LIVE) {
					get_counts(&now);
					ASSERT_TRUE(same_counts(&now, &c0))
						TH_LOG("n=%d (%s): %s failed with %s but left %d DMABUFs, %d fds, %d VMAs behind; before: %d, %d, %d",
						       n, w->site, op_names[op], strerror(-ret),
						       now.dmabufs, now.fds, now.vmas,
						       c0.dmabufs, c0.fds, c0.vmas);
				}
				ASSERT_EQ(0, op_check_failed(c, why, sizeof(why)))
					TH_LOG("n=%d (%s): %s", n, w->site, why);
				ksft_print_msg("%s n=%d %s -> %s\n", op_names[op], n,
					       w->site, strerror(-ret));
			} else {
				ASSERT_EQ(0, op_check(c, devfd, &c0, why, sizeof(why)))
					TH_LOG("n=%d%s%s%s: %s succeeded but does not work: %s",
					       n, injected ? " (" : "",
					       injected ? w->site : "",
					       injected ? ")" : "", op_names[op], why);
				if (injected) {
					fallbacks++;
					ksft_print_msg("%s n=%d %s -> succeeded (fallback)\n",
						       op_names[op], n, w->site);
				}
			}
			op_undo(c);
			op_unprep(c);
			get_counts(&now);
			ASSERT_TRUE(same_counts(&now, &base))
				TH_LOG("n=%d: after %s and its undo: %d DMABUFs, %d fds, %d VMAs; at the start: %d, %d, %d",
				       n, op_names[op], now.dmabufs, now.fds, now.vmas,
				       base.dmabufs, base.fds, base.vmas);

			/* The device still works */
			if (op == OP_OPEN_CLOSE_LIVE) {
				dev = vfio_pci_device_init(ivshmem_bdf, c->iommu);
				check_fd = dev->fd;
				c->bar_off = dev->bars[BAR].info.offset;
			}
			ASSERT_EQ(0, device_works(check_fd, c->bar_off,
						  (n * 7919) % BAR_PAGES, why, sizeof(why)))
				TH_LOG("n=%d: after %s: %s", n, op_names[op], why);
			if (op == OP_OPEN_CLOSE_LIVE) {
				vfio_pci_device_cleanup(dev);
				dev = NULL;
			}

			if (!injected) {
				pass_points = n - 1;
				break;
			}
		}
		ASSERT_LE(0, pass_points)
			TH_LOG("%s still hit injection points after %d runs",
			       op_names[op], MAX_NTH);
		points = pass_points > points ? pass_points : points;
		missing = missing_sites(op_names[op], sites, false);
		ksft_print_msg("%s: walk %d: %d injection points, %d required sites not failed yet\n",
			       op_names[op], pass, pass_points, missing);
		if (missing <= 0)
			break;
	}
	shared->points[op] = points;
	if (dev)
		vfio_pci_device_cleanup(dev);
	munlockall();

	/* A revoke runs under memory_lock(W): it allocates nothing */
	if (op == OP_REVOKE)
		ASSERT_EQ(0, points)
			TH_LOG("DMA_BUF_REVOKE reached %d injection points: an allocation under memory_lock(W) and the reservation lock (update this test only on purpose)",
			       points);
	/* The huge BAR mapping faults PMDs: no PTE table, no 4 KiB insert */
	if (op == OP_BAR_FAULT)
		for (n = 0; n < sites->n; n++)
			ASSERT_FALSE(chain_has_frame(sites->site[n].chain, "do_fault") ||
				     chain_has_frame(sites->site[n].chain, "__do_fault") ||
				     chain_has_frame(sites->site[n].chain, "insert_pfn"))
				TH_LOG("the 2 MiB-aligned BAR mapping took a 4 KiB fault: %s",
				       sites->site[n].chain);

	for (n = 1; n < 256; n++)
		if (errnos[n])
			ksft_print_msg("%s: %d runs failed with %s\n",
				       op_names[op], errnos[n], strerror(n));
	min = min_points(op_names[op]);
	ksft_print_msg("%s: %d injection points walked (%d succeeded with a fallback), checked-in minimum %d\n",
		       op_names[op], points, fallbacks, min);
	ASSERT_NE(-2, min) TH_LOG("VFIO_LAB_FAILNTH_MIN (%s) not readable",
				  getenv("VFIO_LAB_FAILNTH_MIN") ?: "unset");
	ASSERT_NE(-1, min) TH_LOG("%s has no line in %s", op_names[op],
				  getenv("VFIO_LAB_FAILNTH_MIN"));
	ASSERT_GE(points, min)
		TH_LOG("%s walked %d injection points, fewer than the %d checked in: an allocation on its path is no longer reached (update the file only on purpose)",
		       op_names[op], points, min);
	if (points > min)
		ksft_print_msg("%s: %d injection points, more than the checked-in %d\n",
			       op_names[op], points, min);
	for (n = 0; n < sites->n; n++)
		ksft_print_msg("%s: injected at %s (%s): %s\n", op_names[op],
			       sites->site[n].key[0] ? sites->site[n].key : "?",
			       sites->site[n].chain,
			       sites->site[n].failed ? "failed" : "fallback");
	n = missing_sites(op_names[op], sites, true);
	ASSERT_LE(0, n) TH_LOG("VFIO_LAB_FAILNTH_SITES (%s) not readable",
			       getenv("VFIO_LAB_FAILNTH_SITES") ?: "unset");
	ASSERT_EQ(0, n)
		TH_LOG("%s: %d required call sites were never failed: an allocation of the series is no longer reached (update tests/stress/failnth-sites only on purpose)",
		       op_names[op], n);
	free(sites);
}

#define WALK(op, id)							\
	TEST_F_TIMEOUT(failnth, op, FAILNTH_TIMEOUT)			\
	{								\
		walk(_metadata, &self->c, &self->w, id);		\
	}

WALK(bar_mmap_full, OP_BAR_MMAP_FULL)
WALK(bar_mmap_partial, OP_BAR_MMAP_PARTIAL)
WALK(bar_mmap_huge, OP_BAR_MMAP_HUGE)
WALK(export_1_range, OP_EXPORT_ONE)
WALK(export_512_ranges, OP_EXPORT_MANY)
WALK(dmabuf_mmap, OP_DMABUF_MMAP)
WALK(dmabuf_revoke, OP_REVOKE)
WALK(iommufd_map_file, OP_IOMMUFD_MAP_FILE)
WALK(open_close_live, OP_OPEN_CLOSE_LIVE)
WALK(bar_fault_huge, OP_BAR_FAULT)
WALK(dmabuf_fault, OP_DMABUF_FAULT)
WALK(export_wc, OP_EXPORT_WC)

/* ------------------------------------------------------------------ */
/* kmemleak, per operation */

/*
 * Scan once for all leak.* cases: twice, 6 s apart (kmemleak reports
 * objects older than 5 s), then keep the report.
 */
static void scan_once(void)
{
	ssize_t r;
	int fd;

	if (shared->scanned)
		return;
	shared->scanned = true;
	sleep(6);
	shared->scan_err = stress_kmemleak_scan();
	if (shared->scan_err)
		return;
	sleep(6);
	shared->scan_err = stress_kmemleak_scan();
	if (shared->scan_err)
		return;
	fd = open(STRESS_KMEMLEAK, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		shared->scan_err = -errno;
		return;
	}
	while (shared->report_len < REPORT_MAX - 1 &&
	       (r = read(fd, shared->report + shared->report_len,
			 REPORT_MAX - 1 - shared->report_len)) > 0)
		shared->report_len += r;
	close(fd);
}

/* Unreferenced objects allocated by @pid; prints the first ones. */
static int leaks_of(pid_t pid)
{
	char *p = shared->report, *obj, *next, *pidstr;
	int leaks = 0, printed = 0;

	shared->report[shared->report_len] = '\0';
	while ((obj = strstr(p, "unreferenced object"))) {
		next = strstr(obj + 1, "unreferenced object");
		pidstr = strstr(obj, ", pid ");
		if (pidstr && (!next || pidstr < next) &&
		    atoi(pidstr + 6) == pid) {
			leaks++;
			if (printed++ < 3)
				ksft_print_msg("%.*s", next ? (int)(next - obj) :
					       (int)strlen(obj), obj);
		}
		p = obj + 1;
	}
	return leaks;
}

FIXTURE(leak) {
};

FIXTURE_SETUP(leak)
{
}

FIXTURE_TEARDOWN(leak)
{
}

static void leak_check(struct __test_metadata *_metadata, enum op_id op)
{
	int leaks;

	ASSERT_NE(0, shared->pid[op]) TH_LOG("%s was not walked", op_names[op]);
	scan_once();
	ASSERT_EQ(0, shared->scan_err)
		TH_LOG("kmemleak: %s (CONFIG_DEBUG_KMEMLEAK, or kmemleak disabled itself: see dmesg)",
		       strerror(-shared->scan_err));
	leaks = leaks_of(shared->pid[op]);
	ASSERT_EQ(0, leaks)
		TH_LOG("%d unreferenced objects allocated by the walk of %s (pid %d)",
		       leaks, op_names[op], shared->pid[op]);
}

#define LEAK(op, id)							\
	TEST_F_TIMEOUT(leak, op, FAILNTH_TIMEOUT)			\
	{								\
		leak_check(_metadata, id);				\
	}

LEAK(bar_mmap_full, OP_BAR_MMAP_FULL)
LEAK(bar_mmap_partial, OP_BAR_MMAP_PARTIAL)
LEAK(bar_mmap_huge, OP_BAR_MMAP_HUGE)
LEAK(export_1_range, OP_EXPORT_ONE)
LEAK(export_512_ranges, OP_EXPORT_MANY)
LEAK(dmabuf_mmap, OP_DMABUF_MMAP)
LEAK(dmabuf_revoke, OP_REVOKE)
LEAK(iommufd_map_file, OP_IOMMUFD_MAP_FILE)
LEAK(open_close_live, OP_OPEN_CLOSE_LIVE)
LEAK(bar_fault_huge, OP_BAR_FAULT)
LEAK(dmabuf_fault, OP_DMABUF_FAULT)
LEAK(export_wc, OP_EXPORT_WC)

/* ------------------------------------------------------------------ */
/*
 * No reference was leaked: vfio-pci's unbind waits until every user of the
 * device is gone (vfio_unregister_group_dev()), so a leaked registration or
 * file reference makes it hang. Then bind it again and check it works.
 */

FIXTURE(device) {
};

FIXTURE_SETUP(device)
{
}

FIXTURE_TEARDOWN(device)
{
}

TEST_F_TIMEOUT(device, unbind_rebind, UNBIND_SECS + 60)
{
	struct vfio_pci_device *dev;
	char path[256], why[256] = "";
	int status = 0, i;
	struct iommu *iommu;
	pid_t pid;

	ASSERT_TRUE(stress_lab_seed(&seed)) TH_LOG("VFIO_LAB_SEED is not set");
	stress_install_handlers();
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind",
		 ivshmem_bdf);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(stress_write_str(path, ivshmem_bdf) ? 1 : 0);
	for (i = 0; i < UNBIND_SECS * 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(100000);
	}
	ASSERT_GT(UNBIND_SECS * 10, i)
		TH_LOG("unbinding %s from vfio-pci did not finish in %d s: a reference to the device was leaked",
		       ivshmem_bdf, UNBIND_SECS);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("writing %s to %s failed", ivshmem_bdf, path);

	/* driver_override is vfio-pci (lab/guest/bind-devices) */
	ASSERT_EQ(0, stress_write_str("/sys/bus/pci/drivers_probe", ivshmem_bdf));
	iommu = iommu_init("iommufd");
	dev = vfio_pci_device_init(ivshmem_bdf, iommu);
	ASSERT_EQ(0, device_works(dev->fd, dev->bars[BAR].info.offset, 4242,
				  why, sizeof(why)))
		TH_LOG("after unbind and bind: %s", why);
	vfio_pci_device_cleanup(dev);
	iommu_cleanup(iommu);
}

/* ------------------------------------------------------------------ */
/*
 * Lockdep knew vfio-pci's revoke lock order before any test ran, and the
 * classes it was taught are the ones the devices' locks use.
 */

FIXTURE(lockdep) {
};

FIXTURE_SETUP(lockdep)
{
}

FIXTURE_TEARDOWN(lockdep)
{
}

/* Does class @from have a direct dependency on class @to in @f? */
static bool lockdep_edge(FILE *f, const char *from, const char *to)
{
	char line[512];
	bool in = false;
	size_t l;

	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		l = strlen(line);
		if (l && line[l - 1] == '\n')
			line[--l] = '\0';
		if (line[0] != ' ') {
			/* "<key> FD: ... BD: ... <usage>: <name>" */
			char *name = strstr(line, ": ");

			while (name && strstr(name + 2, ": "))
				name = strstr(name + 2, ": ");
			in = name && !strcmp(name + 2, from);
			continue;
		}
		if (in && strstr(line, " -> [") && l > strlen(to) &&
		    !strcmp(line + l - strlen(to), to) &&
		    line[l - strlen(to) - 1] == ' ')
			return true;
	}
	return false;
}

TEST_F(lockdep, order_primed_at_boot)
{
	static const char *const chain[][2] = {
		{ "&vdev->memory_lock", "&vdev->dmabufs_lock" },
		{ "&vdev->dmabufs_lock", "reservation_ww_class_mutex" },
	};
	const char *path = getenv("VFIO_LAB_LOCKDEP_START");
	unsigned int i;
	FILE *f;

	ASSERT_NE(NULL, path) TH_LOG("VFIO_LAB_LOCKDEP_START is not set");
	f = fopen(path, "r");
	ASSERT_NE(NULL, f) TH_LOG("%s: %s (a kernel without CONFIG_PROVE_LOCKING?)",
				  path, strerror(errno));
	for (i = 0; i < ARRAY_SIZE(chain); i++) {
		bool edge = lockdep_edge(f, chain[i][0], chain[i][1]);

		ksft_print_msg("before any test: %s -> %s: %s\n", chain[i][0],
			       chain[i][1], edge ? "known" : "missing");
		EXPECT_TRUE(edge);
	}
	fclose(f);
}

/*
 * After every walk has faulted, revoked and released, and the device was
 * unbound and bound again (last before this): a device lock
 * initialized anywhere but at the primed call site would be a second class
 * of the same name ("&vdev->memory_lock#2"), and the priming would not
 * cover it. And no lockdep report turned lockdep off.
 */
TEST_F(lockdep, same_classes_and_still_on)
{
	static const char *const names[] = {
		"&vdev->memory_lock", "&vdev->dmabufs_lock",
	};
	char line[512], want[64];
	bool found[ARRAY_SIZE(names)] = {}, on = false;
	unsigned int i;
	FILE *f;

	f = fopen("/proc/lockdep", "r");
	ASSERT_NE(NULL, f) TH_LOG("/proc/lockdep: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == ' ')
			continue;
		for (i = 0; i < ARRAY_SIZE(names); i++) {
			char *at = strstr(line, names[i]);

			if (!at)
				continue;
			at += strlen(names[i]);
			EXPECT_TRUE(*at == '\n' || *at == '\0')
				TH_LOG("a second lockdep class of %s: %s", names[i], line);
			found[i] = true;
		}
	}
	fclose(f);
	EXPECT_TRUE(found[0] && found[1])
		TH_LOG("/proc/lockdep lacks %s", found[0] ? names[1] : names[0]);

	f = fopen("/proc/lockdep_stats", "r");
	ASSERT_NE(NULL, f) TH_LOG("/proc/lockdep_stats: %s", strerror(errno));
	snprintf(want, sizeof(want), " debug_locks:");
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, want, strlen(want)))
			on = atoi(line + strlen(want)) == 1;
	fclose(f);
	EXPECT_TRUE(on) TH_LOG("debug_locks is off: lockdep reported something and turned itself off (see the serial log)");
}

static pid_t main_pid;

/* test_harness_run() exits: report and put the knobs back from atexit() */
static void report_and_reset(void)
{
	int i;

	if (getpid() != main_pid)
		return;
	for (i = 0; i < NR_OPS; i++)
		printf("# injection points: %-20s %d\n", op_names[i],
		       shared->points[i]);
	fflush(stdout);
	fault_knobs_set(false);
}

int main(int argc, char *argv[])
{
	int i;

	ivshmem_bdf = vfio_selftests_get_bdf(&argc, argv);
	/* every test's process checks data: failnth's setup asserts it is set */
	stress_lab_seed(&seed);
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (i = 0; i < NR_OPS; i++)
		shared->points[i] = -1;
	main_pid = getpid();
	atexit(report_and_reset);
	return test_harness_run(argc, argv);
}
