// SPDX-License-Identifier: GPL-2.0
// The user-space host itself: the semantics the core relies on (percpu_ref-like usage counter,
// wait queues without lost wake-ups, delayed work with cancel_sync) and the kernel-like checks.
#include "test_util.h"

#include <atomic>

using namespace host;

namespace {

class Host : public HostTest {};

struct ZeroCount {
	std::atomic<int> n{0};
	static void fn(void *arg) { static_cast<ZeroCount *>(arg)->n.fetch_add(1); }
};

TEST_F(Host, UsageCounterIsAPercpuRef)
{
	ZeroCount z;
	cxmq_os_usage *u = cxmq_os_usage_create(ZeroCount::fn, &z);
	ASSERT_NE(u, nullptr);
	EXPECT_FALSE(cxmq_os_usage_is_zero(u)); // the initial reference
	EXPECT_TRUE(cxmq_os_usage_tryget_live(u));
	EXPECT_TRUE(cxmq_os_usage_tryget_live(u));
	cxmq_os_usage_put(u);
	cxmq_os_usage_kill(u); // drops the initial reference; one get left
	EXPECT_FALSE(cxmq_os_usage_tryget_live(u));
	EXPECT_FALSE(cxmq_os_usage_is_zero(u));
	EXPECT_EQ(z.n.load(), 0);
	cxmq_os_usage_put(u);
	EXPECT_TRUE(cxmq_os_usage_is_zero(u));
	EXPECT_EQ(z.n.load(), 1);
	cxmq_os_usage_resurrect(u);
	EXPECT_FALSE(cxmq_os_usage_is_zero(u));
	EXPECT_TRUE(cxmq_os_usage_tryget_live(u));
	cxmq_os_usage_switch_to_percpu(u);
	cxmq_os_usage_put(u);
	cxmq_os_usage_kill(u); // nothing held: zero at once, in the killer
	EXPECT_EQ(z.n.load(), 2);
	cxmq_os_usage_destroy(u);
}

TEST_F(Host, UsageCounterMisuseIsReported)
{
	ZeroCount z;
	cxmq_os_usage *u = cxmq_os_usage_create(ZeroCount::fn, &z);
	expect_warnings(true);
	unsigned w = warn_count();
	cxmq_os_usage_kill(u);
	cxmq_os_usage_kill(u);
	EXPECT_EQ(warn_count(), w + 1) << "a second kill";
	cxmq_os_usage_put(u);
	EXPECT_EQ(warn_count(), w + 2) << "an underflow";
	cxmq_os_usage_resurrect(u);
	cxmq_os_usage_resurrect(u);
	EXPECT_EQ(warn_count(), w + 3) << "resurrecting a live counter";
	cxmq_os_usage_destroy(u);
}

struct Flag {
	std::atomic<int> v{0};
	static int is_set(void *arg) { return static_cast<Flag *>(arg)->v.load() != 0; }
};

TEST_F(Host, WaitEventWakesEveryWaiter)
{
	cxmq_os_waitq *wq = cxmq_os_waitq_create(-1);
	Flag f;
	std::vector<std::thread> th;
	for (int i = 0; i < 3; i++)
		th.emplace_back([&] { cxmq_os_wait_event(wq, Flag::is_set, &f); });
	ASSERT_TRUE(eventually([] { return sleepers() == 3; }));
	EXPECT_TRUE(cxmq_os_waitq_active(wq));
	cxmq_os_wake_all(wq); // condition still false: back to sleep
	ASSERT_TRUE(eventually([] { return sleepers() == 3; }));
	f.v = 1;
	cxmq_os_wake_all(wq);
	for (auto &t : th)
		t.join();
	EXPECT_FALSE(cxmq_os_waitq_active(wq));
	cxmq_os_waitq_destroy(wq);
}

// A counting semaphore on wait_exclusive: every unit produced is consumed, nobody sleeps
// forever on an available unit (no lost wake-ups).
struct Sem {
	std::atomic<int> units{0};
	static int take(void *arg)
	{
		auto *s = static_cast<Sem *>(arg);
		int u = s->units.load();
		while (u > 0)
			if (s->units.compare_exchange_weak(u, u - 1))
				return 1;
		return 0;
	}
};

TEST_F(Host, WaitExclusiveLosesNoWakeUp)
{
	cxmq_os_waitq *wq = cxmq_os_waitq_create(-1);
	Sem s;
	const int consumers = 4, per = kTsan ? 2000 : 20000;
	std::vector<std::thread> th;
	for (int i = 0; i < consumers; i++)
		th.emplace_back([&] {
			for (int k = 0; k < per; k++)
				if (!Sem::take(&s))
					cxmq_os_wait_exclusive(wq, Sem::take, &s);
		});
	for (int k = 0; k < consumers * per; k++) {
		s.units.fetch_add(1);
		if (cxmq_os_waitq_active(wq))
			cxmq_os_wake_one(wq);
	}
	for (auto &t : th)
		t.join();
	EXPECT_EQ(s.units.load(), 0);
	cxmq_os_waitq_destroy(wq);
}

TEST_F(Host, DestroyingAWaitQueueWithWaitersIsReported)
{
	set_quarantine(true);
	cxmq_os_waitq *wq = cxmq_os_waitq_create(-1);
	Flag f;
	std::thread t([&] { cxmq_os_wait_event(wq, Flag::is_set, &f); });
	ASSERT_TRUE(eventually([] { return sleepers() == 1; }));
	expect_warnings(true);
	unsigned w = warn_count();
	cxmq_os_waitq_destroy(wq); // quarantined: still usable, marked dead
	EXPECT_EQ(warn_count(), w + 1);
	f.v = 1;
	cxmq_os_wake_all(wq); // a use after destroy
	t.join();
	EXPECT_GE(warn_count(), w + 2);
}

struct Counter {
	std::atomic<int> runs{0};
	std::atomic<int> sleep_ms{0};
	std::atomic<uint32_t> cpu{~0u};
	static void fn(void *arg)
	{
		auto *c = static_cast<Counter *>(arg);
		c->cpu = cxmq_os_this_cpu();
		if (int ms = c->sleep_ms.load())
			std::this_thread::sleep_for(std::chrono::milliseconds(ms));
		c->runs.fetch_add(1);
	}
};

TEST_F(Host, DelayedWorkRunsOnceAfterItsDelayOnItsCpu)
{
	Counter c;
	cxmq_os_work *w = cxmq_os_work_create(Counter::fn, &c, -1);
	auto t0 = std::chrono::steady_clock::now();
	cxmq_os_work_schedule(w, 20000, 2);
	cxmq_os_work_schedule(w, 20000, 2); // pending: one run
	ASSERT_TRUE(eventually([&] { return c.runs.load() == 1; }));
	EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(20));
	EXPECT_EQ(c.cpu.load(), 2u);
	std::this_thread::sleep_for(std::chrono::milliseconds(30));
	EXPECT_EQ(c.runs.load(), 1);
	cxmq_os_work_destroy(w);
}

