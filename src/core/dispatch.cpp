// SPDX-License-Identifier: GPL-2.0
// Hardware queue runs (blk_mq_run_hw_queue, blk_mq_dispatch_rq_list): one runner at a time
// sends a hardware queue's dispatch list, then its software queues' staged requests, to the
// backend; what the backend refuses waits at the head of the dispatch list for the next run.
#include "queue.h"

namespace cxmq {

namespace {
u32 dispatch_bucket(u32 n)
{
	if (n == 0)
		return 0;
	u32 b = 1 + (31 - static_cast<u32>(__builtin_clz(n))); // 1 -> 1, 2..3 -> 2, 4..7 -> 3
	return min(b, kDispatchBuckets - 1);
}
} // namespace

// One runner at a time per hardware queue. A run asked for while another is in progress sets
// kRerun, and the runner goes round again before it leaves, so no request inserted before a
// run was asked for is left behind.
void Queue::run_hw_queue(HwQueue &h)
{
	fetch_or(h.state, HwQueue::kRerun);
	while (!(fetch_or(h.state, HwQueue::kRunning) & HwQueue::kRunning)) {
		bool busy = false;
		while (!busy && (fetch_and(h.state, ~HwQueue::kRerun) & HwQueue::kRerun))
			busy = dispatch_once(h);
		fetch_and(h.state, ~HwQueue::kRunning);
		// Even after a busy answer, a run asked for meanwhile is done now: the retry
		// scheduled by the busy path may already have run, found us running, and left
		// only kRerun behind.
		if (!(load_acquire(h.state) & HwQueue::kRerun))
			return;
	}
}

void Queue::run_hw_queue_async(HwQueue &h, u32 delay_us)
{
	// On an online CPU of this queue if there is one (the host falls back to any CPU).
	u32 cpu = h.nr_ctx ? h.ctx_cpus[0] : 0;
	for (u32 i = 0; i < h.nr_ctx; i++) {
		if (cxmq_os_cpu_online(h.ctx_cpus[i])) {
			cpu = h.ctx_cpus[i];
			break;
		}
	}
	cxmq_os_work_schedule(h.run_work, delay_us, cpu);
}

void Queue::run_work_fn(void *arg)
{
	auto *h = static_cast<HwQueue *>(arg);
	h->queue->run_hw_queue(*h);
}

// Sends the dispatch list, then every mapped software queue in order. Returns true when the
// backend was busy: what it did not take is back at the head of the dispatch list. As blk-mq
// does (blk_mq_sched_dispatch_requests), requests the backend refused before go first, and
// while it refuses them the software queues are left alone: their requests stay staged, where
// later bios can still merge into them.
bool Queue::dispatch_once(HwQueue &h)
{
	List list;
	u32 n = 0;
	add_relaxed(h.run, u64(1));
	if (load_relaxed(h.nr_dispatch)) {
		{
			LockGuard g(h.lock);
			list.splice_tail(h.dispatch);
			store_relaxed(h.nr_dispatch, 0u);
		}
		if (send_list(h, list, &n)) {
			account_dispatch_run(h, n);
			return true;
		}
	}
	if (elv_) {
		const bool busy = dispatch_sched(h, &n);
		account_dispatch_run(h, n);
		return busy;
	}
	for (u32 i = 0; i < h.nr_ctx; i++) {
		SwQueue &c = ctx(h.ctx_cpus[i], h.type);
		if (!load_relaxed(c.nr_pending))
			continue;
		LockGuard g(c.lock);
		list.splice_tail(c.rq_list);
		store_relaxed(c.nr_pending, 0u);
		c.last_merge = nullptr;
	}
	const bool busy = send_list(h, list, &n);
	account_dispatch_run(h, n);
	return busy;
}

// Hands the list to the backend in order, `last` on its final request. Returns true when the
// backend was busy: the rest of the list is then back at the head of the dispatch list, and a
// run is due on the next completion (or after kBusyRetryDelayUs).
bool Queue::send_list(HwQueue &h, List &list, u32 *n)
{
	bool uncommitted = false; // sent with `last` false, and nothing with `last` since
	while (ListNode *node = list.pop_front()) {
		Request &rq = *Request::from_node(node);
		if (cxmq_unlikely(h.shared && elv_ && !rq.driver_tag) && !bypass_driver_tag(h, rq)) {
			// No tag of the set for a flush or FUA write that went past the scheduler: it
			// and the rest wait at the head of the dispatch list for a freed one.
			list.push_front(node);
			park_list(h, list);
			if (uncommitted)
				backend_->commit_rqs(h);
			return true;
		}
		start_request(rq);
		const bool last = list.empty();
		cxmq_status st = backend_->queue_rq(h, rq, last);
		if (cxmq_likely(st == CXMQ_STS_OK)) {
			uncommitted = !last;
			(*n)++;
			continue;
		}
		if (st == CXMQ_STS_RESOURCE) {
			if (unstart_request(rq)) // (else a timeout ended it meanwhile)
				list.push_front(node);
			add_relaxed(h.busy_events, u64(1));
			park_list(h, list);
			if (uncommitted)
				backend_->commit_rqs(h);
			fetch_or(h.state, HwQueue::kRestart);
			run_hw_queue_async(h, kBusyRetryDelayUs);
			return true;
		}
		end_request(rq, st);
		(*n)++;
		if (last && uncommitted)
			backend_->commit_rqs(h);
	}
	return false;
}

// What a run could not send goes back to the head of the dispatch list, in order.
void Queue::park_list(HwQueue &h, List &list)
{
	u32 left = 0;
	list.for_each([&left](ListNode *) { left++; });
	LockGuard g(h.lock);
	h.dispatch.splice_front(list);
	store_relaxed(h.nr_dispatch, h.nr_dispatch + left);
}

void Queue::account_dispatch_run(HwQueue &h, u32 n)
{
	add_relaxed(h.dispatched[dispatch_bucket(n)], u64(1));
	trace_hctx(CXMQ_TRACE_RUN, h, cxmq_os_this_cpu(), n);
}

} // namespace cxmq
