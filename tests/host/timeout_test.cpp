// SPDX-License-Identifier: GPL-2.0
// Request timeouts (src/core/timeout.cpp) and the null backend's fault injection
// (src/core/fault_inject.cpp): a request the backend drops ends with CXMQ_STS_TIMEOUT after
// io_timeout; the backend's answers (reset the timer, abandoned, timed out but still held); a
// backend completion racing with the timeout ends each request exactly once; requeue= answers
// busy and loses nothing; should_fail as the kernel's; io_timeout's parsing.
#include "test_util.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "fault_inject.h"

using namespace host;
using cxmq::Backend;
using cxmq::HwQueue;
using cxmq::Queue;
using cxmq::Request;

namespace {

class Timeout : public HostTest {};

using Clock = std::chrono::steady_clock;

cxmq_fault_config fault(const char *text)
{
	cxmq_fault_config fc{};
	EXPECT_TRUE(cxmq::fault_parse(text, &fc)) << text;
	return fc;
}

// Holds every request it is given until the test completes it; answers timeouts as told.
class HoldBackend final : public Backend {
public:
	cxmq::u32 pdu_size() const override { return 0; }
	int init_hctx(HwQueue &) override { return 0; }
	void exit_hctx(HwQueue &) override {}
	void release() override {}
	int poll(HwQueue &) override { return 0; }
	cxmq_status queue_rq(HwQueue &, Request &rq, bool) override
	{
		std::lock_guard<std::mutex> g(m);
		held.push_back(&rq);
		return CXMQ_STS_OK;
	}
	Expiry timeout(HwQueue &, Request &) override
	{
		asked.fetch_add(1);
		if (resets.load() > 0) {
			resets.fetch_sub(1);
			return Expiry::kResetTimer;
		}
		return answer.load();
	}
	Request *take()
	{
		std::lock_guard<std::mutex> g(m);
		if (held.empty())
			return nullptr;
		Request *rq = held.front();
		held.pop_front();
		return rq;
	}
	size_t nr_held()
	{
		std::lock_guard<std::mutex> g(m);
		return held.size();
	}

	std::mutex m;
	std::deque<Request *> held;
	std::atomic<int> asked{0}, resets{0};
	std::atomic<Expiry> answer{Expiry::kTimedOut};
};

uint64_t timeouts_of(Queue *q)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < q->nr_hw_queues(); i++)
		n += cxmq::load_relaxed(q->hctx(i).timeouts);
	return n;
}

TEST_F(Timeout, IoTimeoutIsMillisecondsBase10NotZero)
{
	QueueHandle q(make_config());
	ASSERT_NE(q.q, nullptr);
	EXPECT_EQ(cxmq_queue_io_timeout(q), 30000u) << "blk-mq's default, 30 s";
	EXPECT_EQ(cxmq_queue_set_io_timeout(q, "500\n"), 0);
	EXPECT_EQ(cxmq_queue_io_timeout(q), 500u);
	for (const char *bad : {"0", "abc", "-1", "4294967296", "0x10", "", "1 "}) {
		clear_logs();
		EXPECT_EQ(cxmq_queue_set_io_timeout(q, bad), -CXMQ_EINVAL) << bad;
		EXPECT_TRUE(logged(CXMQ_LOG_ERR, std::string("cxmq: io_timeout=") + bad + " is invalid: "
						 "must be 1..4294967295 (milliseconds)"))
			<< bad;
	}
	EXPECT_EQ(cxmq_queue_io_timeout(q), 500u);
	EXPECT_EQ(cxmq_queue_set_io_timeout(q, "4294967295"), 0);
}

