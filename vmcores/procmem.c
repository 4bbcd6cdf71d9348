/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * scenario: procmem (included by workload.c after production.c; last in the default set)
 *
 * A process whose memory the host knows byte for byte without reading it in the guest: every 8-byte
 * word is a function of its address and a seed (vmcores/truth.py procmem_expected() is the twin), in
 * anon pages, a THP, an mTHP, shmem (MAP_SHARED anon and a memfd), a private file mapping with COW
 * pages, hugetlb, and pages pushed out with MADV_PAGEOUT to
 *   zram0 (init's device, its default compressor; the only active swap at first),
 *   a swap disk on a virtio disk (serial ptwalk-swap; the host keeps its image), through zswap where the
 *   kernel has it and directly otherwise, and
 *   zram1 (a second zram device with another compressor),
 * each swapped on here with a priority above the previous one (swapon(2)), so each receives the pages
 * paged out while it is the highest. Pages are never touched after MADV_PAGEOUT (a read would swap them
 * back in). Disk-bound pages are faulted while the process is in a memory cgroup of their own, whose
 * memory.reclaim then frees them from the swap cache once written (an asynchronous disk keeps them there
 * after MADV_PAGEOUT).
 * Threads: one blocked in procmem_stopped() in a raw read(2) from inline assembly with known values in
 * registers the system call entry saves; two more blocked in the C library.
 * truth/<pid>/procmem.json records all of it.
 *
 * Runs last: after it, the highest-priority swap device is zram1, not zram0.
 */

#include <pthread.h>
#include <sys/swap.h>

#define PM_SEED 0x70726f636d656d31ull  /* "procmem1" */
#define PM_FSEED 0x66696c6570617431ull /* "filepat1": the file's content, by file offset */

enum pm_kind { PM_COMP, PM_INCOMP, PM_SAME, PM_ZERO };
static const char *const pm_kind_name[] = { "compressible", "incompressible", "same", "zero" };

static uint64_t pm_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* the word at pattern address a (8-aligned) */
static uint64_t pm_word(int kind, uint64_t seed, uint64_t a)
{
	uint64_t page = a & ~(uint64_t)(g_ps - 1);
	switch (kind) {
	case PM_COMP:
		return pm_mix64(page ^ seed) + (((a - page) >> 3) & 7);
	case PM_INCOMP:
		return pm_mix64(a ^ seed);
	case PM_SAME:
		return pm_mix64(page ^ seed);
	default:
		return 0;
	}
}

/* fill len bytes at p with the pattern of addresses base.. */
static void pm_fill(void *p, size_t len, int kind, uint64_t seed, uint64_t base)
{
	volatile uint64_t *q = p;
	if (kind == PM_INCOMP) {
		for (size_t i = 0; i < len / 8; i++)
			q[i] = pm_word(kind, seed, base + 8 * i);
		return;
	}
	/* one mix64 per page */
	uint64_t page = ~(uint64_t)0, v = 0;
	for (size_t i = 0; i < len / 8; i++) {
		uint64_t a = base + 8 * i;
		if ((a & ~(uint64_t)(g_ps - 1)) != page) {
			page = a & ~(uint64_t)(g_ps - 1);
			v = kind == PM_ZERO ? 0 : pm_mix64(page ^ seed);
		}
		q[i] = kind == PM_COMP ? v + (((a - page) >> 3) & 7) : v;
	}
}

/* a global the debugger prints (gdb `p procmem_global`) */
uint64_t procmem_global[16];

struct pm_region {
	char label[32];
	unsigned long start, end;
	int kind;
	uint64_t seed;
	unsigned long file_offset; /* addressing "file": pattern address = file_offset + (addr - start) */
	int by_file;
	char fate[24];	 /* intended */
	char device[16]; /* zram0, zram1, swapdisk or "" */
	char note[160];
	/* what the process saw afterwards (its own pagemap and mincore) */
	long n_present, n_none, n_swapcache, n_swap[8];
};
#define PM_MAX_REGIONS 40
static struct pm_region g_pm[PM_MAX_REGIONS];
static int g_npm;

static struct pm_region *pm_add(const char *label, void *p, size_t len, int kind, uint64_t seed,
				const char *fate, const char *device)
{
	if (g_npm >= PM_MAX_REGIONS)
		return NULL;
	struct pm_region *r = &g_pm[g_npm++];
	memset(r, 0, sizeof(*r));
	snprintf(r->label, sizeof(r->label), "%s", label);
	r->start = (unsigned long)p;
	r->end = (unsigned long)p + len;
	r->kind = kind;
	r->seed = seed;
	snprintf(r->fate, sizeof(r->fate), "%s", fate);
	snprintf(r->device, sizeof(r->device), "%s", device);
	add_region(label, p, len, fate, "procmem %s", pm_kind_name[kind]);
	return r;
}

/* an anon region of n pages (its own VMA, no THP) filled with its pattern */
static char *pm_anon(const char *label, size_t n, int kind, const char *fate, const char *device)
{
	size_t len = n * (size_t)g_ps;
	char *p = map_anon_nohuge(len);
	if (!p) {
		STEP_ERR(label, errno);
		return NULL;
	}
	pm_fill(p, len, kind, PM_SEED, (uint64_t)(uintptr_t)p);
	pm_add(label, p, len, kind, PM_SEED, fate, device);
	return p;
}

static int pm_pageout(const char *step, struct pm_region *first, int n)
{
	int err = 0;
	for (int i = 0; i < n; i++)
		if (madvise((void *)first[i].start, first[i].end - first[i].start, MADV_PAGEOUT))
			err = errno;
	if (err)
		STEP_ERR(step, err);
	else
		STEP_OK(step);
	return err;
}

/* count what the process's own pagemap (swap type, present) and mincore (swap cache) say */
static void pm_observe(struct pm_region *r)
{
	size_t ps = (size_t)g_ps, n = (r->end - r->start) / ps;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	static unsigned char vec[1 << 16];
	int have_vec = n <= sizeof(vec) && mincore((void *)r->start, n * ps, vec) == 0;
	for (size_t i = 0; i < n && fd >= 0; i++) {
		uint64_t e = 0;
		if (pread(fd, &e, 8, (off_t)((r->start / ps + i) * 8)) != 8)
			break;
		if (e & (1ull << 63)) {
			r->n_present++;
		} else if (e & (1ull << 62)) {
			r->n_swap[e & 7]++;
			if (have_vec && (vec[i] & 1))
				r->n_swapcache++;
		} else {
			r->n_none++;
		}
	}
	if (fd >= 0)
		close(fd);
}

/* ---- swap devices */

/* the swap type of a device: its line in /proc/swaps (which lists swap_info[] in type order) */
static int pm_swap_type(const char *dev)
{
	char sw[4096];
	if (!dev[0] || read_str("/proc/swaps", sw, sizeof(sw)) <= 0)
		return -1;
	int t = -1;
	for (char *line = sw; line && *line; t++) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		char name[300];
		if (t >= 0 && sscanf(line, "%299s", name) == 1 && !strcmp(name, dev))
			return t;
		line = nl ? nl + 1 : NULL;
	}
	return -1;
}

