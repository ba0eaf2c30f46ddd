// SPDX-License-Identifier: GPL-2.0-only
/*
 * Deterministic races: one thread is stopped inside the kernel, in the
 * window that matters, by a userfaultfd-registered page its syscall has to
 * read; the test does the other side (close, revoke, reset, memory decode
 * off) while it is stopped there, then lets it go and checks the outcome.
 * No timing is involved: the test waits for the uffd event, which the
 * kernel queues only once the thread is in the window.
 *
 *   vfio_race_test IVSHMEM_BDF
 *
 * Environment: VFIO_LAB_SEED, the seed of the host's ivshmem pattern.
 *
 * Which windows can be held this way: 7.3's vfio-pci never touches user
 * memory while holding memory_lock or a DMABUF's reservation lock (the BAR
 * read/write path drops memory_lock around every copy_to/from_user()), so
 * the fault handler's own locked section cannot be stopped from userspace.
 * What can be stopped is a syscall that holds a reference on the device or
 * DMABUF file, and a kernel-mode access to a BAR/DMABUF mapping just before
 * it happens. Each test says which window it holds.
 */
#include <sys/uio.h>
#include <sys/wait.h>

#include <linux/dma-buf.h>
#include <linux/sizes.h>

#include <libvfio.h>

#include "kselftest_harness.h"
#include "stress_lib.h"

#define BAR		STRESS_IVSHMEM_BAR
#define PAGE		STRESS_PAGE
#define MAP_LEN		SZ_2M
#define MAP_OFF		(SZ_64M + 3 * SZ_2M)	/* BAR offset of the mappings */
#define UFFD_WAIT_MS	60000
#define RACE_TIMEOUT	300

static const char *ivshmem_bdf;

/* Pages of @map (BAR page @bar_page on) that do not hold the pattern. */
static uint64_t bad_pages(struct __test_metadata *_metadata, void *map,
			  uint64_t bar_page, uint64_t npages, uint64_t seed)
{
	uint64_t done, page = 0, got = 0;
	int r;

	r = stress_check_pages(map, bar_page, npages, seed, &done, &page, &got);
	if (r > 0)
		TH_LOG("page %llu of %llu: %s", (unsigned long long)done,
		       (unsigned long long)npages, strsignal(r));
	else if (r < 0)
		TH_LOG("BAR page %#llx: got %#llx want %#llx",
		       (unsigned long long)page, (unsigned long long)got,
		       (unsigned long long)ivshmem_pattern(seed, page));
	return npages - done;
}

/* What every fixture below sets up: ivshmem open, a uffd page. */
struct race_env {
	struct iommu *iommu;
	struct vfio_pci_device *dev;
	struct stress_caps caps;
	struct stress_uffd uffd;
	uint64_t seed;
	int closed_dmabufs;
	bool dev_closed;
	char page[STRESS_PAGE];	/* what resolves the uffd page */
};

static void env_setup(struct __test_metadata *_metadata, struct race_env *e)
{
	ASSERT_TRUE(stress_lab_seed(&e->seed)) TH_LOG("VFIO_LAB_SEED is not set");
	e->closed_dmabufs = stress_dmabuf_count();
	ASSERT_LE(0, e->closed_dmabufs) TH_LOG("%s not readable", STRESS_BUFINFO);
	e->iommu = iommu_init("iommufd");
	e->dev = vfio_pci_device_init(ivshmem_bdf, e->iommu);
	ASSERT_EQ(SZ_1G, e->dev->bars[BAR].info.size);
	stress_probe_caps(e->dev->fd, BAR, &e->caps);
	stress_install_handlers();
	ASSERT_EQ(0, stress_uffd_init(&e->uffd, PAGE, PAGE))
		TH_LOG("userfaultfd: %s (CONFIG_USERFAULTFD?)", strerror(errno));
}

static void env_teardown(struct race_env *e)
{
	if (e->dev && !e->dev_closed) {
		stress_set_decode(e->dev->fd, true);
		vfio_pci_device_cleanup(e->dev);
	} else if (e->dev) {
		vfio_pci_device_free(e->dev);
	}
	if (e->iommu)
		iommu_cleanup(e->iommu);
	if (e->uffd.fd > 0)
		stress_uffd_fini(&e->uffd);
}

FIXTURE(race) {
	struct race_env e;
};