// timeout="1,100,0,2": the first two requests are dropped; only their timeout ends them, after
// io_timeout; the others complete; the queue can then be destroyed (nothing left in flight).
TEST_F(Timeout, DroppedRequestsEndWithATimeoutAfterIoTimeout)
{
	for (uint32_t irqmode = 0; irqmode <= 2; irqmode++) {
		SCOPED_TRACE("irqmode " + std::to_string(irqmode));
		cxmq_dev_config cfg = make_config(2, 16);
		cfg.irqmode = irqmode;
		cfg.timeout = fault("1,100,0,2");
		QueueHandle q(cfg);
		ASSERT_NE(q.q, nullptr);
		ASSERT_EQ(cxmq_queue_set_io_timeout(q, "100"), 0);
		auto b = make_bios(6);
		const auto t0 = Clock::now();
		for (int i = 0; i < 6; i++)
			submit(q, b[i], i % 2 ? CXMQ_OP_WRITE : CXMQ_OP_READ);
		for (int i = 2; i < 6; i++)
			ASSERT_TRUE(wait_ended(b[i]));
		for (int i = 0; i < 2; i++) {
			ASSERT_TRUE(wait_ended(b[i], std::chrono::milliseconds(5000)));
			EXPECT_EQ(b[i].status.load(), CXMQ_STS_TIMEOUT);
		}
		const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
		EXPECT_GE(ms, 95) << "not before io_timeout (the coarse clock may lag a tick)";
		EXPECT_LT(ms, 2000);
		for (int i = 2; i < 6; i++)
			EXPECT_EQ(b[i].status.load(), CXMQ_STS_OK);
		EXPECT_EQ(null_backend(q).lost(), 2u);
		EXPECT_EQ(timeouts_of(&Q(q)), 2u);
		EXPECT_TRUE(eventually([&] { return Q(q).hctx(0).tags->busy() + Q(q).hctx(1).tags->busy() == 0; }));
	}
}

// Teardown with a dropped request in flight waits for its timeout, not forever.
TEST_F(Timeout, DestroyWithADroppedRequestWaitsForItsTimeout)
{
	cxmq_dev_config cfg = make_config(1, 4);
	cfg.timeout = fault("1,100,0,1");
	QueueHandle q(cfg);
	ASSERT_NE(q.q, nullptr);
	ASSERT_EQ(cxmq_queue_set_io_timeout(q, "50"), 0);
	auto b = make_bios(1);
	submit(q, b[0]);
	EXPECT_EQ(b[0].ends.load(), 0);
	q.destroy();
	EXPECT_EQ(b[0].ends.load(), 1);
	EXPECT_EQ(b[0].status.load(), CXMQ_STS_TIMEOUT);
}

// The backend's answers: reset (the request keeps its place, asked again a timeout later), then
// timed out while still held (its bios end now; its completion later only frees it).
TEST_F(Timeout, ResetTimerThenTimedOutWhileHeld)
{
	HoldBackend be;
	be.resets.store(2);
	Queue *q = make_queue(make_config(1, 4), &be);
	ASSERT_NE(q, nullptr);
	ASSERT_EQ(q->set_io_timeout("30"), 0);
	auto b = make_bios(1);
	const auto t0 = Clock::now();
	submit(q, b[0]);
	ASSERT_TRUE(wait_ended(b[0]));
	const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
	EXPECT_GE(ms, 85) << "three timeouts: two resets, then the end";
	EXPECT_EQ(be.asked.load(), 3);
	EXPECT_EQ(b[0].status.load(), CXMQ_STS_TIMEOUT);
	EXPECT_EQ(q->hctx(0).tags->busy(), 1u) << "the backend still holds it";
	Request *rq = be.take();
	ASSERT_NE(rq, nullptr);
	q->end_request(*rq, CXMQ_STS_OK); // late: only frees it
	EXPECT_EQ(b[0].ends.load(), 1);
	EXPECT_EQ(b[0].status.load(), CXMQ_STS_TIMEOUT);
	EXPECT_EQ(q->hctx(0).tags->busy(), 0u);
	// The tag is reused: the new request has a new generation and a new deadline.
	be.answer.store(Backend::Expiry::kAbandoned);
	FakeBio again;
	again.id = 7;
	submit(q, again);
	ASSERT_TRUE(wait_ended(again));
	EXPECT_EQ(again.status.load(), CXMQ_STS_TIMEOUT);
	EXPECT_EQ(q->hctx(0).tags->busy(), 0u) << "abandoned: the queue freed it";
	be.take(); // (the backend forgets it)
	EXPECT_EQ(timeouts_of(q), 2u);
	destroy_queue(q);
}

