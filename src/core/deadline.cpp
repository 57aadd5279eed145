// SPDX-License-Identifier: GPL-2.0
#include "deadline.h"
#include "queue.h"
#include "text.h"

namespace cxmq {

namespace {

// The kernel's defaults (HZ-based there; milliseconds here, shown the same).
constexpr s32 kReadExpireMs = 500;
constexpr s32 kWriteExpireMs = 5000;
constexpr s32 kPrioAgingExpireMs = 10000;
constexpr s32 kWritesStarved = 2;
constexpr s32 kFifoBatch = 16;
constexpr s32 kIntMax = 0x7fffffff;

enum Dir : u32 { kRead = 0, kWrite = 1, kDirs = 2 };
enum Prio : u32 { kRtPrio = 0, kBePrio = 1, kIdlePrio = 2, kPrios = 3 };

// IOPRIO_PRIO_CLASS: none and BE are BE, RT, IDLE.
Prio prio_of(u16 ioprio)
{
	switch (ioprio >> 13) {
	case 1:
		return kRtPrio;
	case 3:
		return kIdlePrio;
	default:
		return kBePrio;
	}
}

// rq_data_dir: writes, discards and write-zeroes go the write way.
Dir dir_of(u16 op)
{
	return op == CXMQ_OP_WRITE || op == CXMQ_OP_DISCARD || op == CXMQ_OP_WRITE_ZEROES ? kWrite
											   : kRead;
}

u64 ms_to_ns(s32 ms)
{
	return u64(ms) * 1000000ull;
}

Request *rq_of(SortNode *n)
{
	return n ? CXMQ_CONTAINER_OF(n, Request, sort_node) : nullptr;
}

// Request::elv_priv: the request was counted as inserted (finish_request counts it complete).
constexpr u32 kCounted = 1;

struct PerPrio {
	List fifo[kDirs];       // by arrival, the oldest first (Request::node)
	SortTree sort[kDirs];   // by sector (Request::sort_node)
	Request *next_rq[kDirs] = {};
	u32 inserted = 0;       // under the lock
	u32 merged = 0;
	u32 dispatched = 0;
	u32 completed = 0;      // atomic: finish_request takes no lock
};

// One hardware queue's scheduler state.
struct alignas(kCacheLine) DdHctx {
	SpinLock lock;
	PerPrio per_prio[kPrios];
	Request *last_merge = nullptr; // the one-hit cache
	Dir last_dir = kWrite;
	u32 batching = 0;
	u32 starved = 0;
	u32 nr_queued = 0; // in the FIFOs: has_work reads it without the lock
};

struct Tunables {
	s32 fifo_expire_ms[kDirs] = {kReadExpireMs, kWriteExpireMs};
	s32 fifo_batch = kFifoBatch;
	s32 writes_starved = kWritesStarved;
	s32 front_merges = 1;
	s32 async_depth = 0; // set from nr_requests (depth_updated)
	s32 prio_aging_expire_ms = kPrioAgingExpireMs;
};

enum Attr : u32 {
	kAttrReadExpire,
	kAttrWriteExpire,
	kAttrWritesStarved,
	kAttrFrontMerges,
	kAttrAsyncDepth,
	kAttrFifoBatch,
	kAttrPrioAgingExpire,
	kNrAttrs,
};
const ElvAttr kAttrs[kNrAttrs] = {
	{"read_expire"}, {"write_expire"}, {"writes_starved"}, {"front_merges"},
	{"async_depth"}, {"fifo_batch"},   {"prio_aging_expire"},
};

class Deadline final : public Elevator {
public:
	explicit Deadline(const Queue &q) { t_.async_depth = s32(q.nr_requests()); }

