// SPDX-License-Identifier: GPL-2.0-only
/*
 * Seeded, bounded stress of BAR and DMABUF mappings of ivshmem's BAR2.
 *
 *   vfio_stress_test IVSHMEM_BDF
 *
 * Threads, all at once:
 *  - readers: read the first u64 of random pages of the shared mappings and
 *    check it against the host's pattern;
 *  - a writer: writes the scratch u64 of its own pages through one mapping
 *    and reads it back through another mapping of the same pages;
 *  - a decode toggler: memory decode off and on (PCI_COMMAND through the
 *    config region);
 *  - a resetter: VFIO_DEVICE_RESET;
 *  - a BAR churner: replaces shared mappings with new BAR mmap()s (small,
 *    2 MiB-aligned, the whole 1 GiB BAR at a 1 GiB-aligned address) and
 *    splits them with mprotect(), trims them with munmap(), moves and
 *    shrinks them with mremap();
 *  - a DMABUF churner: exports DMABUFs of 1-4 ranges (adjacent, aliasing,
 *    anywhere), mmap()s them (part 2; sometimes write-combined, sometimes at
 *    an offset), closes their fds with the mapping live, imports them into
 *    iommufd, and permanently revokes some while the readers read them;
 *  - a forker: fork()s children that read the shared mappings and exit.
 * Then the churn stops and the device fd is closed with all mappings live:
 * BAR mmap()s keep the device open and keep working; once the last one is
 * unmapped the device closes and the DMABUF mmap()s must raise SIGBUS.
 *
 * Readers take SIGBUS (sigsetjmp per thread) while a mapping is revoked,
 * but a read that does not fault must return the right data, and must
 * fault if it ran entirely while memory decode was off or after the
 * mapping's DMABUF was permanently revoked. At the end the DMABUF and fd
 * counts must be back where they started.
 *
 * Environment:
 *   VFIO_LAB_SEED          seed of the host's ivshmem pattern (required)
 *   VFIO_LAB_STRESS_SEED   seed of the stress (default: random, printed);
 *                          each thread's sequence of operations follows
 *                          from it, their interleaving does not
 *   VFIO_LAB_STRESS_SECS   seconds of churn (default 20)
 *   VFIO_LAB_STRESS_OPS    operations per thread at most (default 100000)
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include <linux/sizes.h>

#include <libvfio.h>

#include "kselftest_harness.h"
#include "stress_lib.h"

#define BAR		STRESS_IVSHMEM_BAR
#define PAGE		STRESS_PAGE
#define BAR_SIZE	SZ_1G
#define BAR_PAGES	(BAR_SIZE / PAGE)
#define NSLOTS		8
#define MAX_SEGS	4
#define NREADERS	2
#define WRITER_PAGES	64
#define WRITER_PAGE0	(BAR_PAGES - 4 * WRITER_PAGES)	/* the writer's pages */
#define MAX_BUGS_LOGGED	16

static const char *ivshmem_bdf;

/*
 * A piece of a mapping: @npages pages from mapping page @map_page on show
 * BAR pages from @bar_page on.
 */
struct seg {
	uint64_t map_page;
	uint64_t bar_page;
	uint64_t npages;
};

enum slot_kind { SLOT_BAR, SLOT_DMABUF };

/* A shared mapping the readers read and the churners replace. */
struct slot {
	pthread_rwlock_t lock;	/* write-held while the mapping changes */
	char *addr;		/* NULL: empty */
	size_t len;
	enum slot_kind kind;
	int nseg;
	struct seg seg[MAX_SEGS];
	int fd;			/* DMABUF fd, if still open */
	bool imported;		/* mapped into iommufd at @iova */
	uint64_t iova;
	uint64_t import_len;
	atomic_int revoked;	/* set once DMA_BUF_REVOKE has returned */
};

static struct stress {
	struct vfio_pci_device *dev;
	struct iommu *iommu;
	struct stress_caps caps;
	int devfd;
	uint64_t pattern_seed;
	uint64_t seed;
	uint64_t max_ops;
	struct slot slots[NSLOTS];

	atomic_bool stop_churn;		/* churners, toggler, resetter, forker */
	atomic_int phase;		/* enum phase */
	atomic_bool stop_readers;
	atomic_uint decode_gen;		/* odd: memory decode is off */

	/* what happened */
	atomic_ulong reads, read_faults, writes, write_faults, toggles, resets;
	atomic_ulong bar_maps, splits, trims, moves, shrinks, exports;
	atomic_ulong dmabuf_maps, wc_maps, mmap_enodev, imports, perm_revokes;
	atomic_ulong early_closes, forks, child_reads;
	atomic_ulong bugs;
	pthread_mutex_t log_lock;
	char log[MAX_BUGS_LOGGED][256];
} S;