// The backend gives back a request while the timeout is ending its bios (its completion, here
// from inside the first bio's end): the request is not freed, and its tag not reused, until the
// scan has ended them all; the scan frees it then. Freed at once, the next request took the tag
// and the scan ended that request's bios as its own (TSan saw it in the racing test below).
TEST_F(Timeout, ABackendCompletionWhileTheTimeoutEndsTheBiosFreesItAfterThem)
{
	HoldBackend be;
	Queue *q = make_queue(make_config(1, 4), &be);
	ASSERT_NE(q, nullptr);
	cxmq_limits lim{};
	cxmq_queue_default_limits(&q->config(), &lim); // the disk's, so that the two bios merge
	q->set_host(&lim);
	ASSERT_EQ(q->set_io_timeout("1"), 0);
	// Two bios of one request: adjacent (sectors 0 and 8), under one plug.
	auto b = make_bios(2);
	plug_start();
	q->submit(accounted_bio(b[0], CXMQ_OP_WRITE, 0, 8));
	q->submit(accounted_bio(b[1], CXMQ_OP_WRITE, 8, 8));
	plug_finish();
	ASSERT_EQ(be.nr_held(), 1u) << "one request of both bios";
	std::atomic<int> hook_runs{0};
	std::atomic<uint32_t> busy_in_hook{~0u}, busy_at_second{~0u};
	Hooks h;
	h.before_bio_end = [&](void *bio) {
		hook_runs++;
		if (bio == &b[0]) {
			Request *rq = be.take();
			ASSERT_NE(rq, nullptr);
			q->end_request(*rq, CXMQ_STS_OK); // late: the timeout is ending it
			busy_in_hook.store(q->hctx(0).tags->busy());
		} else if (bio == &b[1]) {
			busy_at_second.store(q->hctx(0).tags->busy());
		}
	};
	set_hooks(h);
	const bool ended = wait_ended(b[0]) && wait_ended(b[1]);
	clear_hooks();
	ASSERT_TRUE(ended);
	EXPECT_EQ(hook_runs.load(), 2);
	EXPECT_EQ(busy_in_hook.load(), 1u) << "freed while its bios were being ended";
	EXPECT_EQ(busy_at_second.load(), 1u) << "freed while its bios were being ended";
	for (int i = 0; i < 2; i++) {
		EXPECT_EQ(b[i].ends.load(), 1) << i;
		EXPECT_EQ(b[i].status.load(), CXMQ_STS_TIMEOUT) << i;
	}
	EXPECT_EQ(q->hctx(0).tags->busy(), 0u) << "the scan frees it after its bios";
	EXPECT_EQ(timeouts_of(q), 1u);
	destroy_queue(q);
}

// Completions racing with timeouts: io_timeout of 1 ms, the backend completes each request
// after 0-4 ms from other threads while the scan ends overdue ones (timed out, still held).
// Every bio ends exactly once (the host reports a second end), with OK or TIMEOUT; every
// TIMEOUT is counted; every tag comes back. Four tags per queue keep the backend's backlog short
// (with 64 a request waited ~85 ms for a completer, and under TSan all 1000 timed out): a
// request's life is then a few ms against a scan every 10 ms, so both endings are common.
TEST_F(Timeout, ACompletionRacingTheTimeoutEndsTheRequestOnce)
{
	set_topology(simple_topology(4));
	HoldBackend be;
	Queue *q = make_queue(make_config(2, 4), &be);
	ASSERT_NE(q, nullptr);
	ASSERT_EQ(q->set_io_timeout("1"), 0);
	constexpr int kN = kTsan ? 1000 : 3000;
	auto b = make_bios(kN);
	std::atomic<bool> done{false};
	std::vector<std::thread> completers;
	for (int t = 0; t < 3; t++) {
		completers.emplace_back([&, t] {
			set_this_cpu(uint32_t(t));
			std::mt19937 rng(uint32_t(t) + 1);
			while (!done.load() || be.nr_held()) {
				Request *rq = be.take();
				if (!rq) {
					std::this_thread::yield();
					continue;
				}
				std::this_thread::sleep_for(std::chrono::microseconds(rng() % 4000));
				q->end_request(*rq, CXMQ_STS_OK);
			}
		});
	}
	std::thread submitter([&] {
		set_this_cpu(3);
		for (int i = 0; i < kN; i++)
			submit(q, b[i], CXMQ_OP_READ);
	});
	submitter.join();
	for (int i = 0; i < kN; i++)
		ASSERT_TRUE(wait_ended(b[i])) << i;
	done.store(true);
	for (auto &t : completers)
		t.join();
	uint64_t timed_out = 0;
	for (int i = 0; i < kN; i++) {
		EXPECT_EQ(b[i].ends.load(), 1);
		const int st = b[i].status.load();
		EXPECT_TRUE(st == CXMQ_STS_OK || st == CXMQ_STS_TIMEOUT) << st;
		timed_out += st == CXMQ_STS_TIMEOUT;
	}
	EXPECT_EQ(timeouts_of(q), timed_out);
	EXPECT_GT(timed_out, 0u) << "some completions came after their deadline";
	EXPECT_LT(timed_out, uint64_t(kN)) << "some came before";
	EXPECT_EQ(q->hctx(0).tags->busy() + q->hctx(1).tags->busy(), 0u);
	destroy_queue(q);
}

