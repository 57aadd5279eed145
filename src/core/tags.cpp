// SPDX-License-Identifier: GPL-2.0
#include "tags.h"
#include "cxmq/core.h"

namespace cxmq {

TagMap::~TagMap()
{
	if (waitq_)
		cxmq_os_waitq_destroy(waitq_);
	if (shallow_waitq_)
		cxmq_os_waitq_destroy(shallow_waitq_);
	cxmq_os_free(words_);
	cxmq_os_free(hints_);
}

int TagMap::init(u32 depth, int node)
{
	CXMQ_BUG_ON(depth == 0 || depth > CXMQ_MAX_QUEUE_DEPTH);
	// As sbitmap: words of up to 64 bits, fewer when that gives at least 4 words, so that
	// CPUs starting from different hints touch different cache lines.
	u32 shift = 6;
	while (shift > 0 && (4u << shift) > depth)
		shift--;
	shift_ = shift;
	depth_ = depth;
	nr_words_ = (depth + (1u << shift) - 1) >> shift;
	nr_hints_ = cxmq_os_nr_cpu_ids();
	words_ = static_cast<Word *>(cxmq_os_zalloc(sizeof(Word) * nr_words_, node));
	hints_ = static_cast<Hint *>(cxmq_os_zalloc(sizeof(Hint) * nr_hints_, node));
	waitq_ = cxmq_os_waitq_create(node);
	shallow_waitq_ = cxmq_os_waitq_create(node);
	if (!words_ || !hints_ || !waitq_ || !shallow_waitq_)
		return -CXMQ_ENOMEM;
	for (u32 w = 0; w < nr_words_; w++)
		words_[w].depth = min(depth - (w << shift), 1u << shift);
	// Spread the CPUs' starting points over the map, as sbitmap's random initial hints do.
	for (u32 c = 0; c < nr_hints_; c++)
		hints_[c].next = static_cast<u32>((u64(c) * depth) / nr_hints_);
	return 0;
}

CXMQ_HOT s32 TagMap::get_from_word(u32 w, u32 start_bit, u32 shallow)
{
	Word &word = words_[w];
	const u32 bits = shallow ? min(word.depth, shallow) : word.depth;
	const u64 valid = bits == 64 ? ~0ull : ((1ull << bits) - 1);
	u64 cur = load_relaxed(word.bits);
	for (;;) {
		u64 free = ~cur & valid;
		if (!free)
			return kNoTag;
		// Prefer the first free bit at or after start_bit, then wrap within the word.
		u64 above = free & (~0ull << start_bit);
		u32 bit = static_cast<u32>(__builtin_ctzll(above ? above : free));
		if (__atomic_compare_exchange_n(&word.bits, &cur, cur | (1ull << bit), false,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return static_cast<s32>((w << shift_) + bit);
	}
}

CXMQ_HOT s32 TagMap::try_get(u32 cpu, u32 shallow)
{
	Hint &h = hints_[cpu < nr_hints_ ? cpu : 0];
	u32 hint = load_relaxed(h.next);
	if (hint >= depth_)
		hint = 0;
	u32 w = hint >> shift_;
	u32 bit = hint & ((1u << shift_) - 1);
	for (u32 i = 0; i < nr_words_; i++) {
		s32 tag = get_from_word(w, bit, shallow);
		if (tag != kNoTag) {
			u32 next = static_cast<u32>(tag) + 1;
			store_relaxed(h.next, next >= depth_ ? 0u : next);
			return tag;
		}
		bit = 0;
		if (++w == nr_words_)
			w = 0;
	}
	store_relaxed(h.next, 0u);
	return kNoTag;
}

namespace {
struct WaitArg {
	TagMap *map;
	u32 cpu;
	u32 shallow;
	s32 tag;
};
int try_get_for_wait(void *p)
{
	auto *a = static_cast<WaitArg *>(p);
	a->tag = a->map->try_get(a->cpu, a->shallow);
	return a->tag != TagMap::kNoTag;
}
} // namespace

u32 TagMap::get_wait(u32 cpu, u32 shallow)
{
	if (shallow >= bits_per_word())
		shallow = 0;
	s32 tag = try_get(cpu, shallow);
	if (tag != kNoTag)
		return static_cast<u32>(tag);
	WaitArg arg{this, cpu, shallow, kNoTag};
	// Against put(): this store, then our try after queueing; there, the bit cleared, then
	// this flag read (all sequentially consistent): one of the two sees the other.
	if (shallow)
		__atomic_store_n(&shallow_waited_, true, __ATOMIC_SEQ_CST);
	cxmq_os_wait_exclusive(shallow ? shallow_waitq_ : waitq_, try_get_for_wait, &arg);
	CXMQ_BUG_ON(arg.tag == kNoTag);
	return static_cast<u32>(arg.tag);
}

CXMQ_HOT void TagMap::put(u32 tag, u32 cpu)
{
	CXMQ_BUG_ON(tag >= depth_);
	Word &word = words_[tag >> shift_];
	const u64 mask = 1ull << (tag & ((1u << shift_) - 1));
	u64 old = __atomic_fetch_and(&word.bits, ~mask, __ATOMIC_SEQ_CST);
	CXMQ_BUG_ON(!(old & mask)); // double free
	if (cpu < nr_hints_)
		store_relaxed(hints_[cpu].next, tag);
	// The bit is clear before the waiter check (waitq_active has a full barrier): a waiter
	// that queued itself after our check sees the free bit in its own try.
	if (cxmq_os_waitq_active(waitq_))
		cxmq_os_wake_one(waitq_);
	if (__atomic_load_n(&shallow_waited_, __ATOMIC_SEQ_CST) &&
	    cxmq_os_waitq_active(shallow_waitq_))
		cxmq_os_wake_one(shallow_waitq_);
}

u32 TagMap::busy() const
{
	u32 n = 0;
	for (u32 w = 0; w < nr_words_; w++)
		n += popcount64(load_relaxed(words_[w].bits));
	return n;
}

bool TagMap::is_busy(u32 tag) const
{
	if (tag >= depth_)
		return false;
	return load_relaxed(words_[tag >> shift_].bits) & (1ull << (tag & ((1u << shift_) - 1)));
}

} // namespace cxmq