TEST_F(Host, CancelSyncWaitsForTheCallbackAndDropsThePendingRun)
{
	Counter c;
	c.sleep_ms = 50;
	cxmq_os_work *w = cxmq_os_work_create(Counter::fn, &c, -1);
	cxmq_os_work_schedule(w, 0, 0);
	ASSERT_TRUE(eventually([&] { return c.cpu.load() == 0; })); // running
	cxmq_os_work_schedule(w, 0, 0); // again after this run
	cxmq_os_work_cancel_sync(w);
	EXPECT_EQ(c.runs.load(), 1) << "cancel_sync returned before the callback finished";
	std::this_thread::sleep_for(std::chrono::milliseconds(80));
	EXPECT_EQ(c.runs.load(), 1) << "the pending run was not cancelled";
	cxmq_os_work_schedule(w, 1000000, 0); // pending for a second: destroy cancels it
	cxmq_os_work_destroy(w);
	EXPECT_EQ(c.runs.load(), 1);
}

TEST_F(Host, ManualWorkRunsOnlyWhenAsked)
{
	set_work_manual(true);
	Counter c;
	cxmq_os_work *w = cxmq_os_work_create(Counter::fn, &c, -1);
	cxmq_os_work_schedule(w, 0, 1);
	std::this_thread::sleep_for(std::chrono::milliseconds(10));
	EXPECT_EQ(c.runs.load(), 0);
	EXPECT_EQ(pending_works(), 1u);
	EXPECT_EQ(run_pending_works(), 1u);
	EXPECT_EQ(c.runs.load(), 1);
	EXPECT_EQ(c.cpu.load(), 1u);
	EXPECT_EQ(run_pending_works(), 0u);
	cxmq_os_work_destroy(w);
}

