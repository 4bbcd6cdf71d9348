/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Included by workload.c (like production.c): files on tmpfs mounts with a huge= option, mapped smaller
 * than a PMD or not aligned to one, whose THPeligible depends on the kernel's rules for tmpfs large folios
 * (the mount's huge=, shmem_enabled, each order's size and alignment within the VMA, i_size for
 * within_size).
 *
 * One process, "thpsmall":
 *   thpsmall_always_4m      4 MiB file, huge=always, mapped 4 MiB at a 4 MiB-aligned address (smaller than
 *                           the PMD with 16 KiB pages: 32 MiB; larger with 4 KiB pages)
 *   thpsmall_within_4m      the same on a huge=within_size mount
 *   thpsmall_always_1m      1 MiB file, huge=always, mapped at a 1 MiB-aligned address (below a 2 MiB PMD)
 *   thpsmall_always_odd     1 MiB file, huge=always, mapped one page past a 1 MiB boundary (no order > 0
 *                           is aligned to its file offset)
 *   thpsmall_within_tiny    3-page file on huge=within_size mapped 4 pages (only the smallest orders end
 *                           within i_size), the first 3 written
 *   thpsmall_advise_1m      1 MiB file on a huge=advise mount, MADV_HUGEPAGE
 * Every page written is written through the mapping (mmap faults), nothing with write().
 */

static int thpsmall_mount(const char *huge, char *dir, size_t dirlen)
{
	char opts[64], step[64];
	snprintf(dir, dirlen, "%s/ptwalk-thpsmall-%s", g_workdir, huge);
	mkdir(dir, 0755);
	snprintf(opts, sizeof(opts), "huge=%s,size=64m", huge);
	snprintf(step, sizeof(step), "mount-huge-%s", huge);
	if (g_no_sysfs) {
		STEP_REF(step, "PTWALK_NO_SYSFS");
		return -1;
	}
	return STEP_RC(step, mount("tmpfs", dir, "tmpfs", 0, opts));
}

/* a file of fsize bytes in dir, mapped maplen bytes MAP_SHARED at an address align-aligned plus skew */
static void thpsmall_map(const char *label, const char *dir, const char *name, size_t fsize, size_t maplen,
			 size_t align, size_t skew, size_t nwrite, int advise)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)fsize) < 0) {
		STEP_ERR(label, errno);
		if (fd >= 0)
			close(fd);
		return;
	}
	char *r = map_aligned(maplen + skew, align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1);
	char *p = r ? mmap(r + skew, maplen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) : MAP_FAILED;
	int e = errno;
	close(fd);
	if (p == MAP_FAILED) {
		STEP_ERR(label, e);
		return;
	}
	if (skew)
		munmap(r, skew);
	if (advise)
		madvise(p, maplen, MADV_HUGEPAGE);
	write_pages(p, nwrite, 0xa1);
	long spm = smaps_kb(p, "ShmemPmdMapped:"), elig = smaps_kb(p, "THPeligible:");
	add_region(label, p, maplen, "written-head", "%s: %zu-byte file, %zu written, skew %zu; ShmemPmdMapped=%ld kB, "
		   "THPeligible=%ld", path, fsize, nwrite, skew, spm, elig);
	STEP_OK(label);
}

static void scen_thpsmall(void)
{
	size_t ps = (size_t)g_ps, mib = 1UL << 20;
	char dir[PATH_MAX];
	char buf[256] = "";

	read_str(THP_SYS "/shmem_enabled", buf, sizeof(buf));
	sanitize(buf);
	add_info("shmem_enabled", "%s", buf);
	add_info("pmd_size", "%zu", thp_pmd_size());
	if (thpsmall_mount("always", dir, sizeof(dir)) == 0) {
		thpsmall_map("thpsmall_always_4m", dir, "four.dat", 4 * mib, 4 * mib, 4 * mib, 0, 4 * mib, 0);
		thpsmall_map("thpsmall_always_1m", dir, "one.dat", mib, mib, mib, 0, mib, 0);
		thpsmall_map("thpsmall_always_odd", dir, "odd.dat", mib, mib, mib, ps, mib, 0);
	}
	if (thpsmall_mount("within_size", dir, sizeof(dir)) == 0) {
		thpsmall_map("thpsmall_within_4m", dir, "four.dat", 4 * mib, 4 * mib, 4 * mib, 0, 4 * mib, 0);
		thpsmall_map("thpsmall_within_tiny", dir, "tiny.dat", 3 * ps, 4 * ps, 4 * ps, 0, 3 * ps, 0);
	}
	if (thpsmall_mount("advise", dir, sizeof(dir)) == 0)
		thpsmall_map("thpsmall_advise_1m", dir, "one.dat", mib, mib, mib, 0, mib, 1);
	report_ready(1);
	pause_forever();
}
