// SPDX-License-Identifier: GPL-2.0
// CPU hotplug and the hardware queues (src/core/hotplug.cpp, blk-mq's
// blk_mq_hctx_notify_offline): before the last online CPU of a hardware queue goes (it and the
// queue's interrupt still work: the host calls in from the CPU's hotplug callback), the queue
// stops taking requests and Queue::cpu_offline waits until every request it holds completed. A
// submitter still on that CPU puts its tag back and retries where the scheduler moves it (or
// fails with AGAIN under NOWAIT); once the CPU is back, the queue takes requests again. A CPU that
// is not the last of its queue goes without waiting.
#include "test_util.h"

#include <atomic>
#include <string>
#include <thread>

using namespace host;
using cxmq::Queue;

namespace {

class HotplugDrain : public HostTest {};

cxmq_queue *C(Queue *q) { return reinterpret_cast<cxmq_queue *>(q); }

std::string stats(Queue *q)
{
	std::string buf(16384, '\0');
	const int n = cxmq_queue_format_stats(C(q), &buf[0], buf.size());
	EXPECT_GT(n, 0);
	return n > 0 ? buf.substr(0, static_cast<size_t>(n)) : std::string();
}

// The stats line of hardware queue h.
std::string hctx_line(Queue *q, uint32_t h)
{
	const std::string s = stats(q);
	const std::string key = "hctx" + std::to_string(h) + ":";
	const size_t at = s.find(key);
	if (at == std::string::npos)
		return "<no " + key + ">";
	return s.substr(at, s.find('\n', at) - at);
}

uint32_t calls_to(ScriptBackend &be, uint32_t h)
{
	uint32_t n = 0;
	for (const Call &c : be.calls())
		n += c.hctx == h;
	return n;
}

// Four queues on four CPUs, one each: CPU 3 is the only CPU of its queue. Three requests are
// in flight there when CPU 3 starts to go: cpu_offline waits for them; meanwhile a NOWAIT bio
// from CPU 3 ends with AGAIN without reaching the backend, and a blocking one moves with its
// submitter (to CPU 0) and is sent to CPU 0's queue. The three complete: cpu_offline returns,
// the stats say the queue is inactive and was drained once of 3 requests. Back online, CPU 3's
// bios go to its own queue again.
TEST_F(HotplugDrain, TheLastCpuOfAQueueWaitsForItsRequestsAndSubmittersMoveElsewhere)
{
	set_topology(simple_topology(4));
	constexpr uint32_t kGone = 3;
	ScriptBackend be([](const Call &, uint64_t) { return Decision{Act::Hold}; });
	Queue *q = make_queue(make_config(4, 64), &be);
	ASSERT_NE(q, nullptr);
	const uint32_t h = q->map_cpu(kGone);
	for (uint32_t c = 0; c < 4; c++) {
		if (c != kGone) {
			ASSERT_NE(q->map_cpu(c), h) << "CPU " << c << " shares CPU 3's queue";
		}
	}
	const uint32_t h0 = q->map_cpu(0);

	auto bios = make_bios(6);
	set_this_cpu(kGone);
	for (int i = 0; i < 3; i++)
		submit(q, bios[i]);
	ASSERT_EQ(be.held(), 3u);
	EXPECT_EQ(q->hctx(h).active(), 3u);

	std::atomic<bool> offline_done{false};
	std::thread hotplug([&] {
		set_this_cpu(kGone);
		q->cpu_offline(kGone);
		offline_done = true;
	});
	EXPECT_TRUE(eventually([&] { return hctx_line(q, h).find(" inactive") != std::string::npos; }))
		<< hctx_line(q, h);
	std::this_thread::sleep_for(std::chrono::milliseconds(50));
	EXPECT_FALSE(offline_done.load()) << "cpu_offline returned with requests in flight";

	// NOWAIT from the going CPU: AGAIN, the tag it took is back.
	submit(q, bios[3], CXMQ_OP_WRITE, CXMQ_BIO_NOWAIT);
	EXPECT_EQ(bios[3].ends.load(), 1);
	EXPECT_EQ(bios[3].status.load(), CXMQ_STS_AGAIN);
	EXPECT_EQ(q->hctx(h).active(), 3u);
	EXPECT_EQ(be.held(), 3u);

	// A blocking submitter on the going CPU retries where it is moved to.
	std::thread mover([&] {
		set_this_cpu(kGone);
		set_sleep_cpu(0);
		submit(q, bios[4]);
	});
	mover.join();
	EXPECT_EQ(calls_to(be, h0), 1u) << "the moved submitter's bio did not reach CPU 0's queue";
	EXPECT_EQ(calls_to(be, h), 3u);
	EXPECT_FALSE(offline_done.load());

	EXPECT_EQ(be.complete_all(), 4u);
	hotplug.join();
	EXPECT_TRUE(offline_done.load());
	for (int i : {0, 1, 2, 4}) {
		EXPECT_EQ(bios[i].ends.load(), 1) << "bio " << i;
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK) << "bio " << i;
	}
	const std::string line = hctx_line(q, h);
	EXPECT_NE(line.find(" inactive offline_drains=1,3"), std::string::npos) << line;
	EXPECT_EQ(hctx_line(q, h0).find(" inactive"), std::string::npos) << hctx_line(q, h0);
	EXPECT_NE(hctx_line(q, h0).find(" offline_drains=0,0"), std::string::npos);

