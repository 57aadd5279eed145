// SPDX-License-Identifier: GPL-2.0
// The queue through the C API of include/cxmq/core.h, with the null backend (irqmode 0: each
// request completes inside queue_rq, in the submitter's context).
#include "test_util.h"

#include <atomic>

using namespace host;

namespace {

class CApi : public HostTest {};

// Sums of the per-CPU and per-hardware-queue statistics.
struct Stats {
	uint64_t dispatched[2] = {}, completed[2] = {};
	uint64_t queued = 0, run = 0, busy = 0, direct = 0, hist = 0;
};
Stats stats(cxmq::Queue &q)
{
	using cxmq::load_relaxed;
	Stats s;
	for (uint32_t c = 0; c < q.nr_cpus(); c++)
		for (int i = 0; i < 2; i++) {
			s.dispatched[i] += load_relaxed(q.ctx(c).dispatched[i]);
			s.completed[i] += load_relaxed(q.ctx(c).completed[i]);
		}
	for (uint32_t i = 0; i < q.nr_hw_queues(); i++) {
		cxmq::HwQueue &h = q.hctx(i);
		s.queued += load_relaxed(h.queued);
		s.run += load_relaxed(h.run);
		s.busy += load_relaxed(h.busy_events);
		s.direct += load_relaxed(h.direct_issued);
		for (uint64_t &v : h.dispatched)
			s.hist += load_relaxed(v);
	}
	return s;
}

// Waits for the deferred runs to be over, then checks that nothing is left anywhere.
void expect_idle(cxmq::Queue &q)
{
	EXPECT_TRUE(eventually(works_idle));
	for (uint32_t i = 0; i < q.nr_hw_queues(); i++) {
		EXPECT_EQ(q.hctx(i).tags->busy(), 0u) << "hctx " << i << " has tags in use";
		EXPECT_EQ(q.hctx(i).nr_dispatch, 0u);
		EXPECT_TRUE(q.hctx(i).dispatch.empty());
	}
	for (uint32_t c = 0; c < q.nr_cpus(); c++) {
		EXPECT_EQ(q.ctx(c).nr_pending, 0u);
		EXPECT_TRUE(q.ctx(c).rq_list.empty());
	}
}

TEST_F(CApi, EveryBioEndsOnceWithOk)
{
	for (uint32_t k : {1u, 2u, 4u}) {
		SCOPED_TRACE(k);
		set_topology(simple_topology(4));
		QueueHandle q(make_config(k, 64));
		ASSERT_NE(q.q, nullptr);
		EXPECT_EQ(cxmq_queue_nr_hw_queues(q), k);
		constexpr size_t kPerCpu = 200;
		auto bios = make_bios(4 * kPerCpu);
		uint64_t reads[4] = {}, writes[4] = {};
		const cxmq_op ops[] = {CXMQ_OP_READ, CXMQ_OP_WRITE, CXMQ_OP_FLUSH, CXMQ_OP_DISCARD,
				       CXMQ_OP_WRITE_ZEROES, CXMQ_OP_WRITE, CXMQ_OP_READ};
		for (size_t i = 0; i < 4 * kPerCpu; i++) {
			const uint32_t cpu = static_cast<uint32_t>(i % 4);
			set_this_cpu(cpu);
			const cxmq_op op = ops[i % 7];
			submit(q, bios[i], op, (i % 5 == 0) ? uint32_t(CXMQ_BIO_FUA) : 0u);
			// irqmode 0: ended before submit_bio returns.
			ASSERT_EQ(bios[i].ends.load(), 1) << "bio " << i;
			ASSERT_EQ(bios[i].status.load(), CXMQ_STS_OK) << "bio " << i;
			(op == CXMQ_OP_WRITE ? writes : reads)[cpu]++;
		}
		set_this_cpu(0);
		cxmq::Queue &Qq = Q(q);
		for (uint32_t c = 0; c < 4; c++) {
			EXPECT_EQ(Qq.ctx(c).dispatched[0], reads[c]) << "cpu " << c;
			EXPECT_EQ(Qq.ctx(c).dispatched[1], writes[c]) << "cpu " << c;
			EXPECT_EQ(Qq.ctx(c).completed[0], reads[c]) << "cpu " << c;
			EXPECT_EQ(Qq.ctx(c).completed[1], writes[c]) << "cpu " << c;
		}
		Stats s = stats(Qq);
		EXPECT_EQ(s.queued, 4 * kPerCpu);
		// Nothing ever waited: every request went straight to the backend, no run at all.
		EXPECT_EQ(s.direct, 4 * kPerCpu);
		EXPECT_EQ(s.run, 0u);
		EXPECT_EQ(s.hist, 0u);
		EXPECT_EQ(s.busy, 0u);
		// Each hardware queue got the requests of its CPUs.
		for (uint32_t i = 0; i < k; i++) {
			uint64_t expect = 0;
			for (uint32_t c = 0; c < 4; c++)
				if (Qq.map_cpu(c) == i)
					expect += reads[c] + writes[c];
			EXPECT_EQ(Qq.hctx(i).queued, expect) << "hctx " << i;
		}
		expect_idle(Qq);
	}
}

TEST_F(CApi, SetLiveKeepsWorking)
{
	QueueHandle q(make_config(2, 8));
	cxmq_queue_set_live(q);
	auto bios = make_bios(64);
	for (size_t i = 0; i < 64; i++) {
		set_this_cpu(static_cast<uint32_t>(i % 4));
		submit(q, bios[i]);
		EXPECT_EQ(bios[i].ends.load(), 1);
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK);
	}
	set_this_cpu(0);
	cxmq_queue_freeze(q);
	FakeBio nw;
	submit(q, nw, CXMQ_OP_READ, CXMQ_BIO_NOWAIT);
	EXPECT_EQ(nw.status.load(), CXMQ_STS_AGAIN);
	cxmq_queue_unfreeze(q);
}

