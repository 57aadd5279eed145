// SPDX-License-Identifier: GPL-2.0
// Memory-backed storage for the null backend (null_blk's memory_backed=1): a sparse radix tree
// of 4 KiB pages, a page allocated on its first write, holes read back as zeroes, discarded or
// zeroed whole pages freed. Interior nodes are installed lock-free and live until the store is
// destroyed; page contents and page slots are guarded by one of kStripes spinlocks chosen by
// page index, so a discard cannot free a page under a concurrent copy.
#pragma once

#include "util.h"

namespace cxmq {

class MemStore {
public:
	MemStore() = default;
	MemStore(const MemStore &) = delete;
	MemStore &operator=(const MemStore &) = delete;
	~MemStore();

	int init(u64 size_bytes, int node);

	// Copies between buf and the store at byte offset off. Writes allocate missing pages
	// (GFP_NOIO when may_sleep, else GFP_NOWAIT); they return -CXMQ_ENOMEM when that fails.
	int write(u64 off, const void *buf, u32 len, bool may_sleep);
	void read(u64 off, void *buf, u32 len);
	// Makes [off, off+len) read back as zeroes; whole pages in it are freed.
	void discard(u64 off, u64 len);

	u64 size() const { return size_; }
	u64 nr_pages() const { return load_relaxed(nr_pages_); }

	enum : u32 {
		kPageShift = 12,
		kFanoutShift = 9, // 512 slots per node: one 4 KiB page of pointers
		kFanout = 1u << kFanoutShift,
		kStripes = 64,
	};

private:
	struct Node {
		void *slot[kFanout];
	};
	// The slot that holds (or will hold) the page with this index; nullptr only when a node
	// on the way is missing and create is false, or its allocation failed.
	void **page_slot(u64 index, bool create, bool may_sleep);
	SpinLock &stripe(u64 index) { return stripes_[index % kStripes]; }
	void free_node(void *node, u32 level);

	u64 size_ = 0;
	u32 levels_ = 1;
	int node_ = -1;
	void *root_ = nullptr;
	u64 nr_pages_ = 0;
	SpinLock stripes_[kStripes];
};

} // namespace cxmq
