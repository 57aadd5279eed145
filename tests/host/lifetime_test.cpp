// SPDX-License-Identifier: GPL-2.0
// Object lifetimes around queue teardown, and the memory the core's objects need. The races
// here are made deterministic with the host's hooks (a thread is stopped at the exact point of
// the race) and quarantine (a destroyed OS object is kept, marked dead, so that a use after
// destroy is reported by the host instead of being a real use after free).
#include "test_util.h"

#include <atomic>

using namespace host;
using cxmq::Queue;

namespace {

class Lifetime : public HostTest {};

Decision hold(const Call &, uint64_t) { return {Act::Hold}; }

// Was a bug (fixed; src/core/queue.cpp, Queue::shutdown / Queue::end_request / Queue::usage_zero): the
// completion of the last request drops its usage reference in end_request's exit(); the count
// reaches zero, and only then does the usage counter call on_zero = Queue::usage_zero, which
// reads q->freeze_wq_ and wakes it. A destroyer in freeze() that checks is_zero in between (its
// first check, right after the kill, or any wake-up) returns, and cxmq_queue_destroy frees the
// usage counter, the wait queue and the Queue while the completing thread is still inside
// cxmq_os_usage_put / usage_zero: a use after free (percpu_ref_put itself reads ref->data after
// the decrement, as the host's usage counter does). end_request's comment "the queue may be
// freed from here on" is wrong: it may be freed *during* exit(). Reachable in the kernel once
// completions come from another context than the submitter (irqmode 1/2, a driver's IRQ).
// Fix: make shutdown wait until the release has finished, e.g. usage_zero sets a `drained` flag
// under a lock after the wake-up (or calls complete() on a struct completion) and shutdown
// waits for that flag rather than for is_zero; then nothing touches the queue after it.
TEST_F(Lifetime, DestroyDoesNotFreeTheQueueUnderItsLastCompletion)
{
	set_quarantine(true);
	ScriptBackend be(hold);
	Queue *q = make_queue(make_config(1, 4), &be);
	FakeBio b;
	submit(q, b);
	Gate killed, at_zero, destroyed;
	std::atomic<bool> on_zero_after_destroy{false};
	std::atomic<bool> destroy_returned{false};
	std::thread::id completer_id;
	std::mutex idm;
	Hooks hk;
	hk.after_usage_kill = [&](cxmq_os_usage *) {
		killed.open();
		at_zero.wait(std::chrono::milliseconds(3000)); // the completer reached zero
	};
	hk.before_usage_on_zero = [&](cxmq_os_usage *) {
		{
			std::lock_guard<std::mutex> g(idm);
			if (std::this_thread::get_id() != completer_id)
				return;
		}
		at_zero.open();
		// A correct core keeps destroy waiting until on_zero has run: give it 1 s.
		destroyed.wait(std::chrono::milliseconds(1000));
		on_zero_after_destroy = destroy_returned.load();
	};
	set_hooks(hk);
	std::thread c([&] {
		{
			std::lock_guard<std::mutex> g(idm);
			completer_id = std::this_thread::get_id();
		}
		killed.wait(std::chrono::milliseconds(3000));
		be.complete_all();
	});
	expect_warnings(true); // counted below, and reported by the host on stderr
	const unsigned warns = warn_count();
	destroy_queue(q);
	destroy_returned = true;
	destroyed.open();
	c.join();
	clear_hooks();
	EXPECT_FALSE(on_zero_after_destroy.load())
		<< "Queue::usage_zero ran after cxmq_queue_destroy had freed the queue";
	EXPECT_EQ(warn_count(), warns) << "the host saw objects used after they were destroyed";
	EXPECT_EQ(b.ends.load(), 1);
}

// Was a bug (fixed; src/core/queue.cpp, Queue::shutdown and Queue::enter): shutdown wakes the submitters that
// sleep in enter() waiting for an unfreeze ("submitters waiting for an unfreeze fail now"), but
// does not wait for them to leave: cxmq_queue_destroy frees freeze_wq_ and the Queue while they
// still have to re-take the wait queue's lock, call queue_enterable(q) and read q->dying_: a use
// after free. (In the module, del_gendisk drains the disk's queue first, but the core's API
// promises this case.) Fix: count the submitters inside enter() (or hold a usage-like reference
// for them) and have shutdown wait for that count to drop to zero after its wake_all.
TEST_F(Lifetime, DestroyDoesNotFreeTheQueueUnderASleepingSubmitter)
{
	set_quarantine(true);
	cxmq_dev_config cfg = make_config(1, 4);
	ASSERT_EQ(cxmq_config_check(&cfg), 0);
	int err = 0;
	cxmq_queue *q = cxmq_queue_create(&cfg, &err);
	ASSERT_NE(q, nullptr);
	cxmq_queue_freeze(q);
	FakeBio b;
	Gate destroyed;
	std::atomic<bool> destroy_returned{false};
	std::atomic<bool> returned_after_destroy{false};
	std::thread::id submitter_id;
	std::mutex idm;
	Hooks hk;
	hk.after_wake = [&](cxmq_os_waitq *) {
		{
			std::lock_guard<std::mutex> g(idm);
			if (std::this_thread::get_id() != submitter_id)
				return;
		}
		// A correct core keeps destroy waiting for us: give it 1 s.
		destroyed.wait(std::chrono::milliseconds(1000));
	};
	set_hooks(hk);
	std::thread s([&] {
		{
			std::lock_guard<std::mutex> g(idm);
			submitter_id = std::this_thread::get_id();
		}
		submit(q, b);
		returned_after_destroy = destroy_returned.load();
	});
	ASSERT_TRUE(eventually([] { return sleepers() == 1; }));
	expect_warnings(true);
	const unsigned warns = warn_count();
	cxmq_queue_destroy(q);
	destroy_returned = true;
	destroyed.open();
	s.join();
	clear_hooks();
	EXPECT_FALSE(returned_after_destroy.load())
		<< "cxmq_queue_destroy returned while a submitter was still in submit_bio";
	EXPECT_EQ(warn_count(), warns) << "the host saw objects used after they were destroyed";
	EXPECT_EQ(b.ends.load(), 1);
	EXPECT_EQ(b.status.load(), CXMQ_STS_IOERR);
}

// Is every cache-line-aligned object of a queue on a cache line? (0 when it is.)
int misaligned_objects(Queue *q)
{
	int bad = 0;
	for (uint32_t i = 0; i < q->nr_hw_queues(); i++)
		bad += reinterpret_cast<uintptr_t>(&q->hctx(i)) % alignof(cxmq::HwQueue) != 0;
	for (uint32_t c = 0; c < q->nr_cpus(); c++)
		bad += reinterpret_cast<uintptr_t>(&q->ctx(c)) % alignof(cxmq::SwQueue) != 0;
	return bad;
}

TEST_F(Lifetime, ObjectsAreCacheLineAlignedOnTheDefaultHost)
{
	set_topology(simple_topology(3));
	ScriptBackend be;
	Queue *q = make_queue(make_config(3, 100), &be);
	EXPECT_EQ(misaligned_objects(q), 0);
	destroy_queue(q);
}

// Was a bug (fixed; src/core/util.h make<T>, queue.cpp Queue::init / alloc_hctx, tags.cpp TagMap::init): the
// core places alignas(64) types (HwQueue, SwQueue, TagMap's Word and Hint) in memory from
// cxmq_os_zalloc, which os.h does not promise to align, and whose kernel implementation,
// kvzalloc_node, aligns only power-of-two sizes naturally (ARCH_KMALLOC_MINALIGN, 8 bytes, for
// others, e.g. with slab red zones): constructing or using them there is undefined behaviour
// (UBSan: "constructor call on misaligned address"), and the cache-line separation they are
// aligned for is lost. Fix: round those allocations up to a power of two (kmalloc then aligns
// them naturally; vmalloc is page-aligned) or allocate them from a kmem_cache with the
// alignment, and state the guarantee in os.h.
TEST_F(Lifetime, ObjectsAreCacheLineAlignedOnKmallocAlignment)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	// In a child process: under UBSan the misaligned construction is a fatal report.
	EXPECT_EXIT(
		{
			set_kmalloc_alignment(true);
			set_topology(simple_topology(3));
			ScriptBackend be;
			cxmq_dev_config cfg = make_config(3, 100);
			int err = 0;
			Queue *q = Queue::create(cfg, &be, &err);
			int bad = q ? misaligned_objects(q) : -1;
			fprintf(stderr, "misaligned objects: %d\n", bad);
			if (q)
				destroy_queue(q);
			exit(bad == 0 ? 0 : 1);
		},
		::testing::ExitedWithCode(0), "");
}

} // namespace
