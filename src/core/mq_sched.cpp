// SPDX-License-Identifier: GPL-2.0
// The queue's side of IO scheduling (the kernel's blk-mq-sched.c and elevator_switch): attaching
// a scheduler or none, the request pools it needs (nr_requests), bios into the scheduler, runs
// that ask it for requests within the driver's depth, and completions it hears of. The
// interface is elevator.h; the schedulers are deadline.* (and, later, kyber).
#include "queue.h"

namespace cxmq {

namespace {
// nr_requests: BLKDEV_MIN_RQ, BLKDEV_DEFAULT_RQ (a scheduler's default is twice the smaller of
// it and hw_queue_depth, as blk_mq_init_sched sets), MAX_SCHED_RQ.
constexpr u32 kMinRequests = 4;
constexpr u32 kDefaultRequests = 128;
constexpr u32 kMaxSchedRequests = 16 * kDefaultRequests;
// Requests a run takes from the scheduler before it sends them (one doorbell per batch).
constexpr u32 kSchedBatch = 32;
} // namespace

// Every hardware queue gets a new request pool of `depth` requests set up for scheduler `elv`
// (the backend's and the scheduler's per-queue state with it), and keeps its counters. All or
// nothing: on failure the old ones stay. The queue is frozen: no request exists, and only the
// run work scheduled by the last completions may still be pending.
int Queue::rebuild_hctxs(u32 depth, Elevator *elv)
{
	for (u32 i = 0; i < nr_hw_queues_; i++)
		cxmq_os_work_cancel_sync(hctxs_[i]->run_work);
	auto **fresh = static_cast<HwQueue **>(
		cxmq_os_zalloc(sizeof(HwQueue *) * nr_hw_queues_, cfg_.home_node));
	if (!fresh)
		return -CXMQ_ENOMEM;
	u32 got = 0;
	while (got < nr_hw_queues_ &&
	       (fresh[got] = alloc_hctx(got, hctxs_[got]->type, depth, elv)) != nullptr)
		got++;
	if (got < nr_hw_queues_) {
		for (u32 i = 0; i < got; i++)
			release_hctx(fresh[i], elv);
		cxmq_os_free(fresh);
		return -CXMQ_ENOMEM;
	}
	for (u32 i = 0; i < nr_hw_queues_; i++) {
		HwQueue &o = *hctxs_[i], &n = *fresh[i];
		n.queued = o.queued;
		n.run = o.run;
		for (u32 b = 0; b < kDispatchBuckets; b++)
			n.dispatched[b] = o.dispatched[b];
		n.busy_events = o.busy_events;
		n.direct_issued = o.direct_issued;
		n.poll_considered = o.poll_considered;
		n.poll_invoked = o.poll_invoked;
		n.poll_success = o.poll_success;
		release_hctx(&o, elv_);
		hctxs_[i] = &n;
	}
	cxmq_os_free(fresh);
	assign_ctxs();
	return 0;
}

u32 Queue::max_nr_requests() const
{
	return elv_ ? kMaxSchedRequests : cfg_.hw_queue_depth;
}

// elevator_switch: the new scheduler, with blk_mq_init_sched's pool (twice the smaller of
// hw_queue_depth and BLKDEV_DEFAULT_RQ), or none with hw_queue_depth. The current one again
// changes nothing.
int Queue::set_elevator(const ElevatorType *type)
{
	if (type == elv_type_)
		return 0;
	const u32 depth = type ? 2 * min(cfg_.hw_queue_depth, kDefaultRequests) : cfg_.hw_queue_depth;
	Elevator *e = nullptr;
	if (type) {
		int err;
		e = type->create(*this, &err);
		if (!e)
			return err;
	}
	int ret = rebuild_hctxs(depth, e);
	if (ret) {
		if (e)
			e->release();
		return ret;
	}
	if (elv_)
		elv_->release();
	elv_ = e;
	elv_type_ = type;
	nr_requests_ = depth;
	if (e)
		e->depth_updated(depth);
	return 0;
}

// blk_mq_update_nr_requests: BLKDEV_MIN_RQ up to hw_queue_depth (none: the pool only shrinks)
// or MAX_SCHED_RQ (a scheduler's pool grows too).
int Queue::set_nr_requests(u32 nr)
{
	const u32 hi = max_nr_requests();
	if (nr < kMinRequests || nr > hi) {
		cxmq_os_log(CXMQ_LOG_ERR, "cxmq: nr_requests=%u is invalid: must be %u..%u\n", nr,
			    kMinRequests, hi);
		return -CXMQ_EINVAL;
	}
	if (nr == nr_requests_)
		return 0;
	if (set_ && !elv_) { // the pool is the set's: nr_requests bounds this queue's part of it
		store_relaxed(nr_requests_, nr);
		return 0;
	}
	int ret = rebuild_hctxs(nr, elv_);
	if (ret)
		return ret;
	nr_requests_ = nr;
	if (elv_)
		elv_->depth_updated(nr);
	return 0;
}

// With a scheduler: the bio merges into a request it holds, or becomes a request inserted into
// it, and the hardware queue runs. Flushes and FUA writes bypass it (as blk-mq's flush
// machinery does), to the dispatch list.
void Queue::submit_sched(HwQueue &h, u32 cpu, const Bio &b, bool nowait)
{
	cxmq_limits lim;
	limits(&lim);
	if (lim.nomerges < 2 && bio_mergeable(b) && elv_->bio_merge(h, b, lim)) {
		add_relaxed(ctx(cpu, h.type).sched_merged, u64(1));
		return;
	}
	if (Request *rq = get_request(h, cpu, b, nowait))
		issue(*rq->hctx, *rq);
}

// A new request into the scheduler; flushes and FUA writes past it, at the end of the dispatch
// list (blk_mq_request_bypass_insert).
void Queue::insert_sched(HwQueue &h, Request &rq)
{
	if (rq.op == CXMQ_OP_FLUSH || (rq.flags & (CXMQ_BIO_FUA | CXMQ_BIO_PREFLUSH))) {
		LockGuard g(h.lock);
		h.dispatch.push_back(&rq.node);
		store_relaxed(h.nr_dispatch, h.nr_dispatch + 1);
		return;
	}
	Request *one = &rq;
	trace_rq(CXMQ_TRACE_INSERT, rq);
	elv_->insert_requests(h, &one, 1);
}

// __blk_mq_do_dispatch_sched: asks the scheduler for up to kSchedBatch requests while fewer than
// hw_queue_depth of its requests are out, and sends them as one batch. At the depth, the run
// ends and the next completion runs the queue again (kRestart); after a full batch, the run
// goes round again (kRerun).
bool Queue::dispatch_sched(HwQueue &h, u32 *n)
{
	List list;
	u32 k = 0;
	while (k < kSchedBatch) {
		if (__atomic_load_n(&h.sched_inflight, __ATOMIC_SEQ_CST) >= cfg_.hw_queue_depth) {
			fetch_or(h.state, HwQueue::kRestart);
			// Against end_request (its decrement, then its look at kRestart): a completion
			// that came before the flag was set is seen here.
			if (__atomic_load_n(&h.sched_inflight, __ATOMIC_SEQ_CST) >= cfg_.hw_queue_depth)
				break;
			continue;
		}
		u32 driver_tag = 0;
		if (h.shared) {
			if (!elv_->has_work(h))
				break;
			driver_tag = get_driver_tag(h);
			if (!driver_tag)
				break;
		}
		Request *rq = elv_->dispatch_request(h);
		if (!rq) {
			if (driver_tag)
				shared_tags::put(h, driver_tag - 1, cxmq_os_this_cpu());
			break;
		}
		rq->driver_tag = driver_tag;
		rq->rq_flags |= Request::kSched;
		__atomic_add_fetch(&h.sched_inflight, 1u, __ATOMIC_SEQ_CST);
		list.push_back(&rq->node);
		k++;
	}
	if (k == kSchedBatch && elv_->has_work(h))
		fetch_or(h.state, HwQueue::kRerun);
	return send_list(h, list, n);
}

// A shared set's queue with a scheduler: a request it gives out holds one of the set's tags
// too (blk_mq_get_driver_tag), within the queue's share: 1 + the tag (Request::driver_tag), or
// 0 for none, and then the queue runs again when a tag is freed (kRestart).
u32 Queue::get_driver_tag(HwQueue &h)
{
	shared_tags::Why why;
	s32 t = shared_tags::try_get(h, cxmq_os_this_cpu(), &why);
	if (t == TagMap::kNoTag) {
		fetch_or(h.state, HwQueue::kRestart);
		shared_tags::wait_sched(h);
		// Against put: a tag freed before the flag was set is seen here.
		t = shared_tags::try_get(h, cxmq_os_this_cpu(), &why);
	}
	return t == TagMap::kNoTag ? 0 : u32(t) + 1;
}

// A request that went past the scheduler (flush, FUA) holds one of the set's tags too when it is
// sent, as blk-mq gives every request a driver tag at dispatch. False: none now (kRestart set).
bool Queue::bypass_driver_tag(HwQueue &h, Request &rq)
{
	rq.driver_tag = get_driver_tag(h);
	return rq.driver_tag != 0;
}

// The scheduler hears of every request it prepared as it completes (finish_request); one it
// gave out no longer counts against hw_queue_depth.
void Queue::finish_sched(HwQueue &h, Request &rq)
{
	if (rq.rq_flags & Request::kSched)
		elv_->completed_request(rq, elv_type_->wants_latency ? cxmq_os_now_ns() : 0);
	elv_->finish_request(rq);
	if (rq.driver_tag) {
		shared_tags::put(h, rq.driver_tag - 1, cxmq_os_this_cpu());
		rq.driver_tag = 0;
	}
	if (rq.rq_flags & Request::kSched)
		__atomic_sub_fetch(&h.sched_inflight, 1u, __ATOMIC_SEQ_CST);
}

} // namespace cxmq