/* the swap type in this process's pagemap entry for addr; -1 not swapped, -2 present */
static int pm_page_swap_type(const void *addr)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t e = 0;
	if (fd < 0)
		return -1;
	ssize_t r = pread(fd, &e, 8, (off_t)((uintptr_t)addr / (size_t)g_ps * 8));
	close(fd);
	if (r != 8)
		return -1;
	if (e & (1ull << 63))
		return -2;
	return e & (1ull << 62) ? (int)(e & 31) : -1;
}

static int pm_swapon(const char *step, const char *dev, int prio)
{
	if (!dev[0]) {
		STEP_REF(step, "no-device");
		return -1;
	}
	return STEP_RC(step, swapon(dev, SWAP_FLAG_PREFER | (prio & SWAP_FLAG_PRIO_MASK)));
}

#define ZSWAP_P "/sys/module/zswap/parameters/"

/* ---- a memory cgroup for the disk-bound pages */

static char g_pm_cg[128];

static int pm_cg_setup(void)
{
	const char *mnt = "/run/ptwalk-cgroup";
	mkdir(mnt, 0755);
	if (mount("cgroup2", mnt, "cgroup2", 0, NULL) && errno != EBUSY) {
		STEP_ERR("memcg-mount", errno);
		return -1;
	}
	char path[256];
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", mnt);
	int e = write_str(path, "+memory");
	if (e) {
		STEP_ERR("memcg-enable", e);
		return -1;
	}
	snprintf(g_pm_cg, sizeof(g_pm_cg), "%s/procmem-swap", mnt);
	if (mkdir(g_pm_cg, 0755) && errno != EEXIST) {
		STEP_ERR("memcg-mkdir", errno);
		g_pm_cg[0] = 0;
		return -1;
	}
	STEP_OK("memcg");
	return 0;
}

static int pm_cg_enter(const char *cg)
{
	char path[256], pid[32];
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d", getpid());
	return write_str(path, pid);
}

static long pm_cg_long(const char *file)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", g_pm_cg, file);
	return read_long(path, -1);
}

/* ---- threads */

static int g_pm_pipe[2];
static volatile int g_pm_tid[3];
static char g_pm_buf[8];

#define PM_ARG_A 0x0a11a11aL
#define PM_ARG_B 0x0b22b22bL
#define PM_ARG_C 0x0c33c33cL
/* the value loaded into the i-th recorded register */
#define PM_REG(i) (0x5245470000000000L | ((long)(i) << 16) | 0x7e57)

#if defined(__x86_64__)
static const char *const pm_reg_names[] = { "rbx", "r12", "r13", "r14", "r15" };
#elif defined(__aarch64__)
static const char *const pm_reg_names[] = { "x19", "x20", "x21", "x22", "x23",
					    "x24", "x25", "x26", "x27", "x28" };
#elif defined(__powerpc64__)
static const char *const pm_reg_names[] = { "r14", "r15", "r16", "r17", "r18", "r19", "r20", "r21", "r22",
					    "r23", "r24", "r25", "r26", "r27", "r28", "r29", "r30" };