FIXTURE_SETUP(race)
{
	env_setup(_metadata, &self->e);
}

FIXTURE_TEARDOWN(race)
{
	env_teardown(&self->e);
}

/* ------------------------------------------------------------------ */
/* An export stopped inside vfio_pci_core_feature_dma_buf() */

struct export_call {
	pthread_t thread;
	int devfd;
	struct vfio_device_feature *arg;
	int ret;
	int err;
};

static void *export_thread(void *p)
{
	struct export_call *c = p;

	c->ret = ioctl(c->devfd, VFIO_DEVICE_FEATURE, c->arg);
	c->err = errno;
	return NULL;
}

/*
 * Start VFIO_DEVICE_FEATURE_DMA_BUF with one range and return once it is
 * stopped. The feature header and struct vfio_device_feature_dma_buf end
 * where the uffd page begins and the range is on that page: the ioctl has
 * passed the flag, argsz, nr_ranges and region checks and claimed the BAR
 * when memdup_array_user() of the ranges blocks. No lock is held there, but
 * the ioctl holds a reference on the device file, and no DMABUF exists yet.
 */
static int start_blocked_export(struct __test_metadata *_metadata,
				struct race_env *e, struct export_call *c)
{
	size_t hdr = sizeof(struct vfio_device_feature) +
		     sizeof(struct vfio_device_feature_dma_buf);
	struct vfio_device_feature_dma_buf *get;
	uint64_t addr = 0;
	int r;

	c->devfd = e->dev->fd;
	c->arg = (void *)(e->uffd.area - hdr);
	c->arg->argsz = hdr + sizeof(struct vfio_region_dma_range);
	c->arg->flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF;
	get = (void *)c->arg->data;
	get->region_index = BAR;
	get->open_flags = O_RDWR | O_CLOEXEC;
	get->flags = 0;
	get->nr_ranges = 1;
	if (pthread_create(&c->thread, NULL, export_thread, c))
		return -1;
	r = stress_uffd_wait(&e->uffd, UFFD_WAIT_MS, &addr);
	if (r) {
		TH_LOG("export did not stop on the uffd page: %s", strerror(-r));
		return -1;
	}
	if (addr != (uint64_t)e->uffd.area) {
		TH_LOG("stopped at %#llx, not at the ranges %p",
		       (unsigned long long)addr, e->uffd.area);
		return -1;
	}
	return 0;
}

/* Let the export go on with the range [@offset, @offset + @len). */
static int finish_export(struct race_env *e, struct export_call *c,
			 uint64_t offset, uint64_t len)
{
	struct vfio_region_dma_range range = { .offset = offset, .length = len };

	memset(e->page, 0, sizeof(e->page));
	memcpy(e->page, &range, sizeof(range));
	if (stress_uffd_resolve(&e->uffd, (uint64_t)e->uffd.area,
				e->page))
		return -1;
	return pthread_join(c->thread, NULL) ? -1 : 0;
}

/* mmap() @fd and check the pattern of its MAP_LEN bytes at MAP_OFF. */
static void check_dmabuf_mmap(struct __test_metadata *_metadata,
			      struct race_env *e, int fd)
{
	void *map = mmap(NULL, MAP_LEN, PROT_READ, MAP_SHARED, fd, 0);

	ASSERT_NE(MAP_FAILED, map) TH_LOG("mmap: %s", strerror(errno));
	EXPECT_EQ(0, bad_pages(_metadata, map, MAP_OFF / PAGE, MAP_LEN / PAGE,
			       e->seed));
	munmap(map, MAP_LEN);
}

/*
 * Export vs close. Window: the export is stopped before its DMABUF exists,
 * holding the device file; the device fd is closed in that window. The
 * export must complete (the ioctl's reference keeps the device open), and
 * the device close that runs when the ioctl drops that reference must
 * revoke and detach the DMABUF it just created: importing it into iommufd
 * and mmap() of it then fail with ENODEV.
 */
