// SPDX-License-Identifier: GPL-2.0
// TagMap (src/core/tags.h): sbitmap-like tag allocation with per-CPU hints and FIFO sleepers.
#include "test_util.h"

#include <algorithm>
#include <atomic>
#include <set>

#include "tags.h"

using namespace host;
using cxmq::TagMap;

namespace {

class Tags : public HostTest {};
class TagsDepth : public HostTest, public ::testing::WithParamInterface<uint32_t> {};

// Words as the header documents them: up to 64 bits, fewer when that gives at least 4 words.
uint32_t documented_bits_per_word(uint32_t depth)
{
	uint32_t bits = 64;
	while (bits > 1 && 4 * bits > depth)
		bits /= 2;
	return bits;
}

TEST_P(TagsDepth, AllTagsDistinctInRangeThenExhausted)
{
	const uint32_t depth = GetParam();
	set_topology(simple_topology(4));
	TagMap tm;
	ASSERT_EQ(tm.init(depth, -1), 0);
	EXPECT_EQ(tm.depth(), depth);
	EXPECT_EQ(tm.bits_per_word(), documented_bits_per_word(depth));
	EXPECT_EQ(tm.busy(), 0u);

	std::set<uint32_t> got;
	for (uint32_t i = 0; i < depth; i++) {
		const uint32_t cpu = i % 4; // from every CPU's hint
		cxmq::s32 t = tm.try_get(cpu);
		ASSERT_NE(t, TagMap::kNoTag) << "map of depth " << depth << " exhausted after " << i;
		ASSERT_GE(t, 0);
		ASSERT_LT(static_cast<uint32_t>(t), depth);
		ASSERT_TRUE(got.insert(static_cast<uint32_t>(t)).second) << "tag " << t << " twice";
		EXPECT_TRUE(tm.is_busy(static_cast<uint32_t>(t)));
		EXPECT_EQ(tm.busy(), i + 1);
	}
	for (uint32_t cpu = 0; cpu < 4; cpu++)
		EXPECT_EQ(tm.try_get(cpu), TagMap::kNoTag) << "cpu " << cpu;
	EXPECT_EQ(tm.busy(), depth);
	EXPECT_FALSE(tm.is_busy(depth)); // out of range is never busy

	// Free one in the middle: exactly that one comes back, from any CPU.
	const uint32_t mid = depth / 2;
	tm.put(mid, 3);
	EXPECT_FALSE(tm.is_busy(mid));
	EXPECT_EQ(tm.busy(), depth - 1);
	EXPECT_EQ(tm.try_get(1), static_cast<cxmq::s32>(mid));
	EXPECT_EQ(tm.try_get(1), TagMap::kNoTag);

	for (uint32_t t = 0; t < depth; t++)
		tm.put(t, t % 4);
	EXPECT_EQ(tm.busy(), 0u);
	// All free again: a full second round works.
	got.clear();
	for (uint32_t i = 0; i < depth; i++) {
		cxmq::s32 t = tm.try_get(2);
		ASSERT_NE(t, TagMap::kNoTag);
		ASSERT_TRUE(got.insert(static_cast<uint32_t>(t)).second);
	}
	EXPECT_EQ(tm.try_get(0), TagMap::kNoTag);
	for (uint32_t t : got)
		tm.put(t, 0);
}

TEST_P(TagsDepth, GetWaitReturnsAtOnceWhenATagIsFree)
{
	const uint32_t depth = GetParam();
	TagMap tm;
	ASSERT_EQ(tm.init(depth, -1), 0);
	std::set<uint32_t> got;
	for (uint32_t i = 0; i < depth; i++) {
		uint32_t t = tm.get_wait(i % 4);
		ASSERT_LT(t, depth);
		ASSERT_TRUE(got.insert(t).second);
	}
	EXPECT_EQ(sleepers(), 0);
	for (uint32_t t : got)
		tm.put(t, 0);
}

INSTANTIATE_TEST_SUITE_P(Depths, TagsDepth,
			 ::testing::Values(1u, 2u, 3u, 4u, 31u, 64u, 65u, 100u, 256u, 4096u));

TEST_F(Tags, PutThenGetReturnsTheFreedTagOnThatCpu)
{
	set_topology(simple_topology(4));
	TagMap tm;
	ASSERT_EQ(tm.init(64, -1), 0);
	// CPU 0 takes five tags, in order from its hint.
	std::vector<cxmq::s32> t;
	for (int i = 0; i < 5; i++)
		t.push_back(tm.try_get(0));
	for (int i = 1; i < 5; i++)
		EXPECT_EQ(t[i], t[i - 1] + 1) << "CPU 0 does not continue after the tag it took";
	// CPU 1 frees one of them: it is CPU 1's next tag (cache-hot reuse) ...
	tm.put(static_cast<uint32_t>(t[2]), 1);
	EXPECT_EQ(tm.try_get(1), t[2]);
	// ... and CPU 0 is not disturbed: it goes on after its last tag.
	EXPECT_EQ(tm.try_get(0), t[4] + 1);
	// Each CPU reuses what it freed last, even with other free tags around.
	for (uint32_t cpu = 0; cpu < 4; cpu++) {
		cxmq::s32 a = tm.try_get(cpu);
		ASSERT_NE(a, TagMap::kNoTag);
		tm.put(static_cast<uint32_t>(a), cpu);
		EXPECT_EQ(tm.try_get(cpu), a) << "cpu " << cpu;
		tm.put(static_cast<uint32_t>(a), cpu);
	}
	for (cxmq::s32 x : {t[0], t[1], t[2], t[3], t[4], t[4] + 1})
		tm.put(static_cast<uint32_t>(x), 0);
	EXPECT_EQ(tm.busy(), 0u);
}

TEST_F(Tags, CpusStartOnDifferentWords)
{
	// A fresh map: the CPUs' first tags are spread over the map, on different cache lines.
	set_topology(simple_topology(4));
	TagMap tm;
	ASSERT_EQ(tm.init(256, -1), 0);
	std::set<uint32_t> words;
	std::vector<cxmq::s32> first;
	for (uint32_t cpu = 0; cpu < 4; cpu++) {
		first.push_back(tm.try_get(cpu));
		words.insert(static_cast<uint32_t>(first.back()) / tm.bits_per_word());
	}
	EXPECT_EQ(words.size(), 4u);
	for (cxmq::s32 t : first)
		tm.put(static_cast<uint32_t>(t), 0);
}

TEST_F(Tags, CpuBeyondTheHintsStillGetsTags)
{
	set_topology(simple_topology(2));
	TagMap tm;
	ASSERT_EQ(tm.init(8, -1), 0);
	cxmq::s32 t = tm.try_get(1000);
	ASSERT_NE(t, TagMap::kNoTag);
	tm.put(static_cast<uint32_t>(t), 1000);
	EXPECT_EQ(tm.busy(), 0u);
}

TEST_F(Tags, DoubleFreeIsABug)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	EXPECT_DEATH(
		{
			TagMap tm;
			if (tm.init(16, -1) == 0) {
				cxmq::s32 t = tm.try_get(0);
				tm.put(static_cast<uint32_t>(t), 0);
				tm.put(static_cast<uint32_t>(t), 0);
			}
		},
		"cxmq: BUG at .*tags\\.cpp:[0-9]+: !\\(old & mask\\)");
}

