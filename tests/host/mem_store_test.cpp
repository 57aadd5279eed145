// SPDX-License-Identifier: GPL-2.0
// MemStore (src/core/mem_store.h), the memory of the null backend's memory_backed mode, used
// directly: holes read as zeroes, byte-exact round trips across pages, discard freeing whole
// pages and zeroing partial ones, radix trees of several levels, allocation failures, and
// writers, discarders and readers racing (checked by ThreadSanitizer and against a model).
#include "test_util.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <random>
#include <set>

#include "mem_store.h"

using namespace host;
using cxmq::MemStore;

namespace {

class MemStoreTest : public HostTest {};

constexpr uint64_t kPage = CXMQ_PAGE_SIZE;
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kTiB = 1ull << 40;
constexpr uint64_t kPiB = 1ull << 50;

// A store made and destroyed as the null backend does it.
struct Store {
	MemStore *s = nullptr;
	explicit Store(uint64_t size)
	{
		s = cxmq::make<MemStore>(-1);
		EXPECT_NE(s, nullptr);
		if (s) {
			EXPECT_EQ(s->init(size, -1), 0);
		}
	}
	~Store() { cxmq::destroy(s); }
	Store(const Store &) = delete;
	Store &operator=(const Store &) = delete;
	MemStore *operator->() const { return s; }
};

// A byte of a write's pattern: never zero, so that a hole is told from data.
uint8_t pattern(uint64_t off, uint32_t seed)
{
	uint64_t h = (off + seed) * 0x9e3779b97f4a7c15ull;
	h ^= h >> 29;
	return static_cast<uint8_t>(h % 255 + 1);
}
std::vector<uint8_t> make_pattern(uint64_t off, size_t len, uint32_t seed)
{
	std::vector<uint8_t> v(len);
	for (size_t i = 0; i < len; i++)
		v[i] = pattern(off + i, seed);
	return v;
}
std::vector<uint8_t> read_back(MemStore *s, uint64_t off, uint32_t len)
{
	std::vector<uint8_t> v(len, 0xee); // reads must overwrite every byte
	s->read(off, v.data(), len);
	return v;
}
bool all_zero(const std::vector<uint8_t> &v)
{
	return std::all_of(v.begin(), v.end(), [](uint8_t b) { return b == 0; });
}

TEST_F(MemStoreTest, UnwrittenRangesReadZeroAndAllocateNothing)
{
	Store s(64 * kMiB);
	const long allocs = allocations();
	for (auto r : {std::pair<uint64_t, uint32_t>{0, 1}, {0, 4096}, {4095, 2}, {12345, 70000},
		       {64 * kMiB - 1, 1}, {64 * kMiB - 3 * kPage - 7, uint32_t(3 * kPage + 7)}}) {
		SCOPED_TRACE(r.first);
		EXPECT_TRUE(all_zero(read_back(s.s, r.first, r.second)));
	}
	EXPECT_EQ(s->nr_pages(), 0u);
	EXPECT_EQ(allocations(), allocs) << "a read allocated memory";
	// A write next to a hole leaves the hole zero.
	std::vector<uint8_t> d = make_pattern(5 * kPage + 10, 100, 1);
	ASSERT_EQ(s->write(5 * kPage + 10, d.data(), 100, true), 0);
	auto v = read_back(s.s, 5 * kPage, kPage);
	EXPECT_TRUE(all_zero({v.begin(), v.begin() + 10}));
	EXPECT_EQ(std::vector<uint8_t>(v.begin() + 10, v.begin() + 110), d);
	EXPECT_TRUE(all_zero({v.begin() + 110, v.end()}));
	EXPECT_TRUE(all_zero(read_back(s.s, 4 * kPage, kPage)));
	EXPECT_TRUE(all_zero(read_back(s.s, 6 * kPage, kPage)));
	EXPECT_EQ(s->nr_pages(), 1u);
	s->write(0, d.data(), 0, true); // nothing
	EXPECT_EQ(s->nr_pages(), 1u);
}

// Random writes at unaligned offsets and lengths, many crossing pages, against a model.
TEST_F(MemStoreTest, UnalignedWritesRoundTripAcrossPages)
{
	Store s(8 * kMiB);
	const uint64_t base = kMiB + 5;
	const size_t region = 64 * kPage;
	std::vector<uint8_t> model(region, 0);
	std::set<uint64_t> touched; // pages written
	std::mt19937_64 rng(42);
	for (uint32_t op = 0; op < 400; op++) {
		const uint64_t off = rng() % region;
		const uint32_t len = static_cast<uint32_t>(
			std::min<uint64_t>(1 + rng() % (3 * kPage + 17), region - off));
		if (op % 3 != 2) {
			auto d = make_pattern(base + off, len, op);
			ASSERT_EQ(s->write(base + off, d.data(), len, op & 1), 0);
			std::copy(d.begin(), d.end(), model.begin() + off);
			for (uint64_t p = (base + off) / kPage; p <= (base + off + len - 1) / kPage; p++)
				touched.insert(p);
		} else {
			auto v = read_back(s.s, base + off, len);
			ASSERT_TRUE(std::equal(v.begin(), v.end(), model.begin() + off))
				<< "op " << op << ": read of " << len << " bytes at +" << off;
		}
	}
	auto all = read_back(s.s, base, region);
	EXPECT_TRUE(all == model);
	EXPECT_EQ(s->nr_pages(), touched.size());
	// Around the region: still holes.
	EXPECT_TRUE(all_zero(read_back(s.s, base - 5, 5)));
	EXPECT_TRUE(all_zero(read_back(s.s, base + region, 100)));
}

TEST_F(MemStoreTest, DiscardFreesWholePagesAndZeroesPartialOnes)
{
	Store s(16 * kMiB);
	const uint64_t base = 100 * kPage;
	auto d = make_pattern(base, 8 * kPage, 3);
	ASSERT_EQ(s->write(base, d.data(), 8 * kPage, true), 0);
	EXPECT_EQ(s->nr_pages(), 8u);
	// Bytes 100.. of page 1 up to byte 200 of page 5: pages 2, 3, 4 go, 1 and 5 are zeroed
	// in part.
	const uint64_t from = base + kPage + 100, to = base + 5 * kPage + 200;
	s->discard(from, to - from);
	EXPECT_EQ(s->nr_pages(), 5u) << "whole pages discarded were not freed";
	auto v = read_back(s.s, base, 8 * kPage);
	for (uint64_t i = 0; i < 8 * kPage; i++) {
		const bool gone = base + i >= from && base + i < to;
		ASSERT_EQ(v[i], gone ? 0 : d[i]) << "byte " << i;
	}
	// A partial discard never frees, even when it zeroes the rest of a page.
	s->discard(base + 100, kPage - 100);
	s->discard(base, 100);
	EXPECT_TRUE(all_zero(read_back(s.s, base, kPage)));
	EXPECT_EQ(s->nr_pages(), 5u);
	// Discarding holes allocates nothing; a whole page discarded then rewritten is fresh.
	const long allocs = allocations();
	s->discard(base + 20 * kPage, 30 * kPage + 1);
	s->discard(2 * kMiB - 1, 3 * kMiB);
	EXPECT_EQ(allocations(), allocs);
	s->discard(base + 7 * kPage, kPage);
	EXPECT_EQ(s->nr_pages(), 4u);
	std::vector<uint8_t> one(1, 0x5a);
	ASSERT_EQ(s->write(base + 7 * kPage + 4000, one.data(), 1, true), 0);
	v = read_back(s.s, base + 7 * kPage, kPage);
	EXPECT_EQ(std::count(v.begin(), v.end(), 0), long(kPage - 1)) << "old data came back";
	EXPECT_EQ(v[4000], 0x5a);
	EXPECT_EQ(s->nr_pages(), 5u);
	// Everything.
	s->discard(0, 16 * kMiB);
	EXPECT_EQ(s->nr_pages(), 0u);
	EXPECT_TRUE(all_zero(read_back(s.s, base, 8 * kPage)));
}

TEST_F(MemStoreTest, DiscardLongerThanFourGiB)
{
	Store s(kTiB);
	const uint64_t a = 3 * kPage, b = a + (5ull << 30); // 5 GiB apart
	auto d = make_pattern(0, kPage, 9);
	ASSERT_EQ(s->write(a, d.data(), kPage, true), 0);
	ASSERT_EQ(s->write(b, d.data(), kPage, true), 0);
	ASSERT_EQ(s->write(b + kPage, d.data(), kPage, true), 0);
	s->discard(a, b - a + kPage); // more than a u32 of bytes: the page at b goes too
	EXPECT_EQ(s->nr_pages(), 1u);
	EXPECT_TRUE(all_zero(read_back(s.s, b, kPage)));
	EXPECT_EQ(read_back(s.s, b + kPage, kPage), d);
}

// Sizes that need 1, 2, 4 and 5 levels of 512-slot nodes. The first write into an empty store
// allocates one node per level below the root, and the page: that tells the depth. Pages whose
// indexes differ only above a level must not alias.
TEST_F(MemStoreTest, SeveralRadixLevels)
{
	struct Case {
		uint64_t size;
		long first_write_allocs;
	};
	for (Case c : {Case{2 * kMiB, 1}, Case{2 * kMiB + kPage, 2}, Case{kTiB, 4}, Case{kPiB, 5}}) {
		SCOPED_TRACE(c.size);
		Store s(c.size);
		const uint64_t pages = c.size / kPage;
		const uint64_t last = c.size - 1;
		const long before = allocations();
		uint8_t byte = 0x77;
		ASSERT_EQ(s->write(last, &byte, 1, true), 0);
		EXPECT_EQ(allocations() - before, c.first_write_allocs);
		auto tail = read_back(s.s, last - 2, 3);
		EXPECT_EQ(tail, (std::vector<uint8_t>{0, 0, 0x77}));
		// Pages 0, 512^k (k = 1.. while inside) and the last: distinct contents.
		std::vector<uint64_t> idx{0};
		for (uint64_t p = 512; p < pages; p *= 512)
			idx.push_back(p);
		if (pages > 1)
			idx.push_back(pages - 2);
		uint32_t seed = 1;
		for (uint64_t p : idx) {
			auto d = make_pattern(p * kPage, kPage, seed++);
			ASSERT_EQ(s->write(p * kPage, d.data(), kPage, false), 0);
		}
		seed = 1;
		for (uint64_t p : idx)
			EXPECT_EQ(read_back(s.s, p * kPage, kPage), make_pattern(p * kPage, kPage, seed++))
				<< "page " << p;
		// A write across the last page boundary, and around each 512^k boundary.
		auto x = make_pattern(last - kPage - 50, 100, 99);
		ASSERT_EQ(s->write(last - kPage - 50, x.data(), 100, true), 0);
		EXPECT_EQ(read_back(s.s, last - kPage - 50, 100), x);
		for (uint64_t p = 512; p < pages; p *= 512) {
			auto y = make_pattern(p * kPage - 30, 60, 7);
			ASSERT_EQ(s->write(p * kPage - 30, y.data(), 60, true), 0);
			EXPECT_EQ(read_back(s.s, p * kPage - 30, 60), y);
		}
		std::set<uint64_t> used(idx.begin(), idx.end());
		used.insert(pages - 1);
		for (uint64_t p = 512; p < pages; p *= 512)
			used.insert(p - 1);
		EXPECT_EQ(s->nr_pages(), used.size());
	}
}

// A write that needs interior nodes and pages, each allocation failing in turn: -ENOMEM every
// time, never 0; the pages it did fill are counted and hold exactly their part of the data,
// the others stay holes; a retry then succeeds. Nothing leaks.
TEST_F(MemStoreTest, AllocationFailureFailsTheWrite)
{
	const uint64_t off = ((1ull << 27) + 511) * kPage + 1000; // across a leaf's end
	const uint32_t len = 2 * kPage;
	const auto d = make_pattern(off, len, 5);
	long needed;
	{
		Store s(kTiB);
		const long before = allocations();
		ASSERT_EQ(s->write(off, d.data(), len, true), 0);
		needed = allocations() - before;
	}
	ASSERT_GE(needed, 5); // nodes on two paths, three pages
	for (bool may_sleep : {true, false}) {
		for (long k = 0; k < needed; k++) {
			SCOPED_TRACE(testing::Message() << "may_sleep " << may_sleep << ", failing " << k);
			Store s(kTiB);
			fail_allocation_at(k);
			const int ret = s->write(off, d.data(), len, may_sleep);
			fail_allocation_at(-1);
			EXPECT_EQ(ret, -CXMQ_ENOMEM);
			auto v = read_back(s.s, off, len);
			uint64_t filled = 0;
			for (uint64_t p = off / kPage; p <= (off + len - 1) / kPage; p++) {
				const uint64_t a = std::max(p * kPage, off) - off;
				const uint64_t b = std::min((p + 1) * kPage, off + len) - off;
				const bool data = std::equal(v.begin() + a, v.begin() + b, d.begin() + a);
				const bool hole = std::all_of(v.begin() + a, v.begin() + b,
							      [](uint8_t x) { return x == 0; });
				EXPECT_TRUE(data || hole) << "page " << p << " is half written";
				filled += data ? 1 : 0;
			}
			EXPECT_EQ(s->nr_pages(), filled);
			ASSERT_EQ(s->write(off, d.data(), len, may_sleep), 0);
			EXPECT_EQ(read_back(s.s, off, len), d);
			EXPECT_EQ(s->nr_pages(), 3u);
		}
	}
}

// GFP_NOWAIT writes never sleep: callable under a spinlock (the host reports any sleeping call).
TEST_F(MemStoreTest, NowaitWriteNeverSleeps)
{
	Store s(kTiB);
	cxmq_os_lock *l = cxmq_os_lock_create(-1);
	auto d = make_pattern(0, 3 * kPage, 1);
	unsigned long flags = cxmq_os_lock_irqsave(l);
	EXPECT_EQ(s->write(kTiB / 2 - 100, d.data(), 3 * kPage, false), 0);
	s->read(kTiB / 2 - 100, d.data(), 3 * kPage);
	s->discard(kTiB / 2, kPage);
	cxmq_os_unlock_irqrestore(l, flags);
	cxmq_os_lock_destroy(l);
	EXPECT_EQ(s->nr_pages(), 3u);
}

// Writers on their own pages (sharing leaves, stripes and the interior nodes they race to
// install), writers and discarders fighting over shared pages, and readers of everything. Under
// ThreadSanitizer: no race. Each owned page ends as its owner's model says; a shared page is
// always seen whole (all zero or one writer's byte), as each page operation is atomic.
TEST_F(MemStoreTest, WritersDiscardersAndReadersRace)
{
	Store s(kTiB);
	constexpr int kOwners = 8;
	constexpr uint64_t kOwnPages = 24;
	const uint64_t own0 = (1ull << 27) + 1000; // fresh paths: nodes installed under the race
	const uint64_t shared0 = 5, kShared = 16;
	const int iters = kTsan ? 3000 : 10000;
	using Page = std::array<uint8_t, kPage>;
	struct Model {
		std::vector<Page> pages = std::vector<Page>(kOwnPages);
		std::vector<bool> allocated = std::vector<bool>(kOwnPages, false);
	};
	std::vector<Model> models(kOwners);
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> owner_mismatch{0}, torn{0};
	std::vector<std::thread> th;
	for (int t = 0; t < kOwners; t++)
		th.emplace_back([&, t] {
			set_this_cpu(static_cast<uint32_t>(t % 4));
			std::mt19937_64 rng(1000 + t);
			Model &m = models[t];
			std::vector<uint8_t> buf(kPage);
			for (int i = 0; i < iters; i++) {
				const uint64_t k = rng() % kOwnPages;
				const uint64_t pg = own0 + uint64_t(t) + kOwners * k; // interleaved
				uint32_t o = static_cast<uint32_t>(rng() % kPage);
				uint32_t n = static_cast<uint32_t>(1 + rng() % (kPage - o));
				const int op = static_cast<int>(rng() % 10);
				if (op == 5 || op == 6) { // whole page
					o = 0;
					n = kPage;
				}
				if (op <= 4 || op == 5) {
					for (uint32_t b = 0; b < n; b++)
						buf[b] = pattern(pg * kPage + o + b, uint32_t(i));
					if (s->write(pg * kPage + o, buf.data(), n, true))
						owner_mismatch++;
					std::copy(buf.begin(), buf.begin() + n, m.pages[k].begin() + o);
					m.allocated[k] = true;
				} else if (op == 6 || op == 7) {
					s->discard(pg * kPage + o, n);
					std::fill(m.pages[k].begin() + o, m.pages[k].begin() + o + n, 0);
					if (n == kPage)
						m.allocated[k] = false;
				} else {
					s->read(pg * kPage, buf.data(), kPage);
					if (!std::equal(buf.begin(), buf.end(), m.pages[k].begin()))
						owner_mismatch++;
				}
			}
		});
	auto uniform = [](const uint8_t *p, size_t n) {
		return std::all_of(p, p + n, [p](uint8_t b) { return b == p[0]; });
	};
	for (int w = 0; w < 2; w++)
		th.emplace_back([&, w] {
			std::mt19937_64 rng(77 + w);
			std::vector<uint8_t> buf(kPage);
			while (!stop.load()) {
				std::fill(buf.begin(), buf.end(), static_cast<uint8_t>(1 + rng() % 255));
				s->write((shared0 + rng() % kShared) * kPage, buf.data(), kPage, w == 0);
			}
		});
	for (int d = 0; d < 2; d++)
		th.emplace_back([&, d] {
			std::mt19937_64 rng(88 + d);
			while (!stop.load()) {
				s->discard((shared0 + rng() % kShared) * kPage, kPage);
				std::this_thread::yield();
			}
		});
	for (int r = 0; r < 2; r++)
		th.emplace_back([&, r] {
			std::mt19937_64 rng(99 + r);
			std::vector<uint8_t> buf(2 * kPage);
			while (!stop.load()) {
				const uint64_t p = shared0 + rng() % (kShared - 1);
				s->read(p * kPage, buf.data(), 2 * kPage);
				if (!uniform(buf.data(), kPage) || !uniform(buf.data() + kPage, kPage))
					torn++;
				s->read((own0 + rng() % (kOwners * kOwnPages)) * kPage + rng() % 100,
					buf.data(), kPage + 200);
			}
		});
	for (int t = 0; t < kOwners; t++)
		th[t].join();
	stop = true;
	for (size_t t = kOwners; t < th.size(); t++)
		th[t].join();
	EXPECT_EQ(owner_mismatch.load(), 0u) << "an owner read back something else than it wrote";
	EXPECT_EQ(torn.load(), 0u) << "a page was seen half written or half discarded";
	uint64_t allocated = 0;
	std::vector<uint8_t> buf(kPage);
	for (int t = 0; t < kOwners; t++)
		for (uint64_t k = 0; k < kOwnPages; k++) {
			const uint64_t pg = own0 + uint64_t(t) + kOwners * k;
			s->read(pg * kPage, buf.data(), kPage);
			EXPECT_TRUE(std::equal(buf.begin(), buf.end(), models[t].pages[k].begin()))
				<< "owner " << t << " page " << k;
			allocated += models[t].allocated[k] ? 1 : 0;
		}
	s->discard(shared0 * kPage, kShared * kPage);
	EXPECT_EQ(s->nr_pages(), allocated);
}

} // namespace