#elif defined(__s390x__)
static const char *const pm_reg_names[] = { "r6", "r7", "r8", "r9", "r10", "r13" };
#elif defined(__loongarch64)
/* s0-s8: the callee-saved $r23-$r31 */
static const char *const pm_reg_names[] = { "r23", "r24", "r25", "r26", "r27", "r28", "r29", "r30", "r31" };
#else
static const char *const pm_reg_names[] = { NULL };
#endif
#define PM_NREGS ((int)(sizeof(pm_reg_names) / sizeof(pm_reg_names[0])))

/*
 * Blocks in read(2) on a pipe nobody writes, issued from inline assembly with PM_REG(i) in the i-th
 * register of pm_reg_names (callee-saved registers: the system call entry saves them in pt_regs and
 * nothing changes them until the system call returns). Unoptimised, so its arguments stay on the stack
 * for the debugger.
 */
__attribute__((noinline, noclone, optimize("O0"))) long procmem_stopped(long a, long b, long c)
{
	long fd = g_pm_pipe[0];
	char *buf = g_pm_buf;
#if defined(__x86_64__)
	register long rbx asm("rbx") = PM_REG(0);
	register long r12 asm("r12") = PM_REG(1);
	register long r13 asm("r13") = PM_REG(2);
	register long r14 asm("r14") = PM_REG(3);
	register long r15 asm("r15") = PM_REG(4);
	long ret = SYS_read;
	asm volatile("syscall"
		     : "+a"(ret)
		     : "D"(fd), "S"(buf), "d"(1L), "r"(rbx), "r"(r12), "r"(r13), "r"(r14), "r"(r15)
		     : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 asm("x8") = SYS_read;
	register long x0 asm("x0") = fd;
	register long x1 asm("x1") = (long)buf;
	register long x2 asm("x2") = 1;
	register long x19 asm("x19") = PM_REG(0);
	register long x20 asm("x20") = PM_REG(1);
	register long x21 asm("x21") = PM_REG(2);
	register long x22 asm("x22") = PM_REG(3);
	register long x23 asm("x23") = PM_REG(4);
	register long x24 asm("x24") = PM_REG(5);
	register long x25 asm("x25") = PM_REG(6);
	register long x26 asm("x26") = PM_REG(7);
	register long x27 asm("x27") = PM_REG(8);
	register long x28 asm("x28") = PM_REG(9);
	asm volatile("svc #0"
		     : "+r"(x0)
		     : "r"(x8), "r"(x1), "r"(x2), "r"(x19), "r"(x20), "r"(x21), "r"(x22), "r"(x23), "r"(x24),
		       "r"(x25), "r"(x26), "r"(x27), "r"(x28)
		     : "memory");
	long ret = x0;
#elif defined(__powerpc64__)
	register long r0 asm("r0") = SYS_read;
	register long r3 asm("r3") = fd;
	register long r4 asm("r4") = (long)buf;
	register long r5 asm("r5") = 1;
	register long r14 asm("r14") = PM_REG(0);
	register long r15 asm("r15") = PM_REG(1);
	register long r16 asm("r16") = PM_REG(2);
	register long r17 asm("r17") = PM_REG(3);
	register long r18 asm("r18") = PM_REG(4);
	register long r19 asm("r19") = PM_REG(5);
	register long r20 asm("r20") = PM_REG(6);
	register long r21 asm("r21") = PM_REG(7);
	register long r22 asm("r22") = PM_REG(8);
	register long r23 asm("r23") = PM_REG(9);
	register long r24 asm("r24") = PM_REG(10);
	register long r25 asm("r25") = PM_REG(11);
	register long r26 asm("r26") = PM_REG(12);
	register long r27 asm("r27") = PM_REG(13);
	register long r28 asm("r28") = PM_REG(14);
	register long r29 asm("r29") = PM_REG(15);
	register long r30 asm("r30") = PM_REG(16);
	asm volatile("sc"
		     : "+r"(r0), "+r"(r3), "+r"(r4), "+r"(r5)
		     : "r"(r14), "r"(r15), "r"(r16), "r"(r17), "r"(r18), "r"(r19), "r"(r20), "r"(r21),
		       "r"(r22), "r"(r23), "r"(r24), "r"(r25), "r"(r26), "r"(r27), "r"(r28), "r"(r29), "r"(r30)
		     : "r6", "r7", "r8", "r9", "r10", "r11", "r12", "cr0", "ctr", "xer", "memory");
	long ret = r3;
#elif defined(__s390x__)
	register long r1 asm("r1") = SYS_read;
	register long r2 asm("r2") = fd;
	register long r3 asm("r3") = (long)buf;
	register long r4 asm("r4") = 1;
	register long r6 asm("r6") = PM_REG(0);
	register long r7 asm("r7") = PM_REG(1);
	register long r8 asm("r8") = PM_REG(2);
	register long r9 asm("r9") = PM_REG(3);
	register long r10 asm("r10") = PM_REG(4);
	register long r13 asm("r13") = PM_REG(5);
	asm volatile("svc 0"
		     : "+r"(r2)
		     : "r"(r1), "r"(r3), "r"(r4), "r"(r6), "r"(r7), "r"(r8), "r"(r9), "r"(r10), "r"(r13)
		     : "memory");
	long ret = r2;
#elif defined(__loongarch64)
	register long a7 asm("$a7") = SYS_read;
	register long a0 asm("$a0") = fd;
	register long a1 asm("$a1") = (long)buf;
	register long a2 asm("$a2") = 1;
	register long s0 asm("$s0") = PM_REG(0);
	register long s1 asm("$s1") = PM_REG(1);
	register long s2 asm("$s2") = PM_REG(2);
	register long s3 asm("$s3") = PM_REG(3);
	register long s4 asm("$s4") = PM_REG(4);
	register long s5 asm("$s5") = PM_REG(5);
	register long s6 asm("$s6") = PM_REG(6);
	register long s7 asm("$s7") = PM_REG(7);
	register long s8 asm("$s8") = PM_REG(8);
	asm volatile("syscall 0"
		     : "+r"(a0), "+r"(a1), "+r"(a2)
		     : "r"(a7), "r"(s0), "r"(s1), "r"(s2), "r"(s3), "r"(s4), "r"(s5), "r"(s6), "r"(s7), "r"(s8)
		     : "$t0", "$t1", "$t2", "$t3", "$t4", "$t5", "$t6", "$t7", "$t8", "$a3", "$a4", "$a5", "$a6",
		       "memory");
	long ret = a0;
#else
	long ret = read((int)fd, buf, 1);
#endif
	return ret + a + b + c;
}

static void *pm_thread_stopped(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "pm_stopped", 0, 0, 0);
	g_pm_tid[0] = (int)syscall(SYS_gettid);
	for (;;)
		g_sink += (unsigned long)procmem_stopped(PM_ARG_A, PM_ARG_B, PM_ARG_C);
	return NULL;
}

