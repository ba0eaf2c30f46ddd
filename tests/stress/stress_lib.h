/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the lab's stress tests (the *_test.c in tests/stress): the UAPI
 * of series part 2 for kernels whose headers lack it, DMABUF/fd/VMA counting,
 * DMABUF export and the part-2 features, capability probing, SIGBUS-tolerant
 * reads and userfaultfd.
 *
 * The ivshmem layout (tests/include/ivshmem_pattern.h): the first u64 of
 * every 4 KiB page p of BAR2 holds ivshmem_pattern(seed, p); the smoke test
 * writes its reply into the second u64 of the first page of every MiB. The
 * stress tests only ever write the fifth u64 (bytes 32..39) of a page,
 * STRESS_SCRATCH_WORD, and put back what was there.
 */
#ifndef VFIO_LAB_STRESS_LIB_H
#define VFIO_LAB_STRESS_LIB_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <linux/iommufd.h>
#include <linux/userfaultfd.h>
#include <linux/vfio.h>

#include <libvfio.h>

#include "ivshmem_pattern.h"

/* Series part 2 (SPEC 2.6, 2.7), for headers of a part-1 tree. */
#ifndef VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE
struct vfio_device_feature_dma_buf_revoke {
	__s32	dmabuf_fd;
};

#define VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE 14
#endif

#ifndef VFIO_DEVICE_FEATURE_DMA_BUF_MEMATTR
struct vfio_device_feature_dma_buf_memattr {
	__s32	dmabuf_fd;
	__u32	memattr;
};

#define VFIO_DMA_BUF_MEMATTR_NC	0
#define VFIO_DMA_BUF_MEMATTR_WC	1

#define VFIO_DEVICE_FEATURE_DMA_BUF_MEMATTR 15
#endif

#define STRESS_PAGE		4096UL
#define STRESS_IVSHMEM_BAR	2
#define STRESS_REGION_SHIFT	40
#define STRESS_SCRATCH_WORD	4
#define STRESS_BUFINFO		"/sys/kernel/debug/dma_buf/bufinfo"

/* ------------------------------------------------------------------ */
/* Environment */

/* The seed of the host's ivshmem pattern ($VFIO_LAB_SEED); false if unset. */
static inline bool stress_lab_seed(uint64_t *seed)
{
	const char *s = getenv("VFIO_LAB_SEED");

	if (!s || !*s)
		return false;
	*seed = strtoull(s, NULL, 0);
	return true;
}

/* An unsigned number from the environment, or @def. */
static inline unsigned long stress_env_ul(const char *name, unsigned long def)
{
	const char *s = getenv(name);

	return s && *s ? strtoul(s, NULL, 0) : def;
}

static inline uint64_t stress_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* splitmix64 step: the per-thread random numbers of the stress test. */
static inline uint64_t stress_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A random number in [lo, hi]. */
static inline uint64_t stress_rand_range(uint64_t *state, uint64_t lo,
					 uint64_t hi)
{
	return lo + stress_rand(state) % (hi - lo + 1);
}

/* ------------------------------------------------------------------ */
/* What a process holds */

/* "Total N objects" of the dma-buf debugfs file, or -1 if unavailable. */
static inline int stress_dmabuf_count(void)
{
	char *line = NULL;
	size_t cap = 0;
	int count = -1;
	FILE *f;

	f = fopen(STRESS_BUFINFO, "r");
	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		int n, end = 0;

		/* Not the per-buffer "Total N devices attached" lines */
		if (sscanf(line, "Total %d objects%n", &n, &end) == 1 && end)
			count = n;
	}
	free(line);
	fclose(f);
	return count;
}

/* Open fds of this process (not counting the one used to count them). */
static inline int stress_fd_count(void)
{
	struct dirent *d;
	int n = 0;
	DIR *dir;

	dir = opendir("/proc/self/fd");
	if (!dir)
		return -1;
	while ((d = readdir(dir)))
		if (d->d_name[0] != '.')
			n++;
	closedir(dir);
	return n - 1;
}

/* VMAs of this process (lines of /proc/self/maps). */
static inline int stress_vma_count(void)
{
	char buf[4096];
	int n = 0;
	ssize_t r;
	int fd, i;

	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		for (i = 0; i < r; i++)
			n += buf[i] == '\n';
	close(fd);
	return n;
}

