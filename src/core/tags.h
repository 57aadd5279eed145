// SPDX-License-Identifier: GPL-2.0
// Integer tags 0..depth-1 for the requests of one hardware queue, allocated the way sbitmap does
// it: the bits spread over words that each own a cache line, a per-CPU hint where each CPU
// starts looking (the tag it freed last, for cache-hot reuse), no lock on the fast path.
// A submitter that finds no free tag sleeps as an exclusive waiter and is woken in FIFO order
// when a tag is freed.
#pragma once

#include "util.h"

namespace cxmq {

class TagMap {
public:
	enum : s32 { kNoTag = -1 };

	TagMap() = default;
	TagMap(const TagMap &) = delete;
	TagMap &operator=(const TagMap &) = delete;
	~TagMap();

	// depth: 1..CXMQ_MAX_QUEUE_DEPTH. Returns 0 or -CXMQ_ENOMEM.
	int init(u32 depth, int node);

	// A free tag, or kNoTag; never sleeps. shallow: only the first `shallow` tags of each
	// bitmap word may be taken (sbitmap's shallow depth: a scheduler's limit for some
	// requests); 0: any.
	s32 try_get(u32 cpu, u32 shallow = 0);
	// A free tag; sleeps until one is freed. Shallow takers wait apart (each freed tag wakes
	// one of each kind): one that cannot use the tag freed never holds up one that could.
	u32 get_wait(u32 cpu, u32 shallow = 0);
	// Frees a tag taken by try_get/get_wait; wakes the oldest waiter, if any.
	void put(u32 tag, u32 cpu);

	u32 depth() const { return depth_; }
	u32 bits_per_word() const { return 1u << shift_; }
	// Tags in use now (a snapshot: exact only when nothing runs concurrently).
	u32 busy() const;
	bool is_busy(u32 tag) const;
	// Where get_wait sleeps (and put wakes one): for waiters of the host's own (tag_set.cpp).
	cxmq_os_waitq *waitq() const { return waitq_; }

private:
	struct alignas(kCacheLine) Word {
		u64 bits;  // 1: tag in use
		u32 depth; // bits valid in this word
	};
	struct alignas(kCacheLine) Hint {
		u32 next;
	};

	s32 get_from_word(u32 w, u32 start_bit, u32 shallow);

	Word *words_ = nullptr;
	Hint *hints_ = nullptr;
	u32 nr_hints_ = 0;
	u32 depth_ = 0;
	u32 nr_words_ = 0;
	u32 shift_ = 0;
	cxmq_os_waitq *waitq_ = nullptr;
	cxmq_os_waitq *shallow_waitq_ = nullptr;
	bool shallow_waited_ = false; // a shallow taker ever waited: put() checks its queue too
};

} // namespace cxmq
