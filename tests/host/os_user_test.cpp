// SPDX-License-Identifier: GPL-2.0
// The user-space host itself: the semantics the core relies on (percpu_ref-like usage counter,
// wait queues without lost wake-ups, delayed work with cancel_sync, tasklet-like softirq
// contexts, hrtimer-like timers, pages, bio data walks) and the kernel-like checks.
#include "test_util.h"

#include <algorithm>
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
	cxmq_os_bio_end(&b, CXMQ_STS_OK, 0);
	EXPECT_EQ(b.ends.load(), 1);
	expect_warnings(true);
	unsigned w = warn_count();
	cxmq_os_bio_end(&b, CXMQ_STS_IOERR, 0);
	EXPECT_EQ(warn_count(), w + 1);
	FakeBio r;
	cxmq_os_bio_end(&r, CXMQ_STS_RESOURCE, 0);
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

// ---- softirq contexts ----

struct SoftRec {
	std::atomic<int> runs{0};
	std::atomic<int> inside{0};
	std::atomic<int> overlaps{0};
	std::atomic<uint32_t> cpu{~0u};
	std::atomic<int> ctx{-1};
	std::atomic<int> sleep_ms{0};
	std::atomic<bool> try_to_sleep{false};
	std::atomic<uint64_t> produced{0}; // raisers: counted before each raise
	std::atomic<uint64_t> seen{0};     // what the latest run saw
	Gate *gate = nullptr;              // the first run waits at it
	static void fn(void *arg, cxmq_u32 i)
	{
		auto *r = static_cast<SoftRec *>(arg);
		if (r->inside.fetch_add(1) != 0)
			r->overlaps.fetch_add(1);
		r->seen = r->produced.load();
		r->cpu = cxmq_os_this_cpu();
		r->ctx = current_context();
		(void)i;
		if (r->gate && r->runs.load() == 0)
			r->gate->wait();
		if (int ms = r->sleep_ms.load())
			std::this_thread::sleep_for(std::chrono::milliseconds(ms));
		if (r->try_to_sleep.load())
			cxmq_os_free(cxmq_os_zalloc(8, -1)); // may sleep: not in a softirq
		r->inside.fetch_sub(1);
		r->runs.fetch_add(1);
	}
};

TEST_F(Host, SoftirqRunsOnTheRaisingCpuInSoftirqContext)
{
	SoftRec r;
	cxmq_os_softirq *s = cxmq_os_softirq_create(4, SoftRec::fn, &r);
	ASSERT_NE(s, nullptr);
	std::thread([&] {
		set_this_cpu(2);
		cxmq_os_softirq_raise(s, 1);
	}).join();
	ASSERT_TRUE(eventually([&] { return r.runs.load() == 1; }));
	EXPECT_EQ(r.cpu.load(), 2u);
	EXPECT_EQ(r.ctx.load(), kSoftirq);
	EXPECT_TRUE(eventually(softirqs_idle));
	// Sleeping there is reported.
	expect_warnings(true);
	const unsigned w = warn_count();
	r.try_to_sleep = true;
	cxmq_os_softirq_raise(s, 3);
	ASSERT_TRUE(eventually([&] { return r.runs.load() == 2; }));
	EXPECT_EQ(warn_count(), w + 1) << "cxmq_os_zalloc in a softirq was not reported";
	EXPECT_EQ(r.cpu.load(), 0u);
	cxmq_os_softirq_raise(s, 4); // out of range
	EXPECT_EQ(warn_count(), w + 2);
	cxmq_os_softirq_destroy(s);
}

