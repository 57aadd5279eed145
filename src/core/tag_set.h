// SPDX-License-Identifier: GPL-2.0
// Shared tag sets (null_blk's shared_tags=1, blk-mq's tag set with BLK_MQ_F_TAG_QUEUE_SHARED):
// the devices of a set have the same hardware queue counts and depth, and their hardware queues
// of one index draw on one tag map. blk-mq-tag.c's fairness holds: while N hardware queues of an
// index are active, each may hold at most max((depth + N - 1) / N, 4) of its tags
// (hctx_may_queue); a queue becomes active with its first request (blk_mq_tag_busy) and idle when
// the timeout work finds nothing of it in flight (blk_mq_tag_idle), and then stops counting.
#pragma once

#include "cxmq/core.h"
#include "tags.h"
#include "util.h"

namespace cxmq {

class Queue;
struct HwQueue;

// The tags of one hardware queue index, shared by the devices of a set.
struct SharedTags {
	TagMap map;
	u32 active_queues = 0; // atomic: hardware queues of this index that are active
	u32 sched_waiting = 0; // atomic: a scheduler's hardware queue waits for a tag (kRestart)
	SpinLock lock;         // members
	List members;          // this index's hardware queues of every device (HwQueue::shared_node)
};

// The set. The host serialises joins, leaves and changes of the hardware queue counts (one
// lock for the set); the tags of an index exist while any member may have a queue of it.
class TagSet {
public:
	TagSet() = default;
	TagSet(const TagSet &) = delete;
	TagSet &operator=(const TagSet &) = delete;
	~TagSet();

	static TagSet *create();

	// A queue joins before it builds its hardware queues. The first member's hw_queue_depth,
	// submit_queues and poll_queues (capped to the possible CPUs) become the set's; a later
	// member takes the set's (cfg is changed to them, and the change logged). 0 or
	// -CXMQ_ENOMEM (then it did not join).
	int join(Queue &q, cxmq_dev_config &cfg);
	// After the queue released its hardware queues. The last member frees the tags: the next
	// first member defines the set again.
	void leave(Queue &q);

	SharedTags *tags(u32 index) const { return index < nr_tags_ ? tags_[index] : nullptr; }
	u32 depth() const { return depth_; }
	u32 nr_members() const { return nr_members_; }
	u32 nr_default_queues() const { return nr_default_; }
	u32 nr_poll_queues() const { return nr_poll_; }

	// Changing the counts of every member (blk_mq_update_nr_hw_queues on a tag set): first
	// prepare (the tags for *nr default and *nr_poll poll queues exist afterwards; both are
	// capped, and lowered when memory runs short, never below the counts in use), then each
	// member frozen changes its queues (Queue::update_nr_hw_queues), then finish: the counts
	// every member has now are the set's, and tags no member uses are freed.
	void prepare_update(u32 *nr, u32 *nr_poll);
	void finish_update();

	ListNode *first_member() const { return members_.front(); }
	static Queue &member(ListNode *n);

private:
	u32 ensure_tags(u32 nr);
	void trim_tags(u32 nr);

	Mutex lock_;
	List members_;          // Queue::set_node
	u32 nr_members_ = 0;
	SharedTags **tags_ = nullptr;
	u32 nr_tags_ = 0;       // tags_[0 .. nr_tags_ - 1] exist
	u32 max_tags_ = 0;      // room: every type's queues for every possible CPU
	u32 max_queues_ = 0;    // of one type: possible CPUs
	u32 depth_ = 0;
	u32 nr_default_ = 0;
	u32 nr_poll_ = 0;
	int node_ = -1;
};

// A hardware queue's side of its index's shared tags (HwQueue::shared).
namespace shared_tags {
// What stopped a try: nothing, the queue's fair share, or a full map.
enum class Why { kGot, kFair, kFull };
// A tag of the shared map within the queue's fair share, or TagMap::kNoTag (and why).
s32 try_get(HwQueue &h, u32 cpu, Why *why);
// A tag, sleeping until the share and the map allow one.
u32 get_wait(HwQueue &h, u32 cpu);
void put(HwQueue &h, u32 tag, u32 cpu);
// The most tags h may hold now (hctx_may_queue's depth).
u32 fair_share(const HwQueue &h);
// blk_mq_tag_idle: h stops counting as a sharer; the others' shares grow.
void idle(HwQueue &h);
// A scheduler's queue found no tag: it runs again when one is freed (kRestart set by the caller).
void wait_sched(HwQueue &h);
// h joins or leaves its index's members.
void bind(HwQueue &h, SharedTags *sh);
void unbind(HwQueue &h);
} // namespace shared_tags

} // namespace cxmq