TEST_F(Tags, FreeingANeverTakenTagIsABug)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	EXPECT_DEATH(
		{
			TagMap tm;
			if (tm.init(100, -1) == 0)
				tm.put(70, 0);
		},
		"cxmq: BUG at .*tags\\.cpp");
}

TEST_F(Tags, FreeingATagOutOfRangeIsABug)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	EXPECT_DEATH(
		{
			TagMap tm;
			if (tm.init(64, -1) == 0)
				tm.put(64, 0);
		},
		"cxmq: BUG at .*tags\\.cpp:[0-9]+: tag >= depth_");
}

TEST_F(Tags, GetWaitSleepsUntilAPutFromAnotherThread)
{
	TagMap tm;
	ASSERT_EQ(tm.init(2, -1), 0);
	cxmq::s32 a = tm.try_get(0), b = tm.try_get(0);
	ASSERT_NE(a, TagMap::kNoTag);
	ASSERT_NE(b, TagMap::kNoTag);
	std::atomic<int> got{-1};
	std::thread waiter([&] {
		set_this_cpu(1);
		got = static_cast<int>(tm.get_wait(1));
	});
	ASSERT_TRUE(eventually([] { return sleepers() == 1; }));
	std::this_thread::sleep_for(std::chrono::milliseconds(20));
	EXPECT_EQ(got.load(), -1) << "get_wait returned while every tag was in use";
	tm.put(static_cast<uint32_t>(b), 0);
	waiter.join();
	EXPECT_EQ(got.load(), b);
	EXPECT_EQ(sleepers(), 0);
	tm.put(static_cast<uint32_t>(a), 0);
	tm.put(static_cast<uint32_t>(b), 0);
}