TEST_F_TIMEOUT(race, export_vs_close, RACE_TIMEOUT)
{
	struct race_env *e = &self->e;
	struct export_call c = {};
	uint64_t iova = 0;
	void *map;

	ASSERT_EQ(0, start_blocked_export(_metadata, e, &c));
	stress_close_device(e->dev);
	e->dev_closed = true;
	ASSERT_EQ(0, finish_export(e, &c, MAP_OFF, MAP_LEN));
	ASSERT_LE(0, c.ret) TH_LOG("export: %s", strerror(c.err));

	EXPECT_EQ(-ENODEV, stress_ioas_map_file(e->iommu->iommufd,
						e->iommu->ioas_id, c.ret,
						MAP_LEN, &iova));
	if (e->caps.dmabuf_mmap) {
		map = mmap(NULL, MAP_LEN, PROT_READ, MAP_SHARED, c.ret, 0);
		EXPECT_EQ(MAP_FAILED, map);
		EXPECT_EQ(ENODEV, errno);
		if (map != MAP_FAILED)
			munmap(map, MAP_LEN);
	}
	ASSERT_EQ(0, close(c.ret));
	ASSERT_EQ(e->closed_dmabufs, stress_dmabuf_count());
}

/*
 * Export vs memory decode off. Window: as above; memory decode is turned
 * off in it, which revokes every DMABUF of the device, none of which is the
 * one being exported. The new DMABUF must start out revoked (its state is
 * decided under memory_lock when it is published), so importing it into
 * iommufd fails with ENODEV until decode is back on; mmap() of it works
 * meanwhile (revoked for the time being only) but its accesses get SIGBUS.
 * Once decode is back on both work and the mappings show the BAR.
 */
TEST_F_TIMEOUT(race, export_vs_decode_off, RACE_TIMEOUT)
{
	struct race_env *e = &self->e;
	struct export_call c = {};
	uint64_t iova = 0;
	void *map;

	ASSERT_EQ(0, start_blocked_export(_metadata, e, &c));
	ASSERT_EQ(0, stress_set_decode(e->dev->fd, false));
	ASSERT_EQ(0, finish_export(e, &c, MAP_OFF, MAP_LEN));
	ASSERT_LE(0, c.ret) TH_LOG("export: %s", strerror(c.err));

	EXPECT_EQ(-ENODEV, stress_ioas_map_file(e->iommu->iommufd,
						e->iommu->ioas_id, c.ret,
						MAP_LEN, &iova));
	map = MAP_FAILED;
	if (e->caps.dmabuf_mmap) {
		uint64_t val;

		map = mmap(NULL, MAP_LEN, PROT_READ, MAP_SHARED, c.ret, 0);
		EXPECT_NE(MAP_FAILED, map) TH_LOG("mmap: %s", strerror(errno));
		if (map != MAP_FAILED)
			EXPECT_EQ(SIGBUS, stress_read(stress_word(map, 0, 0),
						      &val));
	}

	ASSERT_EQ(0, stress_set_decode(e->dev->fd, true));
	if (map != MAP_FAILED) {
		EXPECT_EQ(0, bad_pages(_metadata, map, MAP_OFF / PAGE,
				       MAP_LEN / PAGE, e->seed));
		munmap(map, MAP_LEN);
	}
	ASSERT_EQ(0, stress_ioas_map_file(e->iommu->iommufd,
					  e->iommu->ioas_id, c.ret, MAP_LEN,
					  &iova));
	ASSERT_EQ(0, stress_ioas_unmap(e->iommu->iommufd, e->iommu->ioas_id,
				       iova, MAP_LEN));
	if (e->caps.dmabuf_mmap)
		check_dmabuf_mmap(_metadata, e, c.ret);
	ASSERT_EQ(0, close(c.ret));
}

/*
 * Export vs VFIO_DEVICE_RESET. Window: as above; a reset revokes and then
 * restores every DMABUF of the device in it. The DMABUF published after
 * that must be usable: not left revoked by the reset's bookkeeping.
 */
TEST_F_TIMEOUT(race, export_vs_reset, RACE_TIMEOUT)
{
	struct race_env *e = &self->e;
	struct export_call c = {};
	uint64_t iova = 0;

	ASSERT_TRUE(e->dev->info.flags & VFIO_DEVICE_FLAGS_RESET);
	ASSERT_EQ(0, start_blocked_export(_metadata, e, &c));
	ASSERT_EQ(0, stress_reset(e->dev->fd)) TH_LOG("reset: %s", strerror(errno));
	ASSERT_EQ(0, finish_export(e, &c, MAP_OFF, MAP_LEN));
	ASSERT_LE(0, c.ret) TH_LOG("export: %s", strerror(c.err));

	ASSERT_EQ(0, stress_ioas_map_file(e->iommu->iommufd,
					  e->iommu->ioas_id, c.ret, MAP_LEN,
					  &iova));
	ASSERT_EQ(0, stress_ioas_unmap(e->iommu->iommufd, e->iommu->ioas_id,
				       iova, MAP_LEN));
	if (e->caps.dmabuf_mmap)
		check_dmabuf_mmap(_metadata, e, c.ret);
	ASSERT_EQ(0, close(c.ret));
}

