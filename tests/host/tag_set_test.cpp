// SPDX-License-Identifier: GPL-2.0
// Shared tag sets (src/core/tag_set.cpp): queues of one set draw on one map per hardware queue
// index, each active one within max((depth + N - 1) / N, 4) tags for N active (blk-mq's
// hctx_may_queue); a queue with nothing in flight goes idle at the next timeout scan and the
// others' shares grow; a submitter held back by its share waits for its own queue's
// completions, one held back by a full map for anyone's; with a scheduler, the requests it
// gives out hold the set's tags within the share; a change of the counts changes every member.
#include "test_util.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <thread>
#include <vector>

using namespace host;
using cxmq::HwQueue;
using cxmq::Queue;
using cxmq::TagSet;

namespace {

class SharedTags : public HostTest {};

using Clock = std::chrono::steady_clock;

uint32_t share_of(uint32_t depth, uint32_t active)
{
	return std::max((depth + active - 1) / active, 4u);
}

// A set and its queues, each with a backend that holds what it is given.
struct SetOf {
	TagSet *set = nullptr;
	std::vector<std::unique_ptr<ScriptBackend>> backends;
	std::vector<Queue *> queues;

	SetOf(uint32_t n, uint32_t depth = 64, uint32_t submit_queues = 1)
	{
		set = TagSet::create();
		EXPECT_NE(set, nullptr);
		for (uint32_t i = 0; i < n; i++)
			add(make_config(submit_queues, depth));
	}
	Queue *add(cxmq_dev_config cfg, const char *sched = nullptr)
	{
		EXPECT_EQ(cxmq_config_check(&cfg), 0);
		backends.emplace_back(new ScriptBackend(
			[](const Call &, uint64_t) { return Decision{Act::Hold, CXMQ_STS_OK}; }));
		int err = 1;
		Queue *q = Queue::create(cfg, backends.back().get(), &err, set);
		EXPECT_NE(q, nullptr);
		EXPECT_EQ(err, 0);
		EXPECT_EQ(q->set_io_timeout("80"), 0); // scans every 10 ms: idle found soon
		if (sched) {
			const cxmq::ElevatorType *t;
			EXPECT_TRUE(cxmq::elevator_lookup(sched, strlen(sched), &t));
			EXPECT_EQ(q->set_elevator(t), 0);
		}
		queues.push_back(q);
		return q;
	}
	~SetOf()
	{
		for (auto &b : backends) {
			b->set_policy({}); // anything a late run sends completes at once
			b->complete_all();
		}
		for (Queue *q : queues)
			destroy_queue(q);
		cxmq::destroy(set);
	}
	HwQueue &h(uint32_t i) { return queues[i]->hctx(0); }
	ScriptBackend &be(uint32_t i) { return *backends[i]; }
};

uint32_t active(const HwQueue &h) { return cxmq::load_relaxed(h.nr_active); }
uint32_t active_queues(const HwQueue &h) { return cxmq::load_relaxed(h.shared->active_queues); }

// Submits NOWAIT bios ids [from, from + n) to q; returns how many got a request.
uint32_t submit_nowait(Queue *q, FakeBio *b, uint32_t from, uint32_t n)
{
	uint32_t got = 0;
	for (uint32_t i = from; i < from + n; i++) {
		submit(q, b[i], CXMQ_OP_READ, CXMQ_BIO_NOWAIT);
		got += b[i].failed.load() ? 0 : 1;
	}
	return got;
}

TEST_F(SharedTags, FairShareWithOneToFourActiveQueues)
{
	for (uint32_t n = 1; n <= 4; n++) {
		SCOPED_TRACE(n);
		auto bios = make_bios(4 * 128); // outlives the set: its end completes what is held
		SetOf s(4);
		// Each of the first n queues becomes active with one request, then asks for many.
		for (uint32_t i = 0; i < n; i++)
			ASSERT_EQ(submit_nowait(s.queues[i], bios.get(), i * 128, 1), 1u);
		EXPECT_EQ(active_queues(s.h(0)), n);
		const uint32_t share = share_of(64, n);
		EXPECT_EQ(cxmq::shared_tags::fair_share(s.h(0)), share);
		uint32_t taken = n;
		for (uint32_t i = 0; i < n; i++) {
			const uint32_t got = submit_nowait(s.queues[i], bios.get(), i * 128 + 1, 127);
			// Its share, or what the map had left.
			const uint32_t want = std::min(share - 1, 64 - taken);
			EXPECT_EQ(got, want) << "queue " << i;
			taken += got;
			EXPECT_EQ(active(s.h(i)), got + 1);
			EXPECT_EQ(s.be(i).held(), got + 1u);
			EXPECT_LE(active(s.h(i)), share);
		}
		EXPECT_EQ(s.h(0).shared->map.busy(), taken);
		// The others never became active: they count for nothing.
		for (uint32_t i = n; i < 4; i++)
			EXPECT_FALSE(cxmq::load_relaxed(s.h(i).tag_active));
		// Everything the queues refused ended with AGAIN, and every request completes.
		for (uint32_t i = 0; i < n; i++)
			s.be(i).complete_all();
		for (uint32_t i = 0; i < n * 128; i++) {
			ASSERT_TRUE(wait_ended(bios[i])) << i;
			EXPECT_EQ(bios[i].status.load(),
				  bios[i].failed.load() ? CXMQ_STS_AGAIN : CXMQ_STS_OK) << i;
		}
		EXPECT_EQ(s.h(0).shared->map.busy(), 0u);
	}
}

TEST_F(SharedTags, AnIdleQueueStopsCountingAndTheOtherGetsTheWholeDepth)
{
	auto bios = make_bios(256); // outlives the set: its end completes what is held
	SetOf s(2);
	ASSERT_EQ(submit_nowait(s.queues[0], bios.get(), 0, 1), 1u);
	ASSERT_EQ(submit_nowait(s.queues[1], bios.get(), 128, 1), 1u);
	EXPECT_EQ(submit_nowait(s.queues[0], bios.get(), 1, 63), 31u); // 32 with B active
	EXPECT_EQ(active(s.h(0)), 32u);
	// B's one request completes: nothing of B in flight, so the next scan makes it idle.
	s.be(1).complete_all();
	ASSERT_TRUE(eventually([&] { return active_queues(s.h(0)) == 1; }));
	EXPECT_FALSE(cxmq::load_relaxed(s.h(1).tag_active));
	EXPECT_EQ(cxmq::shared_tags::fair_share(s.h(0)), 64u);
	EXPECT_EQ(submit_nowait(s.queues[0], bios.get(), 64, 64), 32u); // the rest of the map
	EXPECT_EQ(active(s.h(0)), 64u);
	// A's requests in flight keep it active (the scans reset their timers).
	std::this_thread::sleep_for(std::chrono::milliseconds(50));
	EXPECT_TRUE(cxmq::load_relaxed(s.h(0).tag_active));
	// B active again: A's share is 32 again for what it asks next.
	s.be(0).complete(40);
	EXPECT_EQ(submit_nowait(s.queues[1], bios.get(), 129, 64), 32u); // 129..192
	EXPECT_EQ(active_queues(s.h(0)), 2u);
	EXPECT_EQ(submit_nowait(s.queues[0], bios.get(), 200, 16), 8u); // 24 + 8: its share
	EXPECT_EQ(active(s.h(0)), 32u);
	EXPECT_EQ(s.h(0).shared->map.busy(), 64u);
}

TEST_F(SharedTags, AWaiterHeldBackByItsShareIsWokenByItsOwnCompletion)
{
	auto bios = make_bios(256); // outlives the set: its end completes what is held
	SetOf s(2);
	ASSERT_EQ(submit_nowait(s.queues[1], bios.get(), 128, 1), 1u);
	ASSERT_EQ(submit_nowait(s.queues[0], bios.get(), 0, 40), 32u);
	std::thread t([&] { submit(s.queues[0], bios[100], CXMQ_OP_READ); });
	ASSERT_TRUE(eventually([&] { return sleepers() == 1; }));
	// B's completions (and B's new requests) do not let A past its share...
	ASSERT_EQ(submit_nowait(s.queues[1], bios.get(), 129, 10), 10u);
	s.be(1).complete(5);
	std::this_thread::sleep_for(std::chrono::milliseconds(20));
	EXPECT_EQ(sleepers(), 1);
	EXPECT_EQ(s.be(0).held(), 32u);
	// ... one of A's does.
	s.be(0).complete(1);
	t.join();
	EXPECT_EQ(s.be(0).held(), 32u);
	EXPECT_EQ(active(s.h(0)), 32u);
}

TEST_F(SharedTags, AWaiterForAFullMapIsWokenByAnyQueuesCompletion)
{
	auto bios = make_bios(3 * 128); // outlives the set: its end completes what is held
	SetOf s(3);
	for (uint32_t i = 0; i < 3; i++)
		ASSERT_EQ(submit_nowait(s.queues[i], bios.get(), i * 128, 1), 1u);
	// Shares of 22: A 22, B 22, C gets the 20 left.
	ASSERT_EQ(submit_nowait(s.queues[0], bios.get(), 1, 30), 21u);
	ASSERT_EQ(submit_nowait(s.queues[1], bios.get(), 129, 30), 21u);
	ASSERT_EQ(submit_nowait(s.queues[2], bios.get(), 257, 30), 19u);
	ASSERT_EQ(s.h(0).shared->map.busy(), 64u);
	std::thread t([&] { submit(s.queues[2], bios[300], CXMQ_OP_READ); });
	ASSERT_TRUE(eventually([&] { return sleepers() == 1; }));
	s.be(0).complete(1); // A's tag frees: C (under its share) takes it
	t.join();
	EXPECT_EQ(active(s.h(2)), 21u);
	EXPECT_EQ(active(s.h(0)), 21u);
}

TEST_F(SharedTags, AQueueGoingIdleWakesTheOthersWaiters)
{
	auto bios = make_bios(256); // outlives the set: its end completes what is held
	SetOf s(2);
	ASSERT_EQ(submit_nowait(s.queues[1], bios.get(), 128, 1), 1u);
	ASSERT_EQ(submit_nowait(s.queues[0], bios.get(), 0, 32), 32u);
	std::thread t([&] { submit(s.queues[0], bios[100], CXMQ_OP_READ); });
	ASSERT_TRUE(eventually([&] { return sleepers() == 1; }));
	s.be(1).complete_all(); // B idle at its next scan: A's share is the whole map
	t.join();
	EXPECT_EQ(active_queues(s.h(0)), 1u);
	EXPECT_EQ(active(s.h(0)), 33u);
}

TEST_F(SharedTags, WithASchedulerGivenOutRequestsHoldTheSetsTagsWithinTheShare)
{
	auto bios = make_bios(256); // outlives the set: its end completes what is held
	SetOf s(1);
	Queue *dl = s.add(make_config(1, 64), "mq-deadline");
	ASSERT_EQ(submit_nowait(s.queues[0], bios.get(), 0, 1), 1u);
	// mq-deadline's own pool (128) takes them all; the backend sees the share only.
	EXPECT_EQ(submit_nowait(dl, bios.get(), 128, 100), 100u);
	EXPECT_EQ(active_queues(s.h(0)), 2u);
	EXPECT_EQ(s.be(1).held(), 32u);
	EXPECT_EQ(active(s.h(1)), 32u);
	// The other queue idle: the scheduler's queue gets the whole map as its requests complete.
	s.be(0).complete_all();
	ASSERT_TRUE(eventually([&] { return active_queues(s.h(0)) == 1; }));
	ASSERT_TRUE(eventually([&] { return s.be(1).held() == 64; }));
	EXPECT_EQ(active(s.h(1)), 64u);
	ASSERT_EQ(submit_nowait(s.queues[0], bios.get(), 1, 1), 0u); // the map is full
	// Each completion frees a tag, and the queue, waiting for one, runs again.
	const auto end = Clock::now() + std::chrono::seconds(10);
	for (uint32_t i = 128; i < 228; i++)
		while (!bios[i].ends.load() && Clock::now() < end) {
			s.be(1).complete(3);
			std::this_thread::sleep_for(std::chrono::microseconds(200));
		}
	for (uint32_t i = 128; i < 228; i++)
		ASSERT_TRUE(wait_ended(bios[i])) << i;
	for (uint32_t i = 128; i < 228; i++)
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK) << i;
	ASSERT_TRUE(eventually([&] { return s.h(0).shared->map.busy() == 0; }));
	EXPECT_EQ(active(s.h(1)), 0u);
}

