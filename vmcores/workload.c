/*
 * drgn-ptwalk reference-vmcore guest workload.
 *
 * Usage:
 *   workload run OUTDIR [SET]      start all scenarios of SET ("default", or
 *                                  "bench": big/vmas/small+N for benchmarks,
 *                                  "scale": 100,000 VMAs and 10,000 processes, scale.c, or
 *                                  "bigmem": numa/bignuma for large guests, bigmem.c),
 *                                  stop them, capture truth
 *   workload capture OUTDIR name=pid...   capture truth for given processes
 *   workload churn                 keep changing its own memory until killed
 *                                  (live tests; started by init on ptwalk.churn=1)
 *   workload b64                   base64-encode stdin to stdout
 *   workload kpage [crash|before]  /proc/kpage{flags,count,cgroup} of every PFN to the console, then
 *                                  wait for the dump (or crash into the capture kernel)
 *   workload pagesize              print the page size
 *
 * Environment:
 *   PTWALK_NO_SYSFS=1   do not write sysfs (ksm), do not mount, no hwpoison
 *                       (for testing on a development host)
 *   PTWALK_WORKDIR=DIR  where scenario files are created (default /tmp)
 *   PTWALK_TIMEOUT=SEC  per-scenario readiness timeout (default 120; bench 3000)
 *   PTWALK_BENCH_GIB=N  size of the bench "big" anonymous mapping (default 6)
 *   PTWALK_BENCH_SMALL=N number of bench "small" processes (default 500)
 *   PTWALK_SCALE_VMAS=N  VMAs of the scale process (default 100000)
 *   PTWALK_SCALE_PROCS=N small processes of the scale set (default 10000)
 *   PTWALK_ONLY=a,b     run only these scenarios
 *
 * Every scenario runs in its own forked process (setsid, named with
 * PR_SET_NAME), records each step in OUTDIR/steps.log as
 * "<scenario> <step> ok" or "<scenario> <step> refused <reason>", writes
 * OUTDIR/<pid>/scenario.json, reports "READY name pid" on a pipe and pauses.
 *
 * Compiles warning-free with gcc -static -O2 -Wall on x86_64 and aarch64
 * against Debian 12 headers; newer constants are defined here.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#ifndef MADV_FREE
#define MADV_FREE 8
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif
#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE 12
#endif
#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif

#define MPOL_DEFAULT_ 0
#define MPOL_PREFERRED_ 1
#define MPOL_BIND_ 2
#define MPOL_INTERLEAVE_ 3
#define MPOL_LOCAL_ 4
#define MPOL_PREFERRED_MANY_ 5
#define MPOL_WEIGHTED_INTERLEAVE_ 6
#define MPOL_F_STATIC_NODES_ (1 << 15)
#define MPOL_F_RELATIVE_NODES_ (1 << 14)
#define MPOL_MF_MOVE_ (1 << 1)

#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFDIO_REGISTER_MODE_WP
#define UFFDIO_REGISTER_MODE_WP ((__u64)1 << 1)
#endif
#ifndef UFFDIO_WRITEPROTECT_MODE_WP
#define UFFDIO_WRITEPROTECT_MODE_WP ((__u64)1 << 0)
#endif

#define THP_SYS "/sys/kernel/mm/transparent_hugepage"
#define HUGETLB_SYS "/sys/kernel/mm/hugepages"
#define KSM_SYS "/sys/kernel/mm/ksm"

static const char *g_out = "/tmp/truth";
static const char *g_workdir = "/tmp";
static int g_steps_fd = -1;
static int g_ready_fd = -1;
static long g_ps;
static int g_no_sysfs;
static const char *g_scen = "main";
static int g_no_vdso; /* the capturer: its vDSO is unmapped */

/* ------------------------------------------------------------------ */
/* small utilities                                                      */

static void out_write(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t r = write(fd, buf, len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += r;
		len -= (size_t)r;
	}
}

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "[workload] ");
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	out_write(1, buf, (size_t)n);
}

static const char *errname(int err)
{
	const char *s = strerrorname_np(err);
	static char num[32];
	if (s)
		return s;
	snprintf(num, sizeof(num), "errno%d", err);
	return num;
}

static void sanitize(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\t')
			*s = ' ';
}

/* step result: err == 0 -> ok; err > 0 -> errno; reason overrides */
static void step_line(const char *scen, const char *stepname, int err,
		      const char *reason)
{
	char buf[512];
	int n;
	if (err == 0 && !reason)
		n = snprintf(buf, sizeof(buf), "%s %s ok", scen, stepname);
	else
		n = snprintf(buf, sizeof(buf), "%s %s refused %s", scen,
			     stepname, reason ? reason : errname(err));
	if (n >= (int)sizeof(buf) - 1)
		n = (int)sizeof(buf) - 2;
	buf[n] = 0;
	sanitize(buf);
	buf[n++] = '\n';
	if (g_steps_fd >= 0)
		out_write(g_steps_fd, buf, (size_t)n);
	buf[n - 1] = 0;
	logmsg("%s", buf);
}

static void STEP_OK(const char *s) { step_line(g_scen, s, 0, NULL); }
static void STEP_ERR(const char *s, int err) { step_line(g_scen, s, err ? err : EINVAL, NULL); }
static void STEP_REF(const char *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void STEP_REF(const char *s, const char *fmt, ...)
{
	char r[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r, sizeof(r), fmt, ap);
	va_end(ap);
	step_line(g_scen, s, EINVAL, r);
}
/* record result of a syscall returning -1/errno */
static int STEP_RC(const char *s, int rc)
{
	if (rc == 0) {
		STEP_OK(s);
		return 0;
	}
	int e = errno;
	STEP_ERR(s, e);
	errno = e;
	return -1;
}

static int read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t tot = 0;
	while ((size_t)tot < len - 1) {
		ssize_t r = read(fd, buf + tot, len - 1 - (size_t)tot);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		tot += r;
	}
	buf[tot] = 0;
	close(fd);
	return (int)tot;
}

static long read_long(const char *path, long dflt)
{
	char buf[64];
	if (read_str(path, buf, sizeof(buf)) <= 0)
		return dflt;
	char *end;
	long v = strtol(buf, &end, 10);
	if (end == buf)
		return dflt;
	return v;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	ssize_t r = write(fd, s, strlen(s));
	int e = r < 0 ? errno : 0;
	close(fd);
	return e;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	out_write(fd, buf, len);
	close(fd);
	return 0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

static void fill_random(void *p, size_t len)
{
	uint64_t *q = p;
	for (size_t i = 0; i < len / 8; i++)
		q[i] = rnd() | 1;
}

static void fill_pattern(void *p, size_t len, unsigned char seed)
{
	unsigned char *c = p;
	for (size_t i = 0; i < len; i += (size_t)g_ps) {
		size_t n = len - i < (size_t)g_ps ? len - i : (size_t)g_ps;
		memset(c + i, seed, n);
		/* make each page distinct */
		*(uint64_t *)(c + i) = (uint64_t)(i / (size_t)g_ps) * 0x10001u + seed + 1;
	}
}

static volatile unsigned long g_sink;
static void read_pages(const void *p, size_t len)
{
	const volatile unsigned char *c = p;
	for (size_t i = 0; i < len; i += (size_t)g_ps)
		g_sink += c[i];
}

static void write_pages(void *p, size_t len, unsigned char v)
{
	volatile unsigned char *c = p;
	for (size_t i = 0; i < len; i += (size_t)g_ps)
		c[i] = v + (unsigned char)(i / (size_t)g_ps) + 1;
}

static int ilog2ul(unsigned long v)
{
	int r = -1;
	while (v) {
		v >>= 1;
		r++;
	}
	return r;
}

/* ------------------------------------------------------------------ */
/* regions (scenario.json)                                              */

struct region {
	char label[48];
	unsigned long start, end;
	char expect[64];
	char note[200];
};
#define MAX_REGIONS 96
static struct region g_regions[MAX_REGIONS];
static int g_nregions;
static char g_info[2048];

static void add_region(const char *label, const void *start, size_t len,
		       const char *expect, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void add_region(const char *label, const void *start, size_t len,
		       const char *expect, const char *fmt, ...)
{
	if (g_nregions >= MAX_REGIONS)
		return;
	struct region *r = &g_regions[g_nregions++];
	snprintf(r->label, sizeof(r->label), "%s", label);
	r->start = (unsigned long)start;
	r->end = (unsigned long)start + len;
	snprintf(r->expect, sizeof(r->expect), "%s", expect);
	r->note[0] = 0;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->note, sizeof(r->note), fmt, ap);
		va_end(ap);
	}
}

