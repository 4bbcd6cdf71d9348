/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Included by workload.c (like production.c): the "scale" scenario set (workload run OUTDIR scale), what big
 * production hosts hold: one process with 100,000 VMAs and 10,000 small processes.
 *
 *   scalevmas       PTWALK_SCALE_VMAS one-page VMAs (default 100000; vm.max_map_count raised): half
 *                   anonymous, a quarter a private mapping of a tmpfs file, a quarter shared anonymous
 *                   (shmem), each run alternating PROT_READ|PROT_WRITE / PROT_READ so no two neighbours
 *                   merge; some pages written (anon, shmem) or read (file)
 *   scalevmas10     the same with a tenth of the VMAs (a second size for the growth per VMA)
 *   scaleparent<k>  SCALE_PARENTS parents, forking PTWALK_SCALE_PROCS children in all (default 10000), each
 *                   child writing 1 + i % 4 pages of its own 16-page anonymous mapping and reading two pages
 *                   of its parent's shared anonymous mapping (page 0 and one more), then pausing (the
 *                   children are not stopped and not in pids.json: the parents list them in
 *                   /run/scale-children-<parent pid>)
 *
 * The children all run scale_child(): the page of the workload binary's text holding its entry (the
 * binary is static: the "libc page" every process maps) is mapped by all of them.
 *
 * Truth (scale_capture(), called by the capturer after the per-process files of pids.json's processes):
 *   scale/smaps_rollup  "==> <pid> <==" then that process's /proc/<pid>/smaps_rollup, for every child,
 *                       parent and VMA process
 *   scale/scale.json    the children by parent, the shared text page's address and PFN, and every process
 *                       of /proc whose pagemap maps that PFN at that address (its mappers, with their
 *                       pagemap entries)
 */

#define SCALE_PARENTS 4
#define SCALE_CHILDREN_FILE "/run/scale-children-"
#define PM_PFN_MASK_ ((1ULL << 55) - 1)

static void scale_vmas(long n)
{
	size_t ps = (size_t)g_ps;
	size_t na = (size_t)n / 2, nf = (size_t)n / 4, ns = (size_t)n - na - nf;
	char v[32];
	snprintf(v, sizeof(v), "%ld", 2 * n + 65536);
	if (!g_no_sysfs && read_long("/proc/sys/vm/max_map_count", 0) < 2 * n + 65536)
		STEP_RC("max_map_count", write_str("/proc/sys/vm/max_map_count", v));

	/* anonymous: every third page written */
	char *a = map_anon_nohuge(na * ps);
	if (a) {
		for (size_t i = 0; i < na; i += 3)
			a[i * ps] = (char)(i | 1);
		add_region("scale_anon", a, na * ps, "alternating-rw-ro-1page-vmas", "%zu pages, every 3rd written", na);
	} else
		STEP_ERR("anon", errno);

	/* a tmpfs file, mapped private: every fourth page read */
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/ptwalk-scale.dat", g_workdir);
	int fd = make_file(path, nf * ps, 0x5c);
	char *f = fd >= 0 ? mmap(NULL, (nf + 1) * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) : MAP_FAILED;
	if (fd >= 0)
		close(fd);
	if (f != MAP_FAILED) {
		guard_page(f + nf * ps);
		madvise(f, nf * ps, MADV_NOHUGEPAGE);
		for (size_t i = 0; i < nf; i += 4)
			g_sink += ((volatile char *)f)[i * ps];
		add_region("scale_file", f, nf * ps, "alternating-rw-ro-1page-vmas", "%zu pages, every 4th read", nf);
	} else {
		STEP_ERR("file", errno);
		f = NULL;
	}

	/* shared anonymous (shmem): every fifth page written */
	char *s = mmap(NULL, (ns + 1) * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s != MAP_FAILED) {
		guard_page(s + ns * ps);
		madvise(s, ns * ps, MADV_NOHUGEPAGE);
		for (size_t i = 0; i < ns; i += 5)
			s[i * ps] = (char)(i | 1);
		add_region("scale_shmem", s, ns * ps, "alternating-rw-ro-1page-vmas", "%zu pages, every 5th written", ns);
	} else {
		STEP_ERR("shmem", errno);
		s = NULL;
	}

	/* odd pages read-only: one VMA per page */
	int fails = 0, first = 0;
	char *runs[3] = { a, f, s };
	size_t lens[3] = { na, nf, ns };
	for (int r = 0; r < 3; r++)
		for (size_t i = 1; runs[r] && i < lens[r]; i += 2)
			if (mprotect(runs[r] + i * ps, ps, PROT_READ) < 0 && !fails++)
				first = errno;
	if (fails)
		STEP_REF("mprotect", "%d failed, first %s", fails, errname(first));
	else
		STEP_OK("mprotect");
	add_info("vmas", "%ld", n);
	report_ready(1);
	pause_forever();
}

static void scen_scalevmas(void)
{
	scale_vmas(env_long("PTWALK_SCALE_VMAS", 100000));
}

static void scen_scalevmas10(void)
{
	scale_vmas(env_long("PTWALK_SCALE_VMAS", 100000) / 10);
}

/* what every child runs: its entry's text page is the page all children map */
static void __attribute__((noinline, noreturn)) scale_child(long i, const char *shm, int fd)
{
	size_t ps = (size_t)g_ps;
	prctl(PR_SET_NAME, "scalechild", 0, 0, 0);
	g_sink += ((volatile const char *)shm)[0];
	g_sink += ((volatile const char *)shm)[(size_t)(1 + i % 63) * ps];
	char *p = map_anon_nohuge(16 * ps);
	if (p)
		for (long k = 0; k <= i % 4; k++)
			p[(size_t)k * ps] = (char)(i | 1);
	out_write(fd, "r", 1);
	close(fd);
	for (;;)
		pause();
}

/* one parent: forks its children, lists them, reports READY */
static void scale_parent(int k, long nchildren, long first)
{
	size_t ps = (size_t)g_ps;
	static char name[16];
	snprintf(name, sizeof(name), "scaleparent%d", k);
	prctl(PR_SET_NAME, name, 0, 0, 0);
	g_scen = name;
	g_nregions = 0;
	g_info[0] = 0;
	char *shm = mmap(NULL, 64 * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		STEP_ERR("shm", errno);
		report_ready(0);
		pause_forever();
	}
	madvise(shm, 64 * ps, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < 64; i++)
		shm[i * ps] = (char)(k + 1);
	add_region("scale_shm", shm, 64 * ps, "shmem-shared-by-children", "page 0 read by every child");
	int cp[2];
	if (pipe2(cp, O_CLOEXEC) < 0) {
		STEP_ERR("pipe", errno);
		report_ready(0);
		pause_forever();
	}
	pid_t *pids = calloc((size_t)nchildren, sizeof(pid_t));
	long started = 0;
	for (long i = 0; pids && i < nchildren; i++) {
		pid_t c = fork();
		if (c < 0) {
			STEP_ERR("fork", errno);
			break;
		}
		if (c == 0) {
			close(cp[0]);
			scale_child(first + i, shm, cp[1]);
		}
		pids[started++] = c;
	}
	close(cp[1]);
	long ready = 0;
	char b[4096];
	while (ready < started) {
		ssize_t r = read(cp[0], b, sizeof(b));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		ready += r;
	}
	close(cp[0]);
	/* the list: one pid a line */
	size_t cap = (size_t)started * 12 + 16, n = 0;
	char *list = malloc(cap);
	for (long i = 0; list && i < started; i++)
		n += (size_t)snprintf(list + n, cap - n, "%d\n", pids[i]);
	if (list && ready == nchildren)
		STEP_OK("children");
	else
		STEP_REF("children", "ready=%ld started=%ld of %ld", ready, started, nchildren);
	add_info("children", "%ld", ready);
	add_info("shared_text", "0x%lx", (unsigned long)(uintptr_t)scale_child & ~(unsigned long)(ps - 1));
	report_ready(0);
	/* after READY: the scenario's DONE, sent once every list exists, comes after every parent's READY */
	char path[64];
	snprintf(path, sizeof(path), SCALE_CHILDREN_FILE "%d", getpid());
	if (write_file(path, list ? list : "", n))
		STEP_ERR("children-list", errno);
	pause_forever();
}

static void scen_scaleprocs(void)
{
	long n = env_long("PTWALK_SCALE_PROCS", 10000);
	for (int k = 0; k < SCALE_PARENTS; k++) {
		long first = n * k / SCALE_PARENTS, last = n * (k + 1) / SCALE_PARENTS;
		pid_t c = fork();
		if (c < 0) {
			STEP_ERR("fork-parent", errno);
			continue;
		}
		if (c == 0)
			scale_parent(k, last - first, first);
	}
	/* every parent reports READY, then writes its list: DONE once every list is there */
	for (int tries = 0; tries < 36000; tries++) {
		int have = 0;
		DIR *d = opendir("/run");
		struct dirent *de;
		while (d && (de = readdir(d)))
			have += !strncmp(de->d_name, "scale-children-", 15);
		if (d)
			closedir(d);
		if (have >= SCALE_PARENTS)
			break;
		usleep(100000);
	}
	add_info("children", "%ld", n);
	report_ready(1);
	pause_forever();
}

static const struct scenario g_scale_scenarios[] = {
	{ "scalevmas", scen_scalevmas }, { "scalevmas10", scen_scalevmas10 },
	{ "scaleprocs", scen_scaleprocs },
	{ NULL, NULL },
};

/* ---------------------------------------------------------------- capture */

static int scale_pagemap_at(pid_t pid, unsigned long vaddr, uint64_t *entry)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t r = pread(fd, entry, 8, (off_t)(vaddr / (unsigned long)g_ps * 8));
	close(fd);
	return r == 8 ? 0 : -1;
}