/* ------------------------------------------------------------------ */
/* A DMABUF file held by a stopped DMA_BUF_SET_NAME */

struct name_call {
	pthread_t thread;
	int fd;
	const char *name;
	int ret;
	int err;
};

static void *name_thread(void *p)
{
	struct name_call *c = p;

	c->ret = ioctl(c->fd, DMA_BUF_SET_NAME_B, (uint64_t)c->name);
	c->err = errno;
	return NULL;
}

/*
 * DMABUF release vs device close. Window: DMA_BUF_SET_NAME is stopped in
 * strndup_user() of its name, holding the last reference on the DMABUF's
 * file after its fd was closed; the device is closed in that window, so
 * vfio_pci_dma_buf_cleanup() revokes and detaches a DMABUF whose release is
 * pending. When the ioctl returns, the release runs on the detached DMABUF
 * and must neither unlink it nor drop the device registration a second time
 * (DEBUG_LIST, refcount and KASAN reports fail the run), and must free it.
 * A mmap() of it (part 2) must raise SIGBUS from the device close on.
 */
TEST_F_TIMEOUT(race, dmabuf_release_vs_device_close, RACE_TIMEOUT)
{
	struct race_env *e = &self->e;
	struct name_call c = {};
	void *map = MAP_FAILED;
	uint64_t addr = 0, val = 0;

	c.fd = stress_export1(e->dev->fd, BAR, MAP_OFF, MAP_LEN);
	ASSERT_LE(0, c.fd) TH_LOG("export: %s", strerror(errno));
	if (e->caps.dmabuf_mmap) {
		map = mmap(NULL, MAP_LEN, PROT_READ, MAP_SHARED, c.fd, 0);
		ASSERT_NE(MAP_FAILED, map) TH_LOG("mmap: %s", strerror(errno));
		ASSERT_EQ(0, bad_pages(_metadata, map, MAP_OFF / PAGE, 4,
				       e->seed));
	}

	c.name = e->uffd.area;
	ASSERT_EQ(0, pthread_create(&c.thread, NULL, name_thread, &c));
	ASSERT_EQ(0, stress_uffd_wait(&e->uffd, UFFD_WAIT_MS, &addr));
	ASSERT_EQ((uint64_t)e->uffd.area, addr);

	ASSERT_EQ(0, close(c.fd));
	stress_close_device(e->dev);
	e->dev_closed = true;
	if (map != MAP_FAILED)
		EXPECT_EQ(SIGBUS, stress_read(stress_word(map, 0, 0), &val))
			TH_LOG("read %#llx after the device closed",
			       (unsigned long long)val);

	memset(e->page, 0, sizeof(e->page));
	snprintf(e->page, sizeof(e->page), "vfio-lab-race");
	ASSERT_EQ(0, stress_uffd_resolve(&e->uffd, addr, e->page));
	ASSERT_EQ(0, pthread_join(c.thread, NULL));
	EXPECT_EQ(0, c.ret) TH_LOG("DMA_BUF_SET_NAME: %s", strerror(c.err));

	if (map != MAP_FAILED) {
		ASSERT_EQ(e->closed_dmabufs + 1, stress_dmabuf_count());
		munmap(map, MAP_LEN);
	}
	ASSERT_EQ(e->closed_dmabufs, stress_dmabuf_count());
}

/* ------------------------------------------------------------------ */
/* Revoking mappings: the kinds of mapping and of revocation */

enum map_kind { MAP_BAR, MAP_DMABUF };
enum revoke_kind { REVOKE_DECODE_OFF, REVOKE_PERMANENT, REVOKE_CLOSE };

