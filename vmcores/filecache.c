/*
 * drgn-ptwalk reference workload: the "filecache" scenario (included by workload.c after production.c,
 * part of the default set, the last scenario started). Files on ext4 and xfs (the virtio disks the blockfs
 * scenario mounts; mounted here if it did not run), on tmpfs, a memfd and an unlinked file, each left in a
 * known page-cache state: read whole, read in part, written (dirty: writeback is off in the guest), mapped
 * (and by a second process, filecache_peer), partly evicted by MADV_PAGEOUT (shadow entries on a block
 * filesystem, swap entries on tmpfs). Right before reporting ready -- after it nothing in the guest touches
 * these files: every other scenario is started before it and the runner only stops and captures -- it
 * records per file the page-cache residency the kernel reports: cachestat() (v6.5: cached, dirty,
 * writeback, evicted, recently evicted over the whole file) or, where the kernel has no cachestat, mincore()
 * of a mapping of the whole file (cached pages only), with the file's device and inode number, into
 * OUTDIR/<pid>/filecache.json:
 *
 *   {"method": "cachestat"|"mincore", "page_size": N, "files": [{"label", "fs", "path", "dev": "MAJ:MIN",
 *    "ino", "size", "cached", "dirty", "writeback", "evicted", "recently_evicted", "mapped_by"}, ...]}
 *
 * ("path" as the kernel prints it: "(deleted)" appended to an unlinked file, "/memfd:NAME (deleted)";
 * the counts are pages, null where the method cannot tell; "mapped_by" the processes mapping the file.)
 */

#include <sys/sysmacros.h>

#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif

struct fc_range {
	uint64_t off, len;
};
struct fc_stat {
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

#define FC_MAX 24
struct fc_file {
	char label[32], fs[8], path[PATH_MAX];
	int fd, mapped_by;
	int deleted;
};
static struct fc_file g_fc[FC_MAX];
static int g_nfc;

static struct fc_file *fc_add(const char *label, const char *fs, const char *path, int fd)
{
	if (g_nfc >= FC_MAX || fd < 0)
		return NULL;
	struct fc_file *f = &g_fc[g_nfc++];
	snprintf(f->label, sizeof(f->label), "%s", label);
	snprintf(f->fs, sizeof(f->fs), "%s", fs);
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->fd = fd;
	f->mapped_by = 0;
	f->deleted = 0;
	return f;
}

/* every CPU's LRU batches drained (see drain_lru): MADV_PAGEOUT isolates only folios on the LRU */
static void fc_drain(void)
{
	static unsigned long none[16], node0[16] = { 1 };
	syscall(SYS_migrate_pages, 0, (unsigned long)(sizeof(none) * 8), none, node0);
}

/* the mount point of fstype's disk, mounted here when the blockfs scenario did not run */
static int fc_mounted(const char *fstype, char *mnt, size_t len)
{
	snprintf(mnt, len, "/mnt/%s", fstype);
	struct stat a, b;
	if (stat(mnt, &a) == 0 && stat("/mnt", &b) == 0 && a.st_dev != b.st_dev)
		return 0;
	char serial[32], dev[300], step[64];
	snprintf(serial, sizeof(serial), "ptwalk-%s", fstype);
	snprintf(step, sizeof(step), "mount-%s", fstype);
	if (g_no_sysfs) {
		STEP_REF(step, "PTWALK_NO_SYSFS");
		return -1;
	}
	if (find_disk(serial, dev, sizeof(dev)) < 0) {
		STEP_REF(step, "no-virtio-disk-with-serial-%s", serial);
		return -1;
	}
	mkdir("/mnt", 0755);
	mkdir(mnt, 0755);
	return STEP_RC(step, mount(dev, mnt, fstype, 0, NULL));
}

/* a file of npages pages written through write(), fsync'ed (clean) and dropped from the cache */
static int fc_clean_file(const char *path, size_t npages, unsigned char seed)
{
	int fd = make_file(path, npages * (size_t)g_ps, seed);
	if (fd < 0)
		return -1;
	fsync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	return fd;
}

static void fc_read(int fd, size_t from, size_t npages)
{
	char *buf = malloc((size_t)g_ps);
	if (!buf)
		return;
	for (size_t i = 0; i < npages; i++)
		if (pread(fd, buf, (size_t)g_ps, (off_t)((from + i) * (size_t)g_ps)) <= 0)
			break;
	free(buf);
}

/* the files of one directory: fs names the kind ("ext4", "xfs", "tmpfs"); block: a block filesystem */
static void fc_dir(const char *fs, const char *dir, int block)
{
	size_t ps = (size_t)g_ps;
	char path[PATH_MAX], label[32], step[64];
	mkdir(dir, 0755);

	/* read whole through read(): read-ahead (large folios where the filesystem has them) */
	snprintf(path, sizeof(path), "%s/full.dat", dir);
	int fd = block ? fc_clean_file(path, 128, 0xf1) : make_file(path, 128 * ps, 0xf1);
	if (fd >= 0) {
		fc_read(fd, 0, 128);
		snprintf(label, sizeof(label), "%s-full", fs);
		fc_add(label, fs, path, fd);
	}
	/* read in part, without read-ahead */
	snprintf(path, sizeof(path), "%s/part.dat", dir);
	if (block) {
		fd = fc_clean_file(path, 64, 0xf2);
	} else {
		/* tmpfs: a sparse file, pages 8-19 and 40-42 written (a read of a hole allocates nothing) */
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0 && ftruncate(fd, (off_t)(64 * ps)) == 0) {
			char *buf = malloc(ps);
			if (buf) {
				memset(buf, 0xf2, ps);
				for (size_t i = 0; i < 64; i++)
					if ((i >= 8 && i < 20) || (i >= 40 && i < 43))
						if (pwrite(fd, buf, ps, (off_t)(i * ps)) != (ssize_t)ps)
							STEP_ERR("tmpfs-part-write", errno);
				free(buf);
			}
		}
	}
	if (fd >= 0) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
		fc_read(fd, 8, 12);
		fc_read(fd, 40, 3);
		snprintf(label, sizeof(label), "%s-part", fs);
		fc_add(label, fs, path, fd);
	}
	/* written: 48 pages clean on disk, then 6 of them and 4 past the end written again (dirty) */
	snprintf(path, sizeof(path), "%s/dirty.dat", dir);
	fd = block ? fc_clean_file(path, 48, 0xf3) : make_file(path, 48 * ps, 0xf3);
	if (fd >= 0) {
		char *buf = malloc(ps);
		if (buf) {
			memset(buf, 0xf4, ps);
			for (size_t i = 10; i < 16; i++)
				if (pwrite(fd, buf, ps, (off_t)(i * ps)) != (ssize_t)ps)
					STEP_ERR("dirty-write", errno);
			for (size_t i = 48; i < 52; i++)
				if (pwrite(fd, buf, ps, (off_t)(i * ps)) != (ssize_t)ps)
					STEP_ERR("dirty-append", errno);
			free(buf);
		}
		snprintf(label, sizeof(label), "%s-dirty", fs);
		fc_add(label, fs, path, fd);
	}
	/* mapped shared: pages 0-15 read through the mapping, 16-19 written through it (dirty); the peer
	 * process inherits the mapping */
	snprintf(path, sizeof(path), "%s/mapped.dat", dir);
	fd = block ? fc_clean_file(path, 32, 0xf5) : make_file(path, 32 * ps, 0xf5);
	if (fd >= 0) {
		snprintf(step, sizeof(step), "%s-map-shared", fs);
		char *p = mmap(NULL, 32 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			STEP_ERR(step, errno);
		} else {
			STEP_OK(step);
			read_pages(p, 16 * ps);
			write_pages(p + 16 * ps, 4 * ps, 0xf6);
		}
		snprintf(label, sizeof(label), "%s-mapped", fs);
		struct fc_file *f = fc_add(label, fs, path, fd);
		if (f && p != MAP_FAILED)
			f->mapped_by = 2;
	}
	/* evicted: read whole through a mapping, the first half paged out (MADV_PAGEOUT: reclaim leaves
	 * shadow entries in a block filesystem's cache, swap entries in tmpfs), then unmapped */
	snprintf(path, sizeof(path), "%s/evicted.dat", dir);
	fd = block ? fc_clean_file(path, 32, 0xf7) : make_file(path, 32 * ps, 0xf7);
	if (fd >= 0) {
		char *p = mmap(NULL, 32 * ps, PROT_READ, MAP_SHARED, fd, 0);
		snprintf(step, sizeof(step), "%s-pageout", fs);
		if (p == MAP_FAILED) {
			STEP_ERR(step, errno);
		} else {
			read_pages(p, 32 * ps);
			fc_drain();
			STEP_RC(step, madvise(p, 16 * ps, MADV_PAGEOUT));
			munmap(p, 32 * ps);
		}
		snprintf(label, sizeof(label), "%s-evicted", fs);
		fc_add(label, fs, path, fd);
	}
	/* unlinked while open: "(deleted)" */
	snprintf(path, sizeof(path), "%s/unlinked.dat", dir);
	fd = make_file(path, 8 * ps, 0xf8);
	if (fd >= 0) {
		fc_read(fd, 0, 8);
		snprintf(label, sizeof(label), "%s-unlinked", fs);
		struct fc_file *f = fc_add(label, fs, path, fd);
		if (unlink(path) == 0 && f)
			f->deleted = 1;
	}
}