	// Offline, then online again: the queue takes CPU 3's requests.
	Topology t = simple_topology(4);
	t.online[kGone] = false;
	set_topology(t);
	set_topology(simple_topology(4));
	q->cpu_online(kGone);
	EXPECT_EQ(hctx_line(q, h).find(" inactive"), std::string::npos) << hctx_line(q, h);
	set_this_cpu(kGone);
	submit(q, bios[5]);
	EXPECT_EQ(calls_to(be, h), 4u);
	EXPECT_EQ(be.complete_all(), 1u);
	EXPECT_EQ(bios[5].ends.load(), 1);
	set_this_cpu(0);
	destroy_queue(q);
}

// Two queues on four CPUs: a CPU whose queue has another online CPU goes at once, with that
// queue's requests still in flight, and the queue stays active.
TEST_F(HotplugDrain, ACpuThatIsNotTheLastOfItsQueueGoesWithoutWaiting)
{
	set_topology(simple_topology(4));
	ScriptBackend be([](const Call &, uint64_t) { return Decision{Act::Hold}; });
	Queue *q = make_queue(make_config(2, 64), &be);
	ASSERT_NE(q, nullptr);
	const uint32_t gone = 3, h = q->map_cpu(gone);
	auto bios = make_bios(3);
	set_this_cpu(gone);
	for (int i = 0; i < 2; i++)
		submit(q, bios[i]);
	ASSERT_EQ(be.held(), 2u);
	q->cpu_offline(gone); // returns: another CPU of h is online
	EXPECT_EQ(hctx_line(q, h).find(" inactive"), std::string::npos) << hctx_line(q, h);
	EXPECT_NE(hctx_line(q, h).find(" offline_drains=0,0"), std::string::npos) << hctx_line(q, h);
	submit(q, bios[2]);
	EXPECT_EQ(calls_to(be, h), 3u);
	EXPECT_EQ(be.complete_all(), 3u);
	set_this_cpu(0);
	destroy_queue(q);
}

// With a scheduler the requests it holds count too: the drain waits for the ones inserted and
// not yet dispatched (refused by a busy backend) as well as the ones in flight.
TEST_F(HotplugDrain, WithASchedulerTheDrainWaitsForRequestsItStillHolds)
{
	set_topology(simple_topology(2));
	std::atomic<bool> busy{true};
	ScriptBackend be([&](const Call &, uint64_t n) {
		return n == 0 ? Decision{Act::Hold} : busy.load() ? Decision{Act::Busy} : Decision{Act::Complete};
	});
	cxmq_dev_config cfg = make_config(2, 64);
	cfg.sched = 1; // the first scheduler (mq-deadline)
	Queue *q = make_queue(cfg, &be);
	ASSERT_NE(q, nullptr);
	const uint32_t gone = 1, h = q->map_cpu(gone);
	ASSERT_NE(q->map_cpu(0), h);
	auto bios = make_bios(4);
	set_this_cpu(gone);
	for (int i = 0; i < 4; i++)
		submit(q, bios[i]);
	EXPECT_EQ(q->hctx(h).active(), 4u);
	std::atomic<bool> done{false};
	std::thread hotplug([&] {
		set_this_cpu(gone);
		q->cpu_offline(gone);
		done = true;
	});
	std::this_thread::sleep_for(std::chrono::milliseconds(50));
	EXPECT_FALSE(done.load()) << "cpu_offline returned with requests in the scheduler";
	busy = false;
	EXPECT_EQ(be.complete_all(), 1u);
	hotplug.join();
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(bios[i].ends.load(), 1) << "bio " << i;
	EXPECT_NE(hctx_line(q, h).find(" inactive offline_drains=1,4"), std::string::npos)
		<< hctx_line(q, h);
	set_this_cpu(0);
	destroy_queue(q);
}

} // namespace
