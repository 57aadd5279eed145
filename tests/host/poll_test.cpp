// SPDX-License-Identifier: GPL-2.0
// Polling (src/core/poll.cpp): poll_queues makes hardware queues of the poll type with their own
// CPU map (blk-mq's HCTX_TYPE_POLL), polled bios go there and complete only when polled, the
// cookie the core writes into each polled bio names the queue to poll, and mq/'s io_poll and
// type files; live changes of the queue counts remap both maps; pollers racing each other, the
// completions and a freeze.
#include "test_util.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace host;

namespace {

class Poll : public HostTest {};

cxmq_dev_config poll_config(uint32_t queues, uint32_t poll_queues, uint32_t irqmode = 0,
			    uint32_t depth = 64)
{
	cxmq_dev_config cfg = make_config(queues, depth);
	cfg.poll_queues = poll_queues;
	cfg.irqmode = irqmode;
	return cfg;
}

std::string hctx_file(cxmq_queue *q, uint32_t h, cxmq_hctx_attr a)
{
	char buf[256];
	const int n = cxmq_queue_show_hctx(q, h, a, buf, sizeof(buf));
	return n < 0 ? "<error>" : std::string(buf, static_cast<size_t>(n));
}

void submit_polled(cxmq_queue *q, FakeBio &b, cxmq_op op = CXMQ_OP_READ, uint32_t extra = 0)
{
	submit(q, b, op, CXMQ_BIO_POLLED | CXMQ_BIO_NOWAIT | extra);
}

// Polls the bio's queue, as bio_poll does, until the bio ends; false if it never does.
bool poll_until_ended(cxmq_queue *q, const FakeBio &b, int max_polls = 1000000)
{
	for (int i = 0; i < max_polls && !b.ends.load(); i++) {
		cxmq_queue_poll(q, b.poll_cookie.load(), 1);
		std::this_thread::yield();
	}
	return b.ends.load() == 1;
}

TEST_F(Poll, PollQueuesFollowTheDefaultOnesWithTheirOwnMap)
{
	set_topology(simple_topology(4));
	QueueHandle q(poll_config(2, 2));
	ASSERT_NE(q.q, nullptr);
	cxmq::Queue &qu = Q(q);
	ASSERT_EQ(cxmq_queue_nr_hw_queues(q), 4u);
	EXPECT_EQ(cxmq_queue_nr_poll_queues(q), 2u);
	for (uint32_t h = 0; h < 4; h++) {
		EXPECT_EQ(qu.hctx(h).index, h);
		EXPECT_EQ(hctx_file(q, h, CXMQ_HCTX_TYPE), h < 2 ? "default\n" : "poll\n");
		EXPECT_EQ(hctx_file(q, h, CXMQ_HCTX_IO_POLL), "considered=0, invoked=0, success=0\n");
		EXPECT_EQ(qu.hctx(h).nr_ctx, 2u) << "hctx " << h;
	}
	// blk_mq_map_queues on each map, the poll queues numbered after the default ones.
	for (uint32_t cpu = 0; cpu < 4; cpu++) {
		EXPECT_EQ(qu.map_cpu(cpu, cxmq::kHctxDefault), cpu % 2) << "cpu " << cpu;
		EXPECT_EQ(qu.map_cpu(cpu, cxmq::kHctxPoll), 2 + cpu % 2) << "cpu " << cpu;
		EXPECT_EQ(qu.ctx(cpu, cxmq::kHctxPoll).hctx_idx, 2 + cpu % 2);
		EXPECT_EQ(qu.ctx(cpu, cxmq::kHctxPoll).type, uint32_t(cxmq::kHctxPoll));
	}
}

TEST_F(Poll, WithoutPollQueuesAPolledBioTakesTheDefaultQueue)
{
	set_topology(simple_topology(2));
	QueueHandle q(poll_config(2, 0));
	ASSERT_NE(q.q, nullptr);
	EXPECT_EQ(cxmq_queue_nr_hw_queues(q), 2u);
	EXPECT_EQ(Q(q).map_cpu(1, cxmq::kHctxPoll), Q(q).map_cpu(1));
	auto b = make_bios(1);
	set_this_cpu(1);
	submit_polled(q, b[0]);
	EXPECT_EQ(b[0].ends.load(), 1) << "irqmode 0 completes it at once";
	EXPECT_EQ(b[0].poll_cookie_sets.load(), 0);
	EXPECT_EQ(null_backend(q).poll_done(), 0u);
	EXPECT_EQ(cxmq_queue_poll(q, 0, 1), 0) << "a default queue is never polled";
}

TEST_F(Poll, APolledBioCompletesOnlyWhenPolledInEveryIrqmode)
{
	for (uint32_t irqmode = 0; irqmode <= 2; irqmode++) {
		SCOPED_TRACE("irqmode " + std::to_string(irqmode));
		set_topology(simple_topology(2));
		QueueHandle q(poll_config(1, 2, irqmode));
		ASSERT_NE(q.q, nullptr);
		auto b = make_bios(3);
		set_this_cpu(1);
		submit_polled(q, b[0]);
		submit(q, b[1], CXMQ_OP_READ); // not polled: completes by the irqmode
		ASSERT_TRUE(wait_ended(b[1]));
		EXPECT_EQ(b[1].poll_cookie_sets.load(), 0);
		// Nothing but a poll ends it (softirqs and timers would have run by now).
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
		EXPECT_EQ(b[0].ends.load(), 0);
		EXPECT_EQ(b[0].poll_cookie.load(), 2u) << "cpu 1's poll queue: the second";
		EXPECT_EQ(cxmq_queue_poll(q, 1, 1), 0) << "the other poll queue has nothing";
		EXPECT_EQ(cxmq_queue_poll(q, 0, 1), 0) << "a default queue";
		EXPECT_EQ(cxmq_queue_poll(q, 3, 1), 0) << "no such queue";
		EXPECT_EQ(cxmq_queue_poll(q, ~0u, 1), 0) << "BLK_QC_T_NONE";
		EXPECT_EQ(b[0].ends.load(), 0);
		EXPECT_EQ(cxmq_queue_poll(q, 2, 1), 1);
		EXPECT_EQ(b[0].ends.load(), 1);
		EXPECT_EQ(b[0].status.load(), CXMQ_STS_OK);
		EXPECT_EQ(b[0].end_context.load(), kProcess) << "ended by the poller";
		EXPECT_EQ(cxmq_queue_poll(q, 2, 0), 0) << "nothing left (the host stops after one)";
		EXPECT_EQ(hctx_file(q, 2, CXMQ_HCTX_IO_POLL), "considered=2, invoked=2, success=1\n");
		EXPECT_EQ(hctx_file(q, 1, CXMQ_HCTX_IO_POLL), "considered=1, invoked=1, success=0\n");
		cxmq_queue_reset_io_poll(q, 2);
		EXPECT_EQ(hctx_file(q, 2, CXMQ_HCTX_IO_POLL), "considered=0, invoked=0, success=0\n");
		EXPECT_EQ(null_backend(q).poll_done(), 1u);
		// (the softirq counts after it ended its list)
		EXPECT_TRUE(eventually([&] { return null_backend(q).softirq_done() == (irqmode == 1); }));
		EXPECT_EQ(null_backend(q).timer_done(), irqmode == 2 ? 1u : 0u);
		// The request was made on cpu 1's poll software queue.
		EXPECT_EQ(Q(q).ctx(1, cxmq::kHctxPoll).dispatched[0], 1u);
		EXPECT_EQ(Q(q).ctx(1, cxmq::kHctxPoll).completed[0], 1u);
		EXPECT_EQ(Q(q).ctx(1).completed[0], 1u);
	}
}

// Bios merged into a polled request on the plug carry the request's queue too: their
// submitter may poll through any of them.
TEST_F(Poll, PlugMergedPolledBiosNameTheirRequestsQueue)
{
	set_topology(simple_topology(2));
	QueueHandle q(poll_config(1, 1));
	ASSERT_NE(q.q, nullptr);
	constexpr int kN = 8;
	auto f = make_bios(kN + 1);
	set_this_cpu(0);
	plug_start();
	for (int i = 0; i < kN; i++) {
		cxmq_bio b = accounted_bio(f[i], CXMQ_OP_READ, 1000 + 8 * i, 8,
					   CXMQ_BIO_POLLED | CXMQ_BIO_NOWAIT);
		cxmq_queue_submit(q, &b);
	}
	// A bio that is not polled never joins a polled request.
	cxmq_bio other = accounted_bio(f[kN], CXMQ_OP_READ, 1000 + 8 * kN, 8);
	cxmq_queue_submit(q, &other);
	plug_finish();
	EXPECT_EQ(f[kN].ends.load(), 1);
	for (int i = 0; i < kN; i++) {
		EXPECT_EQ(f[i].ends.load(), 0) << i;
		EXPECT_EQ(f[i].poll_cookie.load(), 1u) << i;
	}
	EXPECT_EQ(Q(q).ctx(0, cxmq::kHctxPoll).plug_merged, uint64_t(kN - 1));
	EXPECT_EQ(cxmq_queue_poll(q, f[kN - 1].poll_cookie.load(), 1), 1) << "one request";
	for (int i = 0; i < kN; i++)
		EXPECT_EQ(f[i].ends.load(), 1) << i;
}

// A poll queue the backend refuses: the request waits on the dispatch list and is sent by the
// run work; polls find it then.
TEST_F(Poll, BusyPollQueueIsRetriedAndPolled)
{
	set_topology(simple_topology(1));
	QueueHandle q(poll_config(1, 1));
	ASSERT_NE(q.q, nullptr);
	cxmq_queue_set_busy_every(q, 2);
	auto b = make_bios(16);
	for (int i = 0; i < 16; i++)
		submit_polled(q, b[i]);
	for (int i = 0; i < 16; i++)
		EXPECT_TRUE(poll_until_ended(q, b[i])) << i;
	EXPECT_GT(null_backend(q).busy_answers(), 0u);
	EXPECT_EQ(null_backend(q).poll_done(), 16u);
}

TEST_F(Poll, SchedulersServePollQueuesToo)
{
	for (uint32_t sched = 1; sched <= cxmq_sched_count(); sched++) {
		SCOPED_TRACE(cxmq_sched_name(sched - 1));
		set_topology(simple_topology(2));
		cxmq_dev_config cfg = poll_config(1, 1);
		cfg.sched = sched;
		QueueHandle q(cfg);
		ASSERT_NE(q.q, nullptr);
		auto b = make_bios(64);
		for (int i = 0; i < 64; i++) {
			set_this_cpu(i % 2);
			submit_polled(q, b[i], i % 3 ? CXMQ_OP_READ : CXMQ_OP_WRITE);
		}
		for (int i = 0; i < 64; i++)
			EXPECT_TRUE(poll_until_ended(q, b[i])) << i;
		EXPECT_EQ(null_backend(q).poll_done(), 64u);
	}
}

// Live changes of both counts: the poll queues move behind the default ones, both maps are
// rebuilt, and polled IO works after each change.
TEST_F(Poll, UpdatingBothCountsRemapsBothMaps)
{
	set_topology(simple_topology(4));
	QueueHandle q(poll_config(2, 1));
	ASSERT_NE(q.q, nullptr);
	cxmq::Queue &qu = Q(q);
	const uint32_t steps[][2] = {{3, 2}, {1, 0}, {1, 1}, {4, 4}, {4, 9}, {2, 1}, {9, 0}, {1, 3}};
	uint64_t id = 0;
	for (const auto &s : steps) {
		SCOPED_TRACE("submit_queues " + std::to_string(s[0]) + " poll_queues " +
			     std::to_string(s[1]));
		cxmq_queue_freeze(q);
		const uint32_t got = cxmq_queue_update_nr_hw_queues(q, s[0], s[1]);
		cxmq_queue_unfreeze(q);
		const uint32_t want = std::min(s[0], 4u), want_poll = std::min(s[1], 4u);
		EXPECT_EQ(got, want);
		ASSERT_EQ(cxmq_queue_nr_poll_queues(q), want_poll);
		ASSERT_EQ(cxmq_queue_nr_hw_queues(q), want + want_poll);
		uint32_t ctxs = 0;
		for (uint32_t h = 0; h < want + want_poll; h++) {
			EXPECT_EQ(qu.hctx(h).index, h);
			EXPECT_EQ(qu.hctx(h).type, h < want ? uint32_t(cxmq::kHctxDefault)
							    : uint32_t(cxmq::kHctxPoll));
			ctxs += qu.hctx(h).nr_ctx;
		}
		EXPECT_EQ(ctxs, want_poll ? 8u : 4u) << "every CPU once per type";
		for (uint32_t cpu = 0; cpu < 4; cpu++) {
			EXPECT_LT(qu.map_cpu(cpu), want);
			if (want_poll) {
				EXPECT_GE(qu.map_cpu(cpu, cxmq::kHctxPoll), want);
				EXPECT_LT(qu.map_cpu(cpu, cxmq::kHctxPoll), want + want_poll);
			}
			FakeBio b;
			b.id = id++;
			set_this_cpu(cpu);
			submit_polled(q, b);
			if (want_poll)
				EXPECT_TRUE(poll_until_ended(q, b));
			else
				EXPECT_EQ(b.ends.load(), 1) << "completed on the default queue";
		}
	}
}

// Pollers on every CPU, several per poll queue, each submitting and polling its own bios while
// others reap the same queue: every bio ends exactly once, with nothing left behind.
TEST_F(Poll, ConcurrentPollersEndEveryRequestOnce)
{
	set_topology(simple_topology(4));
	QueueHandle q(poll_config(2, 2, 0, 16));
	ASSERT_NE(q.q, nullptr);
	constexpr int kThreads = 6, kPerThread = kTsan ? 300 : 3000;
	std::vector<std::unique_ptr<FakeBio[]>> bios;
	for (int t = 0; t < kThreads; t++) {
		bios.push_back(make_bios(kPerThread));
		for (int i = 0; i < kPerThread; i++)
			bios[t][i].id = uint64_t(t) * kPerThread + i;
	}
	std::atomic<int> failed{0};
	std::vector<std::thread> threads;
	for (int t = 0; t < kThreads; t++) {
		threads.emplace_back([&, t] {
			set_this_cpu(t % 4);
			for (int i = 0; i < kPerThread; i++) {
				FakeBio &b = bios[t][i];
				submit_polled(q, b, i % 2 ? CXMQ_OP_READ : CXMQ_OP_WRITE);
				if (b.status.load() == CXMQ_STS_AGAIN) // no tag under NOWAIT
					continue;
				if (!poll_until_ended(q, b))
					failed.fetch_add(1);
			}
		});
	}
	for (auto &t : threads)
		t.join();
	EXPECT_EQ(failed.load(), 0);
	uint64_t ok = 0;
	for (int t = 0; t < kThreads; t++)
		for (int i = 0; i < kPerThread; i++) {
			EXPECT_EQ(bios[t][i].ends.load(), 1);
			ok += bios[t][i].status.load() == CXMQ_STS_OK;
		}
	EXPECT_EQ(null_backend(q).poll_done(), ok);
	EXPECT_GT(ok, 0u);
}

// A freeze waits for polled requests, and the poller it waits for can still poll: its usage
// reference is not a live one.
TEST_F(Poll, AFreezeWaitsForPolledRequestsWhileTheirPollerReapsThem)
{
	set_topology(simple_topology(2));
	QueueHandle q(poll_config(1, 1));
	ASSERT_NE(q.q, nullptr);
	auto b = make_bios(4);
	for (int i = 0; i < 4; i++)
		submit_polled(q, b[i]);
	std::atomic<bool> frozen{false};
	std::thread freezer([&] {
		cxmq_queue_freeze(q);
		frozen.store(true);
	});
	std::this_thread::sleep_for(std::chrono::milliseconds(20));
	EXPECT_FALSE(frozen.load()) << "four requests are in flight";
	EXPECT_EQ(cxmq_queue_poll(q, 1, 1), 4);
	freezer.join();
	EXPECT_TRUE(frozen.load());
	EXPECT_EQ(cxmq_queue_poll(q, 1, 1), 0) << "frozen, nothing in flight";
	cxmq_queue_unfreeze(q);
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(b[i].ends.load(), 1);
}

} // namespace