// requeue="1,30,0,-1": about 30% of the requests are answered busy and sent again later;
// nothing is lost, and the data written reads back.
TEST_F(Timeout, RequeueFaultAnswersBusyAndLosesNothing)
{
	cxmq_dev_config cfg = make_config(2, 8);
	cfg.memory_backed = 1;
	cfg.size_mb = 16;
	cfg.irqmode = 1;
	cfg.requeue = fault("1,30,0,-1");
	QueueHandle q(cfg);
	ASSERT_NE(q.q, nullptr);
	constexpr int kN = 300;
	std::vector<std::vector<uint8_t>> data(kN, std::vector<uint8_t>(4096));
	auto w = make_bios(kN), r = make_bios(kN);
	for (int i = 0; i < kN; i++) {
		for (auto &x : data[i])
			x = uint8_t(i * 7 + 3);
		submit_data(q, w[i], CXMQ_OP_WRITE, uint64_t(i) * 8, data[i].data(), 4096);
	}
	for (int i = 0; i < kN; i++)
		ASSERT_TRUE(wait_ended(w[i]));
	std::vector<std::vector<uint8_t>> back(kN, std::vector<uint8_t>(4096));
	for (int i = 0; i < kN; i++)
		submit_data(q, r[i], CXMQ_OP_READ, uint64_t(i) * 8, back[i].data(), 4096);
	for (int i = 0; i < kN; i++) {
		ASSERT_TRUE(wait_ended(r[i]));
		EXPECT_EQ(w[i].status.load(), CXMQ_STS_OK);
		EXPECT_EQ(r[i].status.load(), CXMQ_STS_OK);
		EXPECT_EQ(back[i], data[i]) << i;
	}
	EXPECT_GT(null_backend(q).requeues(), uint64_t(kN) / 10);
	EXPECT_LT(null_backend(q).requeues(), uint64_t(kN));
}

// should_fail as lib/fault-inject.c has it: probability, interval, space, times.
TEST_F(Timeout, ShouldFailIsTheKernels)
{
	auto fails = [](const char *text, int calls) {
		cxmq::FaultAttr a;
		a.set(fault(text));
		std::vector<int> out;
		for (int i = 0; i < calls; i++)
			if (a.should_fail())
				out.push_back(i);
		return out;
	};
	EXPECT_EQ(fails("1,100,0,3", 10), (std::vector<int>{0, 1, 2})) << "times";
	EXPECT_EQ(fails("3,100,0,-1", 10), (std::vector<int>{2, 5, 8})) << "every 3rd";
	EXPECT_EQ(fails("1,100,4,2", 10), (std::vector<int>{3, 4})) << "space 4: 3 pass first";
	EXPECT_EQ(fails("1,0,0,-1", 10), std::vector<int>{}) << "probability 0";
	EXPECT_EQ(fails("1,100,0,0", 10), std::vector<int>{}) << "times 0";
	cxmq_fault_config off{};
	cxmq::FaultAttr a;
	a.set(off);
	EXPECT_FALSE(a.should_fail());
	const size_t some = fails("1,50,0,-1", 2000).size();
	EXPECT_GT(some, 800u);
	EXPECT_LT(some, 1200u);
}

} // namespace
