// SPDX-License-Identifier: GPL-2.0
// The CPU -> hardware queue map (Queue::map_queues), against Linux 6.1's blk_mq_map_queues.
#include "test_util.h"

#include <random>
#include <set>

using namespace host;
using cxmq::Queue;

namespace {

class CpuMap : public HostTest {};

// Linux 6.1 block/blk-mq-cpumap.c blk_mq_map_queues(), transcribed: queues to present CPUs
// first, then to the remaining possible CPUs in order; once every queue has a CPU, a CPU
// shares the queue of its first SMT sibling. -1 for CPUs that are not possible.
std::vector<int> linux61_map(const Topology &t, uint32_t nr_queues)
{
	std::vector<int> map(t.nr_cpu_ids, -1);
	uint32_t q = 0;
	for (uint32_t cpu = 0; cpu < t.nr_cpu_ids; cpu++) {
		if (!t.present[cpu])
			continue;
		if (q >= nr_queues)
			break;
		map[cpu] = static_cast<int>(q++ % nr_queues);
	}
	for (uint32_t cpu = 0; cpu < t.nr_cpu_ids; cpu++) {
		if (!t.possible[cpu] || map[cpu] != -1)
			continue;
		if (q < nr_queues) {
			map[cpu] = static_cast<int>(q++ % nr_queues);
		} else {
			uint32_t first = t.first_sibling[cpu] < t.nr_cpu_ids ? t.first_sibling[cpu] : cpu;
			if (first == cpu)
				map[cpu] = static_cast<int>(q++ % nr_queues);
			else
				map[cpu] = map[first];
		}
	}
	return map;
}

uint32_t count(const std::vector<bool> &v)
{
	return static_cast<uint32_t>(std::count(v.begin(), v.end(), true));
}

// Builds a queue on topology t with k hardware queues and checks its map against Linux's, and
// everything derived from it. Returns the map.
std::vector<uint32_t> check_map(const Topology &t, uint32_t k)
{
	set_topology(t);
	ScriptBackend be;
	Queue *q = make_queue(make_config(k, 4), &be);
	if (!q)
		return {};
	EXPECT_EQ(q->nr_hw_queues(), k);
	EXPECT_EQ(q->nr_cpus(), t.nr_cpu_ids);
	const std::vector<int> ref = linux61_map(t, k);
	std::vector<uint32_t> map(t.nr_cpu_ids);
	std::vector<std::vector<uint32_t>> cpus_of(k);
	for (uint32_t c = 0; c < t.nr_cpu_ids; c++) {
		map[c] = q->map_cpu(c);
		EXPECT_LT(map[c], k) << "cpu " << c;
		EXPECT_EQ(q->ctx(c).hctx_idx, map[c]);
		EXPECT_EQ(q->ctx(c).cpu, c);
		EXPECT_EQ(&q->hctx_for_cpu(c), &q->hctx(map[c]));
		if (t.possible[c]) {
			EXPECT_EQ(static_cast<int>(map[c]), ref[c]) << "cpu " << c << " (Linux 6.1)";
			cpus_of[map[c]].push_back(c);
		} else {
			EXPECT_EQ(map[c], 0u) << "impossible cpu " << c;
		}
	}
	// Each hardware queue lists exactly its possible CPUs, in order; with k <= possible CPUs
	// every queue has one (and one present CPU when k <= present CPUs).
	for (uint32_t i = 0; i < k; i++) {
		cxmq::HwQueue &h = q->hctx(i);
		EXPECT_EQ(h.index, i);
		std::vector<uint32_t> listed(h.ctx_cpus, h.ctx_cpus + h.nr_ctx);
		EXPECT_EQ(listed, cpus_of[i]) << "hctx " << i;
		if (k <= count(t.possible)) {
			EXPECT_GE(h.nr_ctx, 1u) << "hctx " << i << " has no CPU";
		}
		if (k <= count(t.present)) {
			bool any_present = false;
			for (uint32_t c : cpus_of[i])
				any_present |= static_cast<bool>(t.present[c]);
			EXPECT_TRUE(any_present) << "hctx " << i << " has no present CPU";
		}
	}
	destroy_queue(q);
	return map;
}

// n CPUs as `cores` cores of n/cores threads; siblings adjacent (0,1),(2,3) or split
// (0,4),(1,5) as on most x86 machines.
Topology smt_topology(uint32_t n, uint32_t threads, bool adjacent)
{
	Topology t = simple_topology(n);
	const uint32_t cores = n / threads;
	for (uint32_t c = 0; c < n; c++)
		t.first_sibling[c] = adjacent ? c - c % threads : c % cores;
	return t;
}

TEST_F(CpuMap, OneQueuePerCpu)
{
	std::vector<uint32_t> m = check_map(simple_topology(6), 6);
	EXPECT_EQ(m, (std::vector<uint32_t>{0, 1, 2, 3, 4, 5}));
}

TEST_F(CpuMap, FewerQueuesRoundRobinWithoutSmt)
{
	EXPECT_EQ(check_map(simple_topology(7), 3), (std::vector<uint32_t>{0, 1, 2, 0, 1, 2, 0}));
	EXPECT_EQ(check_map(simple_topology(4), 1), (std::vector<uint32_t>{0, 0, 0, 0}));
}

TEST_F(CpuMap, SmtSiblingsShareAQueueWhenCpusOutnumberQueues)
{
	// Siblings (c, c+4): CPUs 0..3 get the queues, their siblings follow them.
	for (uint32_t k : {1u, 2u, 3u, 4u}) {
		SCOPED_TRACE(k);
		Topology t = smt_topology(8, 2, false);
		std::vector<uint32_t> m = check_map(t, k);
		ASSERT_EQ(m.size(), 8u);
		for (uint32_t c = 4; c < 8; c++)
			EXPECT_EQ(m[c], m[c - 4]) << "cpu " << c << " and its sibling " << c - 4;
	}
	EXPECT_EQ(check_map(smt_topology(8, 2, false), 2),
		  (std::vector<uint32_t>{0, 1, 0, 1, 0, 1, 0, 1}));
	// Adjacent siblings: the present CPUs take the queues one each first (0 and 1, siblings,
	// get different queues, as in Linux), then each later core shares one queue.
	EXPECT_EQ(check_map(smt_topology(8, 2, true), 2),
		  (std::vector<uint32_t>{0, 1, 0, 0, 1, 1, 0, 0}));
	// 4 threads per core, 2 cores, 3 queues.
	std::vector<uint32_t> m = check_map(smt_topology(8, 4, true), 3);
	EXPECT_EQ(m, (std::vector<uint32_t>{0, 1, 2, 0, 0, 0, 0, 0}));
}

TEST_F(CpuMap, PresentCpusFirstThenPossible)
{
	// 8 CPU ids; possible 0-5 and 7; present (and online) 0, 2, 4.
	Topology t = simple_topology(8);
	for (uint32_t c = 0; c < 8; c++) {
		t.possible[c] = c != 6;
		t.present[c] = t.online[c] = (c % 2 == 0) && c <= 4;
	}
	EXPECT_EQ(check_map(t, 3), (std::vector<uint32_t>{0, 0, 1, 1, 2, 2, 0, 0}));
	// More queues than present CPUs: the possible ones take the rest, each queue gets one.
	std::vector<uint32_t> m = check_map(t, 5);
	EXPECT_EQ(m, (std::vector<uint32_t>{0, 3, 1, 4, 2, 0, 0, 1}));
}

TEST_F(CpuMap, MatchesLinux61OnRandomTopologies)
{
	std::mt19937 rng(61);
	int checked = 0;
	for (int iter = 0; iter < (kTsan ? 60 : 200); iter++) {
		const uint32_t n = 1 + rng() % 12;
		const uint32_t threads = (n % 4 == 0 && rng() % 2) ? 4 : (n % 2 == 0 && rng() % 2) ? 2 : 1;
		Topology t = smt_topology(n, threads, rng() % 2);
		for (uint32_t c = 1; c < n; c++) { // CPU 0 is always there
			t.possible[c] = rng() % 5 != 0;
			t.present[c] = t.possible[c] && rng() % 4 != 0;
			t.online[c] = t.present[c] && rng() % 5 != 0;
		}
		// First siblings: the lowest possible CPU of the core.
		const std::vector<uint32_t> core = t.first_sibling;
		for (uint32_t c = 0; c < n; c++) {
			uint32_t first = c;
			for (uint32_t s = 0; s < c; s++)
				if (t.possible[s] && core[s] == core[c]) {
					first = s;
					break;
				}
			t.node[c] = static_cast<int>(c / 4);
			t.first_sibling[c] = t.possible[c] ? first : c;
		}
		const uint32_t possible = count(t.possible);
		for (uint32_t k = 1; k <= possible; k++) {
			SCOPED_TRACE(::testing::Message() << "iter " << iter << " n " << n << " k " << k);
			check_map(t, k);
			checked++;
			if (HasFailure())
				return;
		}
	}
	EXPECT_GT(checked, 100);
}

TEST_F(CpuMap, HardwareQueuesLiveOnTheirCpusNode)
{
	Topology t = simple_topology(4);
	t.node = {0, 1, 0, 1};
	set_topology(t);
	ScriptBackend be;
	Queue *q = make_queue(make_config(2, 4), &be);
	EXPECT_EQ(q->hctx(0).node, 0);
	EXPECT_EQ(q->hctx(1).node, 1);
	destroy_queue(q);
	cxmq_dev_config cfg = make_config(2, 4);
	cfg.home_node = 0;
	ScriptBackend be2;
	q = make_queue(cfg, &be2);
	EXPECT_EQ(q->hctx(1).node, 0) << "home_node is ignored";
	destroy_queue(q);
}

} // namespace