// Many threads on every CPU, tags for one request at a time: most submitters sleep for a tag.
void many_threads(uint32_t queues, uint32_t depth, int threads, size_t per_thread)
{
	set_topology(simple_topology(4));
	QueueHandle q(make_config(queues, depth));
	ASSERT_NE(q.q, nullptr);
	auto bios = make_bios(static_cast<size_t>(threads) * per_thread);
	std::atomic<int> ready{0};
	std::vector<std::thread> th;
	for (int t = 0; t < threads; t++) {
		th.emplace_back([&, t] {
			set_this_cpu(static_cast<uint32_t>(t % 4));
			ready.fetch_add(1);
			while (ready.load() < threads)
				std::this_thread::yield();
			for (size_t i = 0; i < per_thread; i++) {
				FakeBio &b = bios[static_cast<size_t>(t) * per_thread + i];
				submit(q, b, (i & 1) ? CXMQ_OP_READ : CXMQ_OP_WRITE);
			}
		});
	}
	for (auto &x : th)
		x.join();
	const size_t n = static_cast<size_t>(threads) * per_thread;
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		if (bios[i].ends.load() != 1 || bios[i].status.load() != CXMQ_STS_OK)
			bad++;
	EXPECT_EQ(bad, 0u) << "bios not ended exactly once with OK";
	Stats s = stats(Q(q));
	EXPECT_EQ(s.queued, n);
	EXPECT_EQ(s.dispatched[0] + s.dispatched[1], n);
	EXPECT_EQ(s.completed[0] + s.completed[1], n);
	EXPECT_EQ(s.dispatched[0], s.completed[0]);
	EXPECT_EQ(sleepers(), 0);
	expect_idle(Q(q));
}

TEST_F(CApi, DepthOneManyThreadsAllComplete)
{
	many_threads(1, 1, 8, kTsan ? 1500 : 5000);
}

TEST_F(CApi, SmallDepthTwoQueuesManyThreadsAllComplete)
{
	many_threads(2, 2, 8, kTsan ? 1500 : 5000);
}

TEST_F(CApi, NowaitWithoutAFreeTagEndsWithAgain)
{
	// Depth 1, and a backend that refuses everything: the first request keeps its tag on the
	// dispatch list (retried every few ms), so there is no tag for the next one.
	QueueHandle q(make_config(1, 1));
	null_backend(q).set_busy_every(1);
	FakeBio first, nw;
	first.id = 1;
	nw.id = 2;
	submit(q, first);
	EXPECT_EQ(first.ends.load(), 0);
	cxmq::Queue &Qq = Q(q);
	EXPECT_EQ(Qq.hctx(0).tags->busy(), 1u);
	submit(q, nw, CXMQ_OP_WRITE, CXMQ_BIO_NOWAIT);
	EXPECT_EQ(nw.ends.load(), 1);
	EXPECT_EQ(nw.status.load(), CXMQ_STS_AGAIN);
	// The refused bio never became a request.
	EXPECT_EQ(Qq.hctx(0).queued, 1u);
	EXPECT_EQ(Qq.ctx(0).dispatched[1], 1u);
	// The backend recovers: the retry completes the first bio.
	null_backend(q).set_busy_every(0);
	EXPECT_TRUE(eventually([&] { return first.ends.load() == 1; }));
	EXPECT_EQ(first.status.load(), CXMQ_STS_OK);
	EXPECT_GE(Qq.hctx(0).busy_events, 1u);
	FakeBio again;
	submit(q, again, CXMQ_OP_WRITE, CXMQ_BIO_NOWAIT);
	EXPECT_EQ(again.status.load(), CXMQ_STS_OK);
	expect_idle(Qq);
}