TEST_F(Host, SoftirqRaisesMergeAndARaiseDuringARunRunsItAgain)
{
	set_softirq_manual(true);
	SoftRec r;
	cxmq_os_softirq *s = cxmq_os_softirq_create(2, SoftRec::fn, &r);
	set_this_cpu(3);
	cxmq_os_softirq_raise(s, 0);
	set_this_cpu(1);
	cxmq_os_softirq_raise(s, 0); // merges with the pending one: still on CPU 3
	cxmq_os_softirq_raise(s, 0);
	set_this_cpu(0);
	std::this_thread::sleep_for(std::chrono::milliseconds(10));
	EXPECT_EQ(r.runs.load(), 0) << "manual mode ran a softirq";
	EXPECT_EQ(pending_softirqs(), 1u);
	EXPECT_EQ(run_pending_softirqs(), 1u);
	EXPECT_EQ(r.runs.load(), 1);
	EXPECT_EQ(r.cpu.load(), 3u);
	EXPECT_EQ(run_pending_softirqs(), 0u);
	cxmq_os_softirq_destroy(s);

	// Automatic: raised twice while it runs, it runs exactly once more.
	set_softirq_manual(false);
	SoftRec a;
	Gate g;
	a.gate = &g;
	s = cxmq_os_softirq_create(1, SoftRec::fn, &a);
	cxmq_os_softirq_raise(s, 0);
	ASSERT_TRUE(g.wait_arrivals(1));
	cxmq_os_softirq_raise(s, 0);
	cxmq_os_softirq_raise(s, 0);
	std::this_thread::sleep_for(std::chrono::milliseconds(10));
	EXPECT_EQ(a.inside.load(), 1) << "a context ran twice at once";
	g.open();
	ASSERT_TRUE(eventually([&] { return a.runs.load() == 2 && softirqs_idle(); }));
	std::this_thread::sleep_for(std::chrono::milliseconds(10));
	EXPECT_EQ(a.runs.load(), 2);
	cxmq_os_softirq_destroy(s);
}

// Raisers on several threads: no raise is lost (the run after the last raise sees everything
// produced before it) and a context never runs concurrently with itself.
TEST_F(Host, SoftirqLosesNoRaise)
{
	SoftRec r;
	cxmq_os_softirq *s = cxmq_os_softirq_create(1, SoftRec::fn, &r);
	const int threads = 4, per = kTsan ? 2000 : 20000;
	std::vector<std::thread> th;
	for (int t = 0; t < threads; t++)
		th.emplace_back([&, t] {
			set_this_cpu(static_cast<uint32_t>(t));
			for (int k = 0; k < per; k++) {
				r.produced.fetch_add(1);
				cxmq_os_softirq_raise(s, 0);
			}
		});
	for (auto &t : th)
		t.join();
	ASSERT_TRUE(eventually(softirqs_idle));
	EXPECT_EQ(r.seen.load(), uint64_t(threads) * per) << "a raise was lost";
	EXPECT_EQ(r.overlaps.load(), 0);
	EXPECT_GE(r.runs.load(), 1);
	cxmq_os_softirq_destroy(s);
}

TEST_F(Host, SoftirqDestroyRunsThePendingAndWaitsForTheRunning)
{
	SoftRec r;
	r.sleep_ms = 40;
	cxmq_os_softirq *s = cxmq_os_softirq_create(2, SoftRec::fn, &r);
	cxmq_os_softirq_raise(s, 1);
	ASSERT_TRUE(eventually([&] { return r.inside.load() == 1; }));
	cxmq_os_softirq_raise(s, 1); // pending behind the running one
	cxmq_os_softirq_destroy(s);
	EXPECT_EQ(r.runs.load(), 2) << "destroy returned before the running and pending runs";
	EXPECT_EQ(r.inside.load(), 0);

	set_softirq_manual(true); // nothing would run it: destroy does, as tasklet_kill waits for it
	SoftRec m;
	s = cxmq_os_softirq_create(1, SoftRec::fn, &m);
	cxmq_os_softirq_raise(s, 0);
	cxmq_os_softirq_destroy(s);
	EXPECT_EQ(m.runs.load(), 1);
	EXPECT_EQ(m.ctx.load(), kSoftirq);
	cxmq_os_softirq_destroy(nullptr);
}

// ---- timers ----

struct TimerRec {
	std::atomic<int> runs{0};
	std::atomic<int> inside{0};
	std::atomic<uint32_t> cpu{~0u};
	std::atomic<int> ctx{-1};
	std::atomic<int64_t> fired_ns{0};
	std::atomic<int> sleep_ms{0};
	int id = 0;
	std::vector<int> *order = nullptr; // manual runs: one thread
	static void fn(void *arg)
	{
		auto *r = static_cast<TimerRec *>(arg);
		r->inside.fetch_add(1);
		r->fired_ns = now_ns();
		r->cpu = cxmq_os_this_cpu();
		r->ctx = current_context();
		if (r->order)
			r->order->push_back(r->id);
		if (int ms = r->sleep_ms.load())
			std::this_thread::sleep_for(std::chrono::milliseconds(ms));
		r->inside.fetch_sub(1);
		r->runs.fetch_add(1);
	}
};