TEST_F(SharedTags, AFuaWritePastTheSchedulerHoldsASharedTagToo)
{
	auto bios = make_bios(256); // outlives the set: its end completes what is held
	SetOf s(1);
	Queue *dl = s.add(make_config(1, 64), "mq-deadline");
	// The other queue alone takes the whole map.
	ASSERT_EQ(submit_nowait(s.queues[0], bios.get(), 0, 64), 64u);
	// A FUA write bypasses mq-deadline to the dispatch list, and waits there for a tag.
	submit(dl, bios[128], CXMQ_OP_WRITE, CXMQ_BIO_FUA);
	EXPECT_EQ(s.be(1).held(), 0u);
	EXPECT_EQ(cxmq::load_relaxed(s.h(1).nr_dispatch), 1u);
	s.be(0).complete(1); // a freed tag runs the waiting queue
	ASSERT_TRUE(eventually([&] { return s.be(1).held() == 1; }));
	EXPECT_EQ(active(s.h(1)), 1u);
	EXPECT_EQ(s.h(0).shared->map.busy(), 64u);
	s.be(1).complete_all();
	ASSERT_TRUE(wait_ended(bios[128]));
	EXPECT_EQ(bios[128].status.load(), CXMQ_STS_OK);
	EXPECT_EQ(active(s.h(1)), 0u);
	EXPECT_EQ(s.h(0).shared->map.busy(), 63u);
}