static void fc_record(void)
{
	static char buf[32 * 1024];
	size_t n = 0, cap = sizeof(buf), ps = (size_t)g_ps;
	struct fc_range all = { 0, 0 };
	struct fc_stat cs;
	int have_cachestat = g_nfc > 0 && syscall(SYS_cachestat, g_fc[0].fd, &all, &cs, 0) == 0;
	if (have_cachestat)
		STEP_OK("cachestat");
	else
		STEP_REF("cachestat", "%s-mincore-instead", g_nfc ? errname(errno) : "no-files");
	n += (size_t)snprintf(buf + n, cap - n, "{\"method\": \"%s\", \"page_size\": %ld, \"files\": [",
			      have_cachestat ? "cachestat" : "mincore", g_ps);
	for (int i = 0; i < g_nfc; i++) {
		struct fc_file *f = &g_fc[i];
		struct stat st;
		if (fstat(f->fd, &st) < 0) {
			STEP_ERR(f->label, errno);
			continue;
		}
		long cached = -1, dirty = -1, wb = -1, ev = -1, rev = -1;
		size_t np = ((size_t)st.st_size + ps - 1) / ps;
		if (have_cachestat) {
			if (syscall(SYS_cachestat, f->fd, &all, &cs, 0) == 0) {
				cached = (long)cs.nr_cache;
				dirty = (long)cs.nr_dirty;
				wb = (long)cs.nr_writeback;
				ev = (long)cs.nr_evicted;
				rev = (long)cs.nr_recently_evicted;
			} else {
				STEP_ERR(f->label, errno);
				continue;
			}
		} else if (np) {
			/* a mapping is never faulted: mincore() looks the pages up in the cache */
			void *p = mmap(NULL, np * ps, PROT_READ, MAP_SHARED, f->fd, 0);
			unsigned char *vec = malloc(np);
			if (p == MAP_FAILED || !vec || mincore(p, np * ps, vec) < 0) {
				STEP_ERR(f->label, errno);
				if (p != MAP_FAILED)
					munmap(p, np * ps);
				free(vec);
				continue;
			}
			cached = 0;
			for (size_t k = 0; k < np; k++)
				cached += vec[k] & 1;
			munmap(p, np * ps);
			free(vec);
		} else {
			cached = 0;
		}
		char path[PATH_MAX + 16], esc[2 * PATH_MAX + 32], num[5][24];
		snprintf(path, sizeof(path), "%s%s", f->path, f->deleted ? " (deleted)" : "");
		json_esc(esc, sizeof(esc), path);
		long v[5] = { cached, dirty, wb, ev, rev };
		for (int k = 0; k < 5; k++) {
			if (v[k] < 0)
				snprintf(num[k], sizeof(num[k]), "null");
			else
				snprintf(num[k], sizeof(num[k]), "%ld", v[k]);
		}
		n += (size_t)snprintf(buf + n, cap - n,
				      "%s\n  {\"label\": \"%s\", \"fs\": \"%s\", \"path\": \"%s\", \"dev\": \"%u:%u\", "
				      "\"ino\": %lu, \"size\": %ld, \"cached\": %s, \"dirty\": %s, \"writeback\": %s, "
				      "\"evicted\": %s, \"recently_evicted\": %s, \"mapped_by\": %d}",
				      i ? "," : "", f->label, f->fs, esc, major(st.st_dev), minor(st.st_dev),
				      (unsigned long)st.st_ino, (long)st.st_size, num[0], num[1], num[2], num[3], num[4],
				      f->mapped_by);
		if (n >= cap - 1024)
			break;
	}
	n += (size_t)snprintf(buf + n, cap - n, "\n]}\n");
	char dir[PATH_MAX], out[PATH_MAX + 32];
	snprintf(dir, sizeof(dir), "%s/%d", g_out, getpid());
	mkdir(dir, 0755);
	snprintf(out, sizeof(out), "%s/filecache.json", dir);
	int e = write_file(out, buf, n);
	if (e)
		STEP_ERR("record", e);
	else
		STEP_OK("record");
}

