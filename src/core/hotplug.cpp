// SPDX-License-Identifier: GPL-2.0
// CPU hotplug (blk-mq's blk_mq_hctx_notify_offline / _online). The CPU map does not change when
// a CPU goes: every possible CPU keeps its hardware queue. But a queue's interrupt may go with
// its CPUs (an affinity-managed one, virtio's, shuts down when the last CPU of its mask goes
// offline), so before the last online CPU of a hardware queue goes, the queue stops taking
// requests (kInactive: a submitter still on that CPU puts its tag back and retries once the
// scheduler has moved it) and every request it holds completes, while the interrupt still works.
#include "queue.h"

namespace cxmq {

namespace {
bool hctx_has_cpu(const HwQueue &h, u32 cpu)
{
	for (u32 i = 0; i < h.nr_ctx; i++)
		if (h.ctx_cpus[i] == cpu)
			return true;
	return false;
}

// blk_mq_hctx_has_online_cpu: a CPU of h other than `going` is online.
bool hctx_has_online_cpu(const HwQueue &h, u32 going)
{
	for (u32 i = 0; i < h.nr_ctx; i++)
		if (h.ctx_cpus[i] != going && cxmq_os_cpu_online(h.ctx_cpus[i]))
			return true;
	return false;
}
} // namespace

void Queue::cpu_offline(u32 cpu)
{
	for (u32 i = 0; i < nr_hw_queues_; i++) {
		HwQueue &h = *hctxs_[i];
		if (!hctx_has_cpu(h, cpu) || hctx_has_online_cpu(h, cpu))
			continue;
		fetch_or(h.state, HwQueue::kInactive);
		// Pairs with get_request's: a tag taken from now on is seen here, or sees kInactive.
		barrier_after_rmw();
		u32 n = h.active();
		add_relaxed(h.offline_drains, u64(1));
		add_relaxed(h.offline_drained, u64(n));
		// Requests staged or refused have a run due already; the rest are with the backend.
		while (n) {
			cxmq_os_msleep(5);
			n = h.active();
		}
	}
}

void Queue::cpu_online(u32 cpu)
{
	for (u32 i = 0; i < nr_hw_queues_; i++) {
		HwQueue &h = *hctxs_[i];
		if (hctx_has_cpu(h, cpu))
			fetch_and(h.state, ~HwQueue::kInactive);
	}
}

} // namespace cxmq