TEST_F(Host, TimerFiresOnceAfterItsDelayInHardIrqContextOnItsCpu)
{
	TimerRec r;
	cxmq_os_timer *t = cxmq_os_timer_create(TimerRec::fn, &r, -1);
	ASSERT_NE(t, nullptr);
	set_this_cpu(3);
	const int64_t t0 = now_ns();
	cxmq_os_timer_start(t, 20000000);
	set_this_cpu(0);
	ASSERT_TRUE(eventually([&] { return r.runs.load() == 1; }));
	EXPECT_GE(r.fired_ns.load() - t0, 20000000);
	EXPECT_EQ(r.cpu.load(), 3u);
	EXPECT_EQ(r.ctx.load(), kHardirq);
	std::this_thread::sleep_for(std::chrono::milliseconds(30));
	EXPECT_EQ(r.runs.load(), 1) << "a one-shot timer fired twice";
	cxmq_os_timer_destroy(t);
}

TEST_F(Host, TimerStartWhilePendingSetsANewExpiry)
{
	TimerRec r;
	cxmq_os_timer *t = cxmq_os_timer_create(TimerRec::fn, &r, -1);
	int64_t t0 = now_ns();
	cxmq_os_timer_start(t, 5000000000ull); // 5 s ...
	cxmq_os_timer_start(t, 10000000);      // ... now 10 ms
	ASSERT_TRUE(eventually([&] { return r.runs.load() == 1; }, std::chrono::milliseconds(3000)));
	EXPECT_GE(r.fired_ns.load() - t0, 10000000);
	// Later, not sooner.
	t0 = now_ns();
	cxmq_os_timer_start(t, 1000000);
	cxmq_os_timer_start(t, 60000000);
	ASSERT_TRUE(eventually([&] { return r.runs.load() == 2; }));
	EXPECT_GE(r.fired_ns.load() - t0, 60000000);
	std::this_thread::sleep_for(std::chrono::milliseconds(20));
	EXPECT_EQ(r.runs.load(), 2);
	cxmq_os_timer_destroy(t);
}

TEST_F(Host, TimerDestroyCancelsThePendingAndWaitsForTheRunning)
{
	TimerRec r;
	cxmq_os_timer *t = cxmq_os_timer_create(TimerRec::fn, &r, -1);
	cxmq_os_timer_start(t, 30000000);
	cxmq_os_timer_destroy(t);
	std::this_thread::sleep_for(std::chrono::milliseconds(60));
	EXPECT_EQ(r.runs.load(), 0) << "a destroyed timer fired";
	EXPECT_TRUE(timers_idle());

	TimerRec s;
	s.sleep_ms = 40;
	t = cxmq_os_timer_create(TimerRec::fn, &s, -1);
	cxmq_os_timer_start(t, 0);
	ASSERT_TRUE(eventually([&] { return s.inside.load() == 1; }));
	cxmq_os_timer_start(t, 0); // while it runs: fires again after the callback
	ASSERT_TRUE(eventually([&] { return s.runs.load() == 2; }));
	EXPECT_EQ(s.inside.load(), 0);
	cxmq_os_timer_start(t, 0);
	ASSERT_TRUE(eventually([&] { return s.inside.load() == 1; }));
	cxmq_os_timer_start(t, 1000000000); // pending too: destroy drops it
	cxmq_os_timer_destroy(t);
	EXPECT_EQ(s.runs.load(), 3) << "destroy returned with the callback running";
	EXPECT_EQ(s.inside.load(), 0);
	EXPECT_TRUE(timers_idle());
	cxmq_os_timer_destroy(nullptr);
}