TEST_F(SharedTags, ALaterMemberTakesTheSetsCountsAndDepth)
{
	SetOf s(1, 32, 2);
	Queue *q = s.add(make_config(1, 128));
	EXPECT_EQ(q->config().hw_queue_depth, 32u);
	EXPECT_EQ(q->nr_hw_queues(), 2u);
	EXPECT_EQ(q->hctx(1).depth(), 32u);
	EXPECT_EQ(q->hctx(1).shared, s.queues[0]->hctx(1).shared);
	EXPECT_NE(q->hctx(0).shared, q->hctx(1).shared);
	EXPECT_EQ(s.set->nr_members(), 2u);
}

TEST_F(SharedTags, ChangingTheCountsChangesEveryMember)
{
	auto bios = make_bios(64); // outlives the set: its end completes what is held
	SetOf s(2, 64, 1);
	uint32_t nr = 3, nr_poll = 1;
	for (Queue *q : s.queues)
		q->freeze();
	s.set->prepare_update(&nr, &nr_poll);
	EXPECT_EQ(nr, 3u);
	for (Queue *q : s.queues)
		EXPECT_EQ(q->update_nr_hw_queues(nr, nr_poll), 3u);
	s.set->finish_update();
	for (Queue *q : s.queues)
		q->unfreeze();
	EXPECT_EQ(s.set->nr_default_queues(), 3u);
	EXPECT_EQ(s.set->nr_poll_queues(), 1u);
	for (uint32_t i = 0; i < 4; i++) {
		EXPECT_EQ(s.queues[0]->hctx(i).shared, s.queues[1]->hctx(i).shared) << i;
		EXPECT_EQ(s.queues[0]->hctx(i).shared, s.set->tags(i)) << i;
	}
	// IO on every CPU of both devices gets the right index's tags.
	for (uint32_t cpu = 0; cpu < 4; cpu++) {
		set_this_cpu(cpu);
		for (uint32_t d = 0; d < 2; d++)
			ASSERT_EQ(submit_nowait(s.queues[d], bios.get(), cpu * 8 + d, 1), 1u);
	}
	set_this_cpu(0);
	uint32_t busy = 0;
	for (uint32_t i = 0; i < 3; i++)
		busy += s.set->tags(i)->map.busy();
	EXPECT_EQ(busy, 8u);
	for (uint32_t d = 0; d < 2; d++)
		s.be(d).complete_all();
	// Down to one: the tags no member uses are freed.
	nr = 1;
	nr_poll = 0;
	for (Queue *q : s.queues)
		q->freeze();
	s.set->prepare_update(&nr, &nr_poll);
	for (Queue *q : s.queues)
		q->update_nr_hw_queues(nr, nr_poll);
	s.set->finish_update();
	for (Queue *q : s.queues)
		q->unfreeze();
	EXPECT_EQ(s.set->tags(1), nullptr);
	EXPECT_EQ(s.queues[1]->nr_hw_queues(), 1u);
}