static void scen_filecache(void)
{
	size_t ps = (size_t)g_ps;
	char mnt[64], dir[PATH_MAX];
	static const char *const block[] = { "ext4", "xfs" };
	for (int i = 0; i < 2; i++) {
		if (fc_mounted(block[i], mnt, sizeof(mnt)) < 0)
			continue;
		snprintf(dir, sizeof(dir), "%s/fc", mnt);
		fc_dir(block[i], dir, 1);
	}
	snprintf(dir, sizeof(dir), "%s/fc", g_workdir);
	fc_dir("tmpfs", dir, 0);

	/* a memfd: 24 pages written, 8 more read through a shared mapping the peer inherits */
	int fd = (int)syscall(SYS_memfd_create, "ptwalk-fc", 0);
	if (fd < 0 || ftruncate(fd, (off_t)(40 * ps)) < 0) {
		STEP_ERR("memfd", errno);
	} else {
		char *p = mmap(NULL, 40 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			STEP_ERR("memfd", errno);
		} else {
			STEP_OK("memfd");
			write_pages(p, 24 * ps, 0xf9);
			read_pages(p + 24 * ps, 8 * ps);
		}
		struct fc_file *f = fc_add("memfd", "memfd", "/memfd:ptwalk-fc", fd);
		if (f) {
			f->deleted = 1;
			f->mapped_by = p == MAP_FAILED ? 0 : 2;
		}
	}

	/* the peer: inherits the shared mappings (its own VMAs in each file's i_mmap), faults nothing */
	int sync_p[2];
	if (pipe(sync_p) < 0) {
		STEP_ERR("peer-pipe", errno);
		for (int i = 0; i < g_nfc; i++)
			g_fc[i].mapped_by = g_fc[i].mapped_by ? 1 : 0;
	} else {
		pid_t c = fork();
		if (c == 0) {
			close(sync_p[0]);
			become_child("filecache_peer");
			report_ready(0);
			close(sync_p[1]);
			pause_forever();
		}
		close(sync_p[1]);
		if (c < 0) {
			STEP_ERR("fork-peer", errno);
			for (int i = 0; i < g_nfc; i++)
				g_fc[i].mapped_by = g_fc[i].mapped_by ? 1 : 0;
		} else {
			char x;
			while (read(sync_p[0], &x, 1) < 0 && errno == EINTR)
				;
		}
		close(sync_p[0]);
	}
	fc_drain();
	fc_record();
	report_ready(1);
	pause_forever();
}
