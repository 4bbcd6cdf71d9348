/*
 * drgn-ptwalk reference workload: the "production" scenarios (included by workload.c, part of the
 * default set). What real servers hold and the first scenarios did not: containers (own mount namespace,
 * overlayfs, bind mount, chroot), SysV shared memory, hugetlb PMD tables shared over fork, a named
 * dma-buf, a vhost-net owner and its worker, a zombie, ext4 and xfs page cache on a virtio disk, NUMA
 * balancing's protnone entries, swap entries shared by many processes, and the VMA flags, policies and
 * protection keys the kernel can print.
 *
 * Each state the kernel refuses is a "refused" line in steps.log, never dropped silently.
 */

#ifndef UFFD_FEATURE_MINOR_SHMEM
#define UFFD_FEATURE_MINOR_SHMEM (1 << 10)
#endif
#ifndef UFFDIO_REGISTER_MODE_MINOR
#define UFFDIO_REGISTER_MODE_MINOR ((__u64)1 << 2)
#endif
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif
#ifndef SYS_mseal
#define SYS_mseal 462
#endif
#ifndef PR_SET_THP_DISABLE
#define PR_SET_THP_DISABLE 41
#endif
#ifndef PROT_BTI
#define PROT_BTI 0x10
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_SEAL_SHRINK 0x0002
#endif
#ifndef SHM_HUGETLB
#define SHM_HUGETLB 04000
#endif
#ifndef SHM_RDONLY
#define SHM_RDONLY 010000
#endif
#ifndef POSIX_FADV_DONTNEED
#define POSIX_FADV_DONTNEED 4
#endif
#define MPOL_F_NUMA_BALANCING_ (1 << 13)

#include <sys/ipc.h>
#include <sys/shm.h>

/* The worker / zombie report themselves with "NOSTOP": the runner neither stops nor waits for them. */
static void report_other(const char *name, pid_t pid, int nostop)
{
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "%s %s %d\n", nostop ? "NOSTOP" : "READY", name, pid);
	out_write(g_ready_fd, buf, (size_t)n);
}

/* a child scenario process: named, its own regions, READY, then paused */
static void become_child(const char *name)
{
	prctl(PR_SET_NAME, name, 0, 0, 0);
	g_scen = name;
	g_nregions = 0;
	g_info[0] = 0;
}

static void *map_file(const char *path, size_t len, int prot, int flags, const char *step)
{
	int fd = open(path, (prot & PROT_WRITE) && (flags & MAP_SHARED) ? O_RDWR : O_RDONLY);
	if (fd < 0) {
		STEP_ERR(step, errno);
		return NULL;
	}
	void *p = mmap(NULL, len + (size_t)g_ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED)
		p = mmap(p, len, prot, flags | MAP_FIXED, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED) {
		STEP_ERR(step, e);
		return NULL;
	}
	STEP_OK(step);
	return p;
}

/* ------------------------------------------------------------------ */
/* scenario: container                                                  */