static void *pm_thread_read(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "pm_read", 0, 0, 0);
	g_pm_tid[1] = (int)syscall(SYS_gettid);
	char c;
	for (;;)
		g_sink += (unsigned long)read(g_pm_pipe[0], &c, 1);
	return NULL;
}

static void *pm_thread_sleep(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "pm_sleep", 0, 0, 0);
	g_pm_tid[2] = (int)syscall(SYS_gettid);
	for (;;) {
		struct timespec ts = { 1000000, 0 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* a thread's state letter and (for the blocked one) its /proc/.../syscall line */
static char pm_task_state(int tid, char *sc, size_t sclen)
{
	char path[96], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	if (read_str(path, buf, sizeof(buf)) <= 0)
		return 0;
	char *rp = strrchr(buf, ')');
	if (sc) {
		snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
		if (read_str(path, sc, sclen) <= 0)
			sc[0] = 0;
		sc[strcspn(sc, "\n")] = 0;
	}
	return rp && rp[1] && rp[2] ? rp[2] : 0;
}

/* ---- the truth: procmem.json */

static char g_pm_json[64 * 1024];

static size_t pm_jfile(size_t n, const char *key, const char *path)
{
	char v[512], e[1024];
	if (read_str(path, v, sizeof(v)) < 0)
		return n + (size_t)snprintf(g_pm_json + n, sizeof(g_pm_json) - n, ", \"%s\": null", key);
	v[strcspn(v, "\n")] = 0;
	json_esc(e, sizeof(e), v);
	return n + (size_t)snprintf(g_pm_json + n, sizeof(g_pm_json) - n, ", \"%s\": \"%s\"", key, e);
}

static void pm_write_json(const char *swapdisk, const char *zram1, const char *hugetlb, long cg_before,
			  long cg_after, const char *blocked_syscall)
{
	size_t n = 0, cap = sizeof(g_pm_json);
	char e[4096], sw[4096];
#define J(...) (n += (size_t)snprintf(g_pm_json + n, cap - n, __VA_ARGS__))
	J("{\"pid\": %d, \"page_size\": %ld, \"seed\": \"0x%llx\", \"file_seed\": \"0x%llx\"", getpid(), g_ps,
	  (unsigned long long)PM_SEED, (unsigned long long)PM_FSEED);
	J(", \"pattern\": \"mix64 = splitmix64 finalizer; compressible: mix64(page ^ seed) + (word index & 7);"
	  " incompressible: mix64(word address ^ seed); same: mix64(page ^ seed); zero: 0\"");
	J(", \"swapdisk\": \"%s\", \"zram1\": \"%s\", \"hugetlb\": \"%s\"", swapdisk, zram1, hugetlb);
	if (read_str("/proc/swaps", sw, sizeof(sw)) < 0)
		sw[0] = 0;
	json_esc(e, sizeof(e), sw);
	J(", \"proc_swaps\": \"%s\"", e);
	n = pm_jfile(n, "zram0_comp_algorithm", "/sys/block/zram0/comp_algorithm");
	n = pm_jfile(n, "zram1_comp_algorithm", "/sys/block/zram1/comp_algorithm");
	static const char *const zp[] = { "enabled", "compressor", "zpool", "same_filled_pages_enabled",
					  "shrinker_enabled", "max_pool_percent" };
	for (size_t i = 0; i < sizeof(zp) / sizeof(zp[0]); i++) {
		char key[64], path[128];
		snprintf(key, sizeof(key), "zswap_%s", zp[i]);
		snprintf(path, sizeof(path), ZSWAP_P "%s", zp[i]);
		n = pm_jfile(n, key, path);
	}
	J(", \"memcg\": \"%s\", \"memcg_current_before\": %ld, \"memcg_current_after\": %ld", g_pm_cg, cg_before,
	  cg_after);
	J(", \"global\": {\"symbol\": \"procmem_global\", \"address\": \"0x%lx\", \"size\": %zu, \"kind\":"
	  " \"incompressible\", \"seed\": \"0x%llx\"}",
	  (unsigned long)procmem_global, sizeof(procmem_global), (unsigned long long)PM_SEED);
	J(", \"threads\": [{\"tid\": %d, \"role\": \"main\"}, {\"tid\": %d, \"role\": \"stopped\", \"function\":"
	  " \"procmem_stopped\", \"args\": {\"a\": \"0x%lx\", \"b\": \"0x%lx\", \"c\": \"0x%lx\"},"
	  " \"syscall\": \"%s\", \"registers\": {",
	  getpid(), g_pm_tid[0], PM_ARG_A, PM_ARG_B, PM_ARG_C, blocked_syscall);
	for (int i = 0; i < PM_NREGS && pm_reg_names[i]; i++)
		J("%s\"%s\": \"0x%lx\"", i ? ", " : "", pm_reg_names[i], (unsigned long)PM_REG(i));
	J("}}, {\"tid\": %d, \"role\": \"read\"}, {\"tid\": %d, \"role\": \"sleep\"}]", g_pm_tid[1], g_pm_tid[2]);
	J(", \"regions\": [");
	for (int i = 0; i < g_npm; i++) {
		struct pm_region *r = &g_pm[i];
		json_esc(e, sizeof(e), r->note);
		J("%s\n {\"label\": \"%s\", \"start\": \"0x%lx\", \"end\": \"0x%lx\", \"kind\": \"%s\", \"seed\":"
		  " \"0x%llx\", \"addressing\": \"%s\", \"file_offset\": %lu, \"fate\": \"%s\", \"device\": \"%s\","
		  " \"note\": \"%s\", \"seen\": {\"present\": %ld, \"none\": %ld, \"swapcache\": %ld, \"swap\": {",
		  i ? "," : "", r->label, r->start, r->end, pm_kind_name[r->kind], (unsigned long long)r->seed,
		  r->by_file ? "file" : "vaddr", r->file_offset, r->fate, r->device, e, r->n_present, r->n_none,
		  r->n_swapcache);
		int first = 1;
		for (int t = 0; t < 8; t++)
			if (r->n_swap[t]) {
				J("%s\"%d\": %ld", first ? "" : ", ", t, r->n_swap[t]);
				first = 0;
			}
		J("}}}");
	}
	J("\n]}\n");
#undef J
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%d", g_out, getpid());
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%d/procmem.json", g_out, getpid());
	write_file(path, g_pm_json, n);
}

/* the smallest hugetlb size with a free page, as MAP_HUGETLB flags; 0 if none */
static int pm_hugetlb_flags(unsigned long *kb_out)
{
	DIR *d = opendir(HUGETLB_SYS);
	unsigned long best = 0;
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		unsigned long kb;
		char path[PATH_MAX];
		if (sscanf(de->d_name, "hugepages-%lukB", &kb) != 1)
			continue;
		snprintf(path, sizeof(path), HUGETLB_SYS "/%s/free_hugepages", de->d_name);
		if (read_long(path, 0) > 0 && kb <= (64UL << 10) && (!best || kb < best))
			best = kb;
	}
	closedir(d);
	*kb_out = best;
	return best ? MAP_HUGETLB | (ilog2ul(best * 1024) << MAP_HUGE_SHIFT) : 0;
}

/*
 * Swap slots are taken from a per-CPU cache (6.1-6.14: swap_slots.c, batches of 64 slots of the device
 * that was highest when it was refilled; 7.x: the per-CPU cluster of the last device used), not from the
 * highest-priority device at the time: after swapping a device on, page out same-filled "burner" pages one
 * by one (on this process's CPU) until one lands on it; the cache then holds that device's slots.
 * The pages that were used stay mapped (a region of their own), the rest of the burner is unmapped.
 */
static int pm_switch(const char *name, int want, int in_cg)
{
	size_t ps = (size_t)g_ps, n = 4096, used = 0;
	char label[32], step[64];
	snprintf(label, sizeof(label), "pm_burn_%s", name);
	snprintf(step, sizeof(step), "switch-%s", name);
	if (want < 0) {
		STEP_REF(step, "no-swap-type");
		return -1;
	}
	if (in_cg)
		pm_cg_enter(g_pm_cg);
	char *p = map_anon_nohuge(n * ps);
	int fails = 0, ok = 0;
	for (; p && used < n && fails < 8; used++) {
		char *q = p + used * ps;
		pm_fill(q, ps, PM_SAME, PM_SEED, (uint64_t)(uintptr_t)q);
		int t = -2;
		for (int k = 0; k < 3 && t == -2; k++)
			if (madvise(q, ps, MADV_PAGEOUT) == 0)
				t = pm_page_swap_type(q);
		fails = t < 0 ? fails + 1 : 0;
		if (t == want) {
			ok = 1;
			used++;
			break;
		}
	}
	if (in_cg)
		pm_cg_enter("/run/ptwalk-cgroup");
	if (!p) {
		STEP_ERR(step, errno);
		return -1;
	}
	if (used < n)
		munmap(p + used * ps, (n - used) * ps);
	pm_add(label, p, used * ps, PM_SAME, PM_SEED, "burner", "");
	if (ok)
		step_line(g_scen, step, 0, NULL);
	else
		STEP_REF(step, "type-%d-not-reached-after-%zu-pages", want, used);
	logmsg("procmem: %s reached after %zu burner pages", name, used);
	return ok ? 0 : -1;
}

/* pages of regions [from, to) in the swap cache (mincore) */
static long pm_swapcache(int from, int to)
{
	static unsigned char vec[1 << 16];
	long n = 0;
	for (int i = from; i < to; i++) {
		size_t np = (g_pm[i].end - g_pm[i].start) / (size_t)g_ps;
		if (np > sizeof(vec) || mincore((void *)g_pm[i].start, np * (size_t)g_ps, vec))
			continue;
		for (size_t k = 0; k < np; k++)
			n += vec[k] & 1;
	}
	return n;
}

/*
 * MADV_PAGEOUT leaves pages written to an asynchronous disk in the swap cache: wait for their writeback
 * and reclaim the cgroup (only disk-bound and burner pages are charged to it) until none of regions
 * [from, to) is in the swap cache.
 */
static void pm_cg_reclaim(const char *stepname, int from, int to)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/memory.reclaim", g_pm_cg);
	long left = pm_swapcache(from, to);
	for (int i = 0; i < 40 && left; i++) {
		char vm[16384];
		if (read_str("/proc/vmstat", vm, sizeof(vm)) > 0 && strstr(vm, "\nnr_writeback ") &&
		    atol(strstr(vm, "\nnr_writeback ") + 14) != 0) {
			usleep(50000);
			continue;
		}
		write_str(path, "64M");
		left = pm_swapcache(from, to);
		if (left)
			usleep(50000);
	}
	if (left)
		STEP_REF(stepname, "%ld-pages-left-in-swap-cache", left);
	else
		STEP_OK(stepname);
}