// Queues kWaiters sleepers one by one on a full map of depth 3, then frees one tag at a time:
// each put must wake exactly the oldest sleeper, which gets the freed tag. Returns the order
// in which the sleepers actually finished (every sleeper is released in the end).
std::vector<int> fifo_run(int waiters)
{
	TagMap tm;
	EXPECT_EQ(tm.init(3, -1), 0);
	std::vector<uint32_t> ours;
	for (int i = 0; i < 3; i++)
		ours.push_back(static_cast<uint32_t>(tm.try_get(0)));
	std::mutex m;
	std::vector<int> finished;
	std::vector<uint32_t> tag_of(static_cast<size_t>(waiters));
	std::vector<std::thread> th;
	for (int i = 0; i < waiters; i++) {
		th.emplace_back([&, i] {
			set_this_cpu(static_cast<uint32_t>(i % 4));
			uint32_t t = tm.get_wait(static_cast<uint32_t>(i % 4));
			std::lock_guard<std::mutex> g(m);
			tag_of[static_cast<size_t>(i)] = t;
			finished.push_back(i);
		});
		// Queue them one by one, so that their order is known.
		EXPECT_TRUE(eventually([&] { return sleepers() == i + 1; }));
	}
	auto nr_finished = [&] {
		std::lock_guard<std::mutex> g(m);
		return static_cast<int>(finished.size());
	};
	size_t taken_back = 0; // finished sleepers whose tags went back to `ours`
	for (int step = 0; step < waiters; step++) {
		if (ours.empty()) {
			std::lock_guard<std::mutex> g(m);
			for (; taken_back < finished.size(); taken_back++)
				ours.push_back(tag_of[static_cast<size_t>(finished[taken_back])]);
		}
		if (ours.empty()) {
			// Sleepers woke with no tag freed for them: nothing left to free.
			ADD_FAILURE() << "no tag left to free at step " << step;
			break;
		}
		const uint32_t t = ours.back();
		ours.pop_back();
		tm.put(t, 3);
		if (!eventually([&] { return nr_finished() >= step + 1; },
				std::chrono::milliseconds(3000))) {
			ADD_FAILURE() << "a put at step " << step << " woke nobody who got the tag";
			// Release the rest anyway, so that the test ends.
			while (nr_finished() < waiters) {
				{
					std::lock_guard<std::mutex> g(m);
					for (; taken_back < finished.size(); taken_back++)
						ours.push_back(tag_of[static_cast<size_t>(
							finished[taken_back])]);
				}
				if (!ours.empty()) {
					tm.put(ours.back(), 0);
					ours.pop_back();
				}
				std::this_thread::sleep_for(std::chrono::milliseconds(5));
			}
			break;
		}
		std::this_thread::sleep_for(std::chrono::milliseconds(2));
		EXPECT_EQ(nr_finished(), step + 1) << "a put released more than one sleeper";
	}
	for (auto &x : th)
		x.join();
	for (; taken_back < finished.size(); taken_back++)
		ours.push_back(tag_of[static_cast<size_t>(finished[taken_back])]);
	for (uint32_t t : ours)
		tm.put(t, 0);
	EXPECT_EQ(tm.busy(), 0u);
	EXPECT_EQ(sleepers(), 0);
	return finished;
}