static void add_info(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void add_info(const char *key, const char *fmt, ...)
{
	size_t n = strlen(g_info);
	char val[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	snprintf(g_info + n, sizeof(g_info) - n, "%s\"%s\": \"%s\"",
		 n ? ", " : "", key, val);
}

static size_t json_esc(char *dst, size_t cap, const char *s)
{
	size_t n = 0;
	for (; *s && n + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			dst[n++] = '\\';
			dst[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(dst + n, cap - n, "\\u%04x", c);
		} else {
			dst[n++] = (char)c;
		}
	}
	dst[n] = 0;
	return n;
}

/* no malloc here: may run after clear_refs */
static char g_jsonbuf[96 * 1024];
static void write_scenario_json(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	snprintf(dir, sizeof(dir), "%s/%d", g_out, getpid());
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/scenario.json", dir);
	size_t n = 0, cap = sizeof(g_jsonbuf);
	char e1[128], e2[128], e3[512];
	n += (size_t)snprintf(g_jsonbuf + n, cap - n,
			      "{\"name\": \"%s\", \"pid\": %d, \"page_size\": %ld, \"info\": {%s}, \"regions\": [",
			      g_scen, getpid(), g_ps, g_info);
	for (int i = 0; i < g_nregions && n < cap - 1024; i++) {
		struct region *r = &g_regions[i];
		json_esc(e1, sizeof(e1), r->label);
		json_esc(e2, sizeof(e2), r->expect);
		json_esc(e3, sizeof(e3), r->note);
		n += (size_t)snprintf(g_jsonbuf + n, cap - n,
				      "%s\n  {\"label\": \"%s\", \"start\": \"0x%lx\", \"end\": \"0x%lx\", \"expect\": \"%s\", \"note\": \"%s\"}",
				      i ? "," : "", e1, r->start, r->end, e2, e3);
	}
	n += (size_t)snprintf(g_jsonbuf + n, cap - n, "\n]}\n");
	write_file(path, g_jsonbuf, n);
}

/* report readiness of this process; top == 1: also "DONE" for scenario */
static void report_ready(int top)
{
	char buf[128];
	write_scenario_json();
	int n = snprintf(buf, sizeof(buf), "READY %s %d\n", g_scen, getpid());
	out_write(g_ready_fd, buf, (size_t)n);
	if (top)
		out_write(g_ready_fd, "DONE\n", 5);
}

static double now(void);

static void __attribute__((noreturn)) pause_forever(void)
{
	for (;;)
		pause();
}

/* ------------------------------------------------------------------ */
/* mapping helpers                                                      */

/*
 * Every region gets a trailing guard page (PROT_NONE + MADV_DONTFORK, so it
 * merges with nothing) to keep neighbouring regions from merging into one
 * VMA: each region is then its own VMA with its own smaps entry.
 */
static void guard_page(void *at)
{
	if (mprotect(at, (size_t)g_ps, PROT_NONE) == 0)
		madvise(at, (size_t)g_ps, MADV_DONTFORK);
}

static void *map_anon(size_t len, int extra_flags)
{
	char *p = mmap(NULL, len + (size_t)g_ps, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	guard_page(p + len);
	return p;
}

static void *map_anon_nohuge(size_t len)
{
	void *p = map_anon(len, 0);
	if (p)
		madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

/*
 * Map len bytes at an address aligned to align: reserve a PROT_NONE area,
 * then MAP_FIXED the real mapping (file offset 0 stays aligned) and trim.
 */
static void *map_aligned(size_t len, size_t align, int prot, int flags, int fd)
{
	size_t gl = (size_t)g_ps;	/* trailing guard kept from the reservation */
	size_t rlen = len + align + gl;
	char *r = mmap(NULL, rlen, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return NULL;
	uintptr_t a = ((uintptr_t)r + align - 1) & ~(uintptr_t)(align - 1);
	char *p = mmap((void *)a, len, prot, flags | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		munmap(r, rlen);
		errno = e;
		return NULL;
	}
	if ((char *)a > r)
		munmap(r, (size_t)((char *)a - r));
	madvise((char *)a + len, gl, MADV_DONTFORK);
	if ((char *)a + len + gl < r + rlen)
		munmap((char *)a + len + gl, (size_t)(r + rlen - ((char *)a + len + gl)));
	return p;
}

/* value (kB) of a field in /proc/self/smaps for the VMA containing addr */
static long smaps_kb(const void *addr, const char *field)
{
	static char *buf;
	static size_t cap;
	int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	for (;;) {
		if (n + 65536 + 1 > cap) {
			size_t nc = cap ? cap * 2 : 1 << 20;
			char *nb = realloc(buf, nc);
			if (!nb) {
				close(fd);
				return -1;
			}
			buf = nb;
			cap = nc;
		}
		ssize_t r = read(fd, buf + n, 65536);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	unsigned long a = (unsigned long)addr;
	size_t flen = strlen(field);
	char *line = buf;
	int in = 0;
	while (line && *line) {
		char *nl = strchr(line, '\n');
		unsigned long s, e;
		char c;
		if (sscanf(line, "%lx-%lx%c", &s, &e, &c) == 3 && c == ' ') {
			if (in)
				return -1;
			in = (a >= s && a < e);
		} else if (in && strncmp(line, field, flen) == 0) {
			return strtol(line + flen, NULL, 10);
		}
		line = nl ? nl + 1 : NULL;
	}
	return -1;
}

static size_t thp_pmd_size(void)
{
	long v = read_long(THP_SYS "/hpage_pmd_size", 0);
	if (v > 0)
		return (size_t)v;
	if (g_ps == 4096)
		return 2UL << 20;
	if (g_ps == 16384)
		return 32UL << 20;
	return 512UL << 20;
}

/* ------------------------------------------------------------------ */
/* scenario: anon (+ special PFNMAP)                                    */

static void try_pfnmap(void)
{
	int fd = open("/dev/mem", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		STEP_ERR("pfnmap-open-devmem", errno);
		return;
	}
#if defined(__x86_64__)
	static const unsigned long cand[] = { 0xf0000, 0xc0000, 0xa0000 };
#elif defined(__aarch64__)
	/* QEMU virt: flash at 0, PL031 RTC, PL011 UART (never touched) */
	static const unsigned long cand[] = { 0x0, 0x09010000, 0x09000000 };
#else
	static const unsigned long cand[] = { 0x0 };
#endif
	int last = 0;
	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		void *p = mmap(NULL, (size_t)g_ps, PROT_READ, MAP_SHARED, fd,
			       (off_t)cand[i]);
		if (p != MAP_FAILED) {
			add_region("pfnmap_devmem", p, (size_t)g_ps, "pfnmap",
				   "/dev/mem offset 0x%lx, not touched", cand[i]);
			STEP_OK("pfnmap-devmem");
			close(fd);
			return;
		}
		last = errno;
	}
	close(fd);
	STEP_ERR("pfnmap-devmem", last);
}

static void scen_anon(void)
{
	size_t ps = (size_t)g_ps;
	char *p;

	/* sparse: every 7th page of 4 MiB */
	size_t sz = 4UL << 20;
	if ((p = map_anon_nohuge(sz))) {
		for (size_t i = 0; i < sz / ps; i += 7)
			p[i * ps] = (char)(i + 1);
		add_region("anon_sparse", p, sz, "every-7th-page-present", NULL);
		STEP_OK("sparse");
	} else
		STEP_ERR("sparse", errno);

	/* dense: 2 MiB fully written, 4K PTEs */
	sz = 2UL << 20;
	if ((p = map_anon_nohuge(sz))) {
		fill_pattern(p, sz, 0x5a);
		add_region("anon_dense", p, sz, "all-present", NULL);
		STEP_OK("dense");
	} else
		STEP_ERR("dense", errno);

	/* MADV_POPULATE_WRITE */
	sz = 64 * ps;
	if ((p = map_anon_nohuge(sz))) {
		if (STEP_RC("populate-write", madvise(p, sz, MADV_POPULATE_WRITE)) == 0)
			add_region("anon_populated", p, sz, "all-present", "MADV_POPULATE_WRITE, zero-filled");
	}

	/* zero page: read-only touch */
	sz = 1UL << 20;
	if ((p = map_anon_nohuge(sz))) {
		read_pages(p, sz);
		add_region("anon_zeropage", p, sz, "zero-page", "read faults only");
		STEP_OK("zeropage");
	} else
		STEP_ERR("zeropage", errno);

	/* lazyfree */
	sz = 1UL << 20;
	if ((p = map_anon_nohuge(sz))) {
		fill_pattern(p, sz, 0x11);
		if (STEP_RC("madv-free", madvise(p + sz / 2, sz / 2, MADV_FREE)) == 0)
			add_region("anon_lazyfree", p, sz, "second-half-lazyfree", NULL);
		else
			add_region("anon_lazyfree", p, sz, "all-present", "MADV_FREE refused");
	}

	/* MADV_COLD: deactivated, young bits cleared (Referenced: 0) */
	sz = 16 * ps;
	if ((p = map_anon_nohuge(sz))) {
		fill_pattern(p, sz, 0x21);
		if (STEP_RC("madv-cold", madvise(p, sz, MADV_COLD)) == 0)
			add_region("anon_cold", p, sz, "all-present-not-referenced", NULL);
		else
			add_region("anon_cold", p, sz, "all-present", "MADV_COLD refused");
	}

	/* mlock */
	sz = 16 * ps;
	if ((p = map_anon_nohuge(sz))) {
		fill_pattern(p, sz, 0x22);
		if (STEP_RC("mlock", mlock(p, sz)) == 0)
			add_region("anon_mlocked", p, sz, "locked", NULL);
	}

	/* written then PROT_NONE */
	sz = 16 * ps;
	if ((p = map_anon_nohuge(sz))) {
		fill_pattern(p, sz, 0x33);
		if (STEP_RC("protnone", mprotect(p, sz, PROT_NONE)) == 0)
			add_region("anon_protnone", p, sz, "present-protnone", NULL);
	}
	/* PROT_NONE never touched */
	p = mmap(NULL, 16 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED)
		add_region("anon_protnone_empty", p, 16 * ps, "none", NULL);

	/* VM_PFNMAP via /dev/mem (special) */
	try_pfnmap();

	/* soft-dirty: write all, clear_refs 4, re-dirty even pages */
	sz = 32 * ps;
	char *sd = map_anon_nohuge(sz);
	if (sd)
		fill_pattern(sd, sz, 0x44);
	else
		STEP_ERR("softdirty-map", errno);
	/* smaps_kb may allocate: warm it up before clear_refs */
	(void)smaps_kb(sd, "Rss:");
	if (sd) {
		add_region("anon_softdirty", sd, sz, "even-pages-soft-dirty",
			   "clear_refs=4 after writing all; even pages re-written (x86 only)");
	}
	int e = write_str("/proc/self/clear_refs", "4");
	if (e)
		STEP_ERR("clear-refs-4", e);
	else
		STEP_OK("clear-refs-4");
	if (sd)
		for (size_t i = 0; i < sz / ps; i += 2)
			sd[i * ps] = (char)(0x55 + i);

	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: file                                                       */

static int make_file(const char *path, size_t len, unsigned char seed)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	char *buf = malloc((size_t)g_ps);
	if (!buf) {
		close(fd);
		return -1;
	}
	for (size_t off = 0; off < len; off += (size_t)g_ps) {
		memset(buf, seed, (size_t)g_ps);
		snprintf(buf, 64, "page %zu of %s", off / (size_t)g_ps, path);
		if (pwrite(fd, buf, (size_t)g_ps, (off_t)off) != g_ps) {
			int e = errno;
			free(buf);
			close(fd);
			errno = e ? e : EIO;
			return -1;
		}
	}
	free(buf);
	return fd;
}

static void file_maps(const char *tag, const char *path)
{
	size_t ps = (size_t)g_ps, sz = 64 * ps;
	char stepname[64], label[64];
	snprintf(stepname, sizeof(stepname), "%s-create", tag);
	int fd = make_file(path, sz, 0x61);
	if (fd < 0) {
		STEP_ERR(stepname, errno);
		return;
	}
	STEP_OK(stepname);

	char *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	snprintf(stepname, sizeof(stepname), "%s-private", tag);
	if (p != MAP_FAILED) {
		read_pages(p, 16 * ps);
		write_pages(p + 16 * ps, 16 * ps, 0x70);
		snprintf(label, sizeof(label), "%s_private", tag);
		add_region(label, p, sz, "read:0-15,cow-anon:16-31,none:32-63", "%s", path);
		STEP_OK(stepname);
	} else
		STEP_ERR(stepname, errno);

	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	snprintf(stepname, sizeof(stepname), "%s-shared", tag);
	if (p != MAP_FAILED) {
		read_pages(p, 16 * ps);
		write_pages(p + 16 * ps, 16 * ps, 0x71);
		snprintf(label, sizeof(label), "%s_shared", tag);
		add_region(label, p, sz, "read:0-15,written:16-31,none:32-63", "%s", path);
		STEP_OK(stepname);
	} else
		STEP_ERR(stepname, errno);
	close(fd);
}

static void scen_file(void)
{
	size_t ps = (size_t)g_ps, sz = 64 * ps;
	char path[PATH_MAX + 64], dir[PATH_MAX];

	snprintf(path, sizeof(path), "%s/ptwalk-tmpfs.dat", g_workdir);
	file_maps("tmpfs", path);

	/* ramfs: page cache, not shmem */
	snprintf(dir, sizeof(dir), "%s/ptwalk-ramfs", g_workdir);
	mkdir(dir, 0755);
	if (g_no_sysfs)
		STEP_REF("ramfs-mount", "PTWALK_NO_SYSFS");
	else
		STEP_RC("ramfs-mount", mount("ramfs", dir, "ramfs", 0, NULL));
	snprintf(path, sizeof(path), "%s/file.dat", dir);
	file_maps("ramfs", path);

	/* unlinked but mapped */
	snprintf(path, sizeof(path), "%s/ptwalk-deleted.dat", g_workdir);
	int fd = make_file(path, sz, 0x62);
	if (fd >= 0) {
		char *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED) {
			write_pages(p, sz / 2, 0x72);
			unlink(path);
			add_region("file_deleted", p, sz, "written:0-31,none:32-63", "%s (deleted)", path);
			STEP_OK("deleted");
		} else
			STEP_ERR("deleted", errno);
		close(fd);
	} else
		STEP_ERR("deleted", errno);

	/* memfd */
	fd = (int)syscall(SYS_memfd_create, "ptwalk-memfd", 0);
	if (fd >= 0 && ftruncate(fd, (off_t)sz) == 0) {
		char *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED) {
			write_pages(p, sz / 2, 0x73);
			read_pages(p + sz / 2, 8 * ps);
			add_region("memfd", p, sz, "written:0-31,read:32-39", "/memfd:ptwalk-memfd (deleted)");
			STEP_OK("memfd");
		} else
			STEP_ERR("memfd", errno);
	} else
		STEP_ERR("memfd", errno);
	if (fd >= 0)
		close(fd);

	/* odd names for escaping rules */
	static const char *odd[] = { "with space=eq", "tab\there" };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", g_workdir, odd[i]);
		char sn[32];
		snprintf(sn, sizeof(sn), "oddname%d", i);
		fd = make_file(path, 8 * ps, 0x63);
		if (fd < 0) {
			STEP_ERR(sn, errno);
			continue;
		}
		char *p = mmap(NULL, 8 * ps, PROT_READ, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED) {
			read_pages(p, 8 * ps);
			add_region(i ? "file_tabname" : "file_spacename", p, 8 * ps, "read:all", "%s", path);
			STEP_OK(sn);
		} else
			STEP_ERR(sn, errno);
		close(fd);
	}

	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: cow_parent / cow_child                                     */

static int wait_byte(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r = poll(&pfd, 1, timeout_ms);
	if (r <= 0)
		return -1;
	char c;
	return read(fd, &c, 1) == 1 ? 0 : -1;
}

static void scen_cow(void)
{
	size_t ps = (size_t)g_ps, sz = 64 * ps;
	char *priv = map_anon_nohuge(sz);
	char *shr = mmap(NULL, sz, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shr == MAP_FAILED)
		shr = NULL;
	if (priv)
		fill_pattern(priv, sz, 0x31);
	if (shr)
		fill_pattern(shr, sz / 2, 0x32);
	if (!priv || !shr)
		STEP_ERR("map", errno);
	else
		STEP_OK("map");

	size_t pmd = thp_pmd_size();
	char *thp = map_aligned(pmd, pmd, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (thp) {
		madvise(thp, pmd, MADV_HUGEPAGE);
		fill_pattern(thp, pmd, 0x34);
		long ahp = smaps_kb(thp, "AnonHugePages:");
		if (ahp > 0)
			STEP_OK("thp-before-fork");
		else
			STEP_REF("thp-before-fork", "AnonHugePages=%ld", ahp);
	} else
		STEP_ERR("thp-before-fork", errno);

	int cp[2];
	if (pipe2(cp, O_CLOEXEC) < 0) {
		STEP_ERR("pipe", errno);
		report_ready(1);
		pause_forever();
	}
	pid_t child = fork();
	if (child < 0) {
		STEP_ERR("fork", errno);
	} else if (child == 0) {
		prctl(PR_SET_NAME, "cow_child", 0, 0, 0);
		g_scen = "cow_child";
		g_nregions = 0;
		g_info[0] = 0;
		close(cp[0]);
		if (priv) {
			write_pages(priv, 16 * ps, 0x41);
			read_pages(priv + 16 * ps, 16 * ps);
			add_region("cow_private", priv, sz, "cow-broken:0-15,shared-with-parent:16-63", NULL);
		}
		if (shr) {
			write_pages(shr + 32 * ps, 16 * ps, 0x42);
			read_pages(shr + 48 * ps, 8 * ps);
			read_pages(shr, 8 * ps);
			add_region("cow_shmem", shr, sz, "mapped:0-7,32-55", "MAP_SHARED|MAP_ANONYMOUS");
		}
		if (thp) {
			thp[3 * ps] = 0x43;
			add_region("cow_thp", thp, pmd, "pte-mapped-shared-large-folio",
				   "child wrote page 3 -> PMD split in child, page 3 copied");
		}
		STEP_OK("child-writes");
		report_ready(0);
		out_write(cp[1], "x", 1);
		pause_forever();
	}
	close(cp[1]);
	if (child > 0) {
		if (wait_byte(cp[0], 60000) < 0) {
			STEP_REF("child-ready", "timeout");
			kill(child, SIGKILL);
		} else
			STEP_OK("child-ready");
	}
	if (priv)
		add_region("cow_private", priv, sz, "all-present;0-15-exclusive,16-63-shared", NULL);
	if (shr)
		add_region("cow_shmem", shr, sz, "written:0-31(parent),32-47(child)", "MAP_SHARED|MAP_ANONYMOUS");
	if (thp)
		add_region("cow_thp", thp, pmd, "pmd", "PMD-mapped THP shared with child");
	add_info("child_pid", "%d", (int)child);
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: thp                                                        */

static long mthp_stat(const char *dir)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/stats/anon_fault_alloc", dir);
	return read_long(path, -1);
}

static void scen_thp(void)
{
	size_t ps = (size_t)g_ps, pmd = thp_pmd_size();
	char buf[256];
	add_info("pmd_size", "%zu", pmd);
	if (read_str(THP_SYS "/enabled", buf, sizeof(buf)) > 0) {
		sanitize(buf);
		add_info("enabled", "%s", buf);
	}

	/* A: 2 PMD-mapped THPs */
	char *a = map_aligned(2 * pmd, pmd, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (a) {
		madvise(a, 2 * pmd, MADV_HUGEPAGE);
		fill_pattern(a, 2 * pmd, 0x81);
		long ahp = smaps_kb(a, "AnonHugePages:");
		add_region("thp_pmd", a, 2 * pmd, "pmd", "AnonHugePages=%ld kB", ahp);
		if (ahp >= (long)(2 * pmd / 1024))
			STEP_OK("pmd");
		else
			STEP_REF("pmd", "AnonHugePages=%ld", ahp);
	} else
		STEP_ERR("pmd", errno);

	/* B: THP split into PTEs by mprotect of one page */
	char *b = map_aligned(pmd, pmd, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (b) {
		madvise(b, pmd, MADV_HUGEPAGE);
		fill_pattern(b, pmd, 0x82);
		long ahp = smaps_kb(b, "AnonHugePages:");
		int rc = mprotect(b + ps, ps, PROT_READ);
		if (rc == 0 && ahp >= (long)(pmd / 1024))
			STEP_OK("split-pmd");
		else if (rc)
			STEP_ERR("split-pmd", errno);
		else
			STEP_REF("split-pmd", "AnonHugePages-before=%ld", ahp);
		add_region("thp_split", b, pmd, "pte-mapped-large-folio",
			   "page 1 mprotect(PROT_READ); AnonHugePages before=%ld", ahp);
	} else
		STEP_ERR("split-pmd", errno);

	/* C: THP partially unmapped (deferred split candidate) */
	char *c = map_aligned(pmd, pmd, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (c) {
		madvise(c, pmd, MADV_HUGEPAGE);
		fill_pattern(c, pmd, 0x83);
		long ahp = smaps_kb(c, "AnonHugePages:");
		if (STEP_RC("partial-unmap", munmap(c + pmd / 2, pmd / 2)) == 0)
			add_region("thp_partial", c, pmd / 2, "pte-mapped-partial-large-folio",
				   "second half unmapped; AnonHugePages before=%ld", ahp);
	} else
		STEP_ERR("partial-unmap", errno);

	/* huge zero page */
	char *z = map_aligned(2 * pmd, pmd, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (z) {
		madvise(z, 2 * pmd, MADV_HUGEPAGE);
		g_sink += ((volatile char *)z)[0];
		g_sink += ((volatile char *)z)[pmd + 5 * ps];
		long uz = read_long(THP_SYS "/use_zero_page", -1);
		add_region("thp_zero", z, 2 * pmd, "huge-zero-page", "read faults; use_zero_page=%ld", uz);
		STEP_OK("huge-zero-page");
	} else
		STEP_ERR("huge-zero-page", errno);

	/* mTHP: every enabled size smaller than PMD */
	DIR *d = opendir(THP_SYS);
	int found = 0;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		unsigned long kb;
		if (sscanf(de->d_name, "hugepages-%lukB", &kb) != 1)
			continue;
		size_t msz = kb * 1024;
		if (msz >= pmd || msz <= ps)
			continue;
		char dir[PATH_MAX], path[PATH_MAX + 16], sn[64];
		snprintf(dir, sizeof(dir), "%s/%s", THP_SYS, de->d_name);
		snprintf(path, sizeof(path), "%s/enabled", dir);
		if (read_str(path, buf, sizeof(buf)) <= 0)
			continue;
		if (!strstr(buf, "[always]") && !strstr(buf, "[madvise]"))
			continue;
		found++;
		snprintf(sn, sizeof(sn), "mthp-%lukB", kb);
		size_t n = 4;
		while (n > 1 && n * msz >= pmd)
			n--;
		/* PROT_NONE guards around so the VMA cannot merge */
		char *m = map_aligned((n + 2) * msz, msz, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1);
		if (!m) {
			STEP_ERR(sn, errno);
			continue;
		}
		mprotect(m, msz, PROT_NONE);
		mprotect(m + (n + 1) * msz, msz, PROT_NONE);
		m += msz;
		madvise(m, n * msz, MADV_HUGEPAGE);
		long before = mthp_stat(dir);
		fill_pattern(m, n * msz, 0x84);
		long after = mthp_stat(dir);
		char label[64];
		snprintf(label, sizeof(label), "mthp_%lukB", kb);
		add_region(label, m, n * msz, label,
			   "anon_fault_alloc delta=%ld (-1: no stats)",
			   before >= 0 && after >= 0 ? after - before : -1);
		if (before < 0 || after - before >= (long)n)
			STEP_OK(sn);
		else
			STEP_REF(sn, "anon_fault_alloc-delta=%ld", after - before);
	}
	if (d)
		closedir(d);
	if (!found)
		STEP_REF("mthp", "no-enabled-mthp-size");

	/* shmem THP */
	buf[0] = 0;
	read_str(THP_SYS "/shmem_enabled", buf, sizeof(buf));
	sanitize(buf);
	add_info("shmem_enabled", "%s", buf);
	char *s = map_aligned(2 * pmd, pmd, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1);
	if (s) {
		madvise(s, 2 * pmd, MADV_HUGEPAGE);
		fill_pattern(s, 2 * pmd, 0x85);
		long spm = smaps_kb(s, "ShmemPmdMapped:");
		add_region("thp_shmem", s, 2 * pmd, spm > 0 ? "pmd" : "pte",
			   "MAP_SHARED|MAP_ANONYMOUS MADV_HUGEPAGE; ShmemPmdMapped=%ld kB; shmem_enabled=%s", spm, buf);
		if (spm > 0)
			STEP_OK("shmem-pmd");
		else
			STEP_REF("shmem-pmd", "ShmemPmdMapped=%ld", spm);
	} else
		STEP_ERR("shmem-pmd", errno);

	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: hugetlb / hugetlb_peer / hugetlb_fork                      */

struct hsize {
	unsigned long kb;
	long free;
};

static int hsize_cmp(const void *a, const void *b)
{
	const struct hsize *x = a, *y = b;
	return x->kb < y->kb ? -1 : x->kb > y->kb;
}

static int find_hugetlbfs_mount(unsigned long kb, char *out, size_t outlen)
{
	char cand[64];
	snprintf(cand, sizeof(cand), "/dev/hugepages-%lukB", kb);
	struct stat st;
	if (stat(cand, &st) == 0 && S_ISDIR(st.st_mode)) {
		/* make sure it is a mount */
		char mounts[32768];
		if (read_str("/proc/mounts", mounts, sizeof(mounts)) > 0 &&
		    strstr(mounts, cand)) {
			snprintf(out, outlen, "%s", cand);
			return 0;
		}
	}
	char mounts[32768];
	if (read_str("/proc/mounts", mounts, sizeof(mounts)) <= 0)
		return -1;
	char *save, *line = strtok_r(mounts, "\n", &save);
	for (; line; line = strtok_r(NULL, "\n", &save)) {
		char dev[256], mp[512], type[64], opts[512];
		if (sscanf(line, "%255s %511s %63s %511s", dev, mp, type, opts) != 4)
			continue;
		if (strcmp(type, "hugetlbfs"))
			continue;
		char want[64];
		if (kb >= 1024 * 1024)
			snprintf(want, sizeof(want), "pagesize=%luG", kb / 1024 / 1024);
		else if (kb >= 1024)
			snprintf(want, sizeof(want), "pagesize=%luM", kb / 1024);
		else
			snprintf(want, sizeof(want), "pagesize=%luK", kb);
		if (strstr(opts, want)) {
			snprintf(out, outlen, "%s", mp);
			return 0;
		}
	}
	return -1;
}

static void scen_hugetlb(void)
{
	size_t ps = (size_t)g_ps;
	struct hsize hs[16];
	int nh = 0;
	DIR *d = opendir(HUGETLB_SYS);
	struct dirent *de;
	while (d && (de = readdir(d)) && nh < 16) {
		unsigned long kb;
		if (sscanf(de->d_name, "hugepages-%lukB", &kb) != 1)
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s/free_hugepages", HUGETLB_SYS, de->d_name);
		hs[nh].kb = kb;
		hs[nh].free = read_long(path, 0);
		nh++;
	}
	if (d)
		closedir(d);
	qsort(hs, (size_t)nh, sizeof(hs[0]), hsize_cmp);
	char infob[256] = "";
	for (int i = 0; i < nh; i++)
		snprintf(infob + strlen(infob), sizeof(infob) - strlen(infob),
			 "%s%lukB:%ld", i ? "," : "", hs[i].kb, hs[i].free);
	add_info("free_before", "%s", infob);
	if (nh == 0)
		STEP_REF("sizes", "no-hugepage-sizes");

	/* shared: 2 MiB file in hugetlbfs, mapped by hugetlb and hugetlb_peer */
	int si = -1;
	for (int i = 0; i < nh; i++)
		if (hs[i].kb == 2048)
			si = i;
	pid_t peer = -1;
	int cp[2] = { -1, -1 };
	if (si >= 0 && hs[si].free >= 2) {
		size_t hsz = 2UL << 20, len = 2 * hsz;
		char mp[PATH_MAX], path[PATH_MAX + 32];
		int fd = -1;
		if (find_hugetlbfs_mount(2048, mp, sizeof(mp)) == 0) {
			snprintf(path, sizeof(path), "%s/ptwalk-shared", mp);
			fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0)
				STEP_ERR("shared-open", errno);
		} else {
			STEP_REF("shared-hugetlbfs-mount", "no-2M-hugetlbfs-mount-using-memfd");
			snprintf(path, sizeof(path), "/memfd:ptwalk-hugetlb (deleted)");
			fd = (int)syscall(SYS_memfd_create, "ptwalk-hugetlb",
					  MFD_HUGETLB | (21U << MAP_HUGE_SHIFT));
			if (fd < 0)
				STEP_ERR("shared-memfd", errno);
		}
		char *p = MAP_FAILED;
		if (fd >= 0) {
			if (ftruncate(fd, (off_t)len) < 0)
				STEP_ERR("shared-ftruncate", errno);
			p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (p == MAP_FAILED)
				STEP_ERR("shared-mmap", errno);
			close(fd);
		}
		if (p != MAP_FAILED) {
			write_pages(p, 4 * ps, 0x91);
			write_pages(p + hsz, 4 * ps, 0x92);
			hs[si].free -= 2;
			add_region("hugetlb_shared", p, len, "hugetlb-shared-both-present", "%s", path);
			STEP_OK("shared");
			if (pipe2(cp, O_CLOEXEC) == 0) {
				peer = fork();
				if (peer == 0) {
					prctl(PR_SET_NAME, "hugetlb_peer", 0, 0, 0);
					g_scen = "hugetlb_peer";
					g_nregions = 0;
					g_info[0] = 0;
					close(cp[0]);
					write_pages(p + 8 * ps, 4 * ps, 0x93);
					write_pages(p + hsz + 8 * ps, 4 * ps, 0x94);
					long sh = smaps_kb(p, "Shared_Hugetlb:");
					add_region("hugetlb_shared", p, len, "hugetlb-shared-both-present",
						   "%s; Shared_Hugetlb=%ld kB", path, sh);
					if (sh > 0)
						STEP_OK("peer-write");
					else
						STEP_REF("peer-write", "Shared_Hugetlb=%ld", sh);
					report_ready(0);
					out_write(cp[1], "x", 1);
					pause_forever();
				}
				if (peer < 0)
					STEP_ERR("peer-fork", errno);
				close(cp[1]);
				if (peer > 0 && wait_byte(cp[0], 60000) < 0) {
					STEP_REF("peer-ready", "timeout");
					kill(peer, SIGKILL);
				}
				close(cp[0]);
			} else
				STEP_ERR("peer-pipe", errno);
		}
	} else
		STEP_REF("shared", "no-free-2M-hugepages");

	/* private mappings of every size */
	char *priv[16];
	long npriv[16];
	for (int i = 0; i < nh; i++) {
		priv[i] = NULL;
		npriv[i] = 0;
		char sn[64], label[64];
		unsigned long kb = hs[i].kb;
		size_t hsz = kb * 1024;
		snprintf(sn, sizeof(sn), "private-%lukB", kb);
		snprintf(label, sizeof(label), "hugetlb_%lukB", kb);
		long n = hs[i].free;
		if (hsz >= (1UL << 30))
			n = n >= 1 ? 1 : 0;
		else if (n > 3)
			n = 3;
		if (n <= 0) {
			STEP_REF(sn, "no-free-pages");
			continue;
		}
		long faulted = n == 3 ? 2 : n;
		int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			    (ilog2ul(hsz) << MAP_HUGE_SHIFT);
		char *p = mmap(NULL, (size_t)n * hsz, PROT_READ | PROT_WRITE, flags, -1, 0);
		if (p == MAP_FAILED) {
			STEP_ERR(sn, errno);
			continue;
		}
		for (long j = 0; j < faulted; j++) {
			char *h = p + (size_t)j * hsz;
			h[0] = (char)(0xa0 + j);
			/* a few more base pages, staying cheap for 1G */
			for (size_t k = 1; k < 4 && k * ps < hsz; k++)
				h[k * ps] = (char)(0xb0 + k);
			h[hsz - 1] = 0x5c;
		}
		long ph = smaps_kb(p, "Private_Hugetlb:");
		add_region(label, p, (size_t)n * hsz, "hugetlb-private",
			   "%ld of %ld huge pages faulted; Private_Hugetlb=%ld kB",
			   faulted, n, ph);
		if (ph > 0)
			STEP_OK(sn);
		else
			STEP_REF(sn, "Private_Hugetlb=%ld", ph);
		priv[i] = p;
		npriv[i] = n;
	}

	/* hugetlb_fork: a child sharing the private (anonymous) hugetlb pages below 1 GiB at the same
	 * addresses: fork copies the entries write-protected, both map one anonymous hugetlb folio (the anon
	 * rmap finds both; arm64: 64K cont-PTE, 2M PMD, 32M cont-PMD). It only reads them. The 1 GiB page is
	 * unmapped in the child: it stays the parent's alone. */
	pid_t forked = -1;
	int fp[2] = { -1, -1 };
	if (pipe2(fp, O_CLOEXEC) == 0) {
		forked = fork();
		if (forked == 0) {
			prctl(PR_SET_NAME, "hugetlb_fork", 0, 0, 0);
			g_scen = "hugetlb_fork";
			g_nregions = 0;
			g_info[0] = 0;
			close(fp[0]);
			for (int i = 0; i < nh; i++) {
				size_t hsz = hs[i].kb * 1024;
				if (!priv[i])
					continue;
				if (hsz >= (1UL << 30)) {
					munmap(priv[i], (size_t)npriv[i] * hsz);
					continue;
				}
				char label[64];
				snprintf(label, sizeof(label), "hugetlb_%lukB", hs[i].kb);
				read_pages(priv[i], (size_t)g_ps);
				long sh = smaps_kb(priv[i], "Shared_Hugetlb:");
				add_region(label, priv[i], (size_t)npriv[i] * hsz, "hugetlb-private-forked",
					   "inherited from hugetlb, read; Shared_Hugetlb=%ld kB", sh);
				if (sh > 0)
					STEP_OK(label);
				else
					STEP_REF(label, "Shared_Hugetlb=%ld", sh);
			}
			report_ready(0);
			out_write(fp[1], "x", 1);
			pause_forever();
		}
		if (forked < 0)
			STEP_ERR("fork-child", errno);
		close(fp[1]);
		if (forked > 0 && wait_byte(fp[0], 60000) < 0) {
			STEP_REF("fork-child-ready", "timeout");
			kill(forked, SIGKILL);
		}
		close(fp[0]);
	} else
		STEP_ERR("fork-pipe", errno);
	add_info("peer_pid", "%d", (int)peer);
	add_info("fork_pid", "%d", (int)forked);
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: swap                                                       */

static void scen_swap(void)
{
	size_t ps = (size_t)g_ps, sz = 8UL << 20, np = sz / ps;
	char swaps[4096];
	int active = read_str("/proc/swaps", swaps, sizeof(swaps)) > 0 &&
		     strchr(swaps, '\n') && strchr(swaps, '\n')[1];
	if (active)
		STEP_OK("swap-active");
	else
		STEP_REF("swap-active", "no-swap-device");

	/* keep everything on one CPU so lru_add_drain() catches all pages */
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);

	char *p = map_anon_nohuge(sz);
	if (!p) {
		STEP_ERR("map", errno);
	} else {
		rng_state = 0x1234567887654321ull;
		fill_random(p, sz);
		long sw = 0;
		int rc = 0;
		for (int tries = 0; tries < 4; tries++) {
			rc = madvise(p, sz, MADV_PAGEOUT);
			if (rc)
				break;
			sw = smaps_kb(p, "Swap:");
			if (sw >= (long)(sz / 1024))
				break;
			usleep(100000);
		}
		if (rc)
			STEP_ERR("pageout", errno);
		else if (sw > 0)
			STEP_OK("pageout");
		else
			STEP_REF("pageout", "Swap=%ld", sw);
		/* swap cache: WILLNEED reads into swap cache, read-fault maps */
		size_t a_end = np / 8, b_end = np / 4;
		int w1 = madvise(p, a_end * ps, MADV_WILLNEED);
		read_pages(p, a_end * ps);
		int w2 = madvise(p + a_end * ps, (b_end - a_end) * ps, MADV_WILLNEED);
		if (w1 || w2)
			STEP_ERR("willneed", errno);
		else
			STEP_OK("willneed");
		usleep(200000);
		long sw2 = smaps_kb(p, "Swap:");
		long rss = smaps_kb(p, "Rss:");
		add_region("swap_anon", p, sz, "swapcache-mapped:0-n/8,swapcache-unmapped:n/8-n/4,swapped:rest",
			   "Swap after pageout=%ld kB, after readback Swap=%ld Rss=%ld", sw, sw2, rss);
		if (sw2 > 0 && rss > 0)
			STEP_OK("swapcache-readback");
		else
			STEP_REF("swapcache-readback", "Swap=%ld,Rss=%ld", sw2, rss);
	}

	/* shmem paged out */
	size_t ssz = 2UL << 20;
	char *s = mmap(NULL, ssz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED) {
		STEP_ERR("shmem-map", errno);
	} else {
		madvise(s, ssz, MADV_NOHUGEPAGE);
		fill_random(s, ssz);
		long sw = 0;
		int rc = 0;
		for (int tries = 0; tries < 4; tries++) {
			rc = madvise(s, ssz, MADV_PAGEOUT);
			if (rc)
				break;
			sw = smaps_kb(s, "Swap:");
			if (sw >= (long)(ssz / 1024))
				break;
			usleep(100000);
		}
		/* bring a few back in */
		read_pages(s, 8 * ps);
		long sw2 = smaps_kb(s, "Swap:");
		add_region("swap_shmem", s, ssz, "shmem-swapped:8-end,present:0-7",
			   "Swap after pageout=%ld kB, after readback=%ld", sw, sw2);
		if (rc)
			STEP_ERR("shmem-pageout", errno);
		else if (sw > 0)
			STEP_OK("shmem-pageout");
		else
			STEP_REF("shmem-pageout", "Swap=%ld", sw);
	}

	/* zero-filled anon paged out (zram same-filled pages) */
	size_t zsz = 32 * ps;
	char *z = map_anon_nohuge(zsz);
	if (z) {
		for (size_t i = 0; i < zsz; i += ps)
			memset(z + i, 0x5a, ps);
		if (madvise(z, zsz, MADV_PAGEOUT) == 0) {
			long sw = smaps_kb(z, "Swap:");
			add_region("swap_samefilled", z, zsz, "swapped", "same-filled 0x5a pages; Swap=%ld kB", sw);
			if (sw > 0)
				STEP_OK("samefilled-pageout");
			else
				STEP_REF("samefilled-pageout", "Swap=%ld", sw);
		} else
			STEP_ERR("samefilled-pageout", errno);
	}

	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: hwpoison                                                   */

static sigjmp_buf g_bus_jmp;
static volatile sig_atomic_t g_bus_ao;
/*
 * memory_failure() sends BUS_MCEERR_AO to the mapping processes when it
 * kills a dirty anon page: note it and carry on.  Any other SIGBUS (the
 * page touched after all) jumps out.
 */
static void bus_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
#ifdef BUS_MCEERR_AO
	if (si && si->si_code == BUS_MCEERR_AO) {
		g_bus_ao++;
		return;
	}
#else
	(void)si;
#endif
	siglongjmp(g_bus_jmp, 1);
}

static void scen_hwpoison(void)
{
	size_t ps = (size_t)g_ps, sz = 16 * ps;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = bus_handler;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
	char *p = map_anon_nohuge(sz);
	if (!p) {
		STEP_ERR("map", errno);
	} else {
		fill_pattern(p, sz, 0xc1);
		if (g_no_sysfs) {
			STEP_REF("madv-hwpoison", "PTWALK_NO_SYSFS");
			add_region("hwpoison", p, sz, "all-present", "hwpoison skipped");
		} else {
			volatile int rc = -1, err = 0, jumped = 0;
			if (sigsetjmp(g_bus_jmp, 1) == 0) {
				rc = madvise(p + 4 * ps, ps, MADV_HWPOISON);
				err = errno;
			} else {
				jumped = 1;
			}
			/* did the page become a hwpoison entry? */
			uint64_t pme = 0;
			int pfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
			if (pfd >= 0) {
				if (pread(pfd, &pme, 8, (off_t)((uintptr_t)(p + 4 * ps) / ps * 8)) != 8)
					pme = 0;
				close(pfd);
			}
			int poisoned = (pme >> 62 & 1) && !(pme >> 63 & 1);
			if (poisoned) {
				STEP_OK("madv-hwpoison");
				add_region("hwpoison", p, sz, "hwpoison:4,present:others",
					   "rc=%d jumped=%d SIGBUS-AO=%d", rc, jumped, (int)g_bus_ao);
			} else {
				if (jumped)
					STEP_REF("madv-hwpoison", "SIGBUS-but-not-poisoned");
				else if (rc)
					STEP_ERR("madv-hwpoison", err);
				else
					STEP_REF("madv-hwpoison", "pagemap-not-hwpoison-0x%llx", (unsigned long long)pme);
				add_region("hwpoison", p, sz, "all-present", "MADV_HWPOISON refused");
			}
		}
	}
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: uffd                                                       */

static int uffd_open(uint64_t want, uint64_t *got)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	struct uffdio_api api = { .api = UFFD_API, .features = want };
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	*got = api.features;
	return fd;
}

/* Register [p, p + len) for uffd-wp and write-protect it; returns whether the kernel did both (no
 * uffd-wp where the architecture lacks HAVE_ARCH_USERFAULTFD_WP: powerpc, EINVAL). */
static int uffd_wp_region(int fd, const char *tag, char *p, size_t len)
{
	char sn[64];
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)p, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	snprintf(sn, sizeof(sn), "%s-register-wp", tag);
	if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
		STEP_ERR(sn, errno);
		return 0;
	}
	STEP_OK(sn);
	struct uffdio_writeprotect wp = {
		.range = { .start = (unsigned long)p, .len = len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	snprintf(sn, sizeof(sn), "%s-writeprotect", tag);
	if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp) < 0) {
		STEP_ERR(sn, errno);
		return 0;
	}
	STEP_OK(sn);
	return 1;
}

static void scen_uffd(void)
{
	size_t ps = (size_t)g_ps, sz = 64 * ps;
	uint64_t supported = 0, got = 0;
	int fd = uffd_open(0, &supported);
	if (fd < 0) {
		STEP_ERR("userfaultfd", errno);
		report_ready(1);
		pause_forever();
	}
	close(fd);
	uint64_t want = (UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_WP_UNPOPULATED) & supported;
	fd = uffd_open(want, &got);
	if (fd < 0) {
		STEP_ERR("uffdio-api", errno);
		fd = uffd_open(0, &got);
		want = 0;
	}
	if (fd < 0) {
		STEP_ERR("uffdio-api-nofeatures", errno);
		report_ready(1);
		pause_forever();
	}
	add_info("features_supported", "0x%llx", (unsigned long long)supported);
	add_info("features_requested", "0x%llx", (unsigned long long)want);
	STEP_OK("uffdio-api");
	if (!(want & UFFD_FEATURE_WP_HUGETLBFS_SHMEM))
		STEP_REF("feature-wp-shmem", "unsupported");
	if (!(want & UFFD_FEATURE_WP_UNPOPULATED))
		STEP_REF("feature-wp-unpopulated", "unsupported");

	char *s = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s != MAP_FAILED) {
		madvise(s, sz, MADV_NOHUGEPAGE);
		write_pages(s, 16 * ps, 0xd1);
		read_pages(s + 16 * ps, 8 * ps);
		if (uffd_wp_region(fd, "shmem", s, sz))
			add_region("uffd_shmem", s, sz, "uffd-wp:0-23,marker:24-63",
				   "written 0-15, read 16-23, untouched 24-63");
		else
			add_region("uffd_shmem", s, sz, "present:0-23,none:24-63",
				   "uffd-wp refused; written 0-15, read 16-23, untouched 24-63");
	} else
		STEP_ERR("shmem-map", errno);

	char *a = map_anon_nohuge(sz);
	if (a) {
		write_pages(a, 16 * ps, 0xd2);
		if (!uffd_wp_region(fd, "anon", a, sz))
			add_region("uffd_anon", a, sz, "present:0-15,none:16-63", "uffd-wp refused; written 0-15");
		else
			add_region("uffd_anon", a, sz,
				   (want & UFFD_FEATURE_WP_UNPOPULATED) ? "uffd-wp:0-15,marker:16-63"
									: "uffd-wp:0-15,none:16-63",
				   "written 0-15");
	} else
		STEP_ERR("anon-map", errno);
	/* fd intentionally kept open */
	add_info("uffd_fd", "%d", fd);
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: guard                                                      */

static void scen_guard(void)
{
	size_t ps = (size_t)g_ps, sz = 32 * ps;
	char *p = map_anon_nohuge(sz);
	if (p) {
		fill_pattern(p, sz, 0xe1);
		if (STEP_RC("guard-populated", madvise(p + 8 * ps, 4 * ps, MADV_GUARD_INSTALL)) == 0)
			add_region("guard_populated", p, sz, "guard:8-11,present:others", NULL);
		else
			add_region("guard_populated", p, sz, "all-present", "guard refused");
	} else
		STEP_ERR("map", errno);
	char *q = map_anon_nohuge(sz);
	if (q) {
		write_pages(q, 4 * ps, 0xe2);
		if (STEP_RC("guard-unpopulated", madvise(q + 8 * ps, 4 * ps, MADV_GUARD_INSTALL)) == 0)
			add_region("guard_unpopulated", q, sz, "present:0-3,guard:8-11,none:others", NULL);
		else
			add_region("guard_unpopulated", q, sz, "present:0-3,none:others", "guard refused");
	}
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: ksm                                                        */

static void scen_ksm(void)
{
	size_t ps = (size_t)g_ps, nid = 64, nuniq = 16, sz = (nid + nuniq) * ps;
	char *p = map_anon_nohuge(sz);
	if (!p) {
		STEP_ERR("map", errno);
		report_ready(1);
		pause_forever();
	}
	for (size_t i = 0; i < nid; i++)
		memset(p + i * ps, 0xa5, ps);
	rng_state = 0xabcdef0123456789ull;
	fill_random(p + nid * ps, nuniq * ps);
	if (STEP_RC("madv-mergeable", madvise(p, sz, MADV_MERGEABLE)) != 0) {
		add_region("ksm", p, sz, "all-present-unmerged", "MADV_MERGEABLE refused");
		report_ready(1);
		pause_forever();
	}
	long shared = -1, sharing = -1, mine = -1;
	if (g_no_sysfs) {
		STEP_REF("ksmd-run", "PTWALK_NO_SYSFS");
	} else {
		write_str(KSM_SYS "/sleep_millisecs", "10");
		write_str(KSM_SYS "/pages_to_scan", "1000");
		int e = write_str(KSM_SYS "/run", "1");
		if (e) {
			STEP_ERR("ksmd-run", e);
		} else {
			STEP_OK("ksmd-run");
			for (int i = 0; i < 900; i++) { /* up to ~90 s */
				shared = read_long(KSM_SYS "/pages_shared", -1);
				sharing = read_long(KSM_SYS "/pages_sharing", -1);
				if (shared > 0 && sharing >= (long)nid - 1)
					break;
				usleep(100000);
			}
			e = write_str(KSM_SYS "/run", "0");
			if (e)
				STEP_ERR("ksmd-stop", e);
			else
				STEP_OK("ksmd-stop");
			shared = read_long(KSM_SYS "/pages_shared", -1);
			sharing = read_long(KSM_SYS "/pages_sharing", -1);
			mine = read_long("/proc/self/ksm_merging_pages", -1);
			if (shared > 0)
				STEP_OK("merged");
			else
				STEP_REF("merged", "pages_shared=%ld", shared);
		}
	}
	add_info("pages_shared", "%ld", shared);
	add_info("pages_sharing", "%ld", sharing);
	add_info("ksm_merging_pages", "%ld", mine);
	add_region("ksm_identical", p, nid * ps, shared > 0 ? "ksm-merged" : "present",
		   "64 identical 0xa5 pages; pages_shared=%ld pages_sharing=%ld", shared, sharing);
	add_region("ksm_unique", p + nid * ps, nuniq * ps, "present", "unique random pages");
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: numa                                                       */

static void scen_numa(void)
{
	size_t ps = (size_t)g_ps, sz = 16 * ps;
	struct stat st;
	int two = stat("/sys/devices/system/node/node1", &st) == 0;
	unsigned long m01 = two ? 3 : 1, m1 = two ? 2 : 1;
	if (!two)
		STEP_REF("two-nodes", "single-node");
	unsigned long mask = m01;
	STEP_RC("set-mempolicy-interleave",
		(int)syscall(SYS_set_mempolicy, MPOL_INTERLEAVE_, &mask, 64UL));

	struct {
		const char *label;
		int mode;
		unsigned long mask;
		int shared;
	} pol[] = {
		{ "numa_bind1", MPOL_BIND_, m1, 0 },
		{ "numa_interleave", MPOL_INTERLEAVE_, m01, 0 },
		{ "numa_prefer1", MPOL_PREFERRED_, m1, 0 },
		{ "numa_weighted", MPOL_WEIGHTED_INTERLEAVE_, m01, 0 },
		{ "numa_local", MPOL_LOCAL_, 0, 0 },
		{ "numa_static", MPOL_INTERLEAVE_ | MPOL_F_STATIC_NODES_, m01, 0 },
		{ "numa_relative", MPOL_BIND_ | MPOL_F_RELATIVE_NODES_, m1, 0 },
		{ "numa_prefmany", MPOL_PREFERRED_MANY_, m01, 0 },
		{ "numa_default", MPOL_DEFAULT_, 0, 0 },
		{ "numa_shmem_bind1", MPOL_BIND_, m1, 1 },
	};
	for (size_t i = 0; i < sizeof(pol) / sizeof(pol[0]); i++) {
		char *p;
		if (pol[i].shared) {
			p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				p = NULL;
			else
				madvise(p, sz, MADV_NOHUGEPAGE);
		} else
			p = map_anon_nohuge(sz);
		if (!p) {
			STEP_ERR(pol[i].label, errno);
			continue;
		}
		unsigned long m = pol[i].mask;
		int rc = (int)syscall(SYS_mbind, p, sz, pol[i].mode,
				      m ? &m : NULL, m ? 64UL : 0UL, 0U);
		int e = errno;
		fill_pattern(p, sz, 0xf1);
		if (rc == 0) {
			STEP_OK(pol[i].label);
			add_region(pol[i].label, p, sz, "all-present", "mode=%d mask=0x%lx",
				   pol[i].mode, pol[i].mask);
		} else {
			STEP_ERR(pol[i].label, e);
			add_region(pol[i].label, p, sz, "all-present",
				   "mbind refused (%s); process policy applies", errname(e));
		}
	}

	/* process policy + move_pages */
	char *p = map_anon_nohuge(sz);
	if (p) {
		fill_pattern(p, sz, 0xf2);
		void *pages[4];
		int nodes[4], status[4];
		for (int i = 0; i < 4; i++) {
			pages[i] = p + (size_t)i * ps;
			nodes[i] = two ? 1 : 0;
			status[i] = -1;
		}
		long rc = syscall(SYS_move_pages, 0, 4UL, pages, nodes, status, MPOL_MF_MOVE_);
		if (rc < 0)
			STEP_ERR("move-pages", errno);
		else if (status[0] < 0)
			STEP_ERR("move-pages", -status[0]);
		else
			STEP_OK("move-pages");
		add_region("numa_procpolicy", p, sz, "all-present",
			   "process interleave policy; pages 0-3 moved to node %d (status0=%d)",
			   two ? 1 : 0, status[0]);
	}
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* scenario: manyvmas                                                   */

static void scen_manyvmas(void)
{
	size_t ps = (size_t)g_ps, np = 3000, sz = np * ps;
	char *p = map_anon_nohuge(sz);
	if (!p) {
		STEP_ERR("map", errno);
		report_ready(1);
		pause_forever();
	}
	for (size_t i = 0; i < np; i += 3)
		p[i * ps] = (char)(i | 1);
	int fails = 0, first = 0;
	for (size_t i = 1; i < np; i += 2)
		if (mprotect(p + i * ps, ps, PROT_READ) < 0) {
			if (!fails++)
				first = errno;
		}
	for (size_t i = 0; i < np; i += 5)
		g_sink += ((volatile char *)p)[i * ps];
	if (fails)
		STEP_ERR("mprotect", first);
	else
		STEP_OK("mprotect");
	add_region("manyvmas", p, sz, "alternating-rw-ro-1page-vmas",
		   "written every 3rd page, read every 5th page; odd pages PROT_READ");
	report_ready(1);
	pause_forever();
}

#if defined(__s390x__)
/* ------------------------------------------------------------------ */
/* scenario: highva4 / highva5 (s390x): a mapping above 4 TiB, or above  */
/* 8 PiB, makes the kernel add region-second (and region-first) tables  */
/* to the mm (check_asce_limit() -> crst_table_upgrade()): its tables   */
/* then have 4 or 5 levels, every other process's 3                     */

static void highva(unsigned long addr, const char *label)
{
	size_t ps = (size_t)g_ps, sz = 16 * ps;
	/* nothing is mapped that high: MAP_FIXED only places it */
	char *p = mmap((void *)addr, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED) {
		STEP_ERR(label, errno);
	} else {
		fill_pattern(p, sz, 0x3c);
		add_region(label, p, sz, "all-present", "at 0x%lx", addr);
		STEP_OK(label);
	}
	report_ready(1);
	pause_forever();
}

static void scen_highva4(void)
{
	highva(1UL << 43, "highva_l4"); /* above _REGION2_SIZE: an R2 root */
}

static void scen_highva5(void)
{
	highva(1UL << 54, "highva_l5"); /* above _REGION1_SIZE: an R1 root */
}
#endif

/* ------------------------------------------------------------------ */
/* bench set: big / vmas / small+N (workload run OUTDIR bench)          */

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	long r = v && *v ? strtol(v, NULL, 10) : dflt;
	return r > 0 ? r : dflt;
}

/*
 * big: one process with >= 1.5 million mapped 4 KiB pages (a 6 GiB
 * MADV_NOHUGEPAGE anonymous mapping, every page written -- with zeroes, so
 * the dump stays sparse), plus a THP range and hugetlb ranges.
 */
static void scen_big(void)
{
	size_t ps = (size_t)g_ps, pmd = thp_pmd_size();
	size_t len = (size_t)env_long("PTWALK_BENCH_GIB", 6) << 30;
	double t0 = now();
	char *p = map_anon_nohuge(len);
	if (p) {
		for (size_t off = 0; off < len; off += ps)
			((volatile char *)p)[off] = 0;
		long rss = smaps_kb(p, "Rss:");
		add_region("big_anon", p, len, "4k-anon-nohuge",
			   "every page written (zeroes); Rss=%ld kB; %.1f s", rss, now() - t0);
		if (rss >= (long)(len / 1024))
			STEP_OK("anon");
		else
			STEP_REF("anon", "Rss=%ld", rss);
	} else
		STEP_ERR("anon", errno);

	/* THP: 32 PMD-sized folios */
	size_t tlen = 32 * pmd;
	char *t = map_aligned(tlen, pmd, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (t) {
		madvise(t, tlen, MADV_HUGEPAGE);
		for (size_t off = 0; off < tlen; off += ps)
			t[off] = (char)(0x40 | (off / ps & 0x3f));
		long ahp = smaps_kb(t, "AnonHugePages:");
		add_region("big_thp", t, tlen, "pmd", "AnonHugePages=%ld kB", ahp);
		if (ahp >= (long)(tlen / 1024))
			STEP_OK("thp");
		else
			STEP_REF("thp", "AnonHugePages=%ld", ahp);
	} else
		STEP_ERR("thp", errno);

	/* hugetlb: 8 x 2 MiB and 1 x 1 GiB from the boot-time pools */
	static const struct { int shift, n; const char *label; } hz[] = {
		{ 21, 8, "big_hugetlb_2m" }, { 30, 1, "big_hugetlb_1g" },
	};
	for (size_t i = 0; i < sizeof(hz) / sizeof(hz[0]); i++) {
		size_t hsz = 1UL << hz[i].shift, hl = hsz * (size_t)hz[i].n;
		char *h = map_aligned(hl, hsz, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
				      (hz[i].shift << MAP_HUGE_SHIFT), -1);
		if (!h) {
			STEP_ERR(hz[i].label, errno);
			continue;
		}
		for (size_t off = 0; off < hl; off += hsz)
			h[off] = 0x5a;
		add_region(hz[i].label, h, hl, "hugetlb", "%d x %zu kB", hz[i].n, hsz >> 10);
		STEP_OK(hz[i].label);
	}
	add_info("seconds", "%.1f", now() - t0);
	report_ready(1);
	pause_forever();
}

/* vmas: >= 20,000 VMAs: 21,000 one-page VMAs alternating rw / ro, all written */
static void scen_vmas(void)
{
	size_t ps = (size_t)g_ps, np = 21000, sz = np * ps;
	char *p = map_anon_nohuge(sz);
	if (!p) {
		STEP_ERR("map", errno);
		report_ready(1);
		pause_forever();
	}
	for (size_t i = 0; i < np; i++)
		p[i * ps] = (char)(i | 1);
	int fails = 0, first = 0;
	for (size_t i = 1; i < np; i += 2)
		if (mprotect(p + i * ps, ps, PROT_READ) < 0) {
			if (!fails++)
				first = errno;
		}
	if (fails)
		STEP_ERR("mprotect", first);
	else
		STEP_OK("mprotect");
	add_region("vmas", p, sz, "alternating-rw-ro-1page-vmas", "%zu pages, all written", np);
	report_ready(1);
	pause_forever();
}

/*
 * small: the scenario process forks N children "small0".."small<N-1>", each
 * mapping 16 pages and writing 1 + i % 8 of them; each reports READY itself.
 */
static void scen_small(void)
{
	long n = env_long("PTWALK_BENCH_SMALL", 500);
	if (n > 1000)
		n = 1000; /* MAX_PROCS */
	int cp[2];
	if (pipe2(cp, O_CLOEXEC) < 0) {
		STEP_ERR("pipe", errno);
		report_ready(1);
		pause_forever();
	}
	long started = 0;
	for (long i = 0; i < n; i++) {
		pid_t c = fork();
		if (c < 0) {
			STEP_ERR("fork", errno);
			break;
		}
		if (c == 0) {
			static char name[24];
			close(cp[0]);
			snprintf(name, sizeof(name), "small%d", (int)i);
			prctl(PR_SET_NAME, name, 0, 0, 0);
			g_scen = name;
			g_nregions = 0;
			g_info[0] = 0;
			size_t ps = (size_t)g_ps;
			char *p = map_anon_nohuge(16 * ps);
			if (p) {
				for (long k = 0; k <= i % 8; k++)
					p[(size_t)k * ps] = (char)(i | 1);
				add_region("small", p, 16 * ps, "anon-few-pages", "%ld pages written", i % 8 + 1);
			}
			report_ready(0);
			out_write(cp[1], "r", 1);
			close(cp[1]);
			pause_forever();
		}
		started++;
	}
	close(cp[1]);
	long ready = 0;
	char b[256];
	while (ready < started) {
		ssize_t r = read(cp[0], b, sizeof(b));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		ready += r;
	}
	close(cp[0]);
	if (ready == n)
		STEP_OK("children");
	else
		STEP_REF("children", "ready=%ld of %ld", ready, n);
	add_info("children", "%ld", ready);
	report_ready(1);
	pause_forever();
}

/* ------------------------------------------------------------------ */
/* capture                                                              */

struct buf {
	char *p;
	size_t n, cap;
};

static int buf_reserve(struct buf *b, size_t more)
{
	if (b->n + more <= b->cap)
		return 0;
	size_t nc = b->cap ? b->cap : 65536;
	while (nc < b->n + more)
		nc *= 2;
	char *np = realloc(b->p, nc);
	if (!np)
		return -1;
	b->p = np;
	b->cap = nc;
	return 0;
}

static int buf_add(struct buf *b, const void *d, size_t n)
{
	if (buf_reserve(b, n))
		return -1;
	memcpy(b->p + b->n, d, n);
	b->n += n;
	return 0;
}

/* read whole file; returns 0 or errno (buffer holds what was read) */
static int slurp(const char *path, struct buf *b)
{
	b->n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	for (;;) {
		if (buf_reserve(b, 65536)) {
			close(fd);
			return ENOMEM;
		}
		ssize_t r = read(fd, b->p + b->n, 65536);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			return e;
		}
		if (r == 0)
			break;
		b->n += (size_t)r;
	}
	close(fd);
	return 0;
}

static void capture_log(const char *what, int err)
{
	char r[64];
	if (err) {
		snprintf(r, sizeof(r), "%s", errname(err));
		step_line("capture", what, err, r);
	}
}

/* copy; the destination is only created if something could be read */
static int copy_file(const char *src, const char *dst, const char *what)
{
	static struct buf b;
	int e = slurp(src, &b);
	if (e == 0 || b.n > 0)
		write_file(dst, b.p ? b.p : "", b.n);
	if (what)
		capture_log(what, e);
	return e;
}

static void write_pagemap_bin(pid_t pid, const struct buf *maps, const char *dst)
{
	static struct buf out;
	char path[64];
	out.n = 0;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char what[64];
	snprintf(what, sizeof(what), "%d/pagemap", pid);
	if (fd < 0)
		capture_log(what, errno);
	size_t i = 0;
	int err_logged = 0;
	while (i < maps->n) {
		const char *line = maps->p + i;
		const char *nl = memchr(line, '\n', maps->n - i);
		size_t llen = nl ? (size_t)(nl - line) : maps->n - i;
		i += llen + 1;
		char tmp[64];
		size_t cl = llen < 63 ? llen : 63;
		memcpy(tmp, line, cl);
		tmp[cl] = 0;
		unsigned long long start, end;
		if (sscanf(tmp, "%llx-%llx", &start, &end) != 2)
			continue;
		uint64_t hdr[3] = { start, end, 0 };
		size_t hoff = out.n;
		if (buf_add(&out, hdr, sizeof(hdr)))
			break;
		uint64_t first = start / (uint64_t)g_ps;
		uint64_t count = (end - start) / (uint64_t)g_ps, got = 0;
		while (fd >= 0 && got < count) {
			uint64_t want = count - got;
			if (want > 8192)
				want = 8192;
			if (buf_reserve(&out, want * 8))
				break;
			ssize_t r = pread(fd, out.p + out.n, want * 8, (off_t)((first + got) * 8));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && !err_logged) {
				char w2[96];
				snprintf(w2, sizeof(w2), "%d/pagemap@0x%llx", pid, start);
				capture_log(w2, errno);
				err_logged = 1;
			}
			if (r <= 0)
				break;
			r -= r % 8;
			out.n += (size_t)r;
			got += (uint64_t)r / 8;
			if ((uint64_t)r < want * 8)
				break;
		}
		memcpy(out.p + hoff + 16, &got, 8);
	}
	if (fd >= 0)
		close(fd);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	/* pagemap.bin is little-endian whatever the guest's byte order (s390x: the kernel's is big) */
	for (size_t k = 0; k + 8 <= out.n; k += 8) {
		uint64_t v;
		memcpy(&v, out.p + k, 8);
		v = __builtin_bswap64(v);
		memcpy(out.p + k, &v, 8);
	}
#endif
	write_file(dst, out.p ? out.p : "", out.n);
}

static void capture_pid(pid_t pid)
{
	static struct buf maps;
	char dir[PATH_MAX], src[64], dst[PATH_MAX + 32], what[64];
	snprintf(dir, sizeof(dir), "%s/%d", g_out, pid);
	mkdir(dir, 0755);
	/* maps first, pagemap from the same maps contents */
	snprintf(src, sizeof(src), "/proc/%d/maps", pid);
	snprintf(what, sizeof(what), "%d/maps", pid);
	int e = slurp(src, &maps);
	capture_log(what, e);
	snprintf(dst, sizeof(dst), "%s/maps", dir);
	if (e == 0 || maps.n)
		write_file(dst, maps.p ? maps.p : "", maps.n);
	static const char *files[] = { "smaps", "smaps_rollup", "numa_maps", "status" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(src, sizeof(src), "/proc/%d/%s", pid, files[i]);
		snprintf(dst, sizeof(dst), "%s/%s", dir, files[i]);
		snprintf(what, sizeof(what), "%d/%s", pid, files[i]);
		copy_file(src, dst, what);
	}
	snprintf(dst, sizeof(dst), "%s/pagemap.bin", dir);
	write_pagemap_bin(pid, &maps, dst);
}

static void copy_tree(const char *src, const char *dst, int depth)
{
	DIR *d = opendir(src);
	if (!d)
		return;
	mkdir(dst, 0755);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char s[PATH_MAX], t[PATH_MAX];
		snprintf(s, sizeof(s), "%s/%s", src, de->d_name);
		snprintf(t, sizeof(t), "%s/%s", dst, de->d_name);
		struct stat st;
		if (lstat(s, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth > 0)
				copy_tree(s, t, depth - 1);
		} else if (S_ISREG(st.st_mode) && (st.st_mode & 0444)) {
			copy_file(s, t, NULL);
		}
	}
	closedir(d);
}

static void capture_global(void)
{
	char g[PATH_MAX], t[PATH_MAX + 64];
	snprintf(g, sizeof(g), "%s/global", g_out);
	mkdir(g, 0755);
	static const char *pf[][2] = {
		{ "/proc/meminfo", "meminfo" }, { "/proc/vmstat", "vmstat" },
		{ "/proc/cmdline", "cmdline" }, { "/proc/swaps", "swaps" },
		{ "/proc/zoneinfo", "zoneinfo" }, { "/proc/buddyinfo", "buddyinfo" },
	};
	for (size_t i = 0; i < sizeof(pf) / sizeof(pf[0]); i++) {
		snprintf(t, sizeof(t), "%s/%s", g, pf[i][1]);
		copy_file(pf[i][0], t, pf[i][1]);
	}
	struct utsname u;
	if (uname(&u) == 0) {
		char s[1024];
		int n = snprintf(s, sizeof(s), "%s %s %s %s %s GNU/Linux\n", u.sysname,
				 u.nodename, u.release, u.version, u.machine);
		snprintf(t, sizeof(t), "%s/uname", g);
		write_file(t, s, (size_t)n);
	}
	char s[64];
	int n = snprintf(s, sizeof(s), "%ld\n", g_ps);
	snprintf(t, sizeof(t), "%s/page_size", g);
	write_file(t, s, (size_t)n);

	snprintf(t, sizeof(t), "%s/thp", g);
	copy_tree(THP_SYS, t, 3);
	snprintf(t, sizeof(t), "%s/ksm", g);
	copy_tree(KSM_SYS, t, 0);
	snprintf(t, sizeof(t), "%s/hugepages", g);
	copy_tree(HUGETLB_SYS, t, 1);

	/* concatenated node meminfo (lines are prefixed with "Node N") */
	struct buf all = { 0 }, one = { 0 };
	for (int node = 0; node < 64; node++) {
		char p[96];
		snprintf(p, sizeof(p), "/sys/devices/system/node/node%d/meminfo", node);
		if (slurp(p, &one) == 0)
			buf_add(&all, one.p, one.n);
	}
	snprintf(t, sizeof(t), "%s/numa_node_meminfo", g);
	write_file(t, all.p ? all.p : "", all.n);
	free(all.p);
	free(one.p);
}

struct proc {
	char name[16];
	pid_t pid;
	int nostop; /* a zombie or a kernel/vhost worker: neither stopped nor waited for */
};
#define MAX_PROCS 1024 /* bench: 500+ small processes */
static struct proc g_procs[MAX_PROCS];
static int g_nprocs;

static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_str(path, buf, sizeof(buf)) <= 0)
		return 0;
	char *rp = strrchr(buf, ')');
	if (!rp || !rp[1] || !rp[2])
		return 0;
	return rp[2];
}

static void write_pids_json(void)
{
	static char buf[MAX_PROCS * 40 + 16];
	char path[PATH_MAX];
	size_t n = 0;
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{");
	for (int i = 0; i < g_nprocs; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"%s\": %d",
				      i ? ", " : "", g_procs[i].name, g_procs[i].pid);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "}\n");
	snprintf(path, sizeof(path), "%s/pids.json", g_out);
	write_file(path, buf, n);
}

static const char *g_workdir_run = "/run";

/*
 * migrate_pages() from no node moves nothing but starts with lru_add_drain_all()
 * (lru_cache_disable() on newer kernels): folios still in per-CPU LRU batches get their final LRU
 * state (PG_lru, PG_active) before the capture rather than between the capture and the dump.
 */
static void drain_lru(void)
{
	/* from: no node, so nothing moves; to: node 0 (an empty target is refused with EINVAL) */
	static unsigned long none[16], node0[16] = { 1 };
	long r = syscall(SYS_migrate_pages, 0, (unsigned long)(sizeof(none) * 8), none, node0);
	step_line("capture", "drain-lru", r < 0 ? errno : 0, r < 0 ? strerror(errno) : NULL);
}

static void scale_capture(void);

static void capture_all(void)
{
	drain_lru();
	logmsg("capturing %d processes", g_nprocs);
	for (int i = 0; i < g_nprocs; i++)
		capture_pid(g_procs[i].pid);
	scale_capture();
	capture_global();
	write_pids_json();
	logmsg("capture done");
}

/* ------------------------------------------------------------------ */
/* run                                                                  */

struct scenario {
	const char *name;
	void (*fn)(void);
};

#include "production.c"
#include "procmem.c"
#include "thpsmall.c"
#include "filecache.c"
#include "scale.c"
#include "bigmem.c"

static const struct scenario g_default_scenarios[] = {
	{ "anon", scen_anon },	     { "file", scen_file },
	{ "cow_parent", scen_cow },  { "thp", scen_thp },
	{ "hugetlb", scen_hugetlb }, { "swap", scen_swap },
	{ "hwpoison", scen_hwpoison }, { "uffd", scen_uffd },
	{ "guard", scen_guard },     { "ksm", scen_ksm },
	{ "numa", scen_numa },	     { "manyvmas", scen_manyvmas },
	/* production.c */
	{ "container", scen_container }, { "sysv_shm", scen_sysv_shm },
	{ "hugetlb_share", scen_hugetlb_share }, { "dmabuf", scen_dmabuf },
	{ "vhost", scen_vhost },     { "blockfs", scen_blockfs },
	{ "numab", scen_numab },     { "swapshare", scen_swapshare },
	{ "vmflags", scen_vmflags }, { "nothp", scen_nothp },
	{ "thpsmall", scen_thpsmall }, /* thpsmall.c */
#if defined(__s390x__)
	{ "highva4", scen_highva4 }, { "highva5", scen_highva5 },
#endif
	{ "procmem", scen_procmem }, /* procmem.c: after the others, it swaps on devices above zram0 */
	{ "filecache", scen_filecache }, /* filecache.c: last, its record must see no later change */
	{ NULL, NULL },
};

static const struct scenario g_bench_scenarios[] = {
	{ "big", scen_big }, { "vmas", scen_vmas }, { "small", scen_small },
	{ NULL, NULL },
};

/* bigmem.c: a large guest, mostly free, with hugetlb pages in use on both nodes */
static const struct scenario g_bigmem_scenarios[] = {
	{ "numa", scen_numa }, { "bignuma", scen_bignuma },
	{ NULL, NULL },
};

static double now(void)
{
	struct timespec ts;
	/* the scenario processes use the vDSO (their [vvar]/[vdso] pages are part of what is captured); the
	 * capturer has unmapped its own (unmap_own_vdso()) and makes the system call */
	if (g_no_vdso)
		syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	else
		clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int selected(const char *name)
{
	const char *only = getenv("PTWALK_ONLY");
	if (!only || !*only)
		return 1;
	size_t l = strlen(name);
	for (const char *p = only; *p;) {
		const char *c = strchr(p, ',');
		size_t n = c ? (size_t)(c - p) : strlen(p);
		if (n == l && !strncmp(p, name, l))
			return 1;
		if (!c)
			break;
		p = c + 1;
	}
	return 0;
}

static void run_scenario(const struct scenario *sc, int timeout_s)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		step_line(sc->name, "start", errno, NULL);
		return;
	}
	logmsg("starting %s", sc->name);
	pid_t pid = fork();
	if (pid < 0) {
		step_line(sc->name, "start", errno, NULL);
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		signal(SIGPIPE, SIG_IGN);
		prctl(PR_SET_NAME, sc->name, 0, 0, 0);
		prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
		g_scen = sc->name;
		g_ready_fd = p[1];
		g_nregions = 0;
		g_info[0] = 0;
		sc->fn();
		_exit(0);
	}
	close(p[1]);
	static struct proc got[MAX_PROCS];
	int ngot = 0, done = 0, eof = 0;
	char lb[1024];
	size_t ln = 0;
	double deadline = now() + timeout_s;
	while (!done && !eof && now() < deadline) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		int r = poll(&pfd, 1, 1000);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0) {
			ssize_t k = read(p[0], lb + ln, sizeof(lb) - 1 - ln);
			if (k <= 0) {
				eof = 1;
			} else {
				ln += (size_t)k;
				lb[ln] = 0;
				char *nl;
				while ((nl = strchr(lb, '\n'))) {
					*nl = 0;
					char nm[16];
					int cp;
					if (!strcmp(lb, "DONE"))
						done = 1;
					else if ((sscanf(lb, "READY %15s %d", nm, &cp) == 2 ||
						  sscanf(lb, "NOSTOP %15s %d", nm, &cp) == 2) && ngot < MAX_PROCS) {
						snprintf(got[ngot].name, sizeof(got[ngot].name), "%s", nm);
						got[ngot].pid = cp;
						got[ngot].nostop = lb[0] == 'N';
						ngot++;
						logmsg("%s ready (pid %d)", nm, cp);
					}
					size_t rest = ln - (size_t)(nl + 1 - lb);
					memmove(lb, nl + 1, rest);
					ln = rest;
					lb[ln] = 0;
				}
			}
		}
		int st;
		if (!done && waitpid(pid, &st, WNOHANG) == pid) {
			/* drain whatever remains, then give up */
			eof = 1;
		}
	}
	close(p[0]);
	if (!done) {
		const char *why = eof ? "died" : "timeout";
		step_line(sc->name, "ready", EINVAL, why);
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		for (int i = 0; i < ngot; i++)
			if (!got[i].nostop)
				kill(got[i].pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return;
	}
	step_line(sc->name, "ready", 0, NULL);
	for (int i = 0; i < ngot && g_nprocs < MAX_PROCS; i++)
		g_procs[g_nprocs++] = got[i];
}

static int cmd_run(const char *set)
{
	const struct scenario *g_scenarios = g_default_scenarios;
	int dflt_timeout = 120;
	if (!strcmp(set, "bench")) {
		g_scenarios = g_bench_scenarios;
		dflt_timeout = 3000;
	} else if (!strcmp(set, "scale")) {
		g_scenarios = g_scale_scenarios; /* scale.c */
		dflt_timeout = 3000;
	} else if (!strcmp(set, "bigmem")) {
		g_scenarios = g_bigmem_scenarios; /* bigmem.c */
	} else if (strcmp(set, "default")) {
		logmsg("unknown scenario set %s", set);
		return 2;
	}
	int timeout_s = (int)strtol(getenv("PTWALK_TIMEOUT") ? getenv("PTWALK_TIMEOUT") : "0", NULL, 10);
	if (timeout_s <= 0)
		timeout_s = dflt_timeout;
	signal(SIGPIPE, SIG_IGN);
	double t0 = now();
	for (size_t i = 0; g_scenarios[i].name; i++) {
		if (!selected(g_scenarios[i].name))
			continue;
		double t = now();
		run_scenario(&g_scenarios[i], timeout_s);
		logmsg("%s took %.1f s", g_scenarios[i].name, now() - t);
	}
	logmsg("all scenarios started in %.1f s; stopping", now() - t0);

	/* stop all, wait for 'T' */
	for (int i = 0; i < g_nprocs; i++)
		if (!g_procs[i].nostop)
			kill(g_procs[i].pid, SIGSTOP);
	int keep = 0;
	for (int i = 0; i < g_nprocs; i++) {
		char s = 0;
		if (g_procs[i].nostop) {
			g_procs[keep++] = g_procs[i];
			step_line(g_procs[i].name, "kept", 0, NULL);
			continue;
		}
		for (int k = 0; k < 200; k++) {
			s = proc_state(g_procs[i].pid);
			if (s == 'T' || s == 0 || s == 'Z' || s == 'X')
				break;
			usleep(25000);
		}
		if (s == 'T') {
			g_procs[keep++] = g_procs[i];
			step_line(g_procs[i].name, "stopped", 0, NULL);
		} else {
			char r[32];
			snprintf(r, sizeof(r), "state-%c", s ? s : '?');
			step_line(g_procs[i].name, "stopped", EINVAL, r);
		}
	}
	g_nprocs = keep;

	/* kthreadd */
	char comm[64] = "";
	read_str("/proc/2/comm", comm, sizeof(comm));
	if (!strncmp(comm, "kthreadd", 8)) {
		snprintf(g_procs[g_nprocs].name, sizeof(g_procs[0].name), "kthread");
		g_procs[g_nprocs++].pid = 2;
		step_line("kthread", "found", 0, NULL);
	} else {
		step_line("kthread", "found", EINVAL, "pid2-not-kthreadd");
	}
	/*
	 * The runner stays alive and idle until the dump. It maps /workload and shares forked pages with
	 * the scenarios, so exiting or writing memory after the capture would change their mapcounts (Pss,
	 * Shared/Private, mapmax, pagemap's exclusive bit) between capture and dump. The capture is done
	 * by /capture, a copy of this binary under another name: its text is other page-cache pages.
	 */
	char path[PATH_MAX];
	static char procs[MAX_PROCS * 40 + 16];
	size_t n = 0;
	for (int i = 0; i < g_nprocs; i++)
		n += (size_t)snprintf(procs + n, sizeof(procs) - n, "%s=%d ", g_procs[i].name, g_procs[i].pid);
	n += (size_t)snprintf(procs + n, sizeof(procs) - n, "\n");
	snprintf(path, sizeof(path), "%s/workload.procs", g_workdir_run);
	write_file(path, procs, n);
	logmsg("all stopped in %.1f s; waiting for the capture and the dump", now() - t0);
	for (;;)
		pause();
}

/* ------------------------------------------------------------------ */
/* kpage: /proc/kpageflags, kpagecount and kpagecgroup of every PFN      */

/*
 * `workload kpage [crash]`, init's last step (after the truth archive is out): reads the three files for
 * every PFN (snapshot A) into buffers allocated and touched before the read, prints A run-length encoded
 * in base64 between =====KPAGE-BEGIN===== and =====KPAGE-END=====, reads them again (snapshot B) and
 * prints the PFNs whose value changed between A and B (=====KPAGE-CHANGED===== block: unstable), then
 * =====READY-FOR-DUMP=====, and stays alive (its buffers mapped) until the dump; with "crash", it
 * crashes the kernel into the kexec'ed capture kernel itself. No other process runs in between: init
 * waits for it, and it allocates nothing after snapshot A. It maps no page the captured processes map
 * (kpage_unmap_shared()).
 *
 * Encoding (little-endian LEB128 varints): per file in the order above, runs of equal values until the
 * file's PFN count, each a varint (count - 1) << 5 | i: i < 31 names the i-th most recently used value
 * (move to front), i = 31 a new value, in a varint that follows (it becomes the most recent, the table
 * keeps 31); before them a header: "KPG1", varint PFN count, varint page size, varint
 * number of files, and per file a varint: 1 if it could be read, else 0 and no runs. The changed block:
 * varint n, then n times (varint PFN delta from the previous one, varint mask of the files that
 * changed), then varint 1 if the list overflowed else 0.
 */
#define KPAGE_NFILES 3
static const char *const g_kpage_files[KPAGE_NFILES] = { "/proc/kpageflags", "/proc/kpagecount", "/proc/kpagecgroup" };

static unsigned char g_b64_in[57 * 64];
static size_t g_b64_n;
static char g_b64_out[78 * 64];

static void b64_flush(void)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < g_b64_n; i += 57) {
		size_t l = g_b64_n - i < 57 ? g_b64_n - i : 57;
		for (size_t j = 0; j < l; j += 3) {
			unsigned v = (unsigned)g_b64_in[i + j] << 16;
			if (j + 1 < l)
				v |= (unsigned)g_b64_in[i + j + 1] << 8;
			if (j + 2 < l)
				v |= g_b64_in[i + j + 2];
			g_b64_out[o++] = tbl[(v >> 18) & 63];
			g_b64_out[o++] = tbl[(v >> 12) & 63];
			g_b64_out[o++] = j + 1 < l ? tbl[(v >> 6) & 63] : '=';
			g_b64_out[o++] = j + 2 < l ? tbl[v & 63] : '=';
		}
		g_b64_out[o++] = '\n';
	}
	out_write(1, g_b64_out, o);
	g_b64_n = 0;
}

