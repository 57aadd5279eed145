// SPDX-License-Identifier: GPL-2.0
// The queue: its setup, its hardware queues (made, resized, freed) and submission: a bio into a
// request (plug.cpp, merge.cpp), the request straight to the backend or staged on its software
// queue. Hardware queue runs are dispatch.cpp's, completions complete.cpp's.
#include "queue.h"

namespace cxmq {

Queue *Queue::create(const cxmq_dev_config &cfg, Backend *backend, int *err, TagSet *set)
{
	Queue *q = make<Queue>(cfg.home_node);
	if (!q) {
		backend->release();
		*err = -CXMQ_ENOMEM;
		return nullptr;
	}
	q->backend_ = backend;
	q->set_ = set;
	int ret = q->init(cfg);
	if (ret) {
		destroy(q);
		*err = ret;
		return nullptr;
	}
	*err = 0;
	return q;
}

int Queue::init(const cxmq_dev_config &cfg)
{
	cfg_ = cfg;
	if (set_) { // the set's depth and counts become ours
		int ret = set_->join(*this, cfg_);
		if (ret)
			return ret;
		joined_ = true;
	}
	nr_cpu_ids_ = cxmq_os_nr_cpu_ids();
	for (u32 cpu = 0; cpu < nr_cpu_ids_; cpu++)
		max_hw_queues_ += cxmq_os_cpu_possible(cpu) ? 1 : 0;
	nr_hw_queues_ = min(max(cfg_.submit_queues, 1u), max(max_hw_queues_, 1u));
	max_hw_queues_ = max(max_hw_queues_, nr_hw_queues_);
	nr_poll_ = min(cfg_.poll_queues, max_hw_queues_);
	nr_hw_queues_ += nr_poll_;
	if (!freeze_lock_.init() || init_remote())
		return -CXMQ_ENOMEM;
	freeze_wq_ = cxmq_os_waitq_create(cfg.home_node);
	usage_ = cxmq_os_usage_create(usage_zero, this);
	timeout_work_ = cxmq_os_work_create_background(timeout_work_fn, this, cfg.home_node);
	timeout_units_ = rq_timeout::ms_to_units(io_timeout_ms_);
	const u32 nr_ctxs = nr_cpu_ids_ * kHctxTypes;
	ctxs_ = static_cast<SwQueue *>(cxmq_os_zalloc(sizeof(SwQueue) * nr_ctxs, cfg.home_node));
	cpu_map_ = static_cast<u32 *>(cxmq_os_zalloc(sizeof(u32) * nr_ctxs, cfg.home_node));
	hctxs_ = static_cast<HwQueue **>(
		cxmq_os_zalloc(sizeof(HwQueue *) * max_hw_queues_ * kHctxTypes, cfg.home_node));
	if (!freeze_wq_ || !usage_ || !timeout_work_ || !ctxs_ || !cpu_map_ || !hctxs_)
		return -CXMQ_ENOMEM;
	for (u32 i = 0; i < nr_ctxs; i++) {
		SwQueue *c = new (&ctxs_[i]) SwQueue();
		nr_ctxs_constructed_ = i + 1;
		c->cpu = i % nr_cpu_ids_;
		c->type = i / nr_cpu_ids_;
		if (!c->lock.init(cxmq_os_cpu_to_node(c->cpu)))
			return -CXMQ_ENOMEM;
	}
	nr_requests_ = cfg_.hw_queue_depth;
	map_queues();
	for (u32 i = 0; i < nr_hw_queues_; i++) {
		hctxs_[i] = alloc_hctx(i, i < nr_default_queues() ? kHctxDefault : kHctxPoll,
				       nr_requests_, elv_);
		if (!hctxs_[i])
			return -CXMQ_ENOMEM;
	}
	assign_ctxs();
	if (cfg.sched) // the configuration's first scheduler (checked: an index in the list)
		return set_elevator(kElevatorTypes[cfg.sched - 1]);
	return 0;
}

u32 Queue::update_nr_hw_queues(u32 want, u32 want_poll)
{
	want = min(max(want, 1u), max_hw_queues_);
	want_poll = min(want_poll, max_hw_queues_);
	// Frozen: no request is in flight, so every list is empty and no tag is taken; only a run
	// scheduled by the last completions may still be pending.
	for (u32 i = 0; i < nr_hw_queues_; i++)
		cxmq_os_work_cancel_sync(hctxs_[i]->run_work);
	const u32 old = nr_default_queues(), old_poll = nr_poll_;
	// The poll queues follow the default ones: they wait at the end of hctxs_ while the
	// default ones change (copied from the last: where they wait is never before where they
	// are), then move in behind them.
	const u32 park = kHctxTypes * max_hw_queues_ - old_poll;
	for (u32 k = old_poll; k-- > 0;) {
		HwQueue *h = hctxs_[old + k];
		hctxs_[old + k] = nullptr;
		hctxs_[park + k] = h;
	}
	nr_poll_ = 0;
	nr_hw_queues_ = old;
	const u32 got = resize_type(old, want, kHctxDefault);
	const u32 kept = min(old_poll, want_poll);
	for (u32 k = 0; k < old_poll; k++) {
		HwQueue *h = hctxs_[park + k];
		hctxs_[park + k] = nullptr;
		if (k >= kept) {
			release_hctx(h, elv_);
			continue;
		}
		h->index = got + k;
		hctxs_[got + k] = h;
	}
	nr_poll_ = kept;
	nr_hw_queues_ = got + kept;
	resize_type(kept, want_poll, kHctxPoll);
	map_queues();
	assign_ctxs();
	if (set_)
		rebind_shared();
	return got;
}

// Grows or shrinks the queues of one type, the last of their kind (the poll ones after the
// default ones), from old_nr to want; returns how many it has (fewer only if memory ran short).
u32 Queue::resize_type(u32 old_nr, u32 want, u32 type)
{
	const u32 off = type == kHctxPoll ? nr_default_queues() : 0;
	auto set_nr = [&](u32 n) {
		if (type == kHctxPoll)
			nr_poll_ = n;
		nr_hw_queues_ = off + n + (type == kHctxPoll ? 0 : nr_poll_);
	};
	for (u32 i = want; i < old_nr; i++) {
		release_hctx(hctxs_[off + i], elv_);
		hctxs_[off + i] = nullptr;
	}
	set_nr(want);
	if (want <= old_nr)
		return want;
	map_queues(); // new queues take the node of their first CPU under the new map
	u32 got = old_nr;
	while (got < want &&
	       (hctxs_[off + got] = alloc_hctx(off + got, type, nr_requests_, elv_)) != nullptr)
		got++;
	if (got < want)
		cxmq_os_log(CXMQ_LOG_WARN, "cxmq: out of memory for %s queues: using %u of %u\n",
			    type == kHctxPoll ? "poll" : "hardware", got, want);
	set_nr(got);
	return got;
}

HwQueue *Queue::alloc_hctx(u32 index, u32 type, u32 depth, Elevator *elv)
{
	int node = cfg_.home_node;
	u32 nr_ctx = 0;
	for (u32 cpu = 0; cpu < nr_cpu_ids_; cpu++) {
		if (map_cpu(cpu, type) == index && cxmq_os_cpu_possible(cpu)) {
			if (nr_ctx++ == 0 && node < 0)
				node = cxmq_os_cpu_to_node(cpu);
		}
	}
	// A shared set's queue without a scheduler takes its tags from the set (the pool as deep).
	SharedTags *sh = set_ ? set_->tags(index) : nullptr;
	CXMQ_BUG_ON(set_ && !sh);
	if (sh && !elv)
		depth = sh->map.depth();
	HwQueue *h = make<HwQueue>(node);
	if (!h)
		return nullptr;
	h->queue = this;
	h->backend = backend_;
	h->index = index;
	h->type = type;
	h->node = node;
	h->rq_stride = static_cast<u32>(round_up(Request::pdu_offset() + backend_->pdu_size(), kCacheLine));
	h->rq_mem = static_cast<char *>(cxmq_os_zalloc(size_t(h->rq_stride) * depth, node));
	h->ctx_cpus = static_cast<u32 *>(cxmq_os_zalloc(sizeof(u32) * nr_cpu_ids_, node));
	h->run_work = cxmq_os_work_create(run_work_fn, h, node);
	h->tags = sh && !elv ? &sh->map : &h->own_tags;
	if (sh)
		h->fair_wq = cxmq_os_waitq_create(node);
	if (!h->lock.init(node) || (h->tags == &h->own_tags && h->own_tags.init(depth, node)) ||
	    !h->rq_mem || !h->ctx_cpus || !h->run_work || (sh && !h->fair_wq)) {
		free_hctx(h);
		return nullptr;
	}
	for (u32 tag = 0; tag < depth; tag++) {
		Request *rq = new (h->rq(tag)) Request();
		rq->tag = tag;
		rq->hctx = h;
	}
	if (backend_->init_hctx(*h)) {
		free_hctx(h);
		return nullptr;
	}
	if (elv && elv->init_hctx(*h)) {
		backend_->exit_hctx(*h);
		free_hctx(h);
		return nullptr;
	}
	if (sh)
		shared_tags::bind(*h, sh);
	return h;
}

// Tears down a hardware queue that alloc_hctx set up (with the same scheduler).
void Queue::release_hctx(HwQueue *h, Elevator *elv)
{
	if (h->shared) {
		// Another member's completion may have scheduled a run of it until it left the
		// members (under their lock): none runs while it is torn down.
		shared_tags::unbind(*h);
		cxmq_os_work_cancel_sync(h->run_work);
	}
	if (elv)
		elv->exit_hctx(*h);
	backend_->exit_hctx(*h);
	free_hctx(h);
}

void Queue::free_hctx(HwQueue *h)
{
	if (!h)
		return;
	if (h->run_work)
		cxmq_os_work_destroy(h->run_work);
	if (h->fair_wq)
		cxmq_os_waitq_destroy(h->fair_wq);
	cxmq_os_free(h->rq_mem);
	cxmq_os_free(h->ctx_cpus);
	destroy(h);
}

Queue::~Queue()
{
	if (hctxs_) {
		for (u32 i = 0; i < max_hw_queues_ * kHctxTypes; i++) {
			if (!hctxs_[i])
				continue;
			release_hctx(hctxs_[i], elv_);
		}
		cxmq_os_free(hctxs_);
	}
	if (joined_)
		set_->leave(*this);
	if (elv_)
		elv_->release();
	if (ctxs_) {
		for (u32 cpu = 0; cpu < nr_ctxs_constructed_; cpu++)
			ctxs_[cpu].~SwQueue();
		cxmq_os_free(ctxs_);
	}
	cxmq_os_free(cpu_map_);
	free_remote();
	if (timeout_work_)
		cxmq_os_work_destroy(timeout_work_);
	if (usage_)
		cxmq_os_usage_destroy(usage_);
	if (freeze_wq_)
		cxmq_os_waitq_destroy(freeze_wq_);
	if (backend_)
		backend_->release();
}

void Queue::set_live()
{
	cxmq_os_usage_switch_to_percpu(usage_);
}

void Queue::shutdown()
{
	store_release(dying_, true);
	freeze();
	cxmq_os_wake_all(freeze_wq_); // submitters waiting for an unfreeze fail now
	// The queue is freed after this: wait until nothing can touch it any more. The last
	// completion's on_zero callback may still be running after the count read zero, and
	// submitters woken above may still be on their way out of enter().
	while (!load_acquire(zero_done_) || load_acquire(enter_sleepers_))
		cxmq_os_msleep(1);
	for (u32 i = 0; i < nr_hw_queues_; i++)
		cxmq_os_work_cancel_sync(hctxs_[i]->run_work);
	cxmq_os_work_cancel_sync(timeout_work_); // (it found nothing in flight, or will)
}

// ---- submission ----

void Queue::submit_bio(void *bio, cxmq_op op, u64 sector, u32 nr_sectors, u32 flags,
		       u64 cookie)
{
	Bio b{};
	b.bio = bio;
	b.op = static_cast<u16>(op);
	b.sector = sector;
	b.nr_sectors = nr_sectors;
	b.flags = flags;
	b.cookie = cookie;
	b.nr_segs = 1;
	submit(b);
}

CXMQ_HOT void Queue::submit(const Bio &b)
{
	const bool nowait = b.flags & CXMQ_BIO_NOWAIT;
	bool dying;
	// Two usage references: the request's (dropped by its completion, which may come before
	// queue_rq returns) and this submission's, dropped on the way out, so that a freeze (and
	// with it a change of the hardware queues) also waits for submitters still touching a
	// hardware queue after their request completed.
	if (cxmq_unlikely(!enter(nowait, &dying))) {
		cxmq_os_bio_fail(b.bio, dying ? CXMQ_STS_IOERR : CXMQ_STS_AGAIN, b.cookie);
		return;
	}
	// Flushes and FUA writes are never plugged (blk-mq sends them to its flush machinery).
	const bool pluggable = b.op != CXMQ_OP_FLUSH &&
			       !(b.flags & (CXMQ_BIO_FUA | CXMQ_BIO_PREFLUSH));
	const u32 cpu = cxmq_os_this_cpu();
	if (!pluggable || !plug_bio(b, cpu, nowait))
		submit_rq(b, cpu, nowait);
	exit();
}

// A free tag of hardware queue h for bio b, or kNoTag when none is free under NOWAIT.
CXMQ_HOT s32 Queue::get_tag(HwQueue &h, u32 cpu, const Bio &b, bool nowait)
{
	// A scheduler may keep some requests to part of the pool (limit_depth).
	const u32 shallow = elv_ ? elv_->shallow_depth(h, b) : 0;
	const bool shared = h.shared && !elv_;
	shared_tags::Why why;
	s32 tag = shared ? shared_tags::try_get(h, cpu, &why) : h.tags->try_get(cpu, shallow);
	if (cxmq_unlikely(tag == TagMap::kNoTag) && !nowait)
		tag = static_cast<s32>(shared ? shared_tags::get_wait(h, cpu)
					      : h.tags->get_wait(cpu, shallow));
	return tag;
}

// A free request holding bio b, with its usage reference, of hardware queue h or, when h's
// CPUs went offline meanwhile (a submitter still on the last of them: hotplug.cpp), of the
// queue of the CPU the submitter then runs on; nullptr when none is free under NOWAIT (the
// bio is then ended with AGAIN). The caller issues it to rq->hctx.
CXMQ_HOT Request *Queue::get_request(HwQueue &h0, u32 cpu, const Bio &b, bool nowait)
{
	HwQueue *h = &h0;
	s32 tag;
	for (;;) {
		tag = get_tag(*h, cpu, b, nowait);
		if (cxmq_unlikely(tag == TagMap::kNoTag))
			break;
		// Pairs with cpu_offline's barrier: it sees this tag taken, or this sees kInactive.
		barrier_after_rmw();
		if (cxmq_likely(!(load_relaxed(h->state) & HwQueue::kInactive)))
			break;
		put_tag(*h, static_cast<u32>(tag), cpu);
		tag = TagMap::kNoTag;
		if (nowait)
			break;
		// The hotplug thread moves this task off the going CPU when it sleeps.
		cxmq_os_msleep(3);
		cpu = cxmq_os_this_cpu();
		h = &hctx_for_cpu(cpu, h->type);
	}
	if (cxmq_unlikely(tag == TagMap::kNoTag)) {
		cxmq_os_bio_fail(b.bio, CXMQ_STS_AGAIN, b.cookie);
		return nullptr;
	}
	cxmq_os_usage_get(usage_); // the request's, dropped by end_request
	Request &rq = *h->rq(static_cast<u32>(tag));
	rq.init_from(b, cpu);
	if (h->type == kHctxPoll) // where its submitter polls (before it can complete)
		cxmq_os_bio_set_poll_queue(b.bio, h->index);
	SwQueue &c = ctx(cpu, h->type);
	add_relaxed(c.dispatched[rq.is_write()], u64(1));
	add_relaxed(h->queued, u64(1));
	if (elv_)
		elv_->prepare_request(rq);
	return &rq;
}

// Without a plug: into a request staged on this CPU's software queue if one takes it,
// else a new request, sent straight to the backend when nothing waits ahead of it.
CXMQ_HOT void Queue::submit_rq(const Bio &b, u32 cpu, bool nowait)
{
	const u32 type = bio_type(b);
	HwQueue &h = hctx_for_cpu(cpu, type);
	if (elv_) {
		submit_sched(h, cpu, b, nowait);
		return;
	}
	SwQueue &c = ctx(cpu, type);
	if (load_relaxed(c.nr_pending) && bio_mergeable(b) && ctx_merge(c, b))
		return;
	Request *rq = get_request(h, cpu, b, nowait);
	if (rq)
		issue(*rq->hctx, *rq);
}

// Where a new request goes: into the scheduler, if there is one, and the hardware queue runs;
// else straight to the backend when nothing waits ahead of it, or staged on its software queue
// and the hardware queue run.
CXMQ_HOT void Queue::issue(HwQueue &h, Request &rq)
{
	if (elv_) {
		insert_sched(h, rq);
		run_hw_queue(h);
		return;
	}
	if (issue_direct(h, rq))
		return;
	insert_to_ctx(rq_ctx(rq), rq);
	run_hw_queue(h);
}

// Direct issue (of a request, or of a plug batch) may go ahead when nothing waits ahead of it:
// no refused requests on the dispatch list, no restart pending, nothing staged on software
// queue `cpu`, and no run in progress (a run may hold older requests it has taken off the lists
// but not issued yet). On true the caller holds the run bit while issuing and gives it back
// with release_idle, so a run asked for meanwhile is done then.
CXMQ_HOT bool Queue::claim_idle(HwQueue &h, u32 cpu)
{
	if (load_relaxed(h.nr_dispatch) || (load_relaxed(h.state) & HwQueue::kRestart) ||
	    load_relaxed(ctx(cpu, h.type).nr_pending))
		return false;
	return !(fetch_or(h.state, HwQueue::kRunning) & HwQueue::kRunning);
}

// Gives the run bit claim_idle took back, doing a run asked for meanwhile.
CXMQ_HOT void Queue::release_idle(HwQueue &h)
{
	if (fetch_and(h.state, ~HwQueue::kRunning) & HwQueue::kRerun)
		run_hw_queue(h);
}

// Sends a request straight to the backend when the hardware queue is idle (claim_idle).
CXMQ_HOT bool Queue::issue_direct(HwQueue &h, Request &rq)
{
	if (!claim_idle(h, rq.ctx_cpu))
		return false;
	add_relaxed(h.direct_issued, u64(1));
	start_request(rq);
	cxmq_status st = backend_->queue_rq(h, rq, true); // on OK, rq may be complete and reused
	if (cxmq_unlikely(st == CXMQ_STS_RESOURCE)) {
		add_relaxed(h.busy_events, u64(1));
		if (!unstart_request(rq)) { // a timeout ended it meanwhile
			release_idle(h);
			return true;
		}
		{
			LockGuard g(h.lock);
			h.dispatch.push_back(&rq.node);
			store_relaxed(h.nr_dispatch, h.nr_dispatch + 1);
		}
		fetch_or(h.state, HwQueue::kRestart);
		run_hw_queue_async(h, kBusyRetryDelayUs);
	} else if (cxmq_unlikely(st != CXMQ_STS_OK)) {
		end_request(rq, st);
	}
	release_idle(h);
	return true;
}

void Queue::insert_to_ctx(SwQueue &c, Request &rq)
{
	trace_rq(CXMQ_TRACE_INSERT, rq); // before: once staged, it may complete at once
	LockGuard g(c.lock);
	c.rq_list.push_back(&rq.node);
	store_relaxed(c.nr_pending, c.nr_pending + 1);
	if (!c.last_merge)
		c.last_merge = &rq;
}

} // namespace cxmq