/* Map MAP_LEN bytes at BAR offset MAP_OFF, as a BAR mmap() or a DMABUF. */
static void *map_kind(struct race_env *e, enum map_kind kind, int *dmabuf_fd)
{
	*dmabuf_fd = -1;
	if (kind == MAP_BAR)
		return mmap(NULL, MAP_LEN, PROT_READ, MAP_SHARED, e->dev->fd,
			    e->dev->bars[BAR].info.offset + MAP_OFF);

	*dmabuf_fd = stress_export1(e->dev->fd, BAR, MAP_OFF, MAP_LEN);
	if (*dmabuf_fd < 0)
		return MAP_FAILED;
	return mmap(NULL, MAP_LEN, PROT_READ, MAP_SHARED, *dmabuf_fd, 0);
}

/* Why the kernel under test cannot do this combination, or NULL. */
static const char *unsupported(struct race_env *e, enum map_kind map,
			       enum revoke_kind revoke)
{
	if (map == MAP_DMABUF && !e->caps.dmabuf_mmap)
		return STRESS_NO_PART2;
	if (revoke == REVOKE_PERMANENT && !e->caps.revoke)
		return STRESS_NO_PART2;
	return NULL;
}

static void do_revoke(struct __test_metadata *_metadata, struct race_env *e,
		      enum revoke_kind revoke, int dmabuf_fd)
{
	switch (revoke) {
	case REVOKE_DECODE_OFF:
		ASSERT_EQ(0, stress_set_decode(e->dev->fd, false));
		break;
	case REVOKE_PERMANENT:
		ASSERT_EQ(0, stress_revoke(e->dev->fd, dmabuf_fd))
			TH_LOG("revoke: %s", strerror(errno));
		break;
	case REVOKE_CLOSE:
		stress_close_device(e->dev);
		e->dev_closed = true;
		break;
	}
}

/* ------------------------------------------------------------------ */
/* A kernel-mode read of a mapping, stopped right before it happens */

FIXTURE(kaccess) {
	struct race_env e;
};

FIXTURE_VARIANT(kaccess) {
	enum map_kind map;
	enum revoke_kind revoke;
	bool prefault;		/* PTE present before the window */
	bool expect_data;	/* the access must still work */
};

FIXTURE_VARIANT_ADD(kaccess, bar_decode_off_prefaulted) {
	.map = MAP_BAR, .revoke = REVOKE_DECODE_OFF, .prefault = true,
};

FIXTURE_VARIANT_ADD(kaccess, bar_decode_off_cold) {
	.map = MAP_BAR, .revoke = REVOKE_DECODE_OFF, .prefault = false,
};

/* The BAR mmap() holds the device open: closing the fd revokes nothing */
FIXTURE_VARIANT_ADD(kaccess, bar_close_prefaulted) {
	.map = MAP_BAR, .revoke = REVOKE_CLOSE, .prefault = true,
	.expect_data = true,
};

FIXTURE_VARIANT_ADD(kaccess, bar_close_cold) {
	.map = MAP_BAR, .revoke = REVOKE_CLOSE, .prefault = false,
	.expect_data = true,
};

FIXTURE_VARIANT_ADD(kaccess, dmabuf_decode_off_prefaulted) {
	.map = MAP_DMABUF, .revoke = REVOKE_DECODE_OFF, .prefault = true,
};

FIXTURE_VARIANT_ADD(kaccess, dmabuf_decode_off_cold) {
	.map = MAP_DMABUF, .revoke = REVOKE_DECODE_OFF, .prefault = false,
};

FIXTURE_VARIANT_ADD(kaccess, dmabuf_revoke_prefaulted) {
	.map = MAP_DMABUF, .revoke = REVOKE_PERMANENT, .prefault = true,
};

FIXTURE_VARIANT_ADD(kaccess, dmabuf_revoke_cold) {
	.map = MAP_DMABUF, .revoke = REVOKE_PERMANENT, .prefault = false,
};

FIXTURE_VARIANT_ADD(kaccess, dmabuf_close_prefaulted) {
	.map = MAP_DMABUF, .revoke = REVOKE_CLOSE, .prefault = true,
};

FIXTURE_VARIANT_ADD(kaccess, dmabuf_close_cold) {
	.map = MAP_DMABUF, .revoke = REVOKE_CLOSE, .prefault = false,
};

FIXTURE_SETUP(kaccess)
{
	env_setup(_metadata, &self->e);
}

