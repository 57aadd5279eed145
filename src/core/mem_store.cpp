// SPDX-License-Identifier: GPL-2.0
#include "mem_store.h"

namespace cxmq {

namespace {
void copy_bytes(void *dst, const void *src, u32 len)
{
	__builtin_memcpy(dst, src, len);
}
void zero_bytes(void *dst, u32 len)
{
	__builtin_memset(dst, 0, len);
}
} // namespace

int MemStore::init(u64 size_bytes, int node)
{
	size_ = size_bytes;
	node_ = node;
	u64 pages = (size_bytes + CXMQ_PAGE_SIZE - 1) >> kPageShift;
	levels_ = 1;
	while (levels_ < 8 && (pages - 1) >> (kFanoutShift * levels_))
		levels_++;
	for (SpinLock &l : stripes_)
		if (!l.init(node))
			return -CXMQ_ENOMEM;
	root_ = cxmq_os_zalloc(sizeof(Node), node);
	return root_ ? 0 : -CXMQ_ENOMEM;
}

void MemStore::free_node(void *p, u32 level)
{
	if (!p)
		return;
	auto *n = static_cast<Node *>(p);
	for (u32 i = 0; i < kFanout; i++) {
		if (!n->slot[i])
			continue;
		if (level == 1) {
			cxmq_os_page_free(n->slot[i]);
		} else {
			free_node(n->slot[i], level - 1);
		}
	}
	cxmq_os_free(n);
}

MemStore::~MemStore()
{
	free_node(root_, levels_);
}

void **MemStore::page_slot(u64 index, bool create, bool may_sleep)
{
	auto *n = static_cast<Node *>(root_);
	for (u32 level = levels_; level > 1; level--) {
		u32 i = (index >> (kFanoutShift * (level - 1))) & (kFanout - 1);
		void *child = load_acquire(n->slot[i]);
		if (!child) {
			if (!create)
				return nullptr;
			void *fresh = cxmq_os_zalloc_io(sizeof(Node), may_sleep, node_);
			if (!fresh)
				return nullptr;
			void *expected = nullptr;
			if (__atomic_compare_exchange_n(&n->slot[i], &expected, fresh, false,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
				child = fresh;
			} else {
				cxmq_os_free(fresh); // another writer installed it first
				child = expected;
			}
		}
		n = static_cast<Node *>(child);
	}
	return &n->slot[index & (kFanout - 1)];
}

int MemStore::write(u64 off, const void *buf, u32 len, bool may_sleep)
{
	const char *src = static_cast<const char *>(buf);
	while (len) {
		const u64 index = off >> kPageShift;
		const u32 in_page = static_cast<u32>(off & (CXMQ_PAGE_SIZE - 1));
		const u32 n = min(len, CXMQ_PAGE_SIZE - in_page);
		void **slot = page_slot(index, true, may_sleep);
		if (!slot)
			return -CXMQ_ENOMEM;
		SpinLock &l = stripe(index);
		void *spare = nullptr;
		unsigned long flags = l.lock();
		void *page = *slot;
		while (!page) {
			if (spare) { // install the page allocated below, under the stripe lock
				page = spare;
				spare = nullptr;
				store_release(*slot, page);
				add_relaxed(nr_pages_, u64(1));
				break;
			}
			l.unlock(flags); // allocation may sleep
			spare = cxmq_os_page_alloc(may_sleep, node_);
			if (!spare)
				return -CXMQ_ENOMEM;
			flags = l.lock();
			page = *slot; // a concurrent writer may have installed one meanwhile
		}
		copy_bytes(static_cast<char *>(page) + in_page, src, n);
		l.unlock(flags);
		cxmq_os_page_free(spare); // lost the race: not needed
		src += n;
		off += n;
		len -= n;
	}
	return 0;
}

void MemStore::read(u64 off, void *buf, u32 len)
{
	char *dst = static_cast<char *>(buf);
	while (len) {
		const u64 index = off >> kPageShift;
		const u32 in_page = static_cast<u32>(off & (CXMQ_PAGE_SIZE - 1));
		const u32 n = min(len, CXMQ_PAGE_SIZE - in_page);
		void **slot = page_slot(index, false, false);
		if (!slot) {
			zero_bytes(dst, n);
		} else {
			LockGuard g(stripe(index));
			void *page = *slot;
			if (page)
				copy_bytes(dst, static_cast<char *>(page) + in_page, n);
			else
				zero_bytes(dst, n);
		}
		dst += n;
		off += n;
		len -= n;
	}
}

void MemStore::discard(u64 off, u64 len)
{
	while (len) {
		const u64 index = off >> kPageShift;
		const u32 in_page = static_cast<u32>(off & (CXMQ_PAGE_SIZE - 1));
		const u32 n = static_cast<u32>(min<u64>(len, CXMQ_PAGE_SIZE - in_page));
		void **slot = page_slot(index, false, false);
		if (!slot) {
			// No leaf node here: nothing stored up to the next leaf boundary; skip it.
			const u64 next = (index | (kFanout - 1)) + 1;
			const u64 skip = (next << kPageShift) - off;
			if (skip >= len)
				break;
			off += skip;
			len -= skip;
			continue;
		}
		{
			void *victim = nullptr;
			{
				LockGuard g(stripe(index));
				void *page = *slot;
				if (page && n == CXMQ_PAGE_SIZE) {
					victim = page;
					store_release(*slot, static_cast<void *>(nullptr));
				} else if (page) {
					zero_bytes(static_cast<char *>(page) + in_page, n);
				}
			}
			if (victim) {
				cxmq_os_page_free(victim);
				__atomic_sub_fetch(&nr_pages_, u64(1), __ATOMIC_RELAXED);
			}
		}
		off += n;
		len -= n;
	}
}

} // namespace cxmq