TEST_F(Host, SleepingUnderASpinlockIsReported)
{
	cxmq_os_lock *l = cxmq_os_lock_create(-1);
	cxmq_os_mutex *m = cxmq_os_mutex_create();
	expect_warnings(true);
	unsigned w = warn_count();
	unsigned long flags = cxmq_os_lock_irqsave(l);
	cxmq_os_mutex_lock(m);
	cxmq_os_mutex_unlock(m);
	cxmq_os_unlock_irqrestore(l, flags);
	EXPECT_EQ(warn_count(), w + 1);
	flags = cxmq_os_lock_irqsave(l);
	cxmq_os_unlock_irqrestore(l, flags + 1);
	EXPECT_EQ(warn_count(), w + 2) << "wrong flags";
	cxmq_os_mutex_destroy(m);
	cxmq_os_lock_destroy(l);
}

TEST_F(Host, TopologyAndCurrentCpu)
{
	Topology t = simple_topology(4);
	t.online[3] = false;
	t.first_sibling = {0, 0, 2, 2};
	set_topology(t);
	EXPECT_EQ(cxmq_os_nr_cpu_ids(), 4u);
	EXPECT_TRUE(cxmq_os_cpu_possible(3));
	EXPECT_FALSE(cxmq_os_cpu_online(3));
	EXPECT_FALSE(cxmq_os_cpu_possible(4));
	EXPECT_EQ(cxmq_os_cpu_first_sibling(1), 0u);
	EXPECT_EQ(cxmq_os_cpu_first_sibling(7), 7u);
	set_this_cpu(2);
	EXPECT_EQ(cxmq_os_this_cpu(), 2u);
	std::thread([] { EXPECT_EQ(cxmq_os_this_cpu(), 0u); }).join(); // per thread
	expect_warnings(true);
	unsigned w = warn_count();
	set_this_cpu(3);
	cxmq_os_this_cpu();
	EXPECT_EQ(warn_count(), w + 1) << "running on an offline CPU";
}

TEST_F(Host, SnprintfIsScnprintf)
{
	char buf[8];
	EXPECT_EQ(cxmq_os_snprintf(buf, sizeof(buf), "%d", 12345), 5);
	EXPECT_EQ(cxmq_os_snprintf(buf, sizeof(buf), "%s", "0123456789"), 7);
	EXPECT_STREQ(buf, "0123456");
	EXPECT_EQ(cxmq_os_snprintf(buf, 0, "%s", "x"), 0);
}

TEST_F(Host, BioEndedTwiceIsReported)
{
	FakeBio b;
	cxmq_os_bio_end(&b, CXMQ_STS_OK);
	EXPECT_EQ(b.ends.load(), 1);
	expect_warnings(true);
	unsigned w = warn_count();
	cxmq_os_bio_end(&b, CXMQ_STS_IOERR);
	EXPECT_EQ(warn_count(), w + 1);
	FakeBio r;
	cxmq_os_bio_end(&r, CXMQ_STS_RESOURCE);
	EXPECT_EQ(warn_count(), w + 2) << "RESOURCE never reaches a bio";
}

TEST_F(Host, AllocationFailureInjection)
{
	fail_allocation_at(1);
	void *a = cxmq_os_zalloc(10, -1);
	void *b = cxmq_os_zalloc(10, -1);
	void *c = cxmq_os_zalloc(10, -1);
	EXPECT_NE(a, nullptr);
	EXPECT_EQ(b, nullptr);
	EXPECT_NE(c, nullptr);
	EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
	EXPECT_EQ(static_cast<char *>(a)[9], 0);
	cxmq_os_free(a);
	cxmq_os_free(c);
	cxmq_os_free(nullptr);
	set_kmalloc_alignment(true);
	void *d = cxmq_os_zalloc(192, -1);
	void *e = cxmq_os_zalloc(256, -1);
	// the shim rounds 192 up to 256 bytes, which kmalloc aligns naturally
	EXPECT_EQ(reinterpret_cast<uintptr_t>(d) % 256, 0u);
	EXPECT_EQ(reinterpret_cast<uintptr_t>(e) % 256, 0u);
	cxmq_os_free(d);
	cxmq_os_free(e);
}

} // namespace