TEST_F(Tags, SleepersAreWokenInFifoOrder)
{
	std::vector<int> order = fifo_run(5);
	EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

// Was a bug (fixed; src/shim/os_linux.c, cxmq_os_wait_exclusive): after a waiter that slept gets its tag, the
// shim wakes the next exclusive waiter whenever `woken && wq_has_sleeper()`, although the wake-up
// it consumed was its own. That waiter's try fails (no tag was freed for it), and since the
// wake-up took it off the queue (autoremove), prepare_to_wait_exclusive queues it again at the
// tail: every successful sleeper sends the next one to the back, so sleepers are not served in
// FIFO order (tags.h promises FIFO). Shown here on a faithful emulation of that rule, since the
// shim itself only runs in the kernel. Fix: pass a wake-up on only when one reached the waiter
// after its last prepare_to_wait_exclusive, i.e. when its entry was taken off the queue during
// the successful try: `if (list_empty_careful(&wait.entry) && wq_has_sleeper(&w->wq))`,
// checked before finish_wait.
TEST_F(Tags, ShimEmulationSleepersAreWokenInFifoOrder)
{
	emulate_shim_wake_pass_on(true);
	std::vector<int> order = fifo_run(5);
	EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

// N threads on different CPUs take and free tags as fast as they can, through both try_get
// and get_wait; `owner` checks that no tag is ever handed out twice.
uint64_t stress(uint32_t depth, int threads, int iters, uint32_t hold)
{
	set_topology(simple_topology(4));
	TagMap tm;
	EXPECT_EQ(tm.init(depth, -1), 0);
	std::unique_ptr<std::atomic<int>[]> owner(new std::atomic<int>[depth]);
	for (uint32_t i = 0; i < depth; i++)
		owner[i] = -1;
	std::atomic<int> errors{0};
	std::atomic<uint64_t> waits{0};
	auto release = [&](std::vector<uint32_t> &mine, int id, uint32_t cpu) {
		while (!mine.empty()) {
			uint32_t x = mine.back();
			mine.pop_back();
			if (owner[x].exchange(-1) != id)
				errors.fetch_add(1);
			tm.put(x, cpu);
		}
	};
	std::atomic<int> ready{0};
	std::vector<std::thread> th;
	for (int id = 0; id < threads; id++) {
		th.emplace_back([&, id] {
			const uint32_t cpu = static_cast<uint32_t>(id) % 4;
			set_this_cpu(cpu);
			std::vector<uint32_t> mine;
			ready.fetch_add(1);
			while (ready.load() < threads) // start together
				std::this_thread::yield();
			for (int i = 0; i < iters; i++) {
				cxmq::s32 t = tm.try_get(cpu);
				if (t == TagMap::kNoTag) {
					// Never sleep holding tags (others may wait for them).
					release(mine, id, cpu);
					waits.fetch_add(1);
					t = static_cast<cxmq::s32>(tm.get_wait(cpu));
				}
				if (t < 0 || static_cast<uint32_t>(t) >= depth ||
				    owner[t].exchange(id) != -1)
					errors.fetch_add(1);
				mine.push_back(static_cast<uint32_t>(t));
				if (mine.size() >= hold || (i & 7) == 0)
					release(mine, id, (cpu + static_cast<uint32_t>(i)) % 4);
			}
			release(mine, id, cpu);
		});
	}
	for (auto &t : th)
		t.join();
	EXPECT_EQ(errors.load(), 0) << "a tag was handed out twice";
	EXPECT_EQ(tm.busy(), 0u);
	EXPECT_EQ(sleepers(), 0);
	::testing::Test::RecordProperty("get_wait_calls", std::to_string(waits.load()));
	return waits.load();
}

TEST_F(Tags, StressSmallMapWithSleepers)
{
	// 8 tags for 6 threads holding up to 3 each: most gets sleep.
	uint64_t waits = stress(8, 6, kTsan ? 20000 : 100000, 3);
	EXPECT_GT(waits, 0u) << "the stress never made a thread sleep";
}

TEST_F(Tags, StressDepthOne)
{
	uint64_t waits = stress(1, 4, kTsan ? 20000 : 100000, 1);
	EXPECT_GT(waits, 0u) << "the stress never made a thread sleep";
}

TEST_F(Tags, StressLargeMap)
{
	stress(4096, 4, kTsan ? 20000 : 100000, 64);
}

} // namespace