TEST_F(CApi, FreezeHoldsSubmittersUntilUnfreeze)
{
	QueueHandle q(make_config(2, 16));
	cxmq_queue_freeze(q); // nothing in flight: returns at once
	FakeBio waiting, nw;
	std::thread s([&] {
		set_this_cpu(1);
		submit(q, waiting);
	});
	ASSERT_TRUE(eventually([] { return sleepers() == 1; }));
	std::this_thread::sleep_for(std::chrono::milliseconds(30));
	EXPECT_EQ(waiting.ends.load(), 0) << "a bio went through a frozen queue";
	// NOWAIT does not wait for the unfreeze.
	submit(q, nw, CXMQ_OP_READ, CXMQ_BIO_NOWAIT);
	EXPECT_EQ(nw.ends.load(), 1);
	EXPECT_EQ(nw.status.load(), CXMQ_STS_AGAIN);
	cxmq_queue_unfreeze(q);
	s.join();
	EXPECT_EQ(waiting.ends.load(), 1);
	EXPECT_EQ(waiting.status.load(), CXMQ_STS_OK);
	EXPECT_EQ(stats(Q(q)).queued, 1u);
}

TEST_F(CApi, NestedFreezeNeedsAsManyUnfreezes)
{
	QueueHandle q(make_config(1, 4));
	cxmq_queue_freeze(q);
	cxmq_queue_freeze(q);
	cxmq_queue_unfreeze(q);
	FakeBio a, b;
	submit(q, a, CXMQ_OP_WRITE, CXMQ_BIO_NOWAIT);
	EXPECT_EQ(a.status.load(), CXMQ_STS_AGAIN) << "the queue thawed after one unfreeze of two";
	cxmq_queue_unfreeze(q);
	submit(q, b, CXMQ_OP_WRITE, CXMQ_BIO_NOWAIT);
	EXPECT_EQ(b.status.load(), CXMQ_STS_OK);
	// And freezing again works (resurrected counter).
	cxmq_queue_freeze(q);
	FakeBio c;
	submit(q, c, CXMQ_OP_WRITE, CXMQ_BIO_NOWAIT);
	EXPECT_EQ(c.status.load(), CXMQ_STS_AGAIN);
	cxmq_queue_unfreeze(q);
}

TEST_F(CApi, FreezeWaitsForARequestTheBackendRefuses)
{
	QueueHandle q(make_config(1, 4));
	null_backend(q).set_busy_every(1);
	FakeBio stuck;
	submit(q, stuck);
	std::atomic<bool> frozen{false};
	std::thread f([&] {
		cxmq_queue_freeze(q);
		frozen = true;
	});
	ASSERT_TRUE(eventually([] { return sleepers() == 1; }));
	std::this_thread::sleep_for(std::chrono::milliseconds(30));
	EXPECT_FALSE(frozen.load()) << "freeze returned with a request in flight";
	null_backend(q).set_busy_every(0);
	f.join();
	EXPECT_TRUE(frozen.load());
	EXPECT_EQ(stuck.ends.load(), 1);
	EXPECT_EQ(stuck.status.load(), CXMQ_STS_OK);
	cxmq_queue_unfreeze(q);
}