static size_t g_b64_total;

static void b64_put(const unsigned char *p, size_t n)
{
	g_b64_total += n;
	while (n) {
		size_t k = sizeof(g_b64_in) - g_b64_n;
		if (k > n)
			k = n;
		memcpy(g_b64_in + g_b64_n, p, k);
		g_b64_n += k;
		p += k;
		n -= k;
		if (g_b64_n == sizeof(g_b64_in))
			b64_flush();
	}
}

static void b64_varint(uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;
	do {
		b[n] = v & 0x7f;
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	b64_put(b, n);
}

/* bytes of [off, off + len) of a /proc/kpage* file: returns what was read */
static size_t kpage_pread(int fd, void *buf, size_t len, off_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(fd, (char *)buf + got, len - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

static uint64_t kpage_npfn(int fd)
{
	uint64_t v, lo = 0, hi = 1;
	/* the file ends at round_up(max_pfn, PAGES_PER_SECTION) */
	while (hi < (1ull << 40) && kpage_pread(fd, &v, 8, (off_t)(hi * 8)) == 8)
		hi *= 2;
	while (lo + 1 < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (kpage_pread(fd, &v, 8, (off_t)(mid * 8)) == 8)
			lo = mid;
		else
			hi = mid;
	}
	return kpage_pread(fd, &v, 8, 0) == 8 ? lo + 1 : 0;
}

#define KPAGE_CHUNK 65536 /* PFNs per read */
#define KPAGE_MTF 31 /* recent values a run can name by index */
static char g_kpage_msg[512];

/* The clock without the vDSO (kpage unmaps it; glibc's clock_gettime() would call into it). */
static double kpage_now(void)
{
	struct timespec ts;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * This process stays until the dump, so it must not add a mapping to a page the captured processes
 * share: the vDSO (and the vvar and other special pages) are mapped by every process, and one more
 * mapping would change their mapcount (numa_maps' mapmax, smaps' Pss) after the capture. It unmaps them
 * (its binary, /capture, is not the workload's; its other memory is its own), and faults in the rest of
 * its memory so that nothing it maps changes after snapshot A.
 */
static void kpage_unmap_shared(void)
{
	static char maps[32768];
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size_t n = kpage_pread(fd, maps, sizeof(maps) - 1, 0);
	close(fd);
	maps[n] = 0;
	for (char *line = maps; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		unsigned long long start, end;
		char perms[5] = "";
		if (sscanf(line, "%llx-%llx %4s", &start, &end, perms) != 3) {
			line = nl ? nl + 1 : NULL;
			continue;
		}
		if (strchr(line, '[') && !strstr(line, "[heap]") && !strstr(line, "[stack]")) {
			munmap((void *)(uintptr_t)start, (size_t)(end - start));
		} else if (perms[0] == 'r') {
			/*
			 * Fault in now every page of its own mappings (its binary's text and data, heap,
			 * stack): code first run after snapshot B (formatting, the crash path) would otherwise
			 * map more of /capture's page cache (fault-around maps 16 pages at once) after both
			 * snapshots, and a first write to its data would allocate a page then.
			 */
			for (unsigned long long a = start; a < end; a += (unsigned long long)g_ps) {
				volatile char *c = (volatile char *)(uintptr_t)a;
				char v = *c;
				if (perms[1] == 'w')
					*c = v;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
}

/* The stack the rest of cmd_kpage() and the libc calls it makes may need, faulted in before snapshot A. */
static void __attribute__((noinline)) kpage_grow_stack(void)
{
	volatile char pad[256 * 1024];
	for (size_t i = 0; i < sizeof(pad); i += 1024)
		pad[i] = 1;
}

/*
 * The host's word that the dumps are written (vmcores/qemu.py Guest.after_dump): a line on the console
 * holding KPAGE_DUMPED. A blocking read() of the console: nothing runs in this process while it waits.
 * Returns 1 once the line came, 0 if the console cannot say it (end of file, an error).
 */
#define KPAGE_DUMPED "=====DUMPED====="
static char g_kpage_line[256];

static int kpage_wait_dumped(void)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = read(0, g_kpage_line + n, sizeof(g_kpage_line) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		n += (size_t)r;
		g_kpage_line[n] = 0;
		if (strstr(g_kpage_line, KPAGE_DUMPED))
			return 1;
		char *nl = strrchr(g_kpage_line, '\n');
		if (nl) { /* another line (noise on the console): keep only what follows it */
			size_t keep = n - (size_t)(nl + 1 - g_kpage_line);
			memmove(g_kpage_line, nl + 1, keep);
			n = keep;
		} else if (n == sizeof(g_kpage_line) - 1) {
			n = 0;
		}
	}
}

/*
 * Snapshot B, compared with snapshot A (snap) chunk by chunk, and the PFNs that differ sent as the
 * =====KPAGE-CHANGED===== block: varint count, (PFN delta, mask of files) per PFN, overflow, then the
 * scheme (KPAGE_BEFORE_DUMP: B was read before the dump; KPAGE_BRACKETED: after it, so A and B bracket it).
 */
#define KPAGE_MAX_CHANGED (1 << 18)
#define KPAGE_BEFORE_DUMP 0
#define KPAGE_BRACKETED 1
static uint64_t g_kpage_chunk[KPAGE_NFILES][KPAGE_CHUNK];
static uint64_t g_kpage_changed[KPAGE_MAX_CHANGED][2];

static void kpage_send_changed(const int *fds, const int *ok, const uint64_t *snap, uint64_t npfn, int scheme)
{
	double t3 = kpage_now();
	uint64_t nchanged = 0;
	int overflow = 0;
	for (uint64_t base = 0; base < npfn; base += KPAGE_CHUNK) {
		uint64_t n = npfn - base < KPAGE_CHUNK ? npfn - base : KPAGE_CHUNK;
		for (int f = 0; f < KPAGE_NFILES; f++)
			if (ok[f] && kpage_pread(fds[f], g_kpage_chunk[f], n * 8, (off_t)(base * 8)) != n * 8)
				memset(g_kpage_chunk[f], 0xff, n * 8);
		for (uint64_t i = 0; i < n; i++) {
			uint64_t m = 0;
			for (int f = 0; f < KPAGE_NFILES; f++)
				if (ok[f] && snap[f * npfn + base + i] != g_kpage_chunk[f][i])
					m |= 1u << f;
			if (!m)
				continue;
			if (nchanged == KPAGE_MAX_CHANGED) {
				overflow = 1;
				continue;
			}
			g_kpage_changed[nchanged][0] = base + i;
			g_kpage_changed[nchanged++][1] = m;
		}
	}
	double t4 = kpage_now();
	g_b64_total = 0;
	out_write(1, "=====KPAGE-CHANGED=====\n", 24);
	b64_varint(nchanged);
	uint64_t prev = 0;
	for (uint64_t k = 0; k < nchanged; k++) {
		b64_varint(g_kpage_changed[k][0] - prev);
		b64_varint(g_kpage_changed[k][1]);
		prev = g_kpage_changed[k][0];
	}
	b64_varint((uint64_t)overflow);
	b64_varint((uint64_t)scheme);
	b64_flush();
	out_write(1, "=====KPAGE-CHANGED-END=====\n", 28);
	int len = snprintf(g_kpage_msg, sizeof(g_kpage_msg), "[kpage] reread %s the dump in %.2f s: %llu PFNs changed%s\n",
			   scheme == KPAGE_BRACKETED ? "after" : "before", t4 - t3, (unsigned long long)nchanged,
			   overflow ? " (list overflowed)" : "");
	out_write(1, g_kpage_msg, (size_t)len);
}

/*
 * /proc/kpage{flags,count,cgroup} of every PFN: snapshot A, sent as the truth; then the PFNs that changed
 * between A and snapshot B are sent as unstable. Normally B is read AFTER the dump: the guest prints
 * READY-FOR-DUMP, blocks reading the console until the host writes KPAGE_DUMPED once every dump is
 * written (and the guest resumed), then reads B; a page that changed between A and the dump (unless it
 * changed back before B) is thus known to be unstable. With `crash` (a kdump entry: the guest crashes into
 * a kexec'ed capture kernel, nothing of it runs after the dump) B is read before the crash instead, right
 * after A is sent: a page that changes between B and the crash is not known.
 */
static int __attribute__((noreturn)) cmd_kpage(int crash, int before)
{
	/* B before the dump: a kdump entry, or a console the host cannot write to (s390x, see qemu.py) */
	before |= crash;
	int fds[KPAGE_NFILES];
	uint64_t npfn = 0;
	double t0 = kpage_now();
	/*
	 * The crash path opens nothing after the snapshots: opening /proc/sysrq-trigger the first time
	 * allocates a file, a dentry and a proc inode, maybe a new slab page, between snapshot B and the crash
	 * (seen: an order-2 slab page that was free in A and B).
	 */
	int sysrq = crash ? open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC) : -1;
	for (int f = 0; f < KPAGE_NFILES; f++) {
		fds[f] = open(g_kpage_files[f], O_RDONLY | O_CLOEXEC);
		if (fds[f] >= 0 && !npfn)
			npfn = kpage_npfn(fds[f]);
	}
	uint64_t *snap = npfn ? malloc(KPAGE_NFILES * npfn * 8) : NULL;
	if (!snap) {
		int len = snprintf(g_kpage_msg, sizeof(g_kpage_msg), "=====KPAGE-FAILED===== %s\n",
				   npfn ? "out of memory" : "no /proc/kpageflags");
		out_write(1, g_kpage_msg, (size_t)len);
	} else {
		/*
		 * Every page written to after snapshot A is allocated and touched before it, with a non-zero
		 * byte: the compiler turns malloc() + memset(0) into calloc(), which leaves fresh mmap()ed
		 * pages untouched (they would then be allocated while snapshot A is read).
		 */
		memset(snap, 0xff, KPAGE_NFILES * npfn * 8);
		memset(g_kpage_chunk, 0xff, sizeof(g_kpage_chunk));
		memset(g_kpage_changed, 0xff, sizeof(g_kpage_changed));
		memset(g_b64_out, 0xff, sizeof(g_b64_out));
		memset(g_b64_in, 0xff, sizeof(g_b64_in));
		memset(g_kpage_msg, 0xff, sizeof(g_kpage_msg));
		memset(g_kpage_line, 0xff, sizeof(g_kpage_line));
		/*
		 * The host's line must not come back on the console (serial.log stays the guest's output):
		 * the console's echo is turned off now, before snapshot A.
		 */
		if (!before) {
			struct termios tio;
			if (tcgetattr(0, &tio) == 0) {
				tio.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
				tcsetattr(0, TCSANOW, &tio);
			}
		}
		kpage_grow_stack();
		kpage_unmap_shared();
		double t1 = kpage_now();
		int ok[KPAGE_NFILES];
		for (int f = 0; f < KPAGE_NFILES; f++)
			ok[f] = fds[f] >= 0 && kpage_pread(fds[f], snap + f * npfn, npfn * 8, 0) == npfn * 8;
		double t2 = kpage_now();
		out_write(1, "=====KPAGE-BEGIN=====\n", 22);
		b64_put((const unsigned char *)"KPG1", 4);
		b64_varint(npfn);
		b64_varint((uint64_t)g_ps);
		b64_varint(KPAGE_NFILES);
		for (int f = 0; f < KPAGE_NFILES; f++) {
			b64_varint((uint64_t)ok[f]);
			if (!ok[f])
				continue;
			const uint64_t *v = snap + f * npfn;
			uint64_t tab[KPAGE_MTF];
			unsigned ntab = 0;
			for (uint64_t i = 0; i < npfn;) {
				uint64_t j = i + 1;
				while (j < npfn && v[j] == v[i])
					j++;
				unsigned k;
				for (k = 0; k < ntab && tab[k] != v[i]; k++)
					;
				b64_varint((j - i - 1) << 5 | (k < ntab ? k : KPAGE_MTF));
				if (k == ntab) {
					b64_varint(v[i]);
					if (ntab < KPAGE_MTF)
						ntab++;
					k = ntab - 1;
				}
				memmove(tab + 1, tab, k * sizeof(tab[0]));
				tab[0] = v[i];
				i = j;
			}
		}
		b64_flush();
		size_t encoded = g_b64_total;
		out_write(1, "=====KPAGE-END=====\n", 20);
		double t3 = kpage_now();
		int len = snprintf(g_kpage_msg, sizeof(g_kpage_msg),
				   "[kpage] %llu PFNs: read in %.2f s, %zu bytes encoded, sent in %.2f s (setup %.2f s)\n",
				   (unsigned long long)npfn, t2 - t1, encoded, t3 - t2, t1 - t0);
		out_write(1, g_kpage_msg, (size_t)len);
		if (!before) {
			out_write(1, "=====READY-FOR-DUMP=====\n", 25);
			if (kpage_wait_dumped())
				kpage_send_changed(fds, ok, snap, npfn, KPAGE_BRACKETED);
			else
				out_write(1, "=====KPAGE-FAILED===== the console gave no dump signal\n", 55);
			for (;;)
				pause();
		}
		kpage_send_changed(fds, ok, snap, npfn, KPAGE_BEFORE_DUMP);
	}
	out_write(1, "=====READY-FOR-DUMP=====\n", 25);
	if (crash) {
		/* the way production crashes: kexec boots the capture kernel, which writes the dumps */
		sleep(2);
		if (sysrq >= 0)
			out_write(sysrq, "c", 1);
	}
	for (;;)
		pause();
}

/* ------------------------------------------------------------------ */
/* base64                                                               */

static int cmd_b64(void)
{
	static unsigned char in[57 * 1024];
	for (;;) {
		ssize_t r = read(0, in, sizeof(in));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		b64_put(in, (size_t)r);
	}
	b64_flush();
	return 0;
}

/* ------------------------------------------------------------------ */
/* churn: a process whose memory keeps changing (live tests)            */

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#define CHURN_SLOTS 64
#define CHURN_THP_SLOTS 4
/* Slot i lives at CHURN_BASE + i * CHURN_STRIDE (tests/test_live.py knows): far below where the kernel
 * places mappings, valid with 47- and 48-bit user address spaces, PMD-aligned for THP slots. */
#define CHURN_BASE 0x200000000000UL
#define CHURN_STRIDE (8UL << 20)

/* Each page churn writes starts with its own address, so a reader can tell whether the page a page table
 * maps at an address is that address's page (or a fresh zero page not yet written). */
static void churn_sign(char *p, size_t len)
{
	for (size_t off = 0; off < len; off += (size_t)g_ps)
		*(volatile uint64_t *)(p + off) = (uint64_t)(uintptr_t)(p + off);
}

/*
 * workload churn: until killed, keep mapping and unmapping anonymous regions (its slots, see CHURN_BASE),
 * faulting them, zapping them (MADV_DONTNEED), swapping them out (MADV_PAGEOUT to zram), migrating
 * them between the two nodes (move_pages), splitting and merging VMAs (mprotect, MAP_FIXED over a
 * page, which also splits THPs) and forking children that write (COW) and exit. At most ~24 MiB, so
 * nothing else in the guest is reclaimed and the other processes' captured truth stays true.
 */
static void unmap_own_vdso(void);

static int cmd_churn(void)
{
	struct {
		char *p;
		size_t len;
	} s[CHURN_SLOTS];
	size_t thp = thp_pmd_size();
	int thp_ok = thp <= (2UL << 20);
	memset(s, 0, sizeof(s));
	/* glibc read the vDSO at start-up: a mapping of the page the captured processes share (their Pss) */
	unmap_own_vdso();
	prctl(PR_SET_NAME, "churn");
	rng_state ^= (uint64_t)getpid() << 32;
	for (unsigned long it = 0;; it++) {
		int i = (int)(rnd() % CHURN_SLOTS);
		char *p = s[i].p;
		size_t len = s[i].len, npages = len / (size_t)g_ps;
		if (!p) {
			len = i < CHURN_THP_SLOTS && thp_ok ? 2 * thp : (1 + rnd() % 64) * (size_t)g_ps;
			p = mmap((void *)(CHURN_BASE + (unsigned long)i * CHURN_STRIDE), len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (p == MAP_FAILED)
				p = NULL;
			if (p && i < CHURN_THP_SLOTS)
				madvise(p, len, MADV_HUGEPAGE);
			if (p) {
				churn_sign(p, len / 2);
				s[i].p = p;
				s[i].len = len;
			}
			continue;
		}
		size_t at = (rnd() % npages) * (size_t)g_ps;
		switch (rnd() % 8) {
		case 0:
			munmap(p, len);
			s[i].p = NULL;
			break;
		case 1:
			churn_sign(p, len);
			break;
		case 2:
			madvise(p, len / 2 ? len / 2 : len, MADV_DONTNEED);
			break;
		case 3:
			madvise(p + at, len - at, MADV_PAGEOUT);
			break;
		case 4: {
			void *pages[16];
			int nodes[16], status[16];
			unsigned long n = 0;
			int to = (int)(rnd() % 2);
			for (size_t off = at; off < len && n < 16; off += (size_t)g_ps, n++) {
				pages[n] = p + off;
				nodes[n] = to;
			}
			syscall(SYS_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE_);
			break;
		}
		case 5:
			mprotect(p + at, (size_t)g_ps, PROT_READ);
			mprotect(p + at, (size_t)g_ps, PROT_READ | PROT_WRITE);
			break;
		case 6: {
			pid_t c = fork();
			if (c == 0) {
				churn_sign(p, len);
				_exit(0);
			}
			if (c > 0)
				waitpid(c, NULL, 0);
			break;
		}
		case 7:
			if (mmap(p + at, (size_t)g_ps, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED)
				churn_sign(p + at, (size_t)g_ps);
			break;
		}
		/* leave the vCPUs some time for the QMP reads of the walker */
		if (it % 16 == 0)
			usleep(2000);
	}
	return 0;
}

/* ------------------------------------------------------------------ */

/*
 * The capturer must not change what it reads: a vDSO page it has faulted counts in that page's mapcount
 * (Pss, mapmax of every process that maps it) while it runs and not in the dump taken after it exited.
 * So it unmaps its own [vdso] and [vvar] first (and takes the time by system call).
 */
static void unmap_own_vdso(void)
{
	g_no_vdso = 1;
	static char buf[65536];
	int n = read_str("/proc/self/maps", buf, sizeof(buf));
	if (n <= 0)
		return;
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		unsigned long a, b;
		if ((strstr(line, "[vdso]") || strstr(line, "[vvar]") || strstr(line, "[vvar_vclock]")) &&
		    sscanf(line, "%lx-%lx", &a, &b) == 2)
			munmap((void *)a, b - a);
		line = nl ? nl + 1 : NULL;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: workload run OUTDIR [default|bench] | capture OUTDIR name=pid... | churn | kpage [crash|before] | b64 | pagesize\n");
}

static void open_out(const char *dir)
{
	char path[PATH_MAX];
	g_out = dir;
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/steps.log", dir);
	g_steps_fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (g_steps_fd < 0)
		logmsg("cannot open %s: %s", path, strerror(errno));
}

int main(int argc, char **argv)
{
	g_ps = getpagesize();
	g_no_sysfs = getenv("PTWALK_NO_SYSFS") && !strcmp(getenv("PTWALK_NO_SYSFS"), "1");
	if (getenv("PTWALK_WORKDIR"))
		g_workdir = getenv("PTWALK_WORKDIR");
	if (argc >= 2 && !strcmp(argv[1], "b64"))
		return cmd_b64();
	if (argc >= 2 && !strcmp(argv[1], "churn"))
		return cmd_churn();
	if (argc >= 2 && !strcmp(argv[1], "kpage"))
		return cmd_kpage(argc >= 3 && !strcmp(argv[2], "crash"), argc >= 3 && !strcmp(argv[2], "before"));
	if (argc >= 2 && !strcmp(argv[1], "pagesize")) {
		printf("%ld\n", g_ps);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "run")) {
		open_out(argv[2]);
		return cmd_run(argc >= 4 && argv[3][0] ? argv[3] : "default");
	}
	if (argc >= 3 && !strcmp(argv[1], "capture")) {
		unmap_own_vdso();
		open_out(argv[2]);
		for (int i = 3; i < argc && g_nprocs < MAX_PROCS; i++) {
			char *eq = strchr(argv[i], '=');
			if (!eq)
				continue;
			*eq = 0;
			snprintf(g_procs[g_nprocs].name, sizeof(g_procs[0].name), "%s", argv[i]);
			g_procs[g_nprocs++].pid = atoi(eq + 1);
		}
		capture_all();
		return 0;
	}
	usage();
	return 2;
}