TEST_F(Host, ManualTimersFireWhenAskedEarliestFirst)
{
	set_timer_manual(true);
	std::vector<int> order;
	TimerRec r[3];
	cxmq_os_timer *t[3];
	const uint64_t delay[3] = {3000000, 1000, 2000000};
	for (int i = 0; i < 3; i++) {
		r[i].id = i;
		r[i].order = &order;
		t[i] = cxmq_os_timer_create(TimerRec::fn, &r[i], -1);
		set_this_cpu(static_cast<uint32_t>(i));
		cxmq_os_timer_start(t[i], delay[i]);
	}
	set_this_cpu(0);
	std::this_thread::sleep_for(std::chrono::milliseconds(10));
	EXPECT_EQ(order.size(), 0u) << "a manual timer fired by itself";
	EXPECT_EQ(pending_timers(), 3u);
	EXPECT_EQ(run_pending_timers(), 3u);
	EXPECT_EQ(order, (std::vector<int>{1, 2, 0}));
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(r[i].cpu.load(), static_cast<uint32_t>(i));
		EXPECT_EQ(r[i].ctx.load(), kHardirq);
	}
	// Only those due.
	cxmq_os_timer_start(t[0], 0);
	cxmq_os_timer_start(t[1], 10000000000ull);
	std::this_thread::sleep_for(std::chrono::milliseconds(1));
	EXPECT_EQ(run_pending_timers(true), 1u);
	EXPECT_EQ(r[0].runs.load(), 2);
	EXPECT_EQ(pending_timers(), 1u);
	// Back to automatic mode: the pending one is still pending until destroyed.
	set_timer_manual(false);
	for (auto *x : t)
		cxmq_os_timer_destroy(x);
	EXPECT_EQ(r[1].runs.load(), 1);
	EXPECT_TRUE(timers_idle());
}

// ---- pages, IO allocations ----

TEST_F(Host, PagesAreZeroedAlignedCountedAndCanFail)
{
	const long live = live_allocs();
	void *p = cxmq_os_page_alloc(1, -1);
	ASSERT_NE(p, nullptr);
	EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % CXMQ_PAGE_SIZE, 0u);
	const auto *c = static_cast<const unsigned char *>(p);
	EXPECT_EQ(std::count(c, c + CXMQ_PAGE_SIZE, 0), long(CXMQ_PAGE_SIZE));
	memset(p, 0xff, CXMQ_PAGE_SIZE);
	EXPECT_EQ(live_allocs(), live + 1);
	fail_allocation_at(1);
	void *a = cxmq_os_page_alloc(0, -1);
	void *b = cxmq_os_page_alloc(0, -1);
	void *d = cxmq_os_zalloc_io(100, 1, -1);
	EXPECT_NE(a, nullptr);
	EXPECT_EQ(b, nullptr);
	EXPECT_NE(d, nullptr);
	EXPECT_EQ(reinterpret_cast<uintptr_t>(d) % 64, 0u);
	fail_allocation_at(0);
	EXPECT_EQ(cxmq_os_zalloc_io(100, 0, -1), nullptr);
	cxmq_os_page_free(p);
	cxmq_os_page_free(a);
	cxmq_os_page_free(nullptr);
	cxmq_os_free(d);
	EXPECT_EQ(live_allocs(), live);
	// GFP_NOIO may sleep, GFP_NOWAIT not; a double free is reported (quarantine keeps the
	// header readable).
	set_quarantine(true);
	cxmq_os_lock *l = cxmq_os_lock_create(-1);
	expect_warnings(true);
	const unsigned w = warn_count();
	unsigned long flags = cxmq_os_lock_irqsave(l);
	void *n = cxmq_os_page_alloc(0, -1);
	void *z = cxmq_os_zalloc_io(64, 0, -1);
	EXPECT_EQ(warn_count(), w);
	void *s = cxmq_os_page_alloc(1, -1);
	void *y = cxmq_os_zalloc_io(64, 1, -1);
	EXPECT_EQ(warn_count(), w + 2);
	cxmq_os_unlock_irqrestore(l, flags);
	cxmq_os_lock_destroy(l);
	cxmq_os_page_free(n);
	cxmq_os_page_free(s);
	cxmq_os_free(z);
	cxmq_os_free(y);
	cxmq_os_page_free(n);
	EXPECT_EQ(warn_count(), w + 3) << "a page freed twice";
}

// ---- bios ----

struct Piece {
	uint64_t off;
	uintptr_t addr;
	uint32_t len;
};
struct Walk {
	std::vector<Piece> pieces;
	int stop_at = -1; // piece index whose callback returns non-zero
	bool scribble = false;
	static int fn(void *ctx, cxmq_u64 off, void *data, cxmq_u32 len)
	{
		auto *w = static_cast<Walk *>(ctx);
		w->pieces.push_back(Piece{off, reinterpret_cast<uintptr_t>(data), len});
		if (w->scribble)
			static_cast<char *>(data)[len - 1] ^= 1;
		return static_cast<int>(w->pieces.size()) - 1 == w->stop_at ? -7 : 0;
	}
};