TEST_F(CApi, DestroyWaitsForARequestTheBackendRefuses)
{
	QueueHandle q(make_config(2, 4));
	set_this_cpu(1);
	null_backend(q).set_busy_every(1);
	FakeBio stuck;
	submit(q, stuck);
	set_this_cpu(0);
	std::atomic<bool> gone{false};
	cxmq_queue *raw = q.q;
	q.q = nullptr;
	std::thread d([&] {
		cxmq_queue_destroy(raw);
		gone = true;
	});
	ASSERT_TRUE(eventually([] { return sleepers() == 1; }));
	std::this_thread::sleep_for(std::chrono::milliseconds(30));
	EXPECT_FALSE(gone.load()) << "destroy returned with a request in flight";
	EXPECT_EQ(stuck.ends.load(), 0);
	// The backend recovers. Told from the kworker's own thread, just before its next retry:
	// from now on this thread must not touch the queue, which destroy frees.
	std::atomic<bool> told{false};
	Hooks hk;
	hk.before_work = [&](cxmq_os_work *) {
		if (!told.exchange(true))
			null_backend(raw).set_busy_every(0);
	};
	set_hooks(hk);
	d.join();
	clear_hooks();
	EXPECT_EQ(stuck.ends.load(), 1);
	EXPECT_EQ(stuck.status.load(), CXMQ_STS_OK);
}

// One submitter, one CPU, a backend that refuses every n-th request: nothing is lost, and the
// statistics add up. calls = N + busy answers, and the null backend refuses exactly the calls
// numbered n, 2n, ...: busy = floor((N + busy) / n).
TEST_F(CApi, BusyBackendLosesNothingOneSubmitter)
{
	for (uint32_t every : {2u, 3u, 7u}) {
		SCOPED_TRACE(every);
		set_topology(simple_topology(2));
		QueueHandle q(make_config(1, 8));
		null_backend(q).set_busy_every(every);
		const size_t n = kTsan ? 400 : 2000;
		auto bios = make_bios(n);
		for (size_t i = 0; i < n; i++)
			submit(q, bios[i], (i & 1) ? CXMQ_OP_READ : CXMQ_OP_WRITE);
		ASSERT_TRUE(eventually([&] {
			for (size_t i = 0; i < n; i++)
				if (bios[i].ends.load() != 1)
					return false;
			return true;
		})) << "bios lost";
		for (size_t i = 0; i < n; i++)
			EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK);
		cxmq::Queue &Qq = Q(q);
		// Let the last deferred runs finish before reading the counters.
		EXPECT_TRUE(eventually(works_idle));
		Stats s = stats(Qq);
		EXPECT_EQ(s.queued, n);
		EXPECT_EQ(s.busy, (n + s.busy) / every);
		EXPECT_EQ(s.hist, s.run);
		EXPECT_EQ(Qq.ctx(0).dispatched[0] + Qq.ctx(0).dispatched[1], n);
		EXPECT_EQ(Qq.ctx(0).completed[0] + Qq.ctx(0).completed[1], n);
		EXPECT_EQ(Qq.ctx(0).dispatched[0], Qq.ctx(0).completed[0]);
		expect_idle(Qq);
	}
}

// Several submitters on different CPUs, each on its own hardware queue, with deferred runs
// racing them: nothing is lost.
TEST_F(CApi, BusyBackendLosesNothingQueuePerSubmitter)
{
	set_topology(simple_topology(4));
	QueueHandle q(make_config(4, 4));
	null_backend(q).set_busy_every(3);
	const int threads = 4;
	const size_t per = kTsan ? 300 : 1500;
	auto bios = make_bios(threads * per);
	std::vector<std::thread> th;
	for (int t = 0; t < threads; t++)
		th.emplace_back([&, t] {
			set_this_cpu(static_cast<uint32_t>(t));
			for (size_t i = 0; i < per; i++)
				submit(q, bios[static_cast<size_t>(t) * per + i]);
		});
	for (auto &x : th)
		x.join();
	ASSERT_TRUE(eventually([&] {
		for (size_t i = 0; i < threads * per; i++)
			if (bios[i].ends.load() != 1)
				return false;
		return true;
	})) << "bios lost";
	EXPECT_TRUE(eventually(works_idle));
	Stats s = stats(Q(q));
	EXPECT_EQ(s.queued, threads * per);
	EXPECT_EQ(s.busy, (threads * per + s.busy) / 3);
	EXPECT_EQ(s.hist, s.run);
	for (int t = 0; t < threads; t++)
		EXPECT_EQ(Q(q).hctx(static_cast<uint32_t>(t)).queued, per);
	expect_idle(Q(q));
}

