// SPDX-License-Identifier: GPL-2.0
// The CPU -> hardware queue maps (blk-mq-cpumap.c): one per hardware queue type, and which
// software queues feed each hardware queue.
#include "queue.h"

namespace cxmq {

// The CPU -> hardware queue map of each type, as blk-mq's (Linux 6.1 blk_mq_map_queues on each
// of the tag set's maps, the poll map's queues numbered after the default ones; the default
// one the backend's, where it has one: virtio's by interrupt affinity). Without poll
// queues the poll map is the default one (blk_mq_map_swqueue), though nothing is sent by it.
void Queue::map_queues()
{
	if (!backend_->map_queues(cpu_map_, nr_cpu_ids_, 0, nr_default_queues()))
		map_type(cpu_map_, 0, nr_default_queues());
	u32 *poll_map = cpu_map_ + kHctxPoll * nr_cpu_ids_;
	if (nr_poll_)
		map_type(poll_map, nr_default_queues(), nr_poll_);
	else
		for (u32 cpu = 0; cpu < nr_cpu_ids_; cpu++)
			poll_map[cpu] = cpu_map_[cpu];
	for (u32 i = 0; i < nr_cpu_ids_ * kHctxTypes; i++)
		ctxs_[i].hctx_idx = cpu_map_[i];
}

// blk_mq_map_queues: queues are handed out to present CPUs first, then to the remaining
// possible CPUs in order; once every queue has a CPU, a CPU shares the queue of its first SMT
// sibling. Queue numbers start at `offset`.
void Queue::map_type(u32 *map, u32 offset, u32 nr)
{
	constexpr u32 kUnset = ~0u;
	u32 q = 0;
	for (u32 cpu = 0; cpu < nr_cpu_ids_; cpu++)
		map[cpu] = kUnset;
	for (u32 cpu = 0; cpu < nr_cpu_ids_ && q < nr; cpu++)
		if (cxmq_os_cpu_present(cpu))
			map[cpu] = offset + q++ % nr;
	for (u32 cpu = 0; cpu < nr_cpu_ids_; cpu++) {
		if (map[cpu] != kUnset)
			continue;
		if (!cxmq_os_cpu_possible(cpu)) {
			map[cpu] = offset; // never submits; keeps lookups in range
			continue;
		}
		u32 sibling = cxmq_os_cpu_first_sibling(cpu);
		if (q < nr || sibling == cpu || sibling >= nr_cpu_ids_ || map[sibling] == kUnset)
			map[cpu] = offset + q++ % nr;
		else
			map[cpu] = map[sibling];
	}
}

// Every possible CPU's software queue of each type feeds the hardware queue of that type its
// CPU maps to, online or not: a run drains all of them, so a request staged by a CPU that goes
// offline is never stranded.
void Queue::assign_ctxs()
{
	for (u32 i = 0; i < nr_hw_queues_; i++)
		hctxs_[i]->nr_ctx = 0;
	for (u32 type = 0; type < (nr_poll_ ? kHctxTypes : 1u); type++) {
		for (u32 cpu = 0; cpu < nr_cpu_ids_; cpu++) {
			if (!cxmq_os_cpu_possible(cpu))
				continue;
			HwQueue &h = *hctxs_[map_cpu(cpu, type)];
			h.ctx_cpus[h.nr_ctx++] = cpu;
		}
	}
}

} // namespace cxmq