/* Write @val to the file at @path (sysfs, debugfs, procfs). 0 or -errno. */
static inline int stress_write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		ret = -errno;
	close(fd);
	return ret;
}

#define STRESS_KMEMLEAK	"/sys/kernel/debug/kmemleak"

/* One kmemleak scan (automatic scanning is off in the debug config). */
static inline int stress_kmemleak_scan(void)
{
	return stress_write_str(STRESS_KMEMLEAK, "scan");
}

/* The file named by environment variable @var, opened to read, or NULL. */
static inline FILE *stress_env_file(const char *var)
{
	const char *path = getenv(var);

	return path ? fopen(path, "r") : NULL;
}

/* Raise RLIMIT_NOFILE to at least @want; returns the new soft limit. */
static inline long stress_raise_nofile(unsigned long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -1;
	if (rl.rlim_cur >= want)
		return rl.rlim_cur;
	if (rl.rlim_max < want)
		rl.rlim_max = want;	/* root may raise the hard limit */
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return -1;
	return want;
}

/* ------------------------------------------------------------------ */
/* VFIO_DEVICE_FEATURE */

/*
 * A VFIO_DEVICE_FEATURE argument with @flags (feature number and
 * GET/SET/PROBE) and @size bytes of @data, to free(); NULL if out of memory.
 */
static inline struct vfio_device_feature *
stress_feature_request(uint32_t flags, const void *data, size_t size)
{
	struct vfio_device_feature *f;

	f = calloc(1, sizeof(*f) + size);
	if (!f)
		return NULL;
	f->argsz = sizeof(*f) + size;
	f->flags = flags;
	if (size)
		memcpy(f->data, data, size);
	return f;
}

/*
 * VFIO_DEVICE_FEATURE with @flags (feature number and GET/SET/PROBE) and
 * @size bytes of @data. Returns the ioctl's result, errno set on failure.
 */
static inline int stress_feature(int devfd, uint32_t flags, const void *data,
				 size_t size)
{
	struct vfio_device_feature *f;
	int ret, err;

	f = stress_feature_request(flags, data, size);
	if (!f) {
		errno = ENOMEM;
		return -1;
	}
	ret = ioctl(devfd, VFIO_DEVICE_FEATURE, f);
	err = errno;
	free(f);
	errno = err;
	return ret;
}

/*
 * The VFIO_DEVICE_FEATURE_DMA_BUF argument exporting @nr ranges of BAR
 * @bar (O_RDWR | O_CLOEXEC), to free(); NULL if out of memory.
 */
static inline struct vfio_device_feature *
stress_export_request(uint32_t bar, const struct vfio_region_dma_range *ranges,
		      uint32_t nr)
{
	size_t size = sizeof(struct vfio_device_feature_dma_buf) +
		      nr * sizeof(*ranges);
	struct vfio_device_feature_dma_buf *get;
	struct vfio_device_feature *f;

	get = calloc(1, size);
	if (!get)
		return NULL;
	get->region_index = bar;
	get->open_flags = O_RDWR | O_CLOEXEC;
	get->nr_ranges = nr;
	memcpy(get->dma_ranges, ranges, nr * sizeof(*ranges));
	f = stress_feature_request(VFIO_DEVICE_FEATURE_GET |
				   VFIO_DEVICE_FEATURE_DMA_BUF, get, size);
	free(get);
	return f;
}

/*
 * Export @nr ranges of BAR @bar as a DMABUF (VFIO_DEVICE_FEATURE_DMA_BUF).
 * Returns the DMABUF fd, or -1 with errno set.
 */
static inline int stress_export(int devfd, uint32_t bar,
				const struct vfio_region_dma_range *ranges,
				uint32_t nr)
{
	struct vfio_device_feature *f;
	int ret, err;

	f = stress_export_request(bar, ranges, nr);
	if (!f) {
		errno = ENOMEM;
		return -1;
	}
	ret = ioctl(devfd, VFIO_DEVICE_FEATURE, f);
	err = errno;
	free(f);
	errno = err;
	return ret;
}

static inline int stress_export1(int devfd, uint32_t bar, uint64_t offset,
				 uint64_t length)
{
	struct vfio_region_dma_range r = { .offset = offset, .length = length };

	return stress_export(devfd, bar, &r, 1);
}

/* VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE; 0 or -1 with errno set. */
static inline int stress_revoke(int devfd, int dmabuf_fd)
{
	struct vfio_device_feature_dma_buf_revoke r = { .dmabuf_fd = dmabuf_fd };

	return stress_feature(devfd, VFIO_DEVICE_FEATURE_SET |
			      VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE, &r, sizeof(r));
}

/* VFIO_DEVICE_FEATURE_DMA_BUF_MEMATTR; 0 or -1 with errno set. */
static inline int stress_memattr(int devfd, int dmabuf_fd, uint32_t memattr)
{
	struct vfio_device_feature_dma_buf_memattr m = {
		.dmabuf_fd = dmabuf_fd,
		.memattr = memattr,
	};

	return stress_feature(devfd, VFIO_DEVICE_FEATURE_SET |
			      VFIO_DEVICE_FEATURE_DMA_BUF_MEMATTR, &m, sizeof(m));
}

/* What the kernel under test implements of series part 2. */
struct stress_caps {
	bool revoke;		/* VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE */
	bool memattr;		/* VFIO_DEVICE_FEATURE_DMA_BUF_MEMATTR */
	bool dmabuf_mmap;	/* mmap() of an exported DMABUF fd */
	int dmabuf_mmap_errno;	/* why not, if not */
};

/*
 * Probe part 2 on @devfd, whose BAR @bar can be exported. The features are
 * probed with VFIO_DEVICE_FEATURE_PROBE: a kernel without them says ENOTTY.
 * mmap() of an exported DMABUF is tried for real: without part 2 the DMABUF
 * has no mmap op and the DMABUF core says EINVAL. A kernel that has the
 * features but cannot mmap() the DMABUF is not "without part 2": then
 * dmabuf_mmap stays true so that the tests using it fail instead of skipping.
 */
static inline void stress_probe_caps(int devfd, uint32_t bar,
				     struct stress_caps *caps)
{
	void *map;
	int fd;

	memset(caps, 0, sizeof(*caps));
	caps->revoke = !stress_feature(devfd, VFIO_DEVICE_FEATURE_PROBE |
				       VFIO_DEVICE_FEATURE_SET |
				       VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE,
				       NULL, 0);
	caps->memattr = !stress_feature(devfd, VFIO_DEVICE_FEATURE_PROBE |
					VFIO_DEVICE_FEATURE_SET |
					VFIO_DEVICE_FEATURE_DMA_BUF_MEMATTR,
					NULL, 0);

	fd = stress_export1(devfd, bar, 0, STRESS_PAGE);
	if (fd < 0) {
		caps->dmabuf_mmap_errno = errno;
		caps->dmabuf_mmap = caps->revoke;
		return;
	}
	map = mmap(NULL, STRESS_PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		caps->dmabuf_mmap_errno = errno;
		caps->dmabuf_mmap = caps->revoke || errno != EINVAL;
	} else {
		caps->dmabuf_mmap = true;
		munmap(map, STRESS_PAGE);
	}
	close(fd);
}

#define STRESS_NO_PART2 \
	"kernel without series part 2 (no DMABUF mmap/REVOKE/MEMATTR)"

/* ------------------------------------------------------------------ */
/* PCI command register through the config region */

static inline int stress_config_rw(int devfd, bool write, uint64_t off,
				   void *buf, size_t len)
{
	uint64_t base = (uint64_t)VFIO_PCI_CONFIG_REGION_INDEX <<
			STRESS_REGION_SHIFT;
	ssize_t r;

	r = write ? pwrite(devfd, buf, len, base + off) :
		    pread(devfd, buf, len, base + off);
	return r == (ssize_t)len ? 0 : -1;
}

/* Turn memory decode on or off; 0 or -1 with errno set. */
static inline int stress_set_decode(int devfd, bool on)
{
	uint16_t cmd;

	if (stress_config_rw(devfd, false, 0x04 /* PCI_COMMAND */, &cmd, 2))
		return -1;
	cmd = on ? cmd | 0x2 : cmd & ~0x2;	/* PCI_COMMAND_MEMORY */
	return stress_config_rw(devfd, true, 0x04, &cmd, 2);
}