// Was a bug (fixed; src/core/queue.cpp, Queue::issue_direct): the busy path does `h.nr_dispatch++` (a plain
// read-modify-write, under h.lock) while issue_direct on other CPUs of the same hardware queue
// reads h.nr_dispatch with load_relaxed() and no lock: a data race (undefined behaviour in C++,
// reported by ThreadSanitizer). Fix: store_relaxed(h.nr_dispatch, h.nr_dispatch + 1), as
// dispatch_once does. Every build runs it: no race report, nothing lost.
TEST_F(CApi, BusyBackendLosesNothingManySubmittersOneQueue)
{
	set_topology(simple_topology(4));
	QueueHandle q(make_config(1, 4));
	null_backend(q).set_busy_every(2);
	const int threads = 4;
	const size_t per = 500; // every 2nd call refused: many 3 ms retry delays
	auto bios = make_bios(threads * per);
	std::atomic<int> ready{0};
	std::vector<std::thread> th;
	for (int t = 0; t < threads; t++)
		th.emplace_back([&, t] {
			set_this_cpu(static_cast<uint32_t>(t));
			ready.fetch_add(1);
			while (ready.load() < threads)
				std::this_thread::yield();
			for (size_t i = 0; i < per; i++)
				submit(q, bios[static_cast<size_t>(t) * per + i]);
		});
	for (auto &x : th)
		x.join();
	ASSERT_TRUE(eventually([&] {
		for (size_t i = 0; i < threads * per; i++)
			if (bios[i].ends.load() != 1)
				return false;
		return true;
	})) << "bios lost";
	for (size_t i = 0; i < threads * per; i++)
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK);
	EXPECT_TRUE(eventually(works_idle));
	Stats s = stats(Q(q));
	EXPECT_EQ(s.queued, threads * per);
	EXPECT_EQ(s.busy, (threads * per + s.busy) / 2);
	EXPECT_EQ(s.hist, s.run);
	expect_idle(Q(q));
}

TEST_F(CApi, CreateFailsCleanlyOnEveryAllocationFailure)
{
	// How many allocations a successful create makes ...
	const cxmq_dev_config cfg = make_config(2, 8);
	long before = allocations();
	{
		QueueHandle q(cfg);
	}
	const long total = allocations() - before;
	ASSERT_GT(total, 10);
	// ... and each of them failing in turn: NULL, -ENOMEM, nothing leaked. (Warnings are
	// allowed here; CApi.CreateFailureDoesNotWarn checks them.)
	expect_warnings(true);
	for (long k = 0; k < total; k++) {
		SCOPED_TRACE(k);
		const long allocs = live_allocs(), objects = live_objects();
		fail_allocation_at(k);
		int err = 0;
		cxmq_dev_config c = cfg;
		cxmq_queue *q = cxmq_queue_create(&c, &err);
		fail_allocation_at(-1);
		EXPECT_EQ(q, nullptr);
		EXPECT_EQ(err, -CXMQ_ENOMEM);
		if (q)
			cxmq_queue_destroy(q);
		EXPECT_EQ(live_allocs(), allocs) << "leak after failing allocation " << k;
		EXPECT_EQ(live_objects(), objects) << "leak after failing allocation " << k;
	}
}

// Was a bug (fixed; src/core/queue.cpp, Queue::init and Queue::~Queue): when an allocation fails after ctxs_
// was allocated but before every SwQueue in it was constructed (freeze_wq_, usage_, cpu_map_ or
// hctxs_ failing, or a SwQueue's lock), ~Queue still runs ~SwQueue() on all nr_cpu_ids entries:
// on zeroed memory that was never constructed (undefined behaviour), whose List head is not
// self-linked, so ~List's CXMQ_WARN_ON(!empty()) fires: a WARN splat for every CPU on a plain
// -ENOMEM. Fix: count the SwQueues constructed (e.g. nr_ctxs_ set as the loop goes) and destroy
// only those; or construct them right after the allocation, before anything else can fail.
TEST_F(CApi, CreateFailureDoesNotWarn)
{
	const cxmq_dev_config cfg = make_config(2, 8);
	long before = allocations();
	{
		QueueHandle q(cfg);
	}
	const long total = allocations() - before;
	expect_warnings(true); // counted here, one line for all
	std::string warned;
	for (long k = 0; k < total; k++) {
		const unsigned warns = warn_count();
		fail_allocation_at(k);
		int err = 0;
		cxmq_dev_config c = cfg;
		cxmq_queue *q = cxmq_queue_create(&c, &err);
		fail_allocation_at(-1);
		EXPECT_EQ(q, nullptr);
		if (warn_count() != warns)
			warned += " " + std::to_string(k) + " (" +
				  std::to_string(warn_count() - warns) + " warnings)";
	}
	EXPECT_EQ(warned, "") << "of " << total << " allocations, failing these warned:" << warned;
}

} // namespace