FIXTURE_TEARDOWN(kaccess)
{
	env_teardown(&self->e);
}

struct writev_call {
	pthread_t thread;
	int pipe_wr;
	struct iovec iov[2];
	ssize_t ret;
	int err;
};

static void *writev_thread(void *p)
{
	struct writev_call *c = p;

	c->ret = writev(c->pipe_wr, c->iov, 2);
	c->err = errno;
	return NULL;
}

/*
 * Kernel access vs revoke. Window: writev() to a pipe of a uffd page and
 * then of the mapping's first u64 is stopped on the uffd page, right before
 * the kernel reads the mapping; the mapping is revoked in that window
 * (memory decode off, DMA_BUF_REVOKE, or device close). When it goes on,
 * the kernel's read of the mapping must fault and fail (writev() returns
 * just the uffd page), never return data: with the PTE present before the
 * window ("prefaulted") that needs the revoke to have zapped it, without it
 * ("cold") the fault handler must refuse. For a BAR mmap() closing the fd
 * revokes nothing (the mapping holds the device open), so there the read
 * must succeed with the right data. Memory decode back on must make reads
 * work again; a permanent revoke must stay.
 */
TEST_F_TIMEOUT(kaccess, revoked_in_window, RACE_TIMEOUT)
{
	struct race_env *e = &self->e;
	uint64_t want = ivshmem_pattern(e->seed, MAP_OFF / PAGE), got = 0;
	struct writev_call c = {};
	const char *why;
	int pipefd[2], dfd;
	uint64_t addr = 0;
	char *buf;
	void *map;

	why = unsupported(e, variant->map, variant->revoke);
	if (why)
		SKIP(return, "%s", why);

	map = map_kind(e, variant->map, &dfd);
	ASSERT_NE(MAP_FAILED, map) TH_LOG("map: %s", strerror(errno));
	if (variant->prefault)
		ASSERT_EQ(0, bad_pages(_metadata, map, MAP_OFF / PAGE, 1, e->seed));

	ASSERT_EQ(0, pipe2(pipefd, O_CLOEXEC));
	c.pipe_wr = pipefd[1];
	c.iov[0].iov_base = e->uffd.area;
	c.iov[0].iov_len = PAGE;
	c.iov[1].iov_base = map;
	c.iov[1].iov_len = sizeof(uint64_t);
	ASSERT_EQ(0, pthread_create(&c.thread, NULL, writev_thread, &c));
	ASSERT_EQ(0, stress_uffd_wait(&e->uffd, UFFD_WAIT_MS, &addr));

	do_revoke(_metadata, e, variant->revoke, dfd);

	memset(e->page, 0x5a, sizeof(e->page));
	ASSERT_EQ(0, stress_uffd_resolve(&e->uffd, addr, e->page));
	ASSERT_EQ(0, pthread_join(c.thread, NULL));

	buf = malloc(PAGE + sizeof(got));
	ASSERT_NE(NULL, buf);
	if (c.ret > 0)
		ASSERT_EQ(c.ret, read(pipefd[0], buf, c.ret));
	if (c.ret == PAGE + sizeof(got))
		memcpy(&got, buf + PAGE, sizeof(got));
	free(buf);
	TH_LOG("writev() = %zd (%s), mapping word %#llx", c.ret,
	       c.ret < 0 ? strerror(c.err) : "ok", (unsigned long long)got);
	if (variant->expect_data) {
		ASSERT_EQ(PAGE + sizeof(got), c.ret);
		ASSERT_EQ(want, got);
	} else {
		ASSERT_EQ(PAGE, c.ret);
	}

	/* Afterwards, from userspace */
	switch (variant->revoke) {
	case REVOKE_DECODE_OFF:
		ASSERT_EQ(SIGBUS, stress_read(stress_word(map, 0, 0), &got));
		ASSERT_EQ(0, stress_set_decode(e->dev->fd, true));
		ASSERT_EQ(0, bad_pages(_metadata, map, MAP_OFF / PAGE,
				       MAP_LEN / PAGE, e->seed));
		break;
	case REVOKE_PERMANENT:
		/* No un-revoke: decode off and on again changes nothing */
		ASSERT_EQ(0, stress_set_decode(e->dev->fd, false));
		ASSERT_EQ(0, stress_set_decode(e->dev->fd, true));
		ASSERT_EQ(SIGBUS, stress_read(stress_word(map, 0, 0), &got));
		break;
	case REVOKE_CLOSE:
		if (variant->expect_data) {
			ASSERT_EQ(0, bad_pages(_metadata, map, MAP_OFF / PAGE,
					       MAP_LEN / PAGE, e->seed));
		} else {
			ASSERT_EQ(SIGBUS, stress_read(stress_word(map, 0, 0),
						      &got));
		}
		break;
	}

	munmap(map, MAP_LEN);
	if (dfd >= 0)
		close(dfd);
	close(pipefd[0]);
	close(pipefd[1]);
	if (e->dev_closed)
		ASSERT_EQ(e->closed_dmabufs, stress_dmabuf_count());
}