TEST_F(SharedTags, NrRequestsBoundsAQueueWithoutScheduler)
{
	auto bios = make_bios(64); // outlives the set: its end completes what is held
	SetOf s(2);
	EXPECT_EQ(s.queues[0]->set_nr_requests(8), 0);
	EXPECT_EQ(submit_nowait(s.queues[0], bios.get(), 0, 20), 8u);
	EXPECT_EQ(s.h(0).depth(), 64u); // the pool is still the set's
}

// Submitters on every CPU of four queues, blocking for tags, while a completer ends what the
// backends hold in random order: every bio ends once, nothing is left held, no share is ever
// exceeded by more than the requests in flight when it shrank.
TEST_F(SharedTags, StressManySubmittersFourQueues)
{
	constexpr uint32_t kPerThread = kTsan ? 300 : 1500;
	constexpr uint32_t kThreads = 6;
	auto bios = make_bios(kPerThread * kThreads); // outlives the set
	SetOf s(4, 32);
	std::atomic<bool> stop{false};
	std::thread completer([&] {
		std::mt19937 rng(7);
		while (!stop.load()) {
			for (uint32_t i = 0; i < 4; i++)
				s.be(i).complete(rng() % 4);
			std::this_thread::yield();
		}
	});
	std::vector<std::thread> ts;
	for (uint32_t t = 0; t < kThreads; t++)
		ts.emplace_back([&, t] {
			set_this_cpu(t % 4);
			for (uint32_t i = 0; i < kPerThread; i++) {
				const uint32_t id = t * kPerThread + i;
				// Some queues busier than others: queue 0 gets half.
				const uint32_t qi = (i % 2) ? 0 : 1 + (id % 3);
				submit(s.queues[qi], bios[id], CXMQ_OP_READ);
			}
		});
	for (auto &t : ts)
		t.join();
	for (uint32_t i = 0; i < kPerThread * kThreads; i++)
		ASSERT_TRUE(wait_ended(bios[i], std::chrono::milliseconds(20000))) << i;
	stop = true;
	completer.join();
	for (uint32_t i = 0; i < kPerThread * kThreads; i++) {
		EXPECT_EQ(bios[i].ends.load(), 1) << i;
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK) << i;
	}
	EXPECT_EQ(s.h(0).shared->map.busy(), 0u);
	for (uint32_t i = 0; i < 4; i++)
		EXPECT_EQ(active(s.h(i)), 0u);
}

} // namespace
