/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The bigmem scenario set (included by workload.c): a large guest (hundreds of GiB over two NUMA nodes)
 * whose memory is mostly free, with hugetlb pages of each size in use on each node.
 *
 * bignuma: per node, a shared anonymous hugetlb mapping of 4 x 2 MiB and one of 1 x 1 GiB, and a 32 MiB
 * anonymous 4 KiB mapping, each bound to that node (mbind MPOL_BIND) and written; a child, bignuma_peer,
 * maps the same hugetlb pages (it reads each one), so every hugetlb page in use has two mappers.
 * A mapping the node's pool cannot back is a refused step (the others stay).
 */

static char *bignuma_map(const char *label, size_t len, int flags, unsigned long nodemask, unsigned char v)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (p == MAP_FAILED) {
		STEP_ERR(label, errno);
		return NULL;
	}
	if (!(flags & MAP_HUGETLB))
		madvise(p, len, MADV_NOHUGEPAGE);
	if (syscall(SYS_mbind, p, len, MPOL_BIND_, &nodemask, 64UL, 0U) < 0) {
		STEP_ERR(label, errno);
		munmap(p, len);
		return NULL;
	}
	/* where a write would raise SIGBUS (no page left in the node's pool), MADV_POPULATE_WRITE fails */
	if (madvise(p, len, MADV_POPULATE_WRITE) < 0) {
		STEP_ERR(label, errno);
		munmap(p, len);
		return NULL;
	}
	write_pages(p, len, v);
	STEP_OK(label);
	return p;
}

static void scen_bignuma(void)
{
	struct stat st;
	int two = stat("/sys/devices/system/node/node1", &st) == 0;
	if (!two)
		STEP_REF("two-nodes", "single-node");
	static const struct {
		const char *what;
		size_t size;
		int count, flags;
	} kinds[] = {
		{ "2m", 2UL << 20, 4, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT) },
		{ "1g", 1UL << 30, 1, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | (30 << MAP_HUGE_SHIFT) },
		{ "anon", 4096, 8192, MAP_PRIVATE | MAP_ANONYMOUS },
	};
	struct {
		char label[48];
		char *p;
		size_t len;
		int node;
		int huge;
	} maps[8];
	int nmaps = 0;
	for (int node = 0; node < (two ? 2 : 1); node++) {
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			size_t len = kinds[k].size * (size_t)kinds[k].count;
			snprintf(maps[nmaps].label, sizeof(maps[nmaps].label), "bignuma_%s_node%d", kinds[k].what, node);
			char *p = bignuma_map(maps[nmaps].label, len, kinds[k].flags, 1UL << node,
					      (unsigned char)(0x30 + 16 * node + (int)k));
			if (!p)
				continue;
			maps[nmaps].p = p;
			maps[nmaps].len = len;
			maps[nmaps].node = node;
			maps[nmaps].huge = (kinds[k].flags & MAP_HUGETLB) != 0;
			add_region(maps[nmaps].label, p, len, maps[nmaps].huge ? "hugetlb-shared-both-present" : "all-present",
				   "%d x %zu kB bound to node %d", kinds[k].count, kinds[k].size >> 10, node);
			nmaps++;
		}
	}
	int cp[2] = { -1, -1 };
	pid_t peer = -1;
	if (pipe2(cp, O_CLOEXEC) == 0) {
		peer = fork();
		if (peer == 0) {
			prctl(PR_SET_NAME, "bignuma_peer", 0, 0, 0);
			g_scen = "bignuma_peer";
			g_nregions = 0;
			g_info[0] = 0;
			close(cp[0]);
			for (int i = 0; i < nmaps; i++) {
				if (!maps[i].huge)
					continue;
				read_pages(maps[i].p, maps[i].len);
				add_region(maps[i].label, maps[i].p, maps[i].len, "hugetlb-shared-both-present",
					   "read by the peer; node %d", maps[i].node);
			}
			STEP_OK("peer-read");
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
	add_info("peer_pid", "%d", (int)peer);
	report_ready(1);
	pause_forever();
}