/* VFIO_DEVICE_RESET, retried while the kernel says EAGAIN. */
static inline int stress_reset(int devfd)
{
	int i, ret = -1;

	for (i = 0; i < 50; i++) {
		ret = ioctl(devfd, VFIO_DEVICE_RESET);
		if (!ret || errno != EAGAIN)
			break;
		usleep(10000);
	}
	return ret;
}

/* ------------------------------------------------------------------ */
/* iommufd import of a DMABUF (IOMMU_IOAS_MAP_FILE) */

/* Map @len bytes of DMABUF @fd at an IOVA the kernel picks; 0 or -errno. */
static inline int stress_ioas_map_file(int iommufd, uint32_t ioas_id, int fd,
				       uint64_t len, uint64_t *iova)
{
	struct iommu_ioas_map_file map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas_id,
		.fd = fd,
		.start = 0,
		.length = len,
	};

	if (ioctl(iommufd, IOMMU_IOAS_MAP_FILE, &map))
		return -errno;
	*iova = map.iova;
	return 0;
}

static inline int stress_ioas_unmap(int iommufd, uint32_t ioas_id,
				    uint64_t iova, uint64_t len)
{
	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap),
		.ioas_id = ioas_id,
		.iova = iova,
		.length = len,
	};

	return ioctl(iommufd, IOMMU_IOAS_UNMAP, &unmap) ? -errno : 0;
}

/* ------------------------------------------------------------------ */
/* Reads and writes that may take SIGBUS (or SIGSEGV) */

/*
 * Each thread arms its own jump buffer around accesses that may fault; the
 * handler jumps back into that thread (SIGBUS/SIGSEGV from an access are
 * delivered to the faulting thread). An unarmed fault is a real crash.
 * SA_NODEFER keeps the signal unblocked after the jump, so sigsetjmp() need
 * not save the signal mask (one syscall less per access).
 */
static __thread sigjmp_buf *volatile stress_jmp;

static void stress_sig_handler(int sig)
{
	if (stress_jmp)
		siglongjmp(*stress_jmp, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

static inline void stress_install_handlers(void)
{
	struct sigaction sa = {
		.sa_handler = stress_sig_handler,
		.sa_flags = SA_NODEFER,
	};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}

/*
 * Read the u64 at @p into *@val, or write @val there if @write. Returns 0,
 * or the signal the access raised. Needs stress_install_handlers().
 * Not inlined: sigsetjmp() needs its own frame.
 */
static __attribute__((__noinline__, __unused__))
int stress_access(volatile uint64_t *p, bool write, uint64_t *val)
{
	sigjmp_buf env;
	int sig;

	sig = sigsetjmp(env, 0);
	if (sig) {
		stress_jmp = NULL;
		return sig;
	}
	stress_jmp = &env;
	if (write)
		*p = *val;
	else
		*val = *p;
	stress_jmp = NULL;
	return 0;
}

static inline int stress_read(const volatile uint64_t *p, uint64_t *val)
{
	return stress_access((volatile uint64_t *)p, false, val);
}

static inline int stress_write(volatile uint64_t *p, uint64_t val)
{
	return stress_access(p, true, &val);
}

/* The first u64 of page @page of mapping @map. */
static inline volatile uint64_t *stress_word(void *map, uint64_t page,
					     unsigned int word)
{
	return (volatile uint64_t *)((char *)map + page * STRESS_PAGE) + word;
}

/*
 * Check the host's pattern in the first u64 of @npages pages of @map, whose
 * first page is page @bar_page of BAR2. Stops at the first signal or
 * mismatch. Returns 0 if all matched, the signal number, or -1 on a
 * mismatch (with *bad_page, *got filled in). *done counts the pages read.
 */
/* Not inlined: sigsetjmp() needs its own frame */
static __attribute__((__noinline__, __unused__))
int stress_check_pages(void *map, uint64_t bar_page, uint64_t npages,
		       uint64_t seed, uint64_t *done, uint64_t *bad_page,
		       uint64_t *got)
{
	volatile uint64_t i = 0;
	sigjmp_buf env;
	int sig;

	sig = sigsetjmp(env, 0);
	if (sig) {
		stress_jmp = NULL;
		*done = i;
		return sig;
	}
	stress_jmp = &env;
	for (; i < npages; i++) {
		uint64_t v = *stress_word(map, i, 0);

		if (v != ivshmem_pattern(seed, bar_page + i)) {
			stress_jmp = NULL;
			*done = i;
			*bad_page = bar_page + i;
			*got = v;
			return -1;
		}
	}
	stress_jmp = NULL;
	*done = npages;
	return 0;
}

/* ------------------------------------------------------------------ */
/* userfaultfd */

struct stress_uffd {
	int fd;
	char *lead;	/* @lead_len bytes of ordinary memory ... */
	size_t lead_len;
	char *area;	/* ... right before @len registered bytes */
	size_t len;
};

/*
 * @len bytes of anonymous memory whose missing pages block the faulting
 * thread, kernel accesses (copy_from_user() etc.) included, until
 * stress_uffd_resolve(); right before them @lead_len bytes of ordinary,
 * populated memory, so that an argument can end where the blocking part
 * begins. 0 or -errno.
 */
static inline int stress_uffd_init(struct stress_uffd *u, size_t lead_len,
				   size_t len)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int err;

	u->fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u->fd < 0)
		return -errno;
	if (ioctl(u->fd, UFFDIO_API, &api))
		goto err;
	u->lead_len = lead_len;
	u->len = len;
	u->lead = mmap(NULL, lead_len + len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->lead == MAP_FAILED)
		goto err;
	memset(u->lead, 0, lead_len);
	u->area = u->lead + lead_len;
	reg.range.start = (unsigned long)u->area;
	reg.range.len = len;
	if (ioctl(u->fd, UFFDIO_REGISTER, &reg)) {
		err = errno;
		munmap(u->lead, lead_len + len);
		errno = err;
		goto err;
	}
	return 0;
err:
	err = errno;
	close(u->fd);
	return -err;
}