static void scen_container(void)
{
	size_t ps = (size_t)g_ps;
	char base[PATH_MAX], lower[PATH_MAX + 8], upper[PATH_MAX + 8], work[PATH_MAX + 8], merged[PATH_MAX + 8],
		data[PATH_MAX + 8], opts[4 * PATH_MAX], p1[2 * PATH_MAX];
	snprintf(base, sizeof(base), "%s/ctr", g_workdir);
	snprintf(lower, sizeof(lower), "%s/lower", base);
	snprintf(upper, sizeof(upper), "%s/upper", base);
	snprintf(work, sizeof(work), "%s/work", base);
	snprintf(merged, sizeof(merged), "%s/merged", base);
	snprintf(data, sizeof(data), "%s/data", base);
	mkdir(base, 0755);
	const char *dirs[] = { lower, upper, work, merged, data };
	for (size_t i = 0; i < 5; i++)
		mkdir(dirs[i], 0755);
	snprintf(p1, sizeof(p1), "%s/lib", lower);
	mkdir(p1, 0755);
	snprintf(p1, sizeof(p1), "%s/lib/libx.so", lower);
	int fd = make_file(p1, 16 * ps, 0x11);
	if (fd >= 0)
		close(fd);
	snprintf(p1, sizeof(p1), "%s/bound.dat", data);
	fd = make_file(p1, 8 * ps, 0x22);
	if (fd >= 0)
		close(fd);

	if (STEP_RC("unshare-mntns", unshare(CLONE_NEWNS)) < 0)
		goto out;
	STEP_RC("make-private", mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
	if (STEP_RC("mount-overlay", mount("overlay", merged, "overlay", 0, opts)) < 0)
		goto out;
	snprintf(p1, sizeof(p1), "%s/data", merged);
	mkdir(p1, 0755); /* created through the overlay: lands in the upper layer */
	STEP_RC("bind-mount", mount(data, p1, NULL, MS_BIND, NULL));
	snprintf(p1, sizeof(p1), "%s/upper.dat", merged);
	fd = make_file(p1, 8 * ps, 0x33);
	if (fd >= 0)
		close(fd);
	snprintf(p1, sizeof(p1), "%s/deleted.dat", merged);
	fd = make_file(p1, 4 * ps, 0x44);
	if (fd >= 0)
		close(fd);
	if (STEP_RC("chdir", chdir(merged)) < 0)
		goto out;
	/* pivot_root needs a root that is not the initramfs (rootfs): kept as tried, chroot otherwise */
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		STEP_OK("pivot_root");
		umount2(".", MNT_DETACH);
	} else {
		STEP_ERR("pivot_root", errno);
		if (STEP_RC("chroot", chroot(".")) < 0)
			goto out;
	}
	chdir("/");
	char *lib = map_file("/lib/libx.so", 16 * ps, PROT_READ | PROT_EXEC, MAP_PRIVATE, "map-lower");
	if (lib) {
		read_pages(lib, 16 * ps);
		add_region("ctr_lower", lib, 16 * ps, "file-lower", "lower-layer file through the overlay");
	}
	char *up = map_file("/upper.dat", 8 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, "map-upper");
	if (up) {
		write_pages(up, 4 * ps, 0x5a);
		add_region("ctr_upper", up, 8 * ps, "file-upper", "upper-layer file, half written");
	}
	char *bd = map_file("/data/bound.dat", 8 * ps, PROT_READ, MAP_PRIVATE, "map-bind");
	if (bd) {
		read_pages(bd, 8 * ps);
		add_region("ctr_bind", bd, 8 * ps, "file-bind", "bind-mounted file");
	}
	char *del = map_file("/deleted.dat", 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, "map-deleted");
	if (del) {
		read_pages(del, 2 * ps);
		write_pages(del + 2 * ps, ps, 0x66);
		STEP_RC("unlink-through-overlay", unlink("/deleted.dat"));
		add_region("ctr_deleted", del, 4 * ps, "file-deleted", "deleted through the overlay, one COW page");
	}
out:
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: sysv_shm / sysv_shm_child                                  */

static void *shm_attach(int id, const void *at, int flags, const char *step)
{
	void *p = shmat(id, at, flags);
	if (p == (void *)-1) {
		STEP_ERR(step, errno);
		return NULL;
	}
	STEP_OK(step);
	return p;
}

static void scen_sysv_shm(void)
{
	size_t ps = (size_t)g_ps;
	char *a1 = NULL, *a2 = NULL, *a3 = NULL, *h = NULL;
	int keyed = shmget(0x50747700 + (int)(g_ps >> 10), 64 * ps, IPC_CREAT | 0600);
	if (keyed < 0) {
		STEP_ERR("shmget-keyed", errno);
	} else {
		STEP_OK("shmget-keyed");
		a1 = shm_attach(keyed, NULL, 0, "attach-keyed-1");
		a2 = shm_attach(keyed, NULL, 0, "attach-keyed-2");
		if (a1) {
			write_pages(a1, 48 * ps, 0x71);
			/* shm_set_policy -> shmem's shared policy: numa_maps shows it through shm_get_policy */
			unsigned long nodes = 3;
			long r = syscall(SYS_mbind, a1 + 32 * ps, 16 * ps, MPOL_INTERLEAVE_, &nodes, 8UL, 0);
			if (r == 0)
				STEP_OK("mbind-interleave");
			else
				STEP_ERR("mbind-interleave", errno);
			add_region("shm_keyed_1", a1, 64 * ps, "shm", "keyed segment, first attach, 48 pages written");
		}
		if (a2) {
			read_pages(a2, 16 * ps);
			add_region("shm_keyed_2", a2, 64 * ps, "shm", "the same segment attached again");
		}
	}
	int priv = shmget(IPC_PRIVATE, 16 * ps, IPC_CREAT | 0600);
	if (priv < 0) {
		STEP_ERR("shmget-private", errno);
	} else {
		STEP_OK("shmget-private");
		char *w = shm_attach(priv, NULL, 0, "attach-private-rw");
		if (w) {
			write_pages(w, 8 * ps, 0x72);
			shmdt(w);
		}
		a3 = shm_attach(priv, NULL, SHM_RDONLY, "attach-private-ro");
		if (a3) {
			read_pages(a3, 12 * ps);
			add_region("shm_private_ro", a3, 16 * ps, "shm-ro", "IPC_PRIVATE, read-only attach");
		}
		/* removed while attached: the key becomes IPC_PRIVATE, the segment lives on */
		STEP_RC("rmid-private", shmctl(priv, IPC_RMID, NULL));
	}
	size_t hsz = thp_pmd_size();
	if (g_ps == 16384)
		hsz = 32UL << 20;
	int hid = shmget(IPC_PRIVATE, hsz, IPC_CREAT | SHM_HUGETLB | 0600);
	if (hid < 0) {
		STEP_ERR("shmget-hugetlb", errno);
	} else {
		STEP_OK("shmget-hugetlb");
		h = shm_attach(hid, NULL, 0, "attach-hugetlb");
		if (h) {
			write_pages(h, ps, 0x73);
			add_region("shm_hugetlb", h, hsz, "shm-hugetlb", "SHM_HUGETLB segment, one huge page");
		}
		shmctl(hid, IPC_RMID, NULL);
	}
	pid_t c = fork();
	if (c == 0) {
		become_child("sysv_shm_child");
		if (a1)
			read_pages(a1 + 40 * ps, 16 * ps);
		if (a2)
			write_pages(a2 + 56 * ps, 8 * ps, 0x74);
		if (h)
			read_pages(h, ps);
		report_ready(0);
		pause_forever();
	}
	if (c < 0)
		STEP_ERR("fork-child", errno);
	else
		STEP_OK("fork-child");
	usleep(300000);
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: hugetlb_share / hugetlb_share_c                            */

static void scen_hugetlb_share(void)
{
	/* huge_pmd_share(): a MAP_SHARED hugetlb range covering a whole PUD-aligned range; the PMD table is
	 * shared when a second mm faults there.  PUD = 1 GiB with 4K pages; 64 GiB with 16K pages. */
	if (g_ps != 4096) {
		STEP_REF("pmd-share", "needs-a-64GiB-mapping-with-%ldK-pages", g_ps >> 10);
		report_ready(1);
		pause_forever();
	}
	size_t pud = 1UL << 30, hps = 2UL << 20;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "/dev/hugepages-2048kB/ptwalk-share");
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	char *p = NULL;
	if (fd < 0) {
		STEP_ERR("open-hugetlbfs", errno);
	} else if (ftruncate(fd, (off_t)pud) < 0) {
		STEP_ERR("truncate", errno);
	} else {
		p = map_aligned(pud, pud, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd);
		if (!p)
			STEP_ERR("map-pud-aligned", errno);
		else
			STEP_OK("map-pud-aligned");
	}
	if (p) {
		write_pages(p, (size_t)g_ps, 0x81);
		write_pages(p + hps, (size_t)g_ps, 0x82);
		add_region("hugetlb_shared_pud", p, pud, "hugetlb-pmd-shared", "2 of 512 pages touched by the parent");
	}
	pid_t c = fork();
	if (c == 0) {
		become_child("hugetlb_share_c");
		if (p) {
			read_pages(p, (size_t)g_ps);	/* the fault that shares the parent's PMD table */
			write_pages(p + 2 * hps, (size_t)g_ps, 0x83);
			add_region("hugetlb_shared_pud", p, pud, "hugetlb-pmd-shared", "child: page 0 read, page 2 written");
		}
		report_ready(0);
		pause_forever();
	}
	if (c < 0)
		STEP_ERR("fork", errno);
	usleep(300000);
	if (fd >= 0)
		close(fd);
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: dmabuf                                                     */

struct udmabuf_create_ {
	uint32_t memfd;
	uint32_t flags;
	uint64_t offset;
	uint64_t size;
};
#define UDMABUF_CREATE_ _IOW('u', 0x42, struct udmabuf_create_)
#define DMA_BUF_SET_NAME_B_ _IOW('b', 1, uint64_t)

static void scen_dmabuf(void)
{
	size_t ps = (size_t)g_ps, len = 16 * ps;
	int dev = open("/dev/udmabuf", O_RDWR);
	int memfd = (int)syscall(SYS_memfd_create, "ptwalk-udmabuf", MFD_ALLOW_SEALING);
	if (dev < 0) {
		STEP_ERR("open-udmabuf", errno);
	} else if (memfd < 0 || ftruncate(memfd, (off_t)len) < 0 || fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK) < 0) {
		STEP_ERR("memfd", errno);
	} else {
		struct udmabuf_create_ cr = { (uint32_t)memfd, 1 /* UDMABUF_FLAGS_CLOEXEC */, 0, len };
		int buf = ioctl(dev, UDMABUF_CREATE_, &cr);
		if (buf < 0) {
			STEP_ERR("udmabuf-create", errno);
		} else {
			STEP_OK("udmabuf-create");
			STEP_RC("dma-buf-set-name", ioctl(buf, DMA_BUF_SET_NAME_B_, "ptwalk-buf"));
			char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
			if (p == MAP_FAILED) {
				STEP_ERR("map-dmabuf", errno);
			} else {
				STEP_OK("map-dmabuf");
				write_pages(p, 8 * ps, 0x91);
				add_region("dmabuf", p, len, "dmabuf", "udmabuf named ptwalk-buf, 8 pages written");
			}
			/* a second, unnamed dma-buf */
			int buf2 = ioctl(dev, UDMABUF_CREATE_, &cr);
			if (buf2 >= 0) {
				char *q = mmap(NULL, len, PROT_READ, MAP_SHARED, buf2, 0);
				if (q != MAP_FAILED) {
					read_pages(q, 4 * ps);
					add_region("dmabuf_unnamed", q, len, "dmabuf", "unnamed");
				}
			}
		}
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
		if (m != MAP_FAILED) {
			read_pages(m, len);
			add_region("udmabuf_memfd", m, len, "memfd", "the memfd behind the dma-bufs");
		}
	}
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: vhost (+ its worker) and a zombie                          */

/* the PID of the thread or kthread named comm, or 0 */
static pid_t find_comm(const char *dir, const char *comm)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *de;
	pid_t found = 0;
	while (!found && (de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char path[PATH_MAX], c[64] = "";
		snprintf(path, sizeof(path), "%s/%s/comm", dir, de->d_name);
		if (read_str(path, c, sizeof(c)) > 0) {
			c[strcspn(c, "\n")] = 0;
			if (!strcmp(c, comm))
				found = atoi(de->d_name);
		}
	}
	closedir(d);
	return found;
}

#define VHOST_SET_OWNER_ _IO(0xAF, 0x01)

static void scen_vhost(void)
{
	size_t ps = (size_t)g_ps;
	char *p = map_anon_nohuge(16 * ps);
	if (p)
		write_pages(p, 16 * ps, 0xa1);
	int fd = open("/dev/vhost-net", O_RDWR);
	if (fd < 0) {
		STEP_ERR("open-vhost-net", errno);
	} else if (ioctl(fd, VHOST_SET_OWNER_) < 0) {
		STEP_ERR("vhost-set-owner", errno);
	} else {
		STEP_OK("vhost-set-owner");
		char comm[32];
		snprintf(comm, sizeof(comm), "vhost-%d", getpid());
		pid_t w = 0;
		for (int i = 0; i < 40 && !w; i++) {
			/* v6.4+: a user worker thread of this process; before: a kthread using this mm */
			w = find_comm("/proc/self/task", comm);
			if (!w)
				w = find_comm("/proc", comm);
			if (!w)
				usleep(50000);
		}
		if (w) {
			STEP_OK("vhost-worker");
			add_info("vhost_worker", "%d", w);
			report_other("vhost_worker", w, 1);
		} else {
			STEP_REF("vhost-worker", "no-task-named-%s", comm);
		}
	}
	/* a zombie: a child that exits and is never reaped */
	pid_t z = fork();
	if (z == 0)
		_exit(0);
	if (z > 0) {
		for (int i = 0; i < 100 && proc_state(z) != 'Z'; i++)
			usleep(20000);
		if (proc_state(z) == 'Z') {
			STEP_OK("zombie");
			report_other("zombie", z, 1);
		} else {
			STEP_REF("zombie", "state-%c", proc_state(z));
		}
	}
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: blockfs / blockfs_peer                                     */

/* the /dev node of the virtio disk whose serial is want (QEMU's serial=), or "" */
static int find_disk(const char *want, char *dev, size_t len)
{
	DIR *d = opendir("/sys/block");
	if (!d)
		return -1;
	struct dirent *de;
	int ok = -1;
	while ((de = readdir(d))) {
		char path[PATH_MAX], s[64] = "";
		snprintf(path, sizeof(path), "/sys/block/%s/serial", de->d_name);
		if (read_str(path, s, sizeof(s)) > 0) {
			s[strcspn(s, "\n")] = 0;
			if (!strcmp(s, want)) {
				snprintf(dev, len, "/dev/%s", de->d_name);
				ok = 0;
				break;
			}
		}
	}
	closedir(d);
	return ok;
}

struct fsmap {
	char *exec, *huge, *cow, *shared;
};

static void blockfs_one(const char *fstype, struct fsmap *m)
{
	size_t ps = (size_t)g_ps, pmd = thp_pmd_size();
	char serial[32], dev[300], mnt[64], step[64], path[PATH_MAX];
	snprintf(serial, sizeof(serial), "ptwalk-%s", fstype);
	snprintf(mnt, sizeof(mnt), "/mnt/%s", fstype);
	snprintf(step, sizeof(step), "disk-%s", fstype);
	if (find_disk(serial, dev, sizeof(dev)) < 0) {
		STEP_REF(step, "no-virtio-disk-with-serial-%s", serial);
		return;
	}
	STEP_OK(step);
	mkdir("/mnt", 0755);
	mkdir(mnt, 0755);
	snprintf(step, sizeof(step), "mount-%s", fstype);
	if (STEP_RC(step, mount(dev, mnt, fstype, 0, NULL)) < 0)
		return;
	/* exec: read-ahead into large folios (xfs; ext4 from v6.16), mapped executable */
	size_t elen = 4UL << 20;
	snprintf(path, sizeof(path), "%s/exec.bin", mnt);
	int fd = make_file(path, elen, 0xb1);
	if (fd >= 0) {
		fsync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
		snprintf(step, sizeof(step), "%s-map-exec", fstype);
		m->exec = map_file(path, elen, PROT_READ | PROT_EXEC, MAP_PRIVATE, step);
		if (m->exec) {
			/* every other 64K: some folios read whole, some pages never touched */
			for (size_t off = 0; off < elen; off += 128 << 10)
				g_sink += *(volatile char *)(m->exec + off);
			add_region("fs_exec", m->exec, elen, "file-large-folios", "%s, read-ahead, exec", fstype);
		}
	}
	/* FilePmdMapped: MADV_HUGEPAGE on a PMD-aligned read-only file mapping */
	size_t hlen = 2 * pmd;
	if (pmd <= (32UL << 20)) {
		snprintf(path, sizeof(path), "%s/huge.bin", mnt);
		fd = make_file(path, hlen, 0xb2);
		if (fd >= 0) {
			fsync(fd);
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			m->huge = map_aligned(hlen, pmd, PROT_READ, MAP_PRIVATE, fd);
			snprintf(step, sizeof(step), "%s-map-pmd", fstype);
			if (!m->huge) {
				STEP_ERR(step, errno);
			} else {
				STEP_OK(step);
				madvise(m->huge, hlen, MADV_HUGEPAGE);
				read_pages(m->huge, pmd);
				long pm = smaps_kb(m->huge, "FilePmdMapped:");
				snprintf(step, sizeof(step), "%s-file-pmd-mapped", fstype);
				if (pm > 0)
					STEP_OK(step);
				else
					STEP_REF(step, "FilePmdMapped=%ld", pm);
				add_region("fs_pmd", m->huge, hlen, "file-pmd", "%s, FilePmdMapped=%ld kB", fstype, pm);
			}
			close(fd);
		}
	}
	/* private COW pages in a file VMA, and a shared writable mapping */
	snprintf(path, sizeof(path), "%s/data.bin", mnt);
	fd = make_file(path, 64 * ps, 0xb3);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
		snprintf(step, sizeof(step), "%s-map-cow", fstype);
		m->cow = map_file(path, 64 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, step);
		if (m->cow) {
			read_pages(m->cow, 64 * ps);
			for (size_t i = 0; i < 64; i += 4)
				m->cow[i * ps] = 1;
			add_region("fs_cow", m->cow, 64 * ps, "file-cow", "%s, every 4th page COW", fstype);
		}
		snprintf(step, sizeof(step), "%s-map-shared", fstype);
		m->shared = map_file(path, 64 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, step);
		if (m->shared) {
			write_pages(m->shared + 32 * ps, 8 * ps, 0xb4);
			read_pages(m->shared, 16 * ps);
			add_region("fs_shared", m->shared, 64 * ps, "file-shared", "%s, dirty page cache", fstype);
		}
	}
}

static void scen_blockfs(void)
{
	struct fsmap ext4 = { 0 }, xfs = { 0 };
	blockfs_one("ext4", &ext4);
	blockfs_one("xfs", &xfs);
	pid_t c = fork();
	if (c == 0) {
		/* a second process mapping the same files (inherited VMAs, its own faults) */
		become_child("blockfs_peer");
		struct fsmap *ms[] = { &ext4, &xfs };
		for (int i = 0; i < 2; i++) {
			if (ms[i]->shared)
				read_pages(ms[i]->shared, 48 * (size_t)g_ps);
			if (ms[i]->exec)
				g_sink += *(volatile char *)ms[i]->exec;
		}
		report_ready(0);
		pause_forever();
	}
	if (c < 0)
		STEP_ERR("fork-peer", errno);
	usleep(300000);
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: numab (NUMA balancing: protnone PTEs and PMDs)             */

static void scen_numab(void)
{
	size_t ps = (size_t)g_ps, pmd = thp_pmd_size();
	/* the scan knobs: debugfs since v5.13 */
	const char *dbg = "/sys/kernel/debug/sched/numa_balancing";
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/scan_delay_ms", dbg);
	write_str(path, "0");
	snprintf(path, sizeof(path), "%s/scan_period_min_ms", dbg);
	write_str(path, "20");
	snprintf(path, sizeof(path), "%s/scan_period_max_ms", dbg);
	write_str(path, "100");
	snprintf(path, sizeof(path), "%s/scan_size_mb", dbg);
	write_str(path, "1024");
	char *a = map_anon_nohuge(2UL << 20);
	char *t = pmd <= (32UL << 20) ? map_aligned(2 * pmd, pmd, PROT_READ | PROT_WRITE,
						   MAP_PRIVATE | MAP_ANONYMOUS, -1) : NULL;
	if (t)
		madvise(t, 2 * pmd, MADV_HUGEPAGE);
	if (a)
		write_pages(a, 2UL << 20, 0xc1);
	if (t)
		write_pages(t, 2 * pmd, 0xc2);
	long before = 0, after = 0;
	char vm[65536];
	if (read_str("/proc/vmstat", vm, sizeof(vm)) > 0 && strstr(vm, "numa_pte_updates "))
		before = atol(strstr(vm, "numa_pte_updates ") + 17);
	if (write_str("/proc/sys/kernel/numa_balancing", "1") < 0) {
		STEP_ERR("numa-balancing-on", errno);
	} else {
		STEP_OK("numa-balancing-on");
		/* run in user space without touching the mappings: task_numa_work marks them protnone */
		double end = now() + 4.0;
		while (now() < end)
			for (volatile int i = 0; i < 100000; i++)
				;
		write_str("/proc/sys/kernel/numa_balancing", "0");
		if (read_str("/proc/vmstat", vm, sizeof(vm)) > 0 && strstr(vm, "numa_pte_updates "))
			after = atol(strstr(vm, "numa_pte_updates ") + 17);
		if (after > before)
			STEP_OK("protnone");
		else
			STEP_REF("protnone", "numa_pte_updates-unchanged-%ld", after);
	}
	if (a) {
		/* touch a quarter again: those pages take hinting faults and are present again */
		read_pages(a, (512 << 10));
		add_region("numab_anon", a, 2UL << 20, "protnone", "numa_pte_updates %ld -> %ld", before, after);
	}
	if (t)
		add_region("numab_thp", t, 2 * pmd, "protnone-pmd", "THP");
	(void)ps;
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: swapshare / swapshare_c                                    */

#define SWAPSHARE_CHILDREN 70 /* past SWAP_MAP_MAX (62) and the 7.x swap table's in-place count (15) */

static void scen_swapshare(void)
{
	size_t ps = (size_t)g_ps, len = 16 * ps;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);
	char *p = map_anon_nohuge(len);
	if (!p) {
		STEP_ERR("map", errno);
		report_ready(1);
		pause_forever();
	}
	rng_state = 0x5157a95e1234ull;
	fill_random(p, len);
	long sw = 0;
	for (int i = 0; i < 4 && sw < (long)(len >> 10); i++) {
		madvise(p, len, MADV_PAGEOUT);
		sw = smaps_kb(p, "Swap:");
	}
	if (sw > 0)
		STEP_OK("pageout");
	else
		STEP_REF("pageout", "Swap=%ld", sw);
	add_region("swapshare", p, len, "swap-shared", "swapped, then %d children forked", SWAPSHARE_CHILDREN);
	/* private writable mapping of a tmpfs file whose pages are in swap (shmem swap seen through holes) */
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/shmem-private.dat", g_workdir);
	int fd = make_file(path, 32 * ps, 0xd1);
	if (fd >= 0) {
		char *s = mmap(NULL, 32 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (s != MAP_FAILED) {
			read_pages(s, 32 * ps);
			madvise(s, 32 * ps, MADV_PAGEOUT);
			munmap(s, 32 * ps);
		}
		char *q = mmap(NULL, 32 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		if (q == MAP_FAILED) {
			STEP_ERR("shmem-private", errno);
		} else {
			q[0] = 1;		  /* a COW page */
			g_sink += q[8 * ps]; /* a page read back from swap */
			long s2 = smaps_kb(q, "Swap:");
			if (s2 > 0)
				STEP_OK("shmem-private-swap");
			else
				STEP_REF("shmem-private-swap", "Swap=%ld", s2);
			add_region("shmem_private", q, 32 * ps, "shmem-swap-private", "Swap=%ld kB", s2);
		}
		close(fd);
	}
	for (int i = 0; i < SWAPSHARE_CHILDREN; i++) {
		pid_t c = fork();
		if (c == 0) {
			if (i < 2) {
				become_child(i ? "swapshare_c1" : "swapshare_c0");
				report_ready(0);
			}
			pause_forever();
		}
		if (c < 0) {
			STEP_ERR("fork", errno);
			break;
		}
	}
	usleep(300000);
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: vmflags (mnemonics, policies, protection keys) / nothp     */

static void scen_vmflags(void)
{
	size_t ps = (size_t)g_ps;
	struct {
		const char *name;
		int advice;
	} adv[] = {
		{ "wipeonfork", MADV_WIPEONFORK }, { "dontdump", 16 /* MADV_DONTDUMP */ },
		{ "dontfork", 10 /* MADV_DONTFORK */ }, { "sequential", 2 }, { "random", 1 },
	};
	for (size_t i = 0; i < sizeof(adv) / sizeof(adv[0]); i++) {
		char *p = map_anon_nohuge(4 * ps);
		if (!p)
			continue;
		write_pages(p, 2 * ps, (unsigned char)i);
		char step[64];
		snprintf(step, sizeof(step), "madvise-%s", adv[i].name);
		if (STEP_RC(step, madvise(p, 4 * ps, adv[i].advice)) == 0)
			add_region(adv[i].name, p, 4 * ps, "vmflag", NULL);
	}
	char *lf = map_anon_nohuge(8 * ps);
	if (lf) {
		if (STEP_RC("mlock2-onfault", (int)syscall(SYS_mlock2, lf, 8 * ps, MLOCK_ONFAULT)) == 0) {
			write_pages(lf, 3 * ps, 0xe1);
			add_region("lockonfault", lf, 8 * ps, "vmflag-lf", "3 of 8 pages faulted");
		}
	}
	char *sl = map_anon_nohuge(4 * ps);
	if (sl) {
		write_pages(sl, ps, 0xe2);
		if (STEP_RC("mseal", (int)syscall(SYS_mseal, sl, 4 * ps, 0UL)) == 0)
			add_region("sealed", sl, 4 * ps, "vmflag-sl", NULL);
	}
	char *dp = mmap(NULL, 8 * ps, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
	if (dp == MAP_FAILED) {
		STEP_ERR("map-droppable", errno);
	} else {
		STEP_OK("map-droppable");
		write_pages(dp, 4 * ps, 0xe3);
		add_region("droppable", dp, 8 * ps, "vmflag-dp", NULL);
	}
	/* protection keys (x86 PKU; arm64 POE) */
	int pkey = (int)syscall(SYS_pkey_alloc, 0UL, 0UL);
	if (pkey < 0) {
		STEP_ERR("pkey-alloc", errno);
	} else {
		char *k = map_anon_nohuge(4 * ps);
		if (k && STEP_RC("pkey-mprotect", (int)syscall(SYS_pkey_mprotect, k, 4 * ps,
								PROT_READ | PROT_WRITE, pkey)) == 0) {
			write_pages(k, 2 * ps, 0xe4);
			add_region("pkey", k, 4 * ps, "protection-key", "pkey %d", pkey);
		}
	}
#ifdef __aarch64__
	char *bt = mmap(NULL, 4 * ps, PROT_READ | PROT_EXEC | PROT_BTI, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (bt == MAP_FAILED)
		STEP_ERR("map-bti", errno);
	else {
		STEP_OK("map-bti");
		add_region("bti", bt, 4 * ps, "vmflag-bt", NULL);
	}
#endif
	/* userfaultfd registrations: "um" (missing) on anonymous memory, "ui" (minor) on shmem */
	uint64_t got = 0;
	int ufd = uffd_open(0, &got);
	if (ufd < 0) {
		STEP_ERR("uffd-missing", errno);
	} else {
		char *um = map_anon_nohuge(4 * ps);
		struct uffdio_register reg = { .range = { (uintptr_t)um, 4 * ps }, .mode = UFFDIO_REGISTER_MODE_MISSING };
		if (um && STEP_RC("uffd-missing", ioctl(ufd, UFFDIO_REGISTER, &reg)) == 0)
			add_region("uffd_missing", um, 4 * ps, "vmflag-um", NULL);
	}
	int mfd = uffd_open(UFFD_FEATURE_MINOR_SHMEM, &got);
	if (mfd < 0) {
		STEP_ERR("uffd-minor", errno);
	} else {
		char *ui = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		struct uffdio_register reg = { .range = { (uintptr_t)ui, 4 * ps }, .mode = UFFDIO_REGISTER_MODE_MINOR };
		if (ui != MAP_FAILED) {
			write_pages(ui, ps, 0xe7);
			if (STEP_RC("uffd-minor", ioctl(mfd, UFFDIO_REGISTER, &reg)) == 0)
				add_region("uffd_minor", ui, 4 * ps, "vmflag-ui", NULL);
		}
	}
#ifdef __x86_64__
	/* "ss": a user shadow stack (needs the CPU's CET shadow stacks) */
	long ss = syscall(453 /* map_shadow_stack */, 0UL, 4 * ps, 0UL);
	if (ss == -1)
		STEP_ERR("map-shadow-stack", errno);
	else
		STEP_OK("map-shadow-stack");
#endif
#ifdef __aarch64__
	/* "mt": MTE-tagged memory (needs the CPU's and the machine's MTE) */
	char *mt = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE | 0x20 /* PROT_MTE */, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mt == MAP_FAILED)
		STEP_ERR("map-mte", errno);
	else {
		STEP_OK("map-mte");
		write_pages(mt, ps, 0xe8);
	}
#endif
	/* every mempolicy mode and mode flag numa_maps can print */
	struct {
		const char *name;
		int mode;
		unsigned long nodes;
	} pol[] = {
		{ "pol-prefer-many", MPOL_PREFERRED_MANY_, 3 },
		{ "pol-weighted", MPOL_WEIGHTED_INTERLEAVE_, 3 },
		{ "pol-bind-balancing", MPOL_BIND_ | MPOL_F_NUMA_BALANCING_, 3 },
		{ "pol-prefer-relative", MPOL_PREFERRED_ | MPOL_F_RELATIVE_NODES_, 2 },
		{ "pol-interleave-static", MPOL_INTERLEAVE_ | MPOL_F_STATIC_NODES_, 3 },
		{ "pol-local", MPOL_LOCAL_, 0 },
	};
	for (size_t i = 0; i < sizeof(pol) / sizeof(pol[0]); i++) {
		char *p = map_anon_nohuge(4 * ps);
		if (!p)
			continue;
		long r = syscall(SYS_mbind, p, 4 * ps, pol[i].mode, pol[i].nodes ? &pol[i].nodes : NULL,
				 pol[i].nodes ? 8UL : 0UL, 0);
		if (STEP_RC(pol[i].name, r < 0 ? -1 : 0) == 0) {
			write_pages(p, 2 * ps, 0xe5);
			add_region(pol[i].name, p, 4 * ps, "mempolicy", NULL);
		}
	}
	/* THPeligible from orders below the PMD only: a MADV_HUGEPAGE range smaller than a PMD */
	size_t small = g_ps == 16384 ? (4UL << 20) : (256UL << 10);
	char *m = map_aligned(small, small, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (m) {
		madvise(m, small, MADV_HUGEPAGE);
		write_pages(m, small / 2, 0xe6);
		add_region("mthp_only", m, small, "thp-eligible-below-pmd", NULL);
	}
	report_ready(1);
	pause_forever();
}

static void scen_nothp(void)
{
	size_t pmd = thp_pmd_size();
	STEP_RC("thp-disable", prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0));
	if (pmd <= (32UL << 20)) {
		char *t = map_aligned(2 * pmd, pmd, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
		if (t) {
			madvise(t, 2 * pmd, MADV_HUGEPAGE);
			write_pages(t, pmd, 0xf1);
			add_region("nothp", t, 2 * pmd, "no-thp", "PR_SET_THP_DISABLE");
		}
	}
	report_ready(1);
	pause_forever();
}