static void scale_rollup(struct buf *out, pid_t pid)
{
	static struct buf one;
	char path[64], hdr[48];
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	int e = slurp(path, &one);
	if (e) {
		char what[64];
		snprintf(what, sizeof(what), "%d/smaps_rollup", pid);
		capture_log(what, e);
		return;
	}
	int n = snprintf(hdr, sizeof(hdr), "==> %d <==\n", pid);
	buf_add(out, hdr, (size_t)n);
	buf_add(out, one.p, one.n);
}

/* the scale scenario's truth (nothing if it did not run) */
static void scale_capture(void)
{
	DIR *d = opendir("/run");
	if (!d)
		return;
	struct buf rollups = { 0 }, json = { 0 }, lst = { 0 };
	char line[256], dir[PATH_MAX];
	unsigned long text = (unsigned long)(uintptr_t)scale_child & ~(unsigned long)(g_ps - 1);
	pid_t probe = 0;
	int nparents = 0;
	struct dirent *de;
	buf_add(&json, "{\"parents\": {", 13);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "scale-children-", 15))
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "/run/%s", de->d_name);
		if (slurp(path, &lst))
			continue;
		int n = snprintf(line, sizeof(line), "%s\"%s\": [", nparents++ ? ", " : "", de->d_name + 15);
		buf_add(&json, line, (size_t)n);
		scale_rollup(&rollups, atoi(de->d_name + 15));
		int first = 1;
		for (size_t i = 0; i < lst.n;) {
			char *nl = memchr(lst.p + i, '\n', lst.n - i);
			if (!nl)
				break;
			pid_t pid = (pid_t)strtol(lst.p + i, NULL, 10);
			i = (size_t)(nl - lst.p) + 1;
			n = snprintf(line, sizeof(line), "%s%d", first ? "" : ", ", pid);
			first = 0;
			buf_add(&json, line, (size_t)n);
			scale_rollup(&rollups, pid);
			if (!probe)
				probe = pid;
		}
		buf_add(&json, "]", 1);
	}
	closedir(d);
	if (!nparents) {
		free(json.p);
		return;
	}
	for (int i = 0; i < g_nprocs; i++)
		if (!strncmp(g_procs[i].name, "scalevmas", 9))
			scale_rollup(&rollups, g_procs[i].pid);
	/* the shared text page: its PFN in the first child, then every process mapping that PFN there */
	uint64_t want = 0;
	if (probe && scale_pagemap_at(probe, text, &want) < 0)
		want = 0;
	int n = snprintf(line, sizeof(line), "}, \"shared_text\": \"0x%lx\", \"shared_text_pfn\": %llu, \"mappers\": [",
			 text, (unsigned long long)(want & PM_PFN_MASK_));
	buf_add(&json, line, (size_t)n);
	int nm = 0;
	d = opendir("/proc");
	while (d && (want >> 63) && (de = readdir(d))) {
		pid_t pid = (pid_t)atoi(de->d_name);
		uint64_t e;
		if (pid <= 0 || pid == getpid() || scale_pagemap_at(pid, text, &e) < 0)
			continue;
		if (!(e >> 63) || (e & PM_PFN_MASK_) != (want & PM_PFN_MASK_))
			continue;
		n = snprintf(line, sizeof(line), "%s\n  [%d, \"0x%llx\"]", nm++ ? "," : "", pid, (unsigned long long)e);
		buf_add(&json, line, (size_t)n);
	}
	if (d)
		closedir(d);
	buf_add(&json, "\n]}\n", 4);
	snprintf(dir, sizeof(dir), "%s/scale", g_out);
	mkdir(dir, 0755);
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/scale.json", dir);
	write_file(path, json.p, json.n);
	snprintf(path, sizeof(path), "%s/smaps_rollup", dir);
	write_file(path, rollups.p ? rollups.p : "", rollups.n);
	logmsg("scale: %d parents, %d mappers of the shared text page", nparents, nm);
	free(json.p);
	free(rollups.p);
	free(lst.p);
}
