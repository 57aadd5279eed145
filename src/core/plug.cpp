// SPDX-License-Identifier: GPL-2.0
// Plugging: while the submitting task holds a plug (blk_start_plug), its bios become requests
// collected on the task's plug for this queue instead of being issued one by one; a bio that
// continues the newest of them merges into it (blk_attempt_plug_merge). When the task unplugs
// (blk_finish_plug, or it is about to sleep), the batch goes to the software queues, one lock
// hold per software queue, and their hardware queues run once each: the backend is told `last`
// only on the final request of a run (doorbell batching). An unplug on the way to sleep must
// not block: the runs are then left to the hardware queues' run work.
#include "queue.h"

namespace cxmq {

CXMQ_HOT Plug *Queue::current_plug()
{
	return static_cast<Plug *>(cxmq_os_plug(this, sizeof(Plug), unplug_fn));
}

void Queue::unplug_fn(void *storage, int from_schedule)
{
	auto *p = static_cast<Plug *>(storage);
	if (!p->nr)
		return;
	// Each plugged request holds a usage reference: the queue outlives its plug.
	p->rqs[0]->hctx->queue->flush_plug(*p, from_schedule);
}

// Returns false when the task holds no plug (the caller submits unplugged). Otherwise the
// bio is merged into the plug's newest request, or made a request of its own on the plug, or
// ended (AGAIN under NOWAIT with no free request).
CXMQ_HOT bool Queue::plug_bio(const Bio &b, u32 cpu, bool nowait)
{
	Plug *p = current_plug();
	if (!p)
		return false;
	cxmq_limits lim;
	limits(&lim);
	if (p->nr && lim.nomerges < 2 && bio_mergeable(b) && plug_merge(*p, b, lim))
		return true;
	Request *rq = get_request(hctx_for_cpu(cpu, bio_type(b)), cpu, b, nowait);
	if (!rq)
		return true;
	// Waiting for a tag sleeps, and a sleep unplugs: look the plug up again.
	p = current_plug();
	if (cxmq_unlikely(!p)) {
		issue(*rq->hctx, *rq);
		return true;
	}
	if (p->nr >= Plug::kMaxRequests ||
	    (p->nr && lim.nomerges < 2 && p->rqs[p->nr - 1]->nr_sectors >= Plug::kFlushSectors))
		flush_plug(*p, false);
	if (!p->nr)
		trace_hctx(CXMQ_TRACE_PLUG, *rq->hctx, cpu);
	p->rqs[p->nr++] = rq;
	return true;
}

// Only the newest request of the plug is tried, as blk-mq does for a plug of one queue.
bool Queue::plug_merge(Plug &p, const Bio &b, const cxmq_limits &lim)
{
	Request &rq = *p.rqs[p.nr - 1];
	if (attempt_merge(rq, b, lim, MergeSite::kPlug) != MergeResult::kMerged)
		return false;
	add_relaxed(rq_ctx(rq).plug_merged, u64(1));
	cxmq_os_bio_merged(b.bio, b.cookie, rq.cookie);
	return true;
}

// blk_mq_plug_issue_direct: a batch made on one software queue whose hardware queue has nothing
// waiting (nothing refused, staged or being run) goes straight to the backend, in order, `last`
// on its final request, without a lock or a list. A busy answer leaves the rest on the dispatch
// list, as a run would. Returns false when the batch must take the staged path.
bool Queue::issue_plug_direct(Plug &p)
{
	const u32 cpu = p.rqs[0]->ctx_cpu;
	HwQueue &h = *p.rqs[0]->hctx; // a software queue's requests are all of one hardware queue
	for (u32 i = 1; i < p.nr; i++)
		if (&rq_ctx(*p.rqs[i]) != &rq_ctx(*p.rqs[0]))
			return false;
	if (!claim_idle(h, cpu))
		return false;
	List list;
	for (u32 i = 0; i < p.nr; i++)
		list.push_back(&p.rqs[i]->node);
	add_relaxed(h.direct_issued, u64(p.nr));
	u32 sent = 0;
	send_list(h, list, &sent);
	release_idle(h);
	return true;
}

// Sends the plug's requests on: straight to the backend when they allow it (above), else to
// their software queues (the one each was made on), in order, one lock hold per software
// queue, then runs each hardware queue they feed once: now, or from its run work when the
// task is on its way to sleep (which must not block, and leaves everything to the run work).
void Queue::flush_plug(Plug &p, bool from_schedule)
{
	const u32 n = p.nr;
	SwQueue &me = ctx(cxmq_os_this_cpu());
	add_relaxed(me.unplugs, u64(1));
	add_relaxed(me.unplugged, u64(n));
	add_relaxed(me.unplug_sizes[min(31u - u32(__builtin_clz(n)), kUnplugBuckets - 1)], u64(1));
	trace_hctx(CXMQ_TRACE_UNPLUG, *p.rqs[0]->hctx, cxmq_os_this_cpu(), n, from_schedule);
	if (elv_) {
		flush_plug_sched(p, from_schedule);
		return;
	}
	if (!from_schedule && issue_plug_direct(p)) {
		p.nr = 0;
		return;
	}
	p.nr = 0;
	bool sent[Plug::kMaxRequests] = {};
	HwQueue *runs[Plug::kMaxRequests];
	u32 nr_runs = 0;
	for (u32 i = 0; i < n; i++) {
		if (sent[i])
			continue;
		HwQueue *h = p.rqs[i]->hctx; // read first: once staged, a request may complete
		SwQueue &c = rq_ctx(*p.rqs[i]);
		{
			LockGuard g(c.lock);
			u32 added = 0;
			for (u32 j = i; j < n; j++) {
				if (sent[j] || &rq_ctx(*p.rqs[j]) != &c)
					continue;
				trace_rq(CXMQ_TRACE_INSERT, *p.rqs[j]);
				c.rq_list.push_back(&p.rqs[j]->node);
				if (!c.last_merge)
					c.last_merge = p.rqs[j];
				sent[j] = true;
				added++;
			}
			store_relaxed(c.nr_pending, c.nr_pending + added);
		}
		bool known = false;
		for (u32 k = 0; k < nr_runs; k++)
			known |= runs[k] == h;
		if (!known)
			runs[nr_runs++] = h;
	}
	for (u32 k = 0; k < nr_runs; k++) {
		if (from_schedule)
			run_hw_queue_async(*runs[k], 0);
		else
			run_hw_queue(*runs[k]);
	}
}

// With a scheduler (blk_mq_sched_insert_requests): each hardware queue's requests of the batch go
// into the scheduler at once, in order, and each hardware queue runs once.
void Queue::flush_plug_sched(Plug &p, bool from_schedule)
{
	const u32 n = p.nr;
	p.nr = 0;
	bool sent[Plug::kMaxRequests] = {};
	Request *batch[Plug::kMaxRequests];
	for (u32 i = 0; i < n; i++) {
		if (sent[i])
			continue;
		HwQueue *h = p.rqs[i]->hctx;
		u32 k = 0;
		for (u32 j = i; j < n; j++) {
			if (!sent[j] && p.rqs[j]->hctx == h) {
				batch[k++] = p.rqs[j];
				sent[j] = true;
			}
		}
		for (u32 j = 0; j < k; j++)
			trace_rq(CXMQ_TRACE_INSERT, *batch[j]);
		elv_->insert_requests(*h, batch, k);
		if (from_schedule)
			run_hw_queue_async(*h, 0);
		else
			run_hw_queue(*h);
	}
}

} // namespace cxmq