/*
 * PHASE_QUIET: nothing revokes any more (the threads that do are stopped,
 * memory decode is on), and closing the device fd with BAR mmap()s live
 * must not revoke anything either: a read that faults is a bug, unless the
 * DMABUF was permanently revoked. PHASE_CLOSING: the BAR mmap()s are being
 * unmapped, the last one closes the device. PHASE_GONE: it is closed, every
 * DMABUF mmap() must fault.
 */
enum phase { PHASE_CHURN, PHASE_QUIET, PHASE_CLOSING, PHASE_GONE };

/* In a fork() child: S is a frozen copy, and no lock may be taken. */
static bool in_child;

/* Record something that must not happen; the test fails at the end. */
static void __printf(1, 2) bug(const char *fmt, ...)
{
	unsigned long n = atomic_fetch_add(&S.bugs, 1);
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (in_child) {
		dprintf(STDERR_FILENO, "# fork child: %s\n", msg);
		return;
	}
	if (n >= MAX_BUGS_LOGGED)
		return;
	pthread_mutex_lock(&S.log_lock);
	snprintf(S.log[n], sizeof(S.log[n]), "%s", msg);
	pthread_mutex_unlock(&S.log_lock);
}

static bool churn_stopped(uint64_t ops)
{
	return atomic_load(&S.stop_churn) || ops >= S.max_ops;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* The BAR page mapping page @page of @s shows, or -1 if none. */
static int64_t slot_bar_page(const struct slot *s, uint64_t page)
{
	int i;

	for (i = 0; i < s->nseg; i++)
		if (page >= s->seg[i].map_page &&
		    page - s->seg[i].map_page < s->seg[i].npages)
			return s->seg[i].bar_page + page - s->seg[i].map_page;
	return -1;
}

/*
 * Read page @page of slot @s (read-locked) and judge the result; @who names
 * the reader. Returns the signal the read took, or 0.
 */
static int check_slot_page(struct slot *s, uint64_t page, const char *who)
{
	int64_t bar_page = slot_bar_page(s, page);
	unsigned int gen0, gen1;
	int revoked, sig, phase0, phase1;
	uint64_t val = 0;

	if (bar_page < 0)
		return 0;
	revoked = atomic_load(&s->revoked);
	phase0 = atomic_load(&S.phase);
	gen0 = atomic_load(&S.decode_gen);
	sig = stress_read(stress_word(s->addr, page, 0), &val);
	gen1 = atomic_load(&S.decode_gen);
	phase1 = atomic_load(&S.phase);
	atomic_fetch_add(&S.reads, 1);

	if (sig == SIGBUS) {
		atomic_fetch_add(&S.read_faults, 1);
		if (phase0 >= PHASE_QUIET && phase1 == PHASE_QUIET && !revoked &&
		    !in_child)
			bug("%s: SIGBUS on BAR page %#llx of a %s mapping with nothing revoking it",
			    who, (unsigned long long)bar_page,
			    s->kind == SLOT_BAR ? "BAR" : "DMABUF");
		return sig;
	}
	if (sig) {
		bug("%s: %s reading page %llu of a %s mapping", who,
		    strsignal(sig), (unsigned long long)page,
		    s->kind == SLOT_BAR ? "BAR" : "DMABUF");
		return sig;
	}
	if (val != ivshmem_pattern(S.pattern_seed, bar_page))
		bug("%s: BAR page %#llx read %#llx, want %#llx (%s mapping)",
		    who, (unsigned long long)bar_page, (unsigned long long)val,
		    (unsigned long long)ivshmem_pattern(S.pattern_seed, bar_page),
		    s->kind == SLOT_BAR ? "BAR" : "DMABUF");
	if (revoked)
		bug("%s: read BAR page %#llx through a permanently revoked DMABUF",
		    who, (unsigned long long)bar_page);
	/* (A child's copy of decode_gen does not follow the toggler) */
	if (gen0 == gen1 && (gen0 & 1) && !in_child)
		bug("%s: read BAR page %#llx while memory decode was off",
		    who, (unsigned long long)bar_page);
	if (s->kind == SLOT_DMABUF && phase0 == PHASE_GONE)
		bug("%s: read BAR page %#llx through a DMABUF after the device closed",
		    who, (unsigned long long)bar_page);
	return 0;
}

/* Check up to @max random consecutive pages of @s (read-locked). */
static void check_slot(struct slot *s, uint64_t *rnd, uint64_t max,
		       const char *who)
{
	uint64_t pages = s->len / PAGE, first, n, i;

	first = stress_rand(rnd) % pages;
	n = 1 + stress_rand(rnd) % max;
	for (i = first; i < pages && i < first + n; i++)
		if (check_slot_page(s, i, who))
			break;
}

/* ------------------------------------------------------------------ */
/* Mappings */

/* @len bytes of address space aligned to @align, reserved PROT_NONE. */
static char *reserve(size_t len, size_t align)
{
	char *p = mmap(NULL, len + align, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (a > p)
		munmap(p, a - p);
	munmap(a + len, p + align - a);
	return a;
}

/* Empty slot @s (write-locked). */
static void slot_clear(struct slot *s)
{
	if (s->addr)
		munmap(s->addr, s->len);
	if (s->imported)
		stress_ioas_unmap(S.iommu->iommufd, S.iommu->ioas_id, s->iova,
				  s->import_len);
	if (s->fd >= 0)
		close(s->fd);
	s->addr = NULL;
	s->len = 0;
	s->nseg = 0;
	s->fd = -1;
	s->imported = false;
	atomic_store(&s->revoked, 0);
}

/* A BAR mmap() of @npages pages from BAR page @bar_page, aligned to @align. */
static int slot_map_bar(struct slot *s, uint64_t bar_page, uint64_t npages,
			size_t align)
{
	size_t len = npages * PAGE;
	char *at = align > PAGE ? reserve(len, align) : NULL;
	int flags = MAP_SHARED | (at ? MAP_FIXED : 0);

	if (align > PAGE && !at)
		return -1;
	s->addr = mmap(at, len, PROT_READ, flags, S.devfd,
		       S.dev->bars[BAR].info.offset + bar_page * PAGE);
	if (s->addr == MAP_FAILED) {
		if (at)
			munmap(at, len);
		s->addr = NULL;
		return -1;
	}
	if (align > PAGE)
		madvise(s->addr, len, MADV_HUGEPAGE);
	s->len = len;
	s->kind = SLOT_BAR;
	s->nseg = 1;
	s->seg[0] = (struct seg){ 0, bar_page, npages };
	atomic_fetch_add(&S.bar_maps, 1);
	return 0;
}

/* Drop @n pages from the front of @s's segment table. */
static void slot_drop_head(struct slot *s, uint64_t n)
{
	int i, j = 0;

	for (i = 0; i < s->nseg; i++) {
		struct seg g = s->seg[i];

		if (g.map_page + g.npages <= n)
			continue;
		if (g.map_page < n) {
			g.bar_page += n - g.map_page;
			g.npages -= n - g.map_page;
			g.map_page = n;
		}
		g.map_page -= n;
		s->seg[j++] = g;
	}
	s->nseg = j;
}

/*
 * Split, trim, move or shrink the mapping of @s (write-locked) and check
 * it afterwards. Pieces left by munmap()/mremap() keep the vm_pgoff of
 * where they are in the BAR, so the fault path must still find the pages.
 */
static void slot_reshape(struct slot *s, uint64_t *rnd)
{
	uint64_t pages = s->len / PAGE, k;
	char *to;

	if (pages < 4)
		return;
	switch (stress_rand(rnd) % 5) {
	case 0:	/* split in three with mprotect() */
		k = pages / 3;
		if (mprotect(s->addr + k * PAGE, k * PAGE, PROT_NONE) ||
		    mprotect(s->addr + k * PAGE, k * PAGE, PROT_READ))
			bug("mprotect split: %s", strerror(errno));
		atomic_fetch_add(&S.splits, 1);
		break;
	case 1:	/* munmap() the head */
		k = 1 + stress_rand(rnd) % (pages / 2);
		if (munmap(s->addr, k * PAGE)) {
			bug("munmap head: %s", strerror(errno));
			break;
		}
		s->addr += k * PAGE;
		s->len -= k * PAGE;
		slot_drop_head(s, k);
		atomic_fetch_add(&S.trims, 1);
		break;
	case 2:	/* munmap() the tail */
		k = 1 + stress_rand(rnd) % (pages / 2);
		if (munmap(s->addr + s->len - k * PAGE, k * PAGE)) {
			bug("munmap tail: %s", strerror(errno));
			break;
		}
		s->len -= k * PAGE;
		atomic_fetch_add(&S.trims, 1);
		break;
	case 3:	/* move with mremap() */
		to = reserve(s->len, PAGE);
		if (!to)
			break;
		to = mremap(s->addr, s->len, s->len,
			    MREMAP_MAYMOVE | MREMAP_FIXED, to);
		if (to == MAP_FAILED) {
			bug("mremap move: %s", strerror(errno));
			break;
		}
		s->addr = to;
		atomic_fetch_add(&S.moves, 1);
		break;
	case 4:	/* shrink with mremap(); growing must fail (VM_DONTEXPAND) */
		to = mremap(s->addr, s->len, s->len + PAGE, 0);
		if (to != MAP_FAILED)
			bug("mremap grew a %s mapping",
			    s->kind == SLOT_BAR ? "BAR" : "DMABUF");
		k = pages / 2;
		to = mremap(s->addr, s->len, k * PAGE, 0);
		if (to == MAP_FAILED) {
			bug("mremap shrink: %s", strerror(errno));
			break;
		}
		s->len = k * PAGE;
		atomic_fetch_add(&S.shrinks, 1);
		break;
	}
}

/*
 * Export a DMABUF of 1-4 random ranges of the BAR (sometimes adjacent, so
 * that the kernel merges them, sometimes the same pages twice) and, with
 * part 2, mmap() it, whole or from an offset. Fills @s (write-locked).
 */
static void slot_map_dmabuf(struct slot *s, uint64_t *rnd)
{
	struct vfio_region_dma_range r[MAX_SEGS];
	uint64_t total = 0, off, npages, i;
	int nr = 1 + stress_rand(rnd) % MAX_SEGS, fd;

	for (i = 0; i < (uint64_t)nr; i++) {
		uint64_t n = 1 + stress_rand(rnd) % 64, first;

		switch (stress_rand(rnd) % 3) {
		case 0:		/* right after the previous range */
			first = i ? r[i - 1].offset / PAGE +
				    r[i - 1].length / PAGE : 0;
			break;
		case 1:		/* the same pages as the previous range */
			first = i ? r[i - 1].offset / PAGE : 0;
			break;
		default:
			first = stress_rand(rnd) % (WRITER_PAGE0 - 64);
			break;
		}
		if (first + n > WRITER_PAGE0)
			first = 0;
		r[i].offset = first * PAGE;
		r[i].length = n * PAGE;
		s->seg[i] = (struct seg){ total, first, n };
		total += n;
	}
	s->nseg = nr;

	fd = stress_export(S.devfd, BAR, r, nr);
	if (fd < 0) {
		bug("export of %d ranges: %s", nr, strerror(errno));
		s->nseg = 0;
		return;
	}
	atomic_fetch_add(&S.exports, 1);
	s->fd = fd;
	s->kind = SLOT_DMABUF;

	/* iommufd takes single-range DMABUFs; ENODEV while revoked */
	if (nr == 1 && stress_rand(rnd) % 4 == 0) {
		int ret = stress_ioas_map_file(S.iommu->iommufd,
					       S.iommu->ioas_id, fd,
					       total * PAGE, &s->iova);

		if (!ret) {
			s->imported = true;
			s->import_len = total * PAGE;
			atomic_fetch_add(&S.imports, 1);
		} else if (ret != -ENODEV) {
			bug("IOMMU_IOAS_MAP_FILE: %s", strerror(-ret));
		}
	}

	if (!S.caps.dmabuf_mmap) {
		s->nseg = 0;
		return;
	}
	if (S.caps.memattr && stress_rand(rnd) % 4 == 0) {
		if (stress_memattr(S.devfd, fd, VFIO_DMA_BUF_MEMATTR_WC))
			bug("MEMATTR WC: %s", strerror(errno));
		else
			atomic_fetch_add(&S.wc_maps, 1);
	}
	off = stress_rand(rnd) % 2 ? stress_rand(rnd) % total : 0;
	npages = total - off;
	s->addr = mmap(NULL, npages * PAGE, PROT_READ, MAP_SHARED, fd,
		       off * PAGE);
	if (s->addr == MAP_FAILED) {
		s->addr = NULL;
		s->nseg = 0;
		/* Exported while memory decode was off: revoked until on */
		if (errno == ENODEV)
			atomic_fetch_add(&S.mmap_enodev, 1);
		else
			bug("DMABUF mmap: %s", strerror(errno));
		return;
	}
	s->len = npages * PAGE;
	slot_drop_head(s, off);
	atomic_fetch_add(&S.dmabuf_maps, 1);

	if (stress_rand(rnd) % 2) {	/* the mapping outlives the fd */
		close(fd);
		s->fd = -1;
		atomic_fetch_add(&S.early_closes, 1);
	}
}

/* ------------------------------------------------------------------ */
/* Threads */

struct thread {
	pthread_t tid;
	int index;
	uint64_t rnd;
	char name[32];
};

static void *reader(void *arg)
{
	struct thread *t = arg;

	while (!atomic_load(&S.stop_readers)) {
		struct slot *s = &S.slots[stress_rand(&t->rnd) % NSLOTS];

		pthread_rwlock_rdlock(&s->lock);
		if (s->addr)
			check_slot(s, &t->rnd, 32, t->name);
		pthread_rwlock_unlock(&s->lock);
	}
	return NULL;
}

/*
 * Write the scratch u64 of the writer's pages through one mapping and read
 * it back through another mapping of the same pages: a DMABUF mmap() with
 * part 2, else a BAR mmap() starting one page earlier.
 */
static void *writer(void *arg)
{
	struct thread *t = arg;
	uint64_t saved[WRITER_PAGES], i, ops = 0, shift = 0;
	char *a, *b;
	int fd = -1;

	a = mmap(NULL, WRITER_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 S.devfd, S.dev->bars[BAR].info.offset + WRITER_PAGE0 * PAGE);
	if (S.caps.dmabuf_mmap) {
		fd = stress_export1(S.devfd, BAR, WRITER_PAGE0 * PAGE,
				    WRITER_PAGES * PAGE);
		b = fd < 0 ? MAP_FAILED :
		    mmap(NULL, WRITER_PAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	} else {
		shift = 1;
		b = mmap(NULL, (WRITER_PAGES + 1) * PAGE, PROT_READ, MAP_SHARED,
			 S.devfd, S.dev->bars[BAR].info.offset +
			 (WRITER_PAGE0 - 1) * PAGE);
	}
	if (a == MAP_FAILED || b == MAP_FAILED) {
		bug("writer: cannot map its pages: %s", strerror(errno));
		return NULL;
	}

	/* Nothing revokes yet: the other threads wait for the writer */
	for (i = 0; i < WRITER_PAGES; i++)
		if (stress_read(stress_word(a, i, STRESS_SCRATCH_WORD), &saved[i]))
			bug("writer: cannot save page %llu", (unsigned long long)i);

	while (!churn_stopped(ops++ / 16)) {
		uint64_t page = stress_rand(&t->rnd) % WRITER_PAGES;
		uint64_t val = stress_rand(&t->rnd), got = 0;
		int sig;

		/* Pace: 16 writes a millisecond at most, for the whole run */
		if (!(ops % 16))
			sleep_ms(1);

		if (stress_write(stress_word(a, page, STRESS_SCRATCH_WORD), val)) {
			atomic_fetch_add(&S.write_faults, 1);
			continue;
		}
		atomic_fetch_add(&S.writes, 1);
		__sync_synchronize();
		sig = stress_read(stress_word(b, page + shift, STRESS_SCRATCH_WORD),
				  &got);
		if (sig == SIGBUS)
			continue;
		if (sig || got != val)
			bug("writer: page %llu: wrote %#llx, other mapping %s %#llx",
			    (unsigned long long)page, (unsigned long long)val,
			    sig ? strsignal(sig) : "reads", (unsigned long long)got);
		sig = stress_read(stress_word(b, page + shift, 0), &got);
		if (!sig && got != ivshmem_pattern(S.pattern_seed,
						   WRITER_PAGE0 + page))
			bug("writer: pattern of page %llu is %#llx",
			    (unsigned long long)page, (unsigned long long)got);
	}

	/* Restore once nothing revokes any more */
	while (atomic_load(&S.phase) < PHASE_QUIET)
		sleep_ms(1);
	for (i = 0; i < WRITER_PAGES; i++)
		if (stress_write(stress_word(a, i, STRESS_SCRATCH_WORD), saved[i]))
			bug("writer: cannot restore page %llu",
			    (unsigned long long)i);
	munmap(a, WRITER_PAGES * PAGE);
	munmap(b, (WRITER_PAGES + shift) * PAGE);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void *toggler(void *arg)
{
	struct thread *t = arg;
	uint64_t ops = 0;

	while (!churn_stopped(ops++)) {
		sleep_ms(stress_rand(&t->rnd) % 40);
		/* Off, then announce it: every PTE is gone by now */
		if (stress_set_decode(S.devfd, false))
			bug("decode off: %s", strerror(errno));
		atomic_fetch_add(&S.decode_gen, 1);
		sleep_ms(stress_rand(&t->rnd) % 10);
		/* Announce, then on */
		atomic_fetch_add(&S.decode_gen, 1);
		if (stress_set_decode(S.devfd, true))
			bug("decode on: %s", strerror(errno));
		atomic_fetch_add(&S.toggles, 1);
	}
	return NULL;
}

static void *resetter(void *arg)
{
	struct thread *t = arg;
	uint64_t ops = 0;

	while (!churn_stopped(ops++)) {
		sleep_ms(20 + stress_rand(&t->rnd) % 200);
		if (stress_reset(S.devfd))
			bug("VFIO_DEVICE_RESET: %s", strerror(errno));
		else
			atomic_fetch_add(&S.resets, 1);
	}
	return NULL;
}

static void *bar_churner(void *arg)
{
	struct thread *t = arg;
	uint64_t ops = 0;

	while (!churn_stopped(ops++)) {
		struct slot *s = &S.slots[stress_rand(&t->rnd) % NSLOTS];
		uint64_t kind = stress_rand(&t->rnd) % 16, first, n;
		size_t align = PAGE;

		if (kind == 0) {		/* the whole BAR, PUD-mappable */
			first = 0;
			n = BAR_PAGES;
			align = SZ_1G;
		} else if (kind < 6) {		/* 2 MiB pieces, PMD-mappable */
			n = (1 + stress_rand(&t->rnd) % 8) * (SZ_2M / PAGE);
			first = (stress_rand(&t->rnd) % (BAR_PAGES / (SZ_2M / PAGE) - 8)) *
				(SZ_2M / PAGE);
			align = SZ_2M;
		} else {
			n = 1 + stress_rand(&t->rnd) % 256;
			first = stress_rand(&t->rnd) % (BAR_PAGES - n);
		}

		pthread_rwlock_wrlock(&s->lock);
		slot_clear(s);
		if (slot_map_bar(s, first, n, align)) {
			bug("BAR mmap of %llu pages at %#llx: %s",
			    (unsigned long long)n, (unsigned long long)first,
			    strerror(errno));
		} else {
			if (stress_rand(&t->rnd) % 2)
				slot_reshape(s, &t->rnd);
			check_slot(s, &t->rnd, 16, t->name);
		}
		pthread_rwlock_unlock(&s->lock);
		sleep_ms(stress_rand(&t->rnd) % 5);
	}
	return NULL;
}

static void *dmabuf_churner(void *arg)
{
	struct thread *t = arg;
	uint64_t ops = 0;

	while (!churn_stopped(ops++)) {
		struct slot *s = &S.slots[stress_rand(&t->rnd) % NSLOTS];

		pthread_rwlock_wrlock(&s->lock);
		slot_clear(s);
		slot_map_dmabuf(s, &t->rnd);
		if (s->addr && stress_rand(&t->rnd) % 3 == 0)
			slot_reshape(s, &t->rnd);
		if (s->addr)
			check_slot(s, &t->rnd, 16, t->name);
		pthread_rwlock_unlock(&s->lock);

		/* Revoke for good while the readers read it */
		pthread_rwlock_rdlock(&s->lock);
		if (S.caps.revoke && s->fd >= 0 && stress_rand(&t->rnd) % 4 == 0) {
			if (stress_revoke(S.devfd, s->fd))
				bug("DMA_BUF_REVOKE: %s", strerror(errno));
			atomic_store(&s->revoked, 1);
			atomic_fetch_add(&S.perm_revokes, 1);
		}
		pthread_rwlock_unlock(&s->lock);
		sleep_ms(stress_rand(&t->rnd) % 5);
	}
	return NULL;
}

/* In a fork() child: read every slot that was not being changed. */
static int child_reads(uint64_t rnd)
{
	int i;

	for (i = 0; i < NSLOTS; i++) {
		struct slot *s = &S.slots[i];

		/* Write-held at fork(): the copy may be half-changed */
		if (pthread_rwlock_tryrdlock(&s->lock))
			continue;
		if (s->addr)
			check_slot(s, &rnd, 16, "fork child");
		pthread_rwlock_unlock(&s->lock);
	}
	return atomic_load(&S.bugs) ? 1 : 0;
}

static void *forker(void *arg)
{
	struct thread *t = arg;
	uint64_t ops = 0;

	while (!churn_stopped(ops++)) {
		int status;
		pid_t pid;

		sleep_ms(50 + stress_rand(&t->rnd) % 250);
		pid = fork();
		if (pid < 0) {
			bug("fork: %s", strerror(errno));
			continue;
		}
		if (!pid) {
			/* The copy of S.bugs counts the parent's too */
			in_child = true;
			atomic_store(&S.bugs, 0);
			_exit(child_reads(stress_rand(&t->rnd)));
		}
		if (waitpid(pid, &status, 0) != pid)
			bug("waitpid: %s", strerror(errno));
		else if (!WIFEXITED(status) || WEXITSTATUS(status))
			bug("fork child: %s %d (bad data or crash)",
			    WIFEXITED(status) ? "exit" : "signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) :
			    WTERMSIG(status));
		atomic_fetch_add(&S.forks, 1);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */

FIXTURE(stress) {
	int closed_dmabufs;
	int start_fds;
	unsigned long secs;
};

FIXTURE_SETUP(stress)
{
	uint64_t t0 = stress_now_ns();
	pthread_rwlockattr_t attr;
	int i;

	ASSERT_TRUE(stress_lab_seed(&S.pattern_seed))
		TH_LOG("VFIO_LAB_SEED is not set");
	S.seed = stress_env_ul("VFIO_LAB_STRESS_SEED", 0);
	if (!S.seed)
		ASSERT_EQ(sizeof(S.seed), getrandom(&S.seed, sizeof(S.seed), 0));
	self->secs = stress_env_ul("VFIO_LAB_STRESS_SECS", 20);
	S.max_ops = stress_env_ul("VFIO_LAB_STRESS_OPS", 100000);
	ksft_print_msg("stress seed 0x%016llx, %lu s, at most %llu operations per thread (VFIO_LAB_STRESS_SEED/_SECS/_OPS)\n",
		       (unsigned long long)S.seed, self->secs,
		       (unsigned long long)S.max_ops);

	self->closed_dmabufs = stress_dmabuf_count();
	ASSERT_LE(0, self->closed_dmabufs) TH_LOG("%s not readable", STRESS_BUFINFO);
	self->start_fds = stress_fd_count();
	S.iommu = iommu_init("iommufd");
	S.dev = vfio_pci_device_init(ivshmem_bdf, S.iommu);
	S.devfd = S.dev->fd;
	ASSERT_EQ(BAR_SIZE, S.dev->bars[BAR].info.size);
	ASSERT_TRUE(S.dev->info.flags & VFIO_DEVICE_FLAGS_RESET);
	stress_probe_caps(S.devfd, BAR, &S.caps);
	if (!S.caps.dmabuf_mmap)
		ksft_print_msg("%s: DMABUFs are exported but not mmap()ed\n",
			       STRESS_NO_PART2);
	stress_install_handlers();
	pthread_mutex_init(&S.log_lock, NULL);
	/* Writers first: the readers would starve the churners otherwise */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (i = 0; i < NSLOTS; i++) {
		pthread_rwlock_init(&S.slots[i].lock, &attr);
		S.slots[i].fd = -1;
	}
	pthread_rwlockattr_destroy(&attr);
	ksft_print_msg("set-up took %llu ms\n",
		       (unsigned long long)(stress_now_ns() - t0) / 1000000);
}

FIXTURE_TEARDOWN(stress)
{
}

static void start(struct thread *t, int index, const char *name,
		  void *(*fn)(void *))
{
	t->index = index;
	t->rnd = S.seed ^ (0x5851f42d4c957f2dULL * (index + 1));
	snprintf(t->name, sizeof(t->name), "%s", name);
	if (pthread_create(&t->tid, NULL, fn, t))
		bug("pthread_create %s: %s", name, strerror(errno));
}

#define COUNT(x) (unsigned long)atomic_load(&S.x)

TEST_F_TIMEOUT(stress, mixed, 3600)
{
	struct thread readers[NREADERS], w, tg, rs, bc, dc, fk;
	uint64_t t0 = stress_now_ns(), rnd = S.seed;
	int i, bar_slots = 0;
	unsigned long n;

	/* Fill the slots before anything revokes */
	for (i = 0; i < NSLOTS; i++) {
		struct slot *s = &S.slots[i];

		if (i % 2 || !S.caps.dmabuf_mmap) {
			ASSERT_EQ(0, slot_map_bar(s, stress_rand(&rnd) % (BAR_PAGES - 64),
						  64, PAGE));
		} else {
			slot_map_dmabuf(s, &rnd);
		}
	}
	for (i = 0; i < NREADERS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "reader %d", i);
		start(&readers[i], i, name, reader);
	}
	start(&w, 10, "writer", writer);
	sleep_ms(200);		/* the writer saves its scratch words */
	start(&tg, 11, "toggler", toggler);
	start(&rs, 12, "resetter", resetter);
	start(&bc, 13, "BAR churner", bar_churner);
	start(&dc, 14, "DMABUF churner", dmabuf_churner);
	start(&fk, 15, "forker", forker);

	while (stress_now_ns() - t0 < self->secs * 1000000000ULL &&
	       !atomic_load(&S.bugs))
		sleep_ms(100);
	atomic_store(&S.stop_churn, true);
	pthread_join(tg.tid, NULL);
	pthread_join(rs.tid, NULL);
	pthread_join(bc.tid, NULL);
	pthread_join(dc.tid, NULL);
	pthread_join(fk.tid, NULL);
	ASSERT_EQ(0, stress_set_decode(S.devfd, true));
	atomic_store(&S.phase, PHASE_QUIET);
	pthread_join(w.tid, NULL);
	ksft_print_msg("churn stopped after %llu ms\n",
		       (unsigned long long)(stress_now_ns() - t0) / 1000000);

	/*
	 * Close the device fd with every mapping live, readers reading. Make
	 * sure some BAR mmap() holds the device open, and some DMABUF mmap()
	 * will see it close.
	 */
	pthread_rwlock_wrlock(&S.slots[1].lock);
	slot_clear(&S.slots[1]);
	ASSERT_EQ(0, slot_map_bar(&S.slots[1], 0, 64, PAGE));
	pthread_rwlock_unlock(&S.slots[1].lock);
	if (S.caps.dmabuf_mmap) {
		pthread_rwlock_wrlock(&S.slots[0].lock);
		slot_clear(&S.slots[0]);
		while (!S.slots[0].addr)
			slot_map_dmabuf(&S.slots[0], &rnd);
		pthread_rwlock_unlock(&S.slots[0].lock);
	}
	vfio_pci_device_cleanup(S.dev);
	S.devfd = -1;
	sleep_ms(500);

	/* The last BAR mmap() closes the device */
	atomic_store(&S.phase, PHASE_CLOSING);
	for (i = 0; i < NSLOTS; i++) {
		struct slot *s = &S.slots[i];

		pthread_rwlock_wrlock(&s->lock);
		if (s->kind == SLOT_BAR && s->addr) {
			slot_clear(s);
			bar_slots++;
		}
		pthread_rwlock_unlock(&s->lock);
	}
	atomic_store(&S.phase, PHASE_GONE);
	sleep_ms(500);
	atomic_store(&S.stop_readers, true);
	for (i = 0; i < NREADERS; i++)
		pthread_join(readers[i].tid, NULL);

	/* Every DMABUF mmap() left must fault now */
	for (i = 0; i < NSLOTS; i++) {
		struct slot *s = &S.slots[i];
		uint64_t p;

		/* check_slot_page() reports any read that does not fault */
		for (p = 0; s->addr && p < s->len / PAGE; p += 7)
			check_slot_page(s, p, "after close");
		slot_clear(s);
	}
	iommu_cleanup(S.iommu);

	ksft_print_msg("%lu reads (%lu SIGBUS), %lu writes (%lu SIGBUS), %lu decode toggles, %lu resets\n",
		       COUNT(reads), COUNT(read_faults), COUNT(writes),
		       COUNT(write_faults), COUNT(toggles), COUNT(resets));
	ksft_print_msg("%lu BAR mmaps (%lu splits, %lu trims, %lu moves, %lu shrinks), %lu exports, %lu DMABUF mmaps (%lu WC, %lu ENODEV, %lu fds closed early), %lu iommufd imports, %lu permanent revokes, %lu forks\n",
		       COUNT(bar_maps), COUNT(splits), COUNT(trims),
		       COUNT(moves), COUNT(shrinks), COUNT(exports),
		       COUNT(dmabuf_maps), COUNT(wc_maps), COUNT(mmap_enodev),
		       COUNT(early_closes), COUNT(imports), COUNT(perm_revokes),
		       COUNT(forks));
	ksft_print_msg("device closed with %d BAR mmaps live; %llu ms in all\n",
		       bar_slots,
		       (unsigned long long)(stress_now_ns() - t0) / 1000000);

	n = COUNT(bugs);
	for (i = 0; i < (int)n && i < MAX_BUGS_LOGGED; i++)
		TH_LOG("%s", S.log[i]);
	ASSERT_EQ(0, n) TH_LOG("stress seed 0x%016llx", (unsigned long long)S.seed);
	ASSERT_LT(0, COUNT(toggles));
	ASSERT_LT(0, COUNT(resets));
	ASSERT_LT(0, COUNT(read_faults));
	ASSERT_EQ(self->closed_dmabufs, stress_dmabuf_count());
	ASSERT_EQ(self->start_fds, stress_fd_count());
}

int main(int argc, char *argv[])
{
	ivshmem_bdf = vfio_selftests_get_bdf(&argc, argv);
	return test_harness_run(argc, argv);
}