TEST_F(Host, BioPiecesAreInOrderAndNeverCrossAPage)
{
	std::vector<char> mem(5 * 4096);
	char *page0 = reinterpret_cast<char *>((reinterpret_cast<uintptr_t>(mem.data()) + 4095) &
					       ~uintptr_t(4095));
	FakeBio b;
	b.data = page0 + 100;
	b.len = 10000;
	Walk w;
	EXPECT_EQ(cxmq_os_bio_for_each_piece(&b, 1, Walk::fn, &w), 0);
	ASSERT_EQ(w.pieces.size(), 3u);
	EXPECT_EQ(w.pieces[0].len, 3996u);
	EXPECT_EQ(w.pieces[1].len, 4096u);
	EXPECT_EQ(w.pieces[2].len, 1908u);
	uint64_t off = 0;
	for (const Piece &p : w.pieces) {
		EXPECT_EQ(p.off, off);
		EXPECT_EQ(p.addr, reinterpret_cast<uintptr_t>(page0 + 100 + off));
		off += p.len;
	}
	// Irregular pieces: capped by piece_lens, cycled, still never across a page.
	b.piece_lens = {1, 700, 5000};
	Walk v;
	EXPECT_EQ(cxmq_os_bio_for_each_piece(&b, 0, Walk::fn, &v), 0);
	off = 0;
	for (size_t i = 0; i < v.pieces.size(); i++) {
		const Piece &p = v.pieces[i];
		EXPECT_EQ(p.off, off);
		EXPECT_LE(p.len, b.piece_lens[i % 3]);
		EXPECT_EQ((p.addr & ~uintptr_t(4095)), ((p.addr + p.len - 1) & ~uintptr_t(4095)))
			<< "piece " << i << " crosses a page";
		off += p.len;
	}
	EXPECT_EQ(off, 10000u);
	EXPECT_EQ(v.pieces[0].len, 1u);
	EXPECT_EQ(v.pieces[1].len, 700u);
	// Stops at the first non-zero result and returns it.
	Walk s;
	s.stop_at = 1;
	EXPECT_EQ(cxmq_os_bio_for_each_piece(&b, 1, Walk::fn, &s), -7);
	EXPECT_EQ(s.pieces.size(), 2u);
	EXPECT_EQ(b.walks.load(), 3);
	// No data: no piece.
	FakeBio e;
	Walk n;
	EXPECT_EQ(cxmq_os_bio_for_each_piece(&e, 1, Walk::fn, &n), 0);
	EXPECT_TRUE(n.pieces.empty());
	// Writing into a write's data, or walking an ended bio, is reported.
	expect_warnings(true);
	const unsigned warns = warn_count();
	Walk x;
	x.scribble = true;
	cxmq_os_bio_for_each_piece(&b, 1, Walk::fn, &x); // a read: fine
	EXPECT_EQ(warn_count(), warns);
	Walk y;
	y.scribble = true;
	y.stop_at = 0;
	cxmq_os_bio_for_each_piece(&b, 0, Walk::fn, &y);
	EXPECT_EQ(warn_count(), warns + 1);
	cxmq_os_bio_end(&b, CXMQ_STS_OK, 0);
	Walk z;
	cxmq_os_bio_for_each_piece(&b, 1, Walk::fn, &z);
	EXPECT_EQ(warn_count(), warns + 2);
}

TEST_F(Host, BioEndRecordsTheCookieAndWhereItRan)
{
	FakeBio b;
	b.id = 7;
	const uint64_t cookie = arm_cookie(b);
	EXPECT_EQ(cookie & CXMQ_ACCT_COOKIE, CXMQ_ACCT_COOKIE);
	set_this_cpu(2);
	const int64_t t0 = now_ns();
	cxmq_os_bio_end(&b, CXMQ_STS_OK, cookie);
	EXPECT_EQ(b.cookie.load(), cookie);
	EXPECT_EQ(b.end_cpu.load(), 2u);
	EXPECT_EQ(b.end_context.load(), kProcess);
	EXPECT_GE(b.end_ns.load(), t0);
	FakeBio c;
	c.id = 8;
	arm_cookie(c);
	expect_warnings(true);
	const unsigned w = warn_count();
	cxmq_os_bio_end(&c, CXMQ_STS_OK, cookie); // not its own
	EXPECT_EQ(warn_count(), w + 1);
}

} // namespace
