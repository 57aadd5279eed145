// SPDX-License-Identifier: GPL-2.0
// Shared tag sets (tag_set.h): the set's members and counts, and each hardware queue's fair
// share of its index's tags.
#include "tag_set.h"
#include "queue.h"

namespace cxmq {

TagSet *TagSet::create()
{
	TagSet *s = make<TagSet>(-1);
	if (!s)
		return nullptr;
	const u32 nr_cpu_ids = cxmq_os_nr_cpu_ids();
	for (u32 cpu = 0; cpu < nr_cpu_ids; cpu++)
		s->max_queues_ += cxmq_os_cpu_possible(cpu) ? 1 : 0;
	s->max_queues_ = max(s->max_queues_, 1u);
	s->max_tags_ = s->max_queues_ * kHctxTypes;
	s->tags_ = static_cast<SharedTags **>(cxmq_os_zalloc(sizeof(void *) * s->max_tags_, -1));
	if (!s->tags_ || !s->lock_.init()) {
		destroy(s);
		return nullptr;
	}
	return s;
}

TagSet::~TagSet()
{
	CXMQ_WARN_ON(nr_members_);
	if (tags_)
		trim_tags(0);
	cxmq_os_free(tags_);
}

Queue &TagSet::member(ListNode *n)
{
	return *CXMQ_CONTAINER_OF(n, TagSetMember, node)->queue;
}

int TagSet::join(Queue &q, cxmq_dev_config &cfg)
{
	MutexGuard g(lock_);
	if (!nr_members_) {
		depth_ = cfg.hw_queue_depth;
		nr_default_ = min(max(cfg.submit_queues, 1u), max_queues_);
		nr_poll_ = min(cfg.poll_queues, max_queues_);
		node_ = cfg.home_node;
		if (ensure_tags(nr_default_ + nr_poll_) < nr_default_ + nr_poll_) {
			trim_tags(0);
			return -CXMQ_ENOMEM;
		}
	} else if (cfg.hw_queue_depth != depth_ || cfg.submit_queues != nr_default_ ||
		   cfg.poll_queues != nr_poll_) {
		cxmq_os_log(CXMQ_LOG_INFO,
			    "cxmq: shared tags: hw_queue_depth=%u submit_queues=%u poll_queues=%u "
			    "are the set's (asked: %u %u %u)\n",
			    depth_, nr_default_, nr_poll_, cfg.hw_queue_depth, cfg.submit_queues,
			    cfg.poll_queues);
	}
	cfg.hw_queue_depth = depth_;
	cfg.submit_queues = nr_default_;
	cfg.poll_queues = nr_poll_;
	q.set_member_.queue = &q;
	members_.push_back(&q.set_member_.node);
	nr_members_++;
	return 0;
}

void TagSet::leave(Queue &q)
{
	MutexGuard g(lock_);
	List::unlink(&q.set_member_.node);
	if (--nr_members_ == 0)
		trim_tags(0);
}

// Tags for indices up to nr: how many exist now.
u32 TagSet::ensure_tags(u32 nr)
{
	nr = min(nr, max_tags_);
	while (nr_tags_ < nr) {
		SharedTags *sh = make<SharedTags>(node_);
		if (!sh)
			break;
		if (!sh->lock.init(node_) || sh->map.init(depth_, node_)) {
			destroy(sh);
			break;
		}
		tags_[nr_tags_++] = sh;
	}
	return nr_tags_;
}

void TagSet::trim_tags(u32 nr)
{
	while (nr_tags_ > nr) {
		SharedTags *sh = tags_[--nr_tags_];
		tags_[nr_tags_] = nullptr;
		CXMQ_WARN_ON(!sh->members.empty());
		destroy(sh);
	}
}

void TagSet::prepare_update(u32 *nr, u32 *nr_poll)
{
	MutexGuard g(lock_);
	*nr = min(max(*nr, 1u), max_queues_);
	*nr_poll = min(*nr_poll, max_queues_);
	const u32 have = ensure_tags(*nr + *nr_poll);
	if (have >= *nr + *nr_poll)
		return;
	// Short of memory: as many as there are tags for, never fewer than in use.
	*nr_poll = have > *nr ? min(*nr_poll, have - *nr) : 0;
	*nr = min(*nr, have - *nr_poll);
	*nr = max(*nr, min(nr_default_, have));
	*nr_poll = max(*nr_poll, min(nr_poll_, have - *nr));
	cxmq_os_log(CXMQ_LOG_WARN, "cxmq: shared tags: out of memory: %u and %u poll queues\n",
		    *nr, *nr_poll);
}

void TagSet::finish_update()
{
	MutexGuard g(lock_);
	ListNode *n = members_.front();
	if (!n)
		return;
	Queue &first = member(n);
	nr_default_ = first.nr_default_queues();
	nr_poll_ = first.nr_poll_queues();
	members_.for_each([&](ListNode *m) {
		CXMQ_WARN_ON(member(m).nr_default_queues() != nr_default_ ||
			     member(m).nr_poll_queues() != nr_poll_);
	});
	trim_tags(nr_default_ + nr_poll_);
}

// ---- a queue's side of its set ----

// After a change of the counts: each hardware queue on its index's shared tags (the poll ones
// moved). Frozen: no queue holds a tag.
void Queue::rebind_shared()
{
	for (u32 i = 0; i < nr_hw_queues_; i++) {
		HwQueue &h = *hctxs_[i];
		SharedTags *sh = set_->tags(h.index);
		if (h.shared == sh)
			continue;
		shared_tags::unbind(h);
		if (!elv_)
			h.tags = &sh->map;
		shared_tags::bind(h, sh);
	}
}

// A tag back: to the set's map (and its queue's share), or to the queue's own.
CXMQ_HOT void Queue::put_tag(HwQueue &h, u32 tag, u32 cpu)
{
	if (h.shared && !elv_)
		shared_tags::put(h, tag, cpu);
	else
		h.tags->put(tag, cpu);
}

u32 HwQueue::active() const
{
	return shared && !queue->elevator() ? load_relaxed(nr_active) : tags->busy();
}

// ---- a hardware queue's share ----

namespace shared_tags {

namespace {
u32 active_limit(const HwQueue &h)
{
	u32 limit = fair_share(h);
	// Without a scheduler, nr_requests bounds what one queue holds of the set's depth.
	if (!h.queue->elevator())
		limit = min(limit, h.queue->nr_requests());
	return limit;
}

// hctx_may_queue, and the request counted at once (so that racing submitters never hold more
// than the share between them).
bool reserve(HwQueue &h)
{
	const u32 limit = active_limit(h);
	u32 a = load_relaxed(h.nr_active);
	do {
		if (a >= limit)
			return false;
	} while (!__atomic_compare_exchange_n(&h.nr_active, &a, a + 1, false, __ATOMIC_SEQ_CST,
					      __ATOMIC_RELAXED));
	return true;
}

// One fewer: a waiter held back by h's share may go on.
void unreserve(HwQueue &h)
{
	__atomic_sub_fetch(&h.nr_active, 1u, __ATOMIC_SEQ_CST);
	if (cxmq_os_waitq_active(h.fair_wq))
		cxmq_os_wake_one(h.fair_wq);
}

// blk_mq_tag_busy
void busy(HwQueue &h)
{
	if (cxmq_likely(load_relaxed(h.tag_active)))
		return;
	if (__atomic_exchange_n(&h.tag_active, 1u, __ATOMIC_SEQ_CST))
		return;
	__atomic_add_fetch(&h.shared->active_queues, 1u, __ATOMIC_SEQ_CST);
	// A scan will come to find it idle, even if no request of it ever starts (a NOWAIT
	// submitter that found no tag).
	h.queue->arm_timeout();
}

// Every member's share may have grown, or a tag is free for a scheduler waiting for one: its
// waiters try again and its waiting scheduler runs.
void wake_members(SharedTags &sh, bool waiters)
{
	LockGuard g(sh.lock);
	sh.members.for_each([&](ListNode *n) {
		HwQueue &m = *CXMQ_CONTAINER_OF(n, HwQueue, shared_node);
		if (waiters && cxmq_os_waitq_active(m.fair_wq))
			cxmq_os_wake_all(m.fair_wq);
		if (load_relaxed(m.state) & HwQueue::kRestart) {
			fetch_and(m.state, ~HwQueue::kRestart);
			m.queue->run_hw_queue_async(m, 0);
		}
	});
}

struct WaitArg {
	HwQueue *h;
	u32 cpu;
	Why why;     // of the last try
	Why waiting; // what the queue we sleep on is for
	s32 tag;
};

int try_for_wait(void *p)
{
	auto *a = static_cast<WaitArg *>(p);
	a->tag = try_get(*a->h, a->cpu, &a->why);
	// Done, or held back for the other reason now: that one's queue is where to wait.
	return a->tag != TagMap::kNoTag || a->why != a->waiting;
}
} // namespace

u32 fair_share(const HwQueue &h)
{
	const u32 depth = h.shared->map.depth();
	const u32 users = load_relaxed(h.shared->active_queues);
	if (!users)
		return depth;
	return max((depth + users - 1) / users, 4u);
}

s32 try_get(HwQueue &h, u32 cpu, Why *why)
{
	busy(h);
	if (!reserve(h)) {
		*why = Why::kFair;
		return TagMap::kNoTag;
	}
	const s32 tag = h.shared->map.try_get(cpu);
	if (tag == TagMap::kNoTag) {
		unreserve(h);
		*why = Why::kFull;
		return tag;
	}
	*why = Why::kGot;
	return tag;
}

// A waiter held back by its share sleeps on its queue's fair_wq (only its own completions, or
// an idle sharer, change that); one held back by a full map on the map's queue (any
// completion). A waiter that leaves one queue for the other passes the wake-up it took on.
u32 get_wait(HwQueue &h, u32 cpu)
{
	WaitArg a{&h, cpu, Why::kGot, Why::kGot, TagMap::kNoTag};
	a.tag = try_get(h, cpu, &a.why);
	while (a.tag == TagMap::kNoTag) {
		a.waiting = a.why;
		cxmq_os_waitq *wq = a.why == Why::kFair ? h.fair_wq : h.shared->map.waitq();
		cxmq_os_wait_exclusive(wq, try_for_wait, &a);
		if (a.tag == TagMap::kNoTag && cxmq_os_waitq_active(wq))
			cxmq_os_wake_one(wq);
	}
	return static_cast<u32>(a.tag);
}

void put(HwQueue &h, u32 tag, u32 cpu)
{
	SharedTags &sh = *h.shared;
	sh.map.put(tag, cpu); // wakes a waiter for a full map
	unreserve(h);         // and one of h's held back by its share
	// Sequentially consistent, against wait_sched's flag before its last try.
	if (cxmq_unlikely(__atomic_load_n(&sh.sched_waiting, __ATOMIC_SEQ_CST)) &&
	    __atomic_exchange_n(&sh.sched_waiting, 0u, __ATOMIC_SEQ_CST))
		wake_members(sh, false);
}

void wait_sched(HwQueue &h)
{
	__atomic_store_n(&h.shared->sched_waiting, 1u, __ATOMIC_SEQ_CST);
}

void idle(HwQueue &h)
{
	if (!load_relaxed(h.tag_active) || !__atomic_exchange_n(&h.tag_active, 0u, __ATOMIC_SEQ_CST))
		return;
	__atomic_sub_fetch(&h.shared->active_queues, 1u, __ATOMIC_SEQ_CST);
	wake_members(*h.shared, true);
}

void bind(HwQueue &h, SharedTags *sh)
{
	h.shared = sh;
	LockGuard g(sh->lock);
	sh->members.push_back(&h.shared_node);
}

void unbind(HwQueue &h)
{
	idle(h);
	{
		LockGuard g(h.shared->lock);
		List::unlink(&h.shared_node);
	}
	h.shared = nullptr;
}

} // namespace shared_tags

} // namespace cxmq