/*
 * Wait up to @ms for a thread to block on a missing page of the area; the
 * faulting address goes to *addr. 0, -ETIMEDOUT or -errno.
 */
static inline int stress_uffd_wait(struct stress_uffd *u, int ms,
				   uint64_t *addr)
{
	struct pollfd pfd = { .fd = u->fd, .events = POLLIN };
	struct uffd_msg msg;
	int r;

	r = poll(&pfd, 1, ms);
	if (r < 0)
		return -errno;
	if (!r)
		return -ETIMEDOUT;
	if (read(u->fd, &msg, sizeof(msg)) != sizeof(msg))
		return -errno;
	if (msg.event != UFFD_EVENT_PAGEFAULT)
		return -EPROTO;
	*addr = msg.arg.pagefault.address;
	return 0;
}

/* Fill the page at @addr with @src and wake whoever waits on it. */
static inline int stress_uffd_resolve(struct stress_uffd *u, uint64_t addr,
				      const void *src)
{
	struct uffdio_copy copy = {
		.dst = addr & ~(STRESS_PAGE - 1),
		.src = (unsigned long)src,
		.len = STRESS_PAGE,
	};

	return ioctl(u->fd, UFFDIO_COPY, &copy) ? -errno : 0;
}

static inline void stress_uffd_fini(struct stress_uffd *u)
{
	munmap(u->lead, u->lead_len + u->len);
	close(u->fd);
}

/* State letter of thread @tid from /proc/self/task/<tid>/stat, or '?'. */
static inline char stress_thread_state(pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

/* /proc/self/task/<tid>/wchan into @buf (for logging). */
static inline const char *stress_thread_wchan(pid_t tid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "?";
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/*
 * Close @dev for real: unmap libvfio's BAR mmap()s, which hold the device
 * file, and close the device fd. With nothing else holding it the device
 * closes (and vfio_pci_dma_buf_cleanup() runs) now, or when the last
 * syscall still using the file returns. Leaves *@dev for teardown to free.
 */
static inline void stress_close_device(struct vfio_pci_device *dev)
{
	int i;

	for (i = 0; i < PCI_STD_NUM_BARS; i++) {
		if (!dev->bars[i].vaddr)
			continue;
		munmap(dev->bars[i].vaddr, dev->bars[i].info.size);
		dev->bars[i].vaddr = NULL;
	}
	close(dev->fd);
	dev->fd = -1;
}

#endif