static void scen_procmem(void)
{
	size_t ps = (size_t)g_ps, pmd = thp_pmd_size();
	char step[64];

	/* keep everything on one CPU so lru_add_drain() catches all pages */
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);
	/* stack room faulted now, in the root memory cgroup */
	{
		volatile char room[64 << 10];
		for (size_t i = 0; i < sizeof(room); i += 512)
			room[i] = 0;
	}
	pm_fill(procmem_global, sizeof(procmem_global), PM_INCOMP, PM_SEED, (uint64_t)(uintptr_t)procmem_global);

	/* ---- resident */
	pm_anon("pm_anon", 16, PM_INCOMP, "present", "");
	pm_anon("pm_anon_comp", 8, PM_COMP, "present", "");
	if (pmd <= (32UL << 20)) {
		char *t = map_aligned(pmd, pmd, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
		if (t) {
			madvise(t, pmd, MADV_HUGEPAGE);
			pm_fill(t, pmd, PM_INCOMP, PM_SEED, (uint64_t)(uintptr_t)t);
			long ah = smaps_kb(t, "AnonHugePages:");
			pm_add("pm_thp", t, pmd, PM_INCOMP, PM_SEED, "thp", "");
			if (ah > 0)
				STEP_OK("thp");
			else
				STEP_REF("thp", "AnonHugePages=%ld", ah);
		} else {
			STEP_ERR("thp", errno);
		}
	}
	if (ps < (64UL << 10)) {
		size_t len = 4 * (64UL << 10);
		char *m = map_aligned(len, 64UL << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
		if (m) {
			madvise(m, len, MADV_HUGEPAGE);
			pm_fill(m, len, PM_COMP, PM_SEED, (uint64_t)(uintptr_t)m);
			pm_add("pm_mthp", m, len, PM_COMP, PM_SEED, "mthp", "");
			STEP_OK("mthp");
		} else {
			STEP_ERR("mthp", errno);
		}
	}
	char *sh = mmap(NULL, 8 * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh != MAP_FAILED) {
		madvise(sh, 8 * ps, MADV_NOHUGEPAGE);
		pm_fill(sh, 8 * ps, PM_COMP, PM_SEED, (uint64_t)(uintptr_t)sh);
		pm_add("pm_shmem", sh, 8 * ps, PM_COMP, PM_SEED, "shmem", "");
		STEP_OK("shmem");
	} else {
		STEP_ERR("shmem", errno);
	}
	int mfd = (int)syscall(SYS_memfd_create, "procmem", 0);
	if (mfd >= 0 && ftruncate(mfd, (off_t)(8 * ps)) == 0) {
		char *mp = mmap(NULL, 8 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		if (mp != MAP_FAILED) {
			pm_fill(mp, 8 * ps, PM_INCOMP, PM_SEED, (uint64_t)(uintptr_t)mp);
			pm_add("pm_memfd", mp, 8 * ps, PM_INCOMP, PM_SEED, "memfd", "");
			STEP_OK("memfd");
		} else {
			STEP_ERR("memfd", errno);
		}
	} else {
		STEP_ERR("memfd", errno);
	}
	/* a private file mapping: the file's pattern by file offset, three pages COW-written with the
	 * process's pattern; pages past the twelfth are never touched (fault-around may map them) */
	{
		char path[PATH_MAX];
		size_t np = 16, len = np * ps;
		snprintf(path, sizeof(path), "%s/procmem.dat", g_workdir);
		int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		char *buf = malloc(len);
		if (fd >= 0 && buf) {
			pm_fill(buf, len, PM_INCOMP, PM_FSEED, 0);
			if (pwrite(fd, buf, len, 0) != (ssize_t)len)
				STEP_ERR("file-write", errno ? errno : EIO);
			char *f = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
			if (f != MAP_FAILED) {
				read_pages(f, 12 * ps);
				/* runs of pages of one kind: 0 file, 1 COW, 2 never touched */
				size_t at = 0;
				for (size_t i = 1; i <= np; i++) {
					int ka = at == 2 || at == 5 || at == 6 ? 1 : at >= 12 ? 2 : 0;
					int ki = i == 2 || i == 5 || i == 6 ? 1 : i >= 12 ? 2 : 0;
					if (i < np && ki == ka && ka != 1)
						continue;
					struct pm_region *r;
					if (ka == 1) {
						char *c = f + at * ps;
						pm_fill(c, ps, PM_COMP, PM_SEED, (uint64_t)(uintptr_t)c);
						pm_add("pm_file_cow", c, ps, PM_COMP, PM_SEED, "file-cow", "");
					} else if ((r = pm_add("pm_file", f + at * ps, (i - at) * ps, PM_INCOMP, PM_FSEED,
							      ka == 2 ? "file-untouched" : "file", ""))) {
						r->by_file = 1;
						r->file_offset = at * ps;
					}
					at = i;
				}
				STEP_OK("file-cow");
			} else {
				STEP_ERR("file-map", errno);
			}
		} else {
			STEP_ERR("file", errno);
		}
		free(buf);
		if (fd >= 0)
			close(fd);
	}
	unsigned long hkb = 0;
	char hugetlb[32] = "";
	int hflags = pm_hugetlb_flags(&hkb);
	if (hflags) {
		size_t hsz = hkb * 1024;
		char *h = mmap(NULL, hsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | hflags, -1, 0);
		if (h != MAP_FAILED) {
			pm_fill(h, hsz, PM_INCOMP, PM_SEED, (uint64_t)(uintptr_t)h);
			pm_add("pm_hugetlb", h, hsz, PM_INCOMP, PM_SEED, "hugetlb", "");
			snprintf(hugetlb, sizeof(hugetlb), "%lukB", hkb);
			STEP_OK("hugetlb");
		} else {
			STEP_ERR("hugetlb", errno);
		}
	} else {
		STEP_REF("hugetlb", "no-free-hugetlb-page");
	}

	/* ---- zram0: the only active swap device now */
	int z0 = g_npm;
	pm_anon("pm_zram0_incomp", 8, PM_INCOMP, "zram", "zram0");
	pm_anon("pm_zram0_comp", 8, PM_COMP, "zram", "zram0");
	pm_anon("pm_zram0_same", 8, PM_SAME, "zram-same", "zram0");
	pm_anon("pm_zram0_zero", 4, PM_ZERO, "zram-zero", "zram0");
	if (pmd <= (2UL << 20)) {
		char *t = map_aligned(pmd, pmd, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
		if (t) {
			madvise(t, pmd, MADV_HUGEPAGE);
			pm_fill(t, pmd, PM_COMP, PM_SEED, (uint64_t)(uintptr_t)t);
			pm_add("pm_zram0_thp", t, pmd, PM_COMP, PM_SEED, "zram", "zram0");
		}
	}
	pm_pageout("pageout-zram0", &g_pm[z0], g_npm - z0);

	/* ---- disk-bound pages, faulted in their own memory cgroup */
	char swapdisk[300] = "", zram1[32] = "";
	if (find_disk("ptwalk-swap", swapdisk, sizeof(swapdisk)) < 0) {
		swapdisk[0] = 0;
		STEP_REF("swapdisk", "no-virtio-disk-with-serial-ptwalk-swap");
	}
	if (access("/sys/block/zram1", F_OK) == 0)
		snprintf(zram1, sizeof(zram1), "/dev/zram1");
	int in_cg = pm_cg_setup() == 0 && pm_cg_enter(g_pm_cg) == 0;
	int zw = g_npm;
	pm_anon("pm_zswap_comp", 16, PM_COMP, "zswap", "swapdisk");
	pm_anon("pm_zswap_same", 4, PM_SAME, "zswap-same", "swapdisk");
	pm_anon("pm_zswap_incomp", 4, PM_INCOMP, "zswap-or-disk", "swapdisk");
	int dk = g_npm;
	pm_anon("pm_disk_incomp", 8, PM_INCOMP, "swap-disk", "swapdisk");
	pm_anon("pm_disk_comp", 8, PM_COMP, "swap-disk", "swapdisk");
	int dk_end = g_npm;
	if (in_cg && pm_cg_enter("/run/ptwalk-cgroup"))
		STEP_ERR("memcg-leave", errno);
	long cg_before = in_cg ? pm_cg_long("memory.current") : -1, cg_after = -1;

	int disk_on = pm_swapon("swapon-swapdisk", swapdisk, 100) == 0;
	if (disk_on)
		pm_switch("swapdisk", pm_swap_type(swapdisk), in_cg);
	int zswap = 0;
	if (disk_on && access(ZSWAP_P "enabled", F_OK) == 0) {
		write_str(ZSWAP_P "shrinker_enabled", "N");
		write_str(ZSWAP_P "zpool", "zsmalloc");
		static const char *const comp[] = { NULL, "lzo", "lz4", "zstd", "deflate" };
		for (size_t i = 0; i < sizeof(comp) / sizeof(comp[0]) && !zswap; i++) {
			if (comp[i] && write_str(ZSWAP_P "compressor", comp[i]))
				continue;
			if (write_str(ZSWAP_P "enabled", "Y") == 0) {
				char v[8] = "";
				read_str(ZSWAP_P "enabled", v, sizeof(v));
				zswap = v[0] == 'Y';
			}
		}
		if (zswap)
			STEP_OK("zswap-enable");
		else
			STEP_REF("zswap-enable", "enabled-stays-N");
	} else if (disk_on) {
		STEP_REF("zswap-enable", "no-zswap");
	}
	pm_pageout("pageout-zswap", &g_pm[zw], dk - zw);
	if (zswap)
		write_str(ZSWAP_P "enabled", "N");
	pm_pageout("pageout-swapdisk", &g_pm[dk], dk_end - dk);
	if (in_cg)
		pm_cg_reclaim("memcg-reclaim-swapdisk", zw, g_npm);

	/* ---- zram1: another compressor, above the disk */
	int z1 = g_npm;
	pm_anon("pm_zram1_incomp", 8, PM_INCOMP, "zram", "zram1");
	pm_anon("pm_zram1_comp", 8, PM_COMP, "zram", "zram1");
	pm_anon("pm_zram1_same", 4, PM_SAME, "zram-same", "zram1");
	int z1_end = g_npm;
	if (pm_swapon("swapon-zram1", zram1, 200) == 0) {
		pm_switch("zram1", pm_swap_type(zram1), in_cg);
		pm_pageout("pageout-zram1", &g_pm[z1], z1_end - z1);
	}
	if (in_cg) {
		/* the burner pages that went to the disk before zram1 was reached */
		pm_cg_reclaim("memcg-reclaim-burner", z1_end, g_npm);
		cg_after = pm_cg_long("memory.current");
	}

	for (int i = 0; i < g_npm; i++)
		pm_observe(&g_pm[i]);
	for (int i = z0; i < g_npm; i++) {
		struct pm_region *r = &g_pm[i];
		long sw = 0;
		for (int t = 0; t < 8; t++)
			sw += r->n_swap[t];
		snprintf(step, sizeof(step), "%s-swapped", r->label);
		if (sw > 0)
			STEP_OK(step);
		else
			STEP_REF(step, "present=%ld,none=%ld", r->n_present, r->n_none);
	}

	/* ---- threads */
	char sc[256] = "";
	if (pipe2(g_pm_pipe, O_CLOEXEC) == 0) {
		pthread_t th;
		void *(*fn[3])(void *) = { pm_thread_stopped, pm_thread_read, pm_thread_sleep };
		for (int i = 0; i < 3; i++) {
			int e = pthread_create(&th, NULL, fn[i], NULL);
			snprintf(step, sizeof(step), "thread-%d", i);
			if (e)
				STEP_ERR(step, e);
		}
		for (int k = 0; k < 400; k++) {
			int blocked = 0;
			for (int i = 0; i < 3; i++)
				if (g_pm_tid[i] && pm_task_state(g_pm_tid[i], i ? NULL : sc, sizeof(sc)) == 'S')
					blocked++;
			if (blocked == 3 && sc[0] && strtol(sc, NULL, 10) == SYS_read)
				break;
			usleep(25000);
		}
		if (sc[0] && strtol(sc, NULL, 10) == SYS_read)
			STEP_OK("threads-blocked");
		else
			STEP_REF("threads-blocked", "syscall=%s", sc[0] ? sc : "?");
	} else {
		STEP_ERR("pipe", errno);
	}
	pm_write_json(swapdisk, zram1, hugetlb, cg_before, cg_after, sc);
	report_ready(1);
	pause_forever();
}
