// SPDX-License-Identifier: GPL-2.0
#include "null_backend.h"
#include "text.h"

namespace cxmq {

namespace {
// A hardware queue's driver_data, where it has one: a poll queue's done requests, waiting for
// the next poll (null_blk's poll_list); irqmode 2's timers, one per request, by tag.
struct NullHctx {
	LList poll_list;
	cxmq_os_timer **timers;
	u32 nr;
};
} // namespace

NullBackend *NullBackend::create(const cxmq_dev_config &cfg)
{
	NullBackend *b = make<NullBackend>(cfg.home_node, cfg);
	if (b && b->init()) {
		destroy(b);
		return nullptr;
	}
	return b;
}

namespace {
// Request::backend_status of a request the timeout fault dropped: the backend never ends it.
constexpr u32 kLost = ~0u;
} // namespace

void NullBackend::set_faults(const cxmq_dev_config &cfg)
{
	timeout_fault_.set(cfg.timeout);
	requeue_fault_.set(cfg.requeue);
}

int NullBackend::init()
{
	set_faults(cfg_);
	if (cfg_.memory_backed) {
		store_ = make<MemStore>(cfg_.home_node);
		if (!store_ || store_->init(cfg_.size_mb << 20, cfg_.home_node))
			return -CXMQ_ENOMEM;
	}
	if (cfg_.irqmode == 1) {
		nr_lists_ = cxmq_os_nr_cpu_ids();
		done_lists_ = static_cast<DoneList *>(
			cxmq_os_zalloc(sizeof(DoneList) * nr_lists_, cfg_.home_node));
		softirq_ = cxmq_os_softirq_create(nr_lists_, softirq_fn, this);
		if (!done_lists_ || !softirq_)
			return -CXMQ_ENOMEM;
	}
	return 0;
}

NullBackend::~NullBackend()
{
	cxmq_os_softirq_destroy(softirq_);
	cxmq_os_free(done_lists_);
	destroy(store_);
}

void NullBackend::release()
{
	destroy(this);
}

void NullBackend::show_stats(TextOut &o) const
{
	o.put("backend: busy_answers=%llu pages=%llu softirq_done=%llu timer_done=%llu "
	      "poll_done=%llu requeues=%llu lost=%llu\n",
	      ull(busy_answers()), ull(store() ? store()->nr_pages() : 0), ull(softirq_done()),
	      ull(timer_done()), ull(poll_done()), ull(requeues()), ull(lost()));
}

u64 NullBackend::softirq_done() const
{
	u64 n = 0;
	for (u32 i = 0; i < nr_lists_; i++)
		n += load_relaxed(done_lists_[i].done);
	return n;
}

int NullBackend::init_hctx(HwQueue &h)
{
	if (cxmq_os_should_fail_init_hctx())
		return -CXMQ_ENOMEM;
	const bool poll = h.type == kHctxPoll;
	if (!poll && cfg_.irqmode != 2)
		return 0;
	auto *t = static_cast<NullHctx *>(cxmq_os_zalloc(sizeof(NullHctx), h.node));
	if (!t)
		return -CXMQ_ENOMEM;
	new (&t->poll_list) LList();
	h.driver_data = t;
	if (poll)
		return 0;
	t->timers = static_cast<cxmq_os_timer **>(cxmq_os_zalloc(sizeof(void *) * h.depth(), h.node));
	if (!t->timers) {
		exit_hctx(h);
		return -CXMQ_ENOMEM;
	}
	for (u32 tag = 0; tag < h.depth(); tag++) {
		t->timers[tag] = cxmq_os_timer_create(timer_fn, h.rq(tag), h.node);
		if (!t->timers[tag]) {
			exit_hctx(h); // the queue does not call exit_hctx after a failed init
			return -CXMQ_ENOMEM;
		}
		t->nr = tag + 1;
	}
	return 0;
}

void NullBackend::exit_hctx(HwQueue &h)
{
	auto *t = static_cast<NullHctx *>(h.driver_data);
	if (!t)
		return;
	for (u32 i = 0; i < t->nr; i++)
		cxmq_os_timer_destroy(t->timers[i]);
	cxmq_os_free(t->timers);
	cxmq_os_free(t);
	h.driver_data = nullptr;
}

namespace {
struct Transfer {
	MemStore *store;
	u64 base;      // byte offset of the bio on the device
	bool may_sleep;
};
int write_piece(void *ctx, u64 off, void *data, u32 len)
{
	auto *t = static_cast<Transfer *>(ctx);
	return t->store->write(t->base + off, data, len, t->may_sleep);
}
int read_piece(void *ctx, u64 off, void *data, u32 len)
{
	auto *t = static_cast<Transfer *>(ctx);
	t->store->read(t->base + off, data, len);
	return 0;
}
} // namespace

// Walks every bio of the request in order, each at its own place on the device (the bios of a
// read or write are contiguous; a discard's may be ranges anywhere).
cxmq_status NullBackend::transfer(Request &rq)
{
	Transfer t{store_, 0, !(rq.flags & CXMQ_BIO_NOWAIT)};
	cxmq_status st = CXMQ_STS_OK;
	rq.for_each_bio([&](void *bio) {
		if (st != CXMQ_STS_OK)
			return;
		t.base = cxmq_os_bio_sector(bio) << 9;
		const u64 len = u64(cxmq_os_bio_sectors(bio)) << 9;
		// The block layer keeps bios inside the capacity; the store relies on it, so check.
		if (cxmq_unlikely(t.base + len > store_->size() || t.base + len < t.base)) {
			st = CXMQ_STS_IOERR;
			return;
		}
		switch (rq.op) {
		case CXMQ_OP_READ:
			cxmq_os_bio_for_each_piece(bio, 1, read_piece, &t);
			break;
		case CXMQ_OP_WRITE:
			// No memory: a NOWAIT submitter retries from a context that may block.
			if (cxmq_os_bio_for_each_piece(bio, 0, write_piece, &t))
				st = t.may_sleep ? CXMQ_STS_IOERR : CXMQ_STS_AGAIN;
			break;
		case CXMQ_OP_DISCARD:
		case CXMQ_OP_WRITE_ZEROES:
			store_->discard(t.base, len);
			break;
		default: // FLUSH: memory is always durable here
			break;
		}
	});
	return st;
}

CXMQ_HOT cxmq_status NullBackend::queue_rq(HwQueue &h, Request &rq, bool)
{
	u32 every = load_relaxed(busy_every_);
	if (cxmq_unlikely(every) && add_relaxed(busy_counter_, 1u) % every == 0) {
		add_relaxed(busy_answers_, u64(1));
		return CXMQ_STS_RESOURCE;
	}
	if (cxmq_unlikely(requeue_fault_.should_fail())) { // null_blk's requeue=
		add_relaxed(requeues_, u64(1));
		return CXMQ_STS_RESOURCE;
	}
	if (cxmq_unlikely(timeout_fault_.should_fail())) { // null_blk's timeout=: never ended
		store_relaxed(rq.backend_status, kLost);
		add_relaxed(lost_, u64(1));
		return CXMQ_STS_OK;
	}
	cxmq_status st = store_ ? transfer(rq) : CXMQ_STS_OK;
	// (read by timeout() from the scan: relaxed atomics, and never a stale kLost)
	store_relaxed(rq.backend_status, u32(st));
	if (h.type == kHctxPoll) {
		static_cast<NullHctx *>(h.driver_data)->poll_list.push(&rq.llnode);
		return CXMQ_STS_OK;
	}
	switch (cfg_.irqmode) {
	case 1: {
		// Completed from a softirq: queue it on this CPU's list and raise that list's
		// context (if we migrated meanwhile, the raise still names the right list). The
		// status travels with the request to its completion.
		u32 cpu = cxmq_os_this_cpu();
		done_lists_[cpu].list.push(&rq.llnode);
		cxmq_os_softirq_raise(softirq_, cpu);
		break;
	}
	case 2: {
		auto *t = static_cast<NullHctx *>(h.driver_data);
		cxmq_os_timer_start(t->timers[rq.tag], cfg_.completion_nsec);
		break;
	}
	default:
		queue_->end_request(rq, st);
		break;
	}
	return CXMQ_STS_OK;
}

// Ends the requests of a list taken off a completion list, oldest first; returns how many.
u32 NullBackend::end_all(LListNode *n)
{
	u32 nr = 0;
	while (n) {
		LListNode *next = n->next;
		Request *rq = Request::from_llnode(n);
		queue_->end_request(*rq, static_cast<cxmq_status>(load_relaxed(rq->backend_status)));
		n = next;
		nr++;
	}
	return nr;
}

void NullBackend::softirq_fn(void *arg, u32 i)
{
	auto *self = static_cast<NullBackend *>(arg);
	DoneList &d = self->done_lists_[i];
	add_relaxed(d.done, u64(self->end_all(d.list.take_all_fifo())));
}

void NullBackend::timer_fn(void *arg)
{
	auto *rq = static_cast<Request *>(arg);
	NullBackend *self = static_cast<NullBackend *>(rq->hctx->backend);
	add_relaxed(self->timer_done_, u64(1));
	self->queue_->end_request(*rq, static_cast<cxmq_status>(load_relaxed(rq->backend_status)));
}

// null_blk's null_timeout_rq: a request the timeout fault dropped is the timeout's to end; one
// still on a completion list, timer or poll list is ended now, and its completion only frees
// it (its data was moved in queue_rq).
NullBackend::Expiry NullBackend::timeout(HwQueue &, Request &rq)
{
	return load_relaxed(rq.backend_status) == kLost ? Expiry::kAbandoned : Expiry::kTimedOut;
}

// Several pollers may poll one queue: each takes what is there at once, so every request is
// ended by exactly one of them.
int NullBackend::poll(HwQueue &h)
{
	auto *t = static_cast<NullHctx *>(h.driver_data);
	if (t->poll_list.empty()) // (a poller spins here: no atomic operation while idle)
		return 0;
	const u32 n = end_all(t->poll_list.take_all_fifo());
	if (n)
		add_relaxed(poll_done_, u64(n));
	return int(n);
}

} // namespace cxmq