	int init_hctx(HwQueue &h) override;
	void exit_hctx(HwQueue &h) override;
	u32 shallow_depth(HwQueue &h, const Bio &b) override;
	bool bio_merge(HwQueue &h, const Bio &b, const cxmq_limits &lim) override;
	void prepare_request(Request &rq) override { rq.elv_priv = 0; }
	void insert_requests(HwQueue &h, Request **rqs, u32 n) override;
	Request *dispatch_request(HwQueue &h) override;
	bool has_work(HwQueue &h) override { return load_relaxed(dd(h).nr_queued) != 0; }
	void completed_request(Request &, u64) override {}
	void finish_request(Request &rq) override;
	void depth_updated(u32 nr_requests) override { store_relaxed(t_.async_depth, s32(nr_requests)); }
	int show(u32 attr, char *buf, size_t size) const override;
	int store(u32 attr, const char *buf) override;
	void release() override { destroy(this); }

private:
	static DdHctx &dd(HwQueue &h) { return *static_cast<DdHctx *>(h.sched_data); }
	u64 expire_ns(Dir d) const { return ms_to_ns(load_relaxed(t_.fifo_expire_ms[d])); }

	void add_rq(DdHctx &d, Request &rq, u64 now);
	void del_from_tree(PerPrio &pp, Request &rq);
	void remove_rq(DdHctx &d, PerPrio &pp, Request &rq);
	void reposition(PerPrio &pp, Request &rq);
	bool started_after(const Request &rq, s64 latest_start) const;
	Request *fifo_first(PerPrio &pp, Dir dir);
	Request *dispatch_prio(DdHctx &d, PerPrio &pp, s64 latest_start, u64 now);
	Request *dispatch_aged(DdHctx &d, u64 now);
	u32 queued(const PerPrio &pp) const { return pp.inserted - load_relaxed(pp.completed); }

	struct Tunable {
		s32 *field;
		s32 lo, hi;
	};
	Tunable tunable(u32 attr) const;