/* ------------------------------------------------------------------ */
/* A fork() child's copy of a mapping */

FIXTURE(forked) {
	struct race_env e;
};

FIXTURE_VARIANT(forked) {
	enum map_kind map;
	enum revoke_kind revoke;
};

FIXTURE_VARIANT_ADD(forked, bar_decode_off) {
	.map = MAP_BAR, .revoke = REVOKE_DECODE_OFF,
};

FIXTURE_VARIANT_ADD(forked, dmabuf_decode_off) {
	.map = MAP_DMABUF, .revoke = REVOKE_DECODE_OFF,
};

FIXTURE_VARIANT_ADD(forked, dmabuf_revoke) {
	.map = MAP_DMABUF, .revoke = REVOKE_PERMANENT,
};

FIXTURE_VARIANT_ADD(forked, dmabuf_close) {
	.map = MAP_DMABUF, .revoke = REVOKE_CLOSE,
};

FIXTURE_SETUP(forked)
{
	env_setup(_metadata, &self->e);
}

FIXTURE_TEARDOWN(forked)
{
	env_teardown(&self->e);
}

/*
 * Revoke vs a fork() child's copy of the mapping. Not a uffd window but a
 * sequence: fork() copies the PTEs of a PFN map, so the child holds PTEs of
 * the parent's mapping; after the parent revokes, the child's next read
 * must raise SIGBUS: the zap covers every VMA of the DMABUF's
 * address_space, not only the parent's. (For the device close the child
 * drops its copies of the device fd and of the BAR mmap()s first: they
 * would hold the device open.)
 */
TEST_F_TIMEOUT(forked, child_sees_revoke, RACE_TIMEOUT)
{
	struct race_env *e = &self->e;
	int ready[2], go[2], status, dfd;
	uint64_t got;
	const char *why;
	void *map;
	pid_t pid;
	char c;

	why = unsupported(e, variant->map, variant->revoke);
	if (why)
		SKIP(return, "%s", why);

	map = map_kind(e, variant->map, &dfd);
	ASSERT_NE(MAP_FAILED, map) TH_LOG("map: %s", strerror(errno));
	ASSERT_EQ(0, bad_pages(_metadata, map, MAP_OFF / PAGE, 1, e->seed));
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		uint64_t v = 0;
		int sig;

		/* Nothing of the child's may hold the device open */
		stress_close_device(e->dev);
		sig = stress_read(stress_word(map, 0, 0), &v);
		if (sig || v != ivshmem_pattern(e->seed, MAP_OFF / PAGE))
			_exit(3);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(4);
		sig = stress_read(stress_word(map, 0, 0), &v);
		_exit(sig == SIGBUS ? 0 : sig ? 2 : 1);
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	do_revoke(_metadata, e, variant->revoke, dfd);
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	/* 0: SIGBUS, 1: the read went through, 2: another signal, 3/4: set-up */
	ASSERT_EQ(0, WEXITSTATUS(status));

	if (variant->revoke == REVOKE_DECODE_OFF) {
		ASSERT_EQ(0, stress_set_decode(e->dev->fd, true));
		ASSERT_EQ(0, bad_pages(_metadata, map, MAP_OFF / PAGE, 1, e->seed));
	} else {
		ASSERT_EQ(SIGBUS, stress_read(stress_word(map, 0, 0), &got));
	}
	munmap(map, MAP_LEN);
	if (dfd >= 0)
		close(dfd);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
}

int main(int argc, char *argv[])
{
	ivshmem_bdf = vfio_selftests_get_bdf(&argc, argv);
	return test_harness_run(argc, argv);
}