	Tunables t_; // read without a lock (each field on its own), written by store()
};

int Deadline::init_hctx(HwQueue &h)
{
	return elv_make_hctx_data<DdHctx>(h.node, &h.sched_data);
}

void Deadline::exit_hctx(HwQueue &h)
{
	DdHctx *d = static_cast<DdHctx *>(h.sched_data);
	if (!d)
		return;
	for (u32 p = 0; p < kPrios; p++)
		CXMQ_WARN_ON(queued(d->per_prio[p]) != 0); // dd_exit_sched's check
	h.sched_data = nullptr;
	destroy(d);
}

// dd_limit_depth: reads take any free request; writes only async_depth of nr_requests, as a
// share of each bitmap word (dd_to_word_depth).
u32 Deadline::shallow_depth(HwQueue &h, const Bio &b)
{
	if (dir_of(b.op) == kRead)
		return 0;
	const u32 nrr = h.depth();
	const u64 async = u64(load_relaxed(t_.async_depth));
	return u32(((async * h.tags->bits_per_word()) + nrr - 1) / nrr);
}

void Deadline::add_rq(DdHctx &d, Request &rq, u64 now)
{
	const Dir dir = dir_of(rq.op);
	PerPrio &pp = d.per_prio[prio_of(rq.ioprio)];
	if (!(rq.elv_priv & kCounted)) {
		pp.inserted++;
		rq.elv_priv |= kCounted;
	}
	pp.sort[dir].insert(&rq.sort_node, rq.sector);
	if (rq_mergeable(rq) && !d.last_merge)
		d.last_merge = &rq;
	rq.fifo_time = now + expire_ns(dir);
	pp.fifo[dir].push_back(&rq.node);
	store_relaxed(d.nr_queued, d.nr_queued + 1);
}

// deadline_del_rq_rb: out of the sorted tree; a batch walking there continues after it.
void Deadline::del_from_tree(PerPrio &pp, Request &rq)
{
	const Dir dir = dir_of(rq.op);
	if (pp.next_rq[dir] == &rq)
		pp.next_rq[dir] = rq_of(SortTree::next(&rq.sort_node));
	pp.sort[dir].erase(&rq.sort_node);
}

// deadline_remove_request: off the FIFO and the tree, and out of the merge cache.
void Deadline::remove_rq(DdHctx &d, PerPrio &pp, Request &rq)
{
	List::unlink(&rq.node);
	store_relaxed(d.nr_queued, d.nr_queued - 1);
	if (rq.sort_node.linked)
		del_from_tree(pp, rq);
	if (d.last_merge == &rq)
		d.last_merge = nullptr;
}

// dd_request_merged: a front merge moved the request's start: its place in the tree changes
// (a batch pointing at it keeps pointing at it).
void Deadline::reposition(PerPrio &pp, Request &rq)
{
	SortTree &t = pp.sort[dir_of(rq.op)];
	t.erase(&rq.sort_node);
	t.insert(&rq.sort_node, rq.sector);
}

void Deadline::insert_requests(HwQueue &h, Request **rqs, u32 n)
{
	DdHctx &d = dd(h);
	const u64 now = cxmq_os_now_coarse_ns();
	LockGuard g(d.lock);
	for (u32 i = 0; i < n; i++)
		add_rq(d, *rqs[i], now);
}

// elv_merge + blk_mq_sched_try_merge: the one-hit cache, then (unless nomerges is 1) a back
// merge into the request that ends where the bio starts, then a front merge into the one that
// starts where it ends, if front_merges.
bool Deadline::bio_merge(HwQueue &h, const Bio &b, const cxmq_limits &lim)
{
	DdHctx &d = dd(h);
	PerPrio &pp = d.per_prio[prio_of(b.ioprio)];
	const Dir dir = dir_of(b.op);
	LockGuard g(d.lock);
	Request *rq = nullptr;
	MergeResult r = MergeResult::kNone;
	if (d.last_merge) {
		rq = d.last_merge;
		r = attempt_merge(*rq, b, lim, MergeSite::kSched);
	}
	if (r == MergeResult::kNone && lim.nomerges == 0) {
		Request *back = rq_of(pp.sort[dir].last_below(b.sector));
		if (back && back->end_sector() == b.sector) {
			rq = back;
			r = attempt_merge(*rq, b, lim, MergeSite::kSched);
		}
		if (r == MergeResult::kNone && load_relaxed(t_.front_merges)) {
			Request *front = rq_of(pp.sort[dir].find(b.sector + b.nr_sectors));
			if (front) {
				rq = front;
				r = attempt_merge(*rq, b, lim, MergeSite::kSched);
			}
		}
	}
	if (r != MergeResult::kMerged) {
		if (d.last_merge && (d.last_merge->rq_flags & Request::kNoMerge))
			d.last_merge = nullptr;
		return false;
	}
	// A front merge (or a discard range below the start) moved the request's start.
	if (rq->sector != rq->sort_node.key)
		reposition(d.per_prio[prio_of(rq->ioprio)], *rq);
	d.last_merge = rq;
	pp.merged++;
	cxmq_os_bio_merged(b.bio, b.cookie, rq->cookie);
	return true;
}

bool Deadline::started_after(const Request &rq, s64 latest_start) const
{
	const s64 start = s64(rq.fifo_time - expire_ns(dir_of(rq.op)));
	return start > latest_start;
}

Request *Deadline::fifo_first(PerPrio &pp, Dir dir)
{
	ListNode *n = pp.fifo[dir].front();
	return n ? Request::from_node(n) : nullptr;
}

// __dd_dispatch_request: continue the batch, else pick a direction (reads, unless writes were
// starved writes_starved times), then the oldest request if it expired or the sorted walk of
// that direction ran out, else the next in sector order. Only requests that started before
// latest_start (the aging pass; `now` otherwise).
Request *Deadline::dispatch_prio(DdHctx &d, PerPrio &pp, s64 latest_start, u64 now)
{
	Request *rq = pp.next_rq[d.last_dir];
	Dir dir;
	if (rq && d.batching < u32(load_relaxed(t_.fifo_batch)))
		goto dispatch;
	if (!pp.fifo[kRead].empty()) {
		if (fifo_first(pp, kWrite) && d.starved++ >= u32(load_relaxed(t_.writes_starved)))
			goto dispatch_writes;
		dir = kRead;
		goto find;
	}
	if (!pp.fifo[kWrite].empty()) {
dispatch_writes:
		d.starved = 0;
		dir = kWrite;
		goto find;
	}
	return nullptr;
find: {
	Request *first = fifo_first(pp, dir);
	Request *next = pp.next_rq[dir];
	// deadline_check_fifo: the oldest has expired
	rq = (now >= first->fifo_time || !next) ? first : next;
	d.last_dir = dir;
	d.batching = 0;
}
dispatch:
	if (started_after(*rq, latest_start))
		return nullptr;
	d.batching++;
	// deadline_move_request: the batch continues after it
	pp.next_rq[dir_of(rq->op)] = rq_of(SortTree::next(&rq->sort_node));
	remove_rq(d, pp, *rq);
	pp.dispatched++;
	return rq;
}

// dd_dispatch_prio_aged_requests: with work in two classes or more, a BE or IDLE request that
// has waited prio_aging_expire goes first.
Request *Deadline::dispatch_aged(DdHctx &d, u64 now)
{
	u32 classes = 0;
	for (u32 p = 0; p < kPrios; p++)
		classes += queued(d.per_prio[p]) != 0;
	if (classes < 2)
		return nullptr;
	const s64 latest = s64(now) - s64(ms_to_ns(load_relaxed(t_.prio_aging_expire_ms)));
	for (u32 p = kBePrio; p < kPrios; p++)
		if (Request *rq = dispatch_prio(d, d.per_prio[p], latest, now))
			return rq;
	return nullptr;
}

// dd_dispatch_request: aged requests, then the classes in order; a class with requests in
// flight holds the lower ones back even when it has nothing to dispatch now.
Request *Deadline::dispatch_request(HwQueue &h)
{
	DdHctx &d = dd(h);
	const u64 now = cxmq_os_now_coarse_ns();
	LockGuard g(d.lock);
	Request *rq = dispatch_aged(d, now);
	if (rq)
		return rq;
	for (u32 p = 0; p < kPrios; p++) {
		rq = dispatch_prio(d, d.per_prio[p], s64(now), now);
		if (rq || queued(d.per_prio[p]))
			break;
	}
	return rq;
}

void Deadline::finish_request(Request &rq)
{
	if (!(rq.elv_priv & kCounted))
		return;
	DdHctx &d = dd(*rq.hctx);
	add_relaxed(d.per_prio[prio_of(rq.ioprio)].completed, 1u);
}

// Each tunable's field and the kernel's range (it clamps into them; cxmq refuses what lies
// outside), in kAttrs' order.
Deadline::Tunable Deadline::tunable(u32 attr) const
{
	auto &t = const_cast<Tunables &>(t_); // show() only reads through it
	const Tunable table[kNrAttrs] = {
		{&t.fifo_expire_ms[kRead], 0, kIntMax},
		{&t.fifo_expire_ms[kWrite], 0, kIntMax},
		{&t.writes_starved, s32(-kIntMax - 1), kIntMax},
		{&t.front_merges, 0, 1},
		{&t.async_depth, 1, kIntMax},
		{&t.fifo_batch, 0, kIntMax},
		{&t.prio_aging_expire_ms, 0, kIntMax},
	};
	return table[attr];
}

int Deadline::show(u32 attr, char *buf, size_t size) const
{
	if (attr >= kNrAttrs)
		return -CXMQ_EINVAL;
	return cxmq_os_snprintf(buf, size, "%d\n", load_relaxed(*tunable(attr).field));
}

int Deadline::store(u32 attr, const char *buf)
{
	if (attr >= kNrAttrs)
		return -CXMQ_EINVAL;
	const Tunable t = tunable(attr);
	s32 v;
	int ret = elv_parse_int("mq-deadline", kAttrs[attr].name, buf, t.lo, t.hi, &v);
	if (ret)
		return ret;
	store_relaxed(*t.field, v);
	return 0;
}

Elevator *create_deadline(Queue &q, int *err)
{
	Deadline *d = make<Deadline>(q.config().home_node, q);
	*err = d ? 0 : -CXMQ_ENOMEM;
	return d;
}

} // namespace

const ElevatorType kDeadlineType = {"mq-deadline", "deadline", create_deadline, kAttrs, kNrAttrs,
				     false};

} // namespace cxmq
