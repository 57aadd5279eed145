// SPDX-License-Identifier: GPL-2.0
// The null backend through the C API (include/cxmq/core.h): completion in the submitter's
// context (irqmode 0), from softirq contexts (1) and from per-request timers (2); data kept in
// memory (memory_backed=1) read and written through bios; the busy test hook; teardown with
// completions still pending; cxmq_queue_format_stats.
#include "test_util.h"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <random>
#include <set>
#include <sstream>

#include "mem_store.h"

using namespace host;

namespace {

class NullBackendTest : public HostTest {};
class NullIrqmode : public HostTest, public ::testing::WithParamInterface<uint32_t> {};

constexpr uint32_t kPage = CXMQ_PAGE_SIZE;

cxmq_dev_config nb_config(uint32_t queues, uint32_t depth, uint32_t irqmode,
			  uint32_t memory_backed = 0, uint64_t size_mb = 64,
			  uint64_t completion_nsec = 10000)
{
	cxmq_dev_config cfg = make_config(queues, depth);
	cfg.irqmode = irqmode;
	cfg.memory_backed = memory_backed;
	cfg.size_mb = size_mb;
	cfg.completion_nsec = completion_nsec;
	return cfg;
}

int expected_context(uint32_t irqmode)
{
	return irqmode == 0 ? kProcess : irqmode == 1 ? kSoftirq : kHardirq;
}

// Nothing deferred pending or running anywhere: work items, softirq contexts, timers.
bool all_idle()
{
	return works_idle() && softirqs_idle() && timers_idle();
}

uint64_t pages_of(cxmq_queue *q)
{
	const cxmq::MemStore *s = null_backend(q).store();
	return s ? s->nr_pages() : 0;
}

std::string format_stats(cxmq_queue *q)
{
	std::vector<char> buf(1 << 16);
	const int n = cxmq_queue_format_stats(q, buf.data(), buf.size());
	EXPECT_GE(n, 0);
	EXPECT_LT(static_cast<size_t>(n), buf.size() - 1) << "statistics truncated";
	EXPECT_EQ(strlen(buf.data()), static_cast<size_t>(n));
	return std::string(buf.data(), static_cast<size_t>(std::max(n, 0)));
}

uint64_t stat_value(const std::string &text, const std::string &key)
{
	const size_t at = text.find(key + "=");
	EXPECT_NE(at, std::string::npos) << key << " not in:\n" << text;
	if (at == std::string::npos)
		return ~0ull;
	return strtoull(text.c_str() + at + key.size() + 1, nullptr, 10);
}

// A buffer for a bio's data that starts `misalign` bytes past a page boundary.
struct IoBuf {
	std::vector<uint8_t> mem;
	uint8_t *p;
	IoBuf(uint32_t len, uint32_t misalign, uint8_t fill = 0)
		: mem(len + 2 * kPage, fill)
	{
		auto a = (reinterpret_cast<uintptr_t>(mem.data()) + kPage - 1) & ~uintptr_t(kPage - 1);
		p = reinterpret_cast<uint8_t *>(a) + misalign % kPage;
	}
};

uint8_t byte_at(uint64_t dev_off, uint32_t version)
{
	uint64_t h = (dev_off ^ (uint64_t(version) << 40)) * 0x9e3779b97f4a7c15ull;
	return static_cast<uint8_t>((h >> 32) % 255 + 1);
}

// Runs one bio with data to its end; returns its status.
int do_io(cxmq_queue *q, cxmq_op op, uint64_t sector, uint8_t *data, uint32_t len,
	  std::vector<uint32_t> piece_lens = {}, uint32_t flags = 0)
{
	static std::atomic<uint64_t> next_id{1};
	FakeBio b;
	b.id = next_id.fetch_add(1);
	b.piece_lens = std::move(piece_lens);
	if (op == CXMQ_OP_READ || op == CXMQ_OP_WRITE)
		submit_data(q, b, op, sector, data, len, flags);
	else
		submit_range(q, b, op, sector, len >> 9, flags);
	EXPECT_TRUE(wait_ended(b)) << "bio never ended";
	EXPECT_EQ(b.ends.load(), 1);
	EXPECT_EQ(b.walks.load(), op == CXMQ_OP_READ || op == CXMQ_OP_WRITE ? 1 : 0)
		<< "the data of a bio was not transferred exactly once";
	return b.status.load();
}

// ---- completion modes ----

// Submitters on every CPU, small depth (tags recycle, submitters sleep for them): each bio ends
// exactly once, OK, with its cookie, in the context of the irqmode.
TEST_P(NullIrqmode, EveryBioEndsOnceWithOkAndItsCookie)
{
	const uint32_t irqmode = GetParam();
	QueueHandle q(nb_config(2, 4, irqmode));
	ASSERT_NE(q.q, nullptr);
	const int threads = 4;
	const size_t per = kTsan ? 1000 : 3000;
	auto bios = make_bios(threads * per);
	const cxmq_op ops[] = {CXMQ_OP_READ, CXMQ_OP_WRITE, CXMQ_OP_FLUSH, CXMQ_OP_DISCARD,
			       CXMQ_OP_WRITE_ZEROES};
	std::vector<std::thread> th;
	for (int t = 0; t < threads; t++)
		th.emplace_back([&, t] {
			set_this_cpu(static_cast<uint32_t>(t));
			for (size_t i = 0; i < per; i++) {
				FakeBio &b = bios[t * per + i];
				submit(q, b, ops[(t + i) % 5]);
			}
		});
	for (auto &x : th)
		x.join();
	size_t bad = 0, wrong_ctx = 0;
	for (size_t i = 0; i < threads * per; i++) {
		ASSERT_TRUE(wait_ended(bios[i])) << "bio " << i << " never ended";
		bad += bios[i].ends.load() != 1 || bios[i].status.load() != CXMQ_STS_OK ||
		       bios[i].cookie.load() != cookie_of(bios[i]);
		wrong_ctx += bios[i].end_context.load() != expected_context(irqmode);
	}
	EXPECT_EQ(bad, 0u) << "bios not ended exactly once with OK and their cookie";
	EXPECT_EQ(wrong_ctx, 0u) << "bios ended in another context than irqmode " << irqmode
				 << " completes in";
	ASSERT_TRUE(eventually(all_idle));
	cxmq::Queue &Qq = Q(q);
	uint64_t dispatched = 0, completed = 0;
	for (uint32_t c = 0; c < Qq.nr_cpus(); c++) {
		dispatched += Qq.ctx(c).dispatched[0] + Qq.ctx(c).dispatched[1];
		completed += Qq.ctx(c).completed[0] + Qq.ctx(c).completed[1];
	}
	EXPECT_EQ(dispatched, threads * per);
	EXPECT_EQ(completed, threads * per);
	for (uint32_t i = 0; i < Qq.nr_hw_queues(); i++)
		EXPECT_EQ(Qq.hctx(i).tags->busy(), 0u);
	EXPECT_EQ(sleepers(), 0);
}

// The cookie also comes back on the bios the core ends itself (AGAIN, IOERR).
TEST_P(NullIrqmode, CookieComesBackOnFailedBios)
{
	QueueHandle q(nb_config(1, 4, GetParam()));
	cxmq_queue_freeze(q);
	FakeBio a;
	a.id = 11;
	submit(q, a, CXMQ_OP_WRITE, CXMQ_BIO_NOWAIT);
	EXPECT_EQ(a.status.load(), CXMQ_STS_AGAIN);
	EXPECT_EQ(a.cookie.load(), cookie_of(a));
	cxmq_queue_unfreeze(q);
	FakeBio b;
	b.id = 12;
	submit(q, b, CXMQ_OP_READ);
	ASSERT_TRUE(wait_ended(b));
	EXPECT_EQ(b.cookie.load(), cookie_of(b));
}

INSTANTIATE_TEST_SUITE_P(Irqmode, NullIrqmode, ::testing::Values(0u, 1u, 2u),
			 [](const ::testing::TestParamInfo<uint32_t> &i) {
				 return "irqmode" + std::to_string(i.param);
			 });

// irqmode 1, softirqs run by hand: nothing ends before the softirq runs; each CPU's completions
// run in its own context, on that CPU, oldest first.
TEST_F(NullBackendTest, SoftirqCompletionsRunOnTheSubmittingCpuInOrder)
{
	set_softirq_manual(true);
	QueueHandle q(nb_config(1, 16, 1));
	auto bios = make_bios(8);
	const uint32_t cpus[] = {1, 3, 1, 1, 3, 0, 3, 1};
	for (size_t i = 0; i < 8; i++) {
		set_this_cpu(cpus[i]);
		submit(q, bios[i], (i & 1) ? CXMQ_OP_READ : CXMQ_OP_WRITE);
	}
	set_this_cpu(0);
	for (size_t i = 0; i < 8; i++)
		EXPECT_EQ(bios[i].ends.load(), 0) << "bio " << i << " ended before its softirq";
	EXPECT_EQ(pending_softirqs(), 3u); // CPUs 0, 1, 3
	EXPECT_EQ(Q(q).hctx(0).tags->busy(), 8u);
	EXPECT_EQ(run_pending_softirqs(), 3u);
	for (size_t i = 0; i < 8; i++) {
		EXPECT_EQ(bios[i].ends.load(), 1);
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK);
		EXPECT_EQ(bios[i].end_cpu.load(), cpus[i]) << "bio " << i;
		EXPECT_EQ(bios[i].end_context.load(), kSoftirq);
		for (size_t j = 0; j < i; j++)
			if (cpus[j] == cpus[i]) {
				EXPECT_LT(bios[j].end_seq.load(), bios[i].end_seq.load())
					<< "bios " << j << " and " << i << " of CPU " << cpus[i]
					<< " completed out of order";
			}
	}
	EXPECT_EQ(Q(q).hctx(0).tags->busy(), 0u);
	EXPECT_EQ(run_pending_softirqs(), 0u);
}

// irqmode 2: no bio ends sooner than completion_nsec after it was submitted.
TEST_F(NullBackendTest, TimerCompletionsWaitCompletionNsec)
{
	const uint64_t nsec = 3000000; // 3 ms
	QueueHandle q(nb_config(2, 8, 2, 0, 64, nsec));
	auto bios = make_bios(24);
	std::vector<int64_t> submitted(24);
	for (size_t i = 0; i < 24; i++) {
		set_this_cpu(static_cast<uint32_t>(i % 4));
		submitted[i] = now_ns();
		submit(q, bios[i], CXMQ_OP_WRITE);
	}
	set_this_cpu(0);
	for (size_t i = 0; i < 24; i++) {
		ASSERT_TRUE(wait_ended(bios[i]));
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK);
		EXPECT_GE(bios[i].end_ns.load() - submitted[i], int64_t(nsec))
			<< "bio " << i << " completed early";
		EXPECT_EQ(bios[i].end_context.load(), kHardirq);
	}
}

// irqmode 2, timers fired by hand: requests hold their tags until their timer fires.
TEST_F(NullBackendTest, TimerCompletionsHoldTagsUntilTheyFire)
{
	set_timer_manual(true);
	QueueHandle q(nb_config(1, 4, 2, 0, 64, 1000));
	auto bios = make_bios(3);
	for (size_t i = 0; i < 3; i++)
		submit(q, bios[i]);
	std::this_thread::sleep_for(std::chrono::milliseconds(5));
	for (size_t i = 0; i < 3; i++)
		EXPECT_EQ(bios[i].ends.load(), 0);
	EXPECT_EQ(pending_timers(), 3u);
	EXPECT_NE(format_stats(q).find("tags_busy=3/4"), std::string::npos) << format_stats(q);
	EXPECT_EQ(run_pending_timers(), 3u);
	for (size_t i = 0; i < 3; i++) {
		EXPECT_EQ(bios[i].ends.load(), 1);
		EXPECT_EQ(bios[i].end_context.load(), kHardirq);
		if (i) {
			EXPECT_LT(bios[i - 1].end_seq.load(), bios[i].end_seq.load());
		}
	}
	EXPECT_NE(format_stats(q).find("tags_busy=0/4"), std::string::npos);
}

// Destroy with requests waiting for their timers: it waits for them (each bio ends OK, before
// destroy returns), then frees everything (the fixture checks for leaks).
TEST_F(NullBackendTest, DestroyWaitsForRequestsOnTimers)
{
	const uint64_t nsec = 80000000; // 80 ms
	QueueHandle q(nb_config(2, 8, 2, 1, 16, nsec));
	auto bios = make_bios(10);
	std::vector<IoBuf> bufs;
	for (size_t i = 0; i < 10; i++)
		bufs.emplace_back(kPage, 0, static_cast<uint8_t>(i + 1));
	const int64_t t0 = now_ns();
	for (size_t i = 0; i < 10; i++) {
		set_this_cpu(static_cast<uint32_t>(i % 4));
		submit_data(q, bios[i], CXMQ_OP_WRITE, i * 8, bufs[i].p, kPage);
	}
	set_this_cpu(0);
	q.destroy();
	const int64_t took = now_ns() - t0;
	for (size_t i = 0; i < 10; i++) {
		EXPECT_EQ(bios[i].ends.load(), 1) << "destroy returned before bio " << i << " ended";
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK);
	}
	EXPECT_GE(took, int64_t(nsec));
}

// The same with timers and softirqs run by hand: destroy sleeps until the test fires them; the
// completion running in the test's thread while destroy frees the queue in another.
TEST_F(NullBackendTest, DestroyWaitsForManualCompletions)
{
	for (uint32_t irqmode : {1u, 2u}) {
		SCOPED_TRACE(irqmode);
		set_softirq_manual(irqmode == 1);
		set_timer_manual(irqmode == 2);
		QueueHandle q(nb_config(2, 8, irqmode, 1, 16));
		auto bios = make_bios(6);
		IoBuf buf(kPage, 0, 0x3c);
		for (size_t i = 0; i < 6; i++) {
			set_this_cpu(static_cast<uint32_t>(i % 4));
			submit_data(q, bios[i], CXMQ_OP_WRITE, i * 8, buf.p, kPage);
		}
		set_this_cpu(0);
		cxmq_queue *raw = q.q;
		q.q = nullptr;
		std::atomic<bool> gone{false};
		std::thread d([&] {
			cxmq_queue_destroy(raw);
			gone = true;
		});
		ASSERT_TRUE(eventually([] { return sleepers() == 1; }));
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
		EXPECT_FALSE(gone.load()) << "destroy returned with requests in flight";
		EXPECT_EQ(irqmode == 1 ? run_pending_softirqs() : run_pending_timers(), irqmode == 1 ? 4u : 6u);
		d.join();
		for (size_t i = 0; i < 6; i++)
			EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK);
		set_softirq_manual(false);
		set_timer_manual(false);
	}
}

// irqmode 1: a softirq context raised while it runs runs again, possibly with nothing left to
// do, and possibly only once the queue is gone (~Queue frees the requests before the backend is
// released). That last run must touch nothing the queue freed: with quarantine, a use of a
// destroyed object is reported, and ASan sees a use of freed memory.
TEST_F(NullBackendTest, SoftirqRerunAfterTheQueueIsGoneTouchesNothingFreed)
{
	set_quarantine(true);
	set_softirq_manual(true);
	QueueHandle q(nb_config(1, 8, 1));
	FakeBio a, b;
	a.id = 1;
	b.id = 2;
	submit(q, a);
	// While CPU 0's context runs for a, b is submitted on CPU 0 and raises it again; the run
	// takes both, so the rerun finds nothing.
	std::atomic<bool> once{false};
	Hooks hk;
	hk.before_softirq = [&](cxmq_os_softirq *, uint32_t) {
		if (once.exchange(true))
			return;
		std::thread([&] {
			set_this_cpu(0);
			submit(q, b);
		}).join();
	};
	set_hooks(hk);
	EXPECT_EQ(run_pending_softirqs(), 1u);
	clear_hooks();
	EXPECT_EQ(a.ends.load(), 1);
	EXPECT_EQ(b.ends.load(), 1);
	EXPECT_EQ(pending_softirqs(), 1u) << "the raise during the run was lost";
	const unsigned warns = warn_count();
	q.destroy(); // the pending rerun runs in softirq_destroy, after ~Queue
	EXPECT_EQ(warn_count(), warns);
	EXPECT_EQ(pending_softirqs(), 0u);
}

// ---- memory_backed ----

// Writes of many shapes (unaligned sectors, buffers at odd addresses, irregular pieces), reads
// of other shapes, discards and write-zeroes, against a model; the store holds exactly the
// pages the model says.
TEST_P(NullIrqmode, DataRoundTrip)
{
	const uint32_t irqmode = GetParam();
	const uint64_t size_mb = 16;
	QueueHandle q(nb_config(2, 8, irqmode, 1, size_mb));
	ASSERT_NE(q.q, nullptr);
	const uint64_t dev_bytes = size_mb << 20;
	// Two regions: the start and the end of the device.
	const uint64_t region = 512 * 1024;
	const uint64_t starts[2] = {0, dev_bytes - region};
	std::vector<uint8_t> model[2] = {std::vector<uint8_t>(region, 0),
					 std::vector<uint8_t>(region, 0)};
	std::set<uint64_t> pages;
	std::mt19937_64 rng(7 + irqmode);
	const std::vector<std::vector<uint32_t>> layouts = {
		{}, {512}, {1, 511, 4096}, {100, 3000, 7}, {4096, 1024}};
	const uint32_t misaligns[] = {0, 512, 100, 4095, 2048};
	const int ops = kTsan ? 120 : 300;
	for (int op = 0; op < ops; op++) {
		SCOPED_TRACE(op);
		set_this_cpu(static_cast<uint32_t>(rng() % 4));
		const int r = static_cast<int>(rng() % 2);
		const uint32_t nsec = static_cast<uint32_t>(1 + rng() % 40);
		const uint64_t sector = (starts[r] >> 9) + rng() % ((region >> 9) - nsec + 1);
		const uint32_t len = nsec << 9;
		const uint64_t off = (sector << 9) - starts[r];
		const int kind = static_cast<int>(rng() % 10);
		if (kind < 5) {
			IoBuf b(len, misaligns[rng() % 5]);
			for (uint32_t i = 0; i < len; i++)
				b.p[i] = byte_at((sector << 9) + i, uint32_t(op));
			ASSERT_EQ(do_io(q, CXMQ_OP_WRITE, sector, b.p, len, layouts[rng() % 5]),
				  CXMQ_STS_OK);
			std::copy(b.p, b.p + len, model[r].begin() + off);
			for (uint64_t p = (sector << 9) / kPage; p <= ((sector << 9) + len - 1) / kPage; p++)
				pages.insert(p);
		} else if (kind < 8) {
			IoBuf b(len, misaligns[rng() % 5], 0xee);
			ASSERT_EQ(do_io(q, CXMQ_OP_READ, sector, b.p, len, layouts[rng() % 5]),
				  CXMQ_STS_OK);
			ASSERT_TRUE(std::equal(b.p, b.p + len, model[r].begin() + off))
				<< "read of " << nsec << " sectors at " << sector << " differs";
		} else {
			const cxmq_op zop = kind == 8 ? CXMQ_OP_DISCARD : CXMQ_OP_WRITE_ZEROES;
			ASSERT_EQ(do_io(q, zop, sector, nullptr, len), CXMQ_STS_OK);
			std::fill(model[r].begin() + off, model[r].begin() + off + len, 0);
			const uint64_t a = sector << 9, e = a + len;
			for (uint64_t p = (a + kPage - 1) / kPage; (p + 1) * kPage <= e; p++)
				pages.erase(p); // whole pages are freed
		}
	}
	set_this_cpu(0);
	for (int r = 0; r < 2; r++) {
		IoBuf b(region, 0, 0xee);
		ASSERT_EQ(do_io(q, CXMQ_OP_READ, starts[r] >> 9, b.p, region), CXMQ_STS_OK);
		EXPECT_TRUE(std::equal(b.p, b.p + region, model[r].begin())) << "region " << r;
	}
	// Never written: zeroes.
	IoBuf hole(64 * 1024, 0, 0xee);
	ASSERT_EQ(do_io(q, CXMQ_OP_READ, (4u << 20) >> 9, hole.p, 64 * 1024), CXMQ_STS_OK);
	EXPECT_TRUE(std::all_of(hole.p, hole.p + 64 * 1024, [](uint8_t x) { return x == 0; }));
	EXPECT_EQ(pages_of(q), pages.size());
	// Discarding everything frees everything.
	ASSERT_EQ(do_io(q, CXMQ_OP_DISCARD, 0, nullptr, 8u << 20), CXMQ_STS_OK);
	ASSERT_EQ(do_io(q, CXMQ_OP_WRITE_ZEROES, 8u << 11, nullptr, 8u << 20), CXMQ_STS_OK);
	EXPECT_EQ(pages_of(q), 0u);
}

// Threads on every CPU, each with its own region of the device, several bios in flight on
// disjoint parts of it: what each reads is what it wrote last, whatever the completion context.
TEST_P(NullIrqmode, DataIntegrityManyThreads)
{
	const uint32_t irqmode = GetParam();
	QueueHandle q(nb_config(2, 6, irqmode, 1, 16, 20000));
	ASSERT_NE(q.q, nullptr);
	constexpr int kThreads = 4, kSlots = 4;
	constexpr uint32_t kSlot = 32 * 1024; // bytes per slot: one bio in flight per slot
	const int rounds = kTsan ? 150 : 500;
	std::atomic<uint64_t> mismatches{0}, failures{0};
	std::vector<std::thread> th;
	for (int t = 0; t < kThreads; t++)
		th.emplace_back([&, t] {
			set_this_cpu(static_cast<uint32_t>(t));
			const uint64_t base = uint64_t(t) * (1u << 20) + 4096 * t; // not page aligned
			std::vector<uint8_t> model(kSlots * kSlot, 0);
			std::mt19937_64 rng(500 + t);
			for (int round = 0; round < rounds; round++) {
				FakeBio bios[kSlots];
				std::unique_ptr<IoBuf> bufs[kSlots];
				cxmq_op ops[kSlots];
				uint64_t offs[kSlots];
				uint32_t lens[kSlots];
				for (int s = 0; s < kSlots; s++) {
					const uint32_t nsec = static_cast<uint32_t>(1 + rng() % (kSlot >> 9));
					const uint64_t in = (rng() % ((kSlot >> 9) - nsec + 1)) << 9;
					offs[s] = uint64_t(s) * kSlot + in;
					lens[s] = nsec << 9;
					const int k = static_cast<int>(rng() % 8);
					ops[s] = k < 4 ? CXMQ_OP_WRITE : k < 7 ? CXMQ_OP_READ : CXMQ_OP_DISCARD;
					bios[s].id = uint64_t(t) << 32 | uint64_t(round) << 8 | uint64_t(s);
					if (rng() % 2)
						bios[s].piece_lens = {512, 1536, 100};
					const uint64_t sector = (base + offs[s]) >> 9;
					if (ops[s] == CXMQ_OP_DISCARD) {
						submit_range(q, bios[s], ops[s], sector, nsec);
						continue;
					}
					bufs[s] = std::make_unique<IoBuf>(lens[s], uint32_t(rng() % kPage), 0xee);
					if (ops[s] == CXMQ_OP_WRITE)
						for (uint32_t i = 0; i < lens[s]; i++)
							bufs[s]->p[i] = byte_at(base + offs[s] + i, uint32_t(round));
					submit_data(q, bios[s], ops[s], sector, bufs[s]->p, lens[s]);
				}
				for (int s = 0; s < kSlots; s++) {
					if (!wait_ended(bios[s]) || bios[s].status.load() != CXMQ_STS_OK) {
						failures++;
						continue;
					}
					uint8_t *m = model.data() + offs[s];
					if (ops[s] == CXMQ_OP_WRITE)
						std::copy(bufs[s]->p, bufs[s]->p + lens[s], m);
					else if (ops[s] == CXMQ_OP_DISCARD)
						std::fill(m, m + lens[s], 0);
					else if (!std::equal(bufs[s]->p, bufs[s]->p + lens[s], m))
						mismatches++;
				}
			}
			// Everything, at the end.
			IoBuf all(kSlots * kSlot, 0, 0xee);
			FakeBio b;
			b.id = uint64_t(t) << 32 | 0xffffff;
			submit_data(q, b, CXMQ_OP_READ, base >> 9, all.p, kSlots * kSlot);
			if (!wait_ended(b) || !std::equal(all.p, all.p + kSlots * kSlot, model.begin()))
				mismatches++;
		});
	for (auto &x : th)
		x.join();
	EXPECT_EQ(failures.load(), 0u) << "bios that did not end OK";
	EXPECT_EQ(mismatches.load(), 0u) << "reads that did not return the data last written";
	EXPECT_TRUE(eventually(all_idle));
}

// ---- the busy hook ----

// Kicks every hardware queue: the rescue of a test that found a request stranded on a dispatch
// list with no run to send it (a bug), so that it can end and the queue be destroyed.
void kick(cxmq_queue *q)
{
	cxmq::Queue &Qq = Q(q);
	for (uint32_t i = 0; i < Qq.nr_hw_queues(); i++)
		Qq.run_hw_queue_async(Qq.hctx(i), 0);
}

// Every third request refused as busy, with data: nothing lost or transferred twice, the data
// right, and the refusals counted alike by the backend and the hardware queues.
// Was a bug (fixed; irqmode 1 and 2): see NullBackendTest.BusyRunDoesNotDropARunAskedForMeanwhile below: a
// request can be stranded on the dispatch list. Irqmode 0 (completions inline, by the runner
// itself) does not open that window in practice.
TEST_P(NullIrqmode, BusyEveryThirdRequestKeepsTheDataRight)
{
	const uint32_t irqmode = GetParam();
	QueueHandle q(nb_config(1, 8, irqmode, 1, 16, 20000));
	cxmq_queue_set_busy_every(q, 3);
	const int threads = 2;
	const int per = kTsan ? 64 : 128;
	std::atomic<uint64_t> bad{0}, stranded{0};
	std::vector<std::thread> th;
	for (int t = 0; t < threads; t++)
		th.emplace_back([&, t] {
			set_this_cpu(static_cast<uint32_t>(t));
			const uint64_t base = uint64_t(t) << 20;
			IoBuf w(per * 4096, 0), r(per * 4096, 0, 0xee);
			for (uint32_t i = 0; i < per * 4096u; i++)
				w.p[i] = byte_at(base + i, 1);
			// In batches of 4 bios in flight.
			for (int phase = 0; phase < 2; phase++)
				for (int i = 0; i < per; i += 4) {
					FakeBio b[4];
					for (int k = 0; k < 4; k++) {
						b[k].id = uint64_t(t) << 20 | uint64_t(phase) << 16 |
							  uint64_t(i + k);
						uint8_t *p = (phase ? r.p : w.p) + (i + k) * 4096;
						submit_data(q, b[k], phase ? CXMQ_OP_READ : CXMQ_OP_WRITE,
							    (base >> 9) + uint64_t(i + k) * 8, p, 4096);
					}
					for (int k = 0; k < 4; k++) {
						if (!wait_ended(b[k], std::chrono::milliseconds(3000))) {
							stranded++;
							kick(q);
							wait_ended(b[k], std::chrono::milliseconds(60000));
						}
						if (b[k].status.load() != CXMQ_STS_OK || b[k].walks.load() != 1)
							bad++;
					}
				}
			if (!std::equal(w.p, w.p + per * 4096, r.p))
				bad++;
		});
	for (auto &x : th)
		x.join();
	EXPECT_EQ(stranded.load(), 0u) << "bios stranded: no run left to send them";
	EXPECT_EQ(bad.load(), 0u);
	ASSERT_TRUE(eventually(all_idle));
	const std::string s = format_stats(q);
	const uint64_t answers = stat_value(s, "busy_answers");
	EXPECT_GT(answers, 0u) << s;
	EXPECT_EQ(answers, null_backend(q).busy_answers());
	EXPECT_EQ(answers, Q(q).hctx(0).busy_events) << "each busy answer is one busy event";
	EXPECT_EQ(stat_value(s, "busy"), answers);
	// Calls = requests + refusals; every third call refused.
	const uint64_t requests = 2ull * threads * per;
	EXPECT_EQ(answers, (requests + answers) / 3);
	EXPECT_EQ(stat_value(s, "pages"), uint64_t(threads) * per);
	cxmq_queue_set_busy_every(q, 0);
}

// Was a bug (fixed): src/core/queue.cpp, Queue::run_hw_queue: after a dispatch the backend refused (busy),
// the runner releases kRunning and returns when `busy || !(state & kRerun)`: it drops a rerun
// asked for while it held the queue, trusting the retry it has just scheduled
// (run_hw_queue_async(h, kBusyRetryDelayUs) in dispatch_once) to send the refused requests.
// But that retry can already be gone: a completion on another CPU (irqmode 1 softirq, irqmode 2
// timer, any driver's IRQ) sees kRestart, clears it and reschedules the same work with delay 0;
// the kworker runs at once, finds kRunning held, sets kRerun and leaves. The runner then ignores
// kRerun because it was busy: the refused requests stay on the dispatch list with no run
// scheduled, kRestart clear (later completions schedule nothing), and issue_direct refusing to
// bypass them: every later bio of that hardware queue queues up behind them, forever (the host
// tests saw it as a hang within seconds with irqmode=1 and busy_every=3).
// Fix: honour the rerun even when busy: `if (!(load_acquire(h.state) & HwQueue::kRerun))
// return;` (go round again: that dispatch either gets through or is refused and re-arms the
// retry); or, when busy and kRerun is set, run_hw_queue_async(h, kBusyRetryDelayUs) again.
TEST_F(NullBackendTest, BusyRunDoesNotDropARunAskedForMeanwhile)
{
	set_work_manual(true);
	set_softirq_manual(true);
	QueueHandle q(nb_config(1, 8, 1));
	cxmq_queue_set_busy_every(q, 2); // calls 2, 4, ... refused
	auto bios = make_bios(3);
	submit(q, bios[0]); // call 1: taken; its completion waits in CPU 0's softirq context
	submit(q, bios[1]); // call 2: refused: on the dispatch list, kRestart, a retry in 3 ms
	ASSERT_EQ(pending_works(), 1u);
	// bios[2] goes through a run (the dispatch list is not empty), which sends bios[1] (call 3,
	// taken) and bios[2] (call 4, refused) and schedules its retry. Right then, before the run
	// lets the queue go: the completions on CPU 2 (bios[0]'s restart asks for a run now), and
	// the kworker, which finds the queue held and leaves a rerun request.
	std::atomic<bool> armed{true};
	Hooks hk;
	hk.after_work_schedule = [&](cxmq_os_work *, uint32_t delay_us) {
		if (delay_us == 0 || !armed.exchange(false))
			return;
		std::thread([] {
			set_this_cpu(2);
			run_pending_softirqs();
			drain_works();
		}).join();
	};
	set_hooks(hk);
	submit(q, bios[2]);
	clear_hooks();
	EXPECT_FALSE(armed.load()) << "the run was not refused: the scenario did not happen";
	EXPECT_EQ(bios[0].ends.load(), 1);
	EXPECT_EQ(bios[1].ends.load(), 1);
	// Whatever is pending now runs (softirqs, work), as often as it takes.
	for (int i = 0; i < 10; i++) {
		run_pending_softirqs();
		drain_works();
	}
	EXPECT_EQ(bios[2].ends.load(), 1)
		<< "bios[2] stays on the dispatch list: no run is scheduled to send it";
	if (!bios[2].ends.load()) { // rescue, for the teardown
		kick(q);
		for (int i = 0; i < 10; i++) {
			drain_works();
			run_pending_softirqs();
		}
	}
	EXPECT_EQ(bios[2].ends.load(), 1);
	cxmq_queue_set_busy_every(q, 0);
}

// ---- running out of memory ----

// A write that cannot get memory fails; nothing leaks, and the device is still usable.
TEST_F(NullBackendTest, WriteWithoutMemoryFails)
{
	QueueHandle q(nb_config(1, 4, 0, 1, 16));
	IoBuf b(3 * kPage, 0, 0x11);
	fail_allocation_at(0);
	EXPECT_NE(do_io(q, CXMQ_OP_WRITE, 8, b.p, 3 * kPage), CXMQ_STS_OK);
	fail_allocation_at(-1);
	EXPECT_EQ(do_io(q, CXMQ_OP_WRITE, 8, b.p, 3 * kPage), CXMQ_STS_OK);
	IoBuf r(3 * kPage, 0, 0xee);
	EXPECT_EQ(do_io(q, CXMQ_OP_READ, 8, r.p, 3 * kPage), CXMQ_STS_OK);
	EXPECT_TRUE(std::equal(b.p, b.p + 3 * kPage, r.p));
}

// Was a bug (fixed): src/core/null_backend.cpp, NullBackend::queue_rq / NullBackend::transfer: a write
// flagged CXMQ_BIO_NOWAIT allocates its pages with GFP_NOWAIT (may_sleep false); when that fails
// MemStore::write returns -ENOMEM and transfer ends the bio with CXMQ_STS_IOERR. REQ_NOWAIT's
// contract (os.h: "never sleep, fail with CXMQ_STS_AGAIN") is that a request that cannot go on
// without blocking fails with AGAIN, which io_uring and AIO answer by retrying from a context
// that may block; IOERR is reported to the application as EIO, a failed write, under nothing
// worse than momentary memory pressure. Fix: in transfer(), map a write's -ENOMEM to
// CXMQ_STS_AGAIN when the request has CXMQ_BIO_NOWAIT (IOERR, or NOSPC as null_blk, otherwise).
TEST_F(NullBackendTest, NowaitWriteWithoutMemoryEndsWithAgain)
{
	QueueHandle q(nb_config(1, 4, 0, 1, 16));
	IoBuf b(kPage, 0, 0x22);
	fail_allocation_at(0);
	EXPECT_EQ(do_io(q, CXMQ_OP_WRITE, 8, b.p, kPage, {}, CXMQ_BIO_NOWAIT), CXMQ_STS_AGAIN);
	fail_allocation_at(-1);
}

// cxmq_queue_create with every allocation failing in turn: NULL, -ENOMEM, nothing leaked, no
// warning. How many allocations a successful create makes is counted first.
void create_fails_cleanly(const cxmq_dev_config &cfg)
{
	long before = allocations();
	{
		QueueHandle q(cfg);
	}
	const long total = allocations() - before;
	ASSERT_GT(total, 10);
	expect_warnings(true);
	std::string leaked, warned;
	for (long k = 0; k < total; k++) {
		const long allocs = live_allocs(), objects = live_objects();
		const unsigned warns = warn_count();
		fail_allocation_at(k);
		int err = 0;
		cxmq_dev_config c = cfg;
		cxmq_queue *q = cxmq_queue_create(&c, &err);
		fail_allocation_at(-1);
		EXPECT_EQ(q, nullptr) << "allocation " << k;
		EXPECT_EQ(err, -CXMQ_ENOMEM) << "allocation " << k;
		if (q)
			cxmq_queue_destroy(q);
		if (live_allocs() != allocs || live_objects() != objects)
			leaked += " " + std::to_string(k) + " (" +
				  std::to_string(live_allocs() - allocs) + " allocations, " +
				  std::to_string(live_objects() - objects) + " objects)";
		if (warn_count() != warns)
			warned += " " + std::to_string(k);
	}
	EXPECT_EQ(leaked, "") << "of " << total << " allocations, failing these leaked:" << leaked;
	EXPECT_EQ(warned, "") << "of " << total << " allocations, failing these warned:" << warned;
}

TEST_F(NullBackendTest, CreateFailsCleanlySoftirqAndMemoryBacked)
{
	create_fails_cleanly(nb_config(2, 4, 1, 1, 16));
}

// Was a bug (fixed): src/core/null_backend.cpp, NullBackend::init_hctx (irqmode 2): it allocates the
// TimerTable, stores it in h.driver_data, then the timer array and one timer per tag; when one
// of these allocations fails it returns -ENOMEM without freeing what it made. Queue::alloc_hctx
// (src/core/queue.cpp) then calls free_hctx(h), which by the Backend contract (exit_hctx only
// for the hardware queues whose init_hctx succeeded, as blk-mq does; QueueTest checks it) does
// not call exit_hctx: the TimerTable, the timer array and every timer created so far leak on an
// allocation failure while creating an irqmode=2 device (e.g. modprobe under memory pressure).
// Fix: on failure, have init_hctx undo its own work (call exit_hctx(h) itself before returning
// the error: exit_hctx already copes with a partial table through t->nr).
TEST_F(NullBackendTest, CreateFailsCleanlyTimers)
{
	create_fails_cleanly(nb_config(2, 4, 2, 0, 16));
}

// ---- cxmq_queue_format_stats ----

// Every size from 0 to past the full length: never a byte past `size` (a canary follows the
// buffer), always NUL-terminated, the return value is the length written, and the text is a
// prefix of the full text.
TEST_F(NullBackendTest, FormatStatsIsBoundedAndTerminated)
{
	QueueHandle q(nb_config(2, 8, 0, 1, 16));
	auto bios = make_bios(20);
	IoBuf buf(kPage, 0, 0x44);
	for (size_t i = 0; i < 20; i++) {
		set_this_cpu(static_cast<uint32_t>(i % 4));
		if (i % 3)
			submit(q, bios[i], CXMQ_OP_READ);
		else
			submit_data(q, bios[i], CXMQ_OP_WRITE, i * 8, buf.p, kPage);
	}
	set_this_cpu(0);
	const std::string full = format_stats(q);
	ASSERT_GT(full.size(), 200u);
	constexpr size_t kCanary = 32;
	std::vector<size_t> sizes{0, 1, 10, 50};
	for (size_t n = 2; n <= full.size() + 2; n++)
		sizes.push_back(n);
	for (size_t size : sizes) {
		SCOPED_TRACE(size);
		std::vector<char> b(size + kCanary, '\x5a');
		const int ret = cxmq_queue_format_stats(q, b.data(), size);
		for (size_t i = size; i < size + kCanary; i++)
			ASSERT_EQ(b[i], '\x5a') << "byte " << i << " written past the buffer";
		const size_t expect = size ? std::min(size - 1, full.size()) : 0;
		ASSERT_EQ(ret, static_cast<int>(expect));
		if (!size)
			continue;
		ASSERT_EQ(b[expect], '\0') << "not NUL-terminated";
		ASSERT_EQ(std::string(b.data(), expect), full.substr(0, expect));
	}
	EXPECT_EQ(cxmq_queue_format_stats(q, nullptr, 0), 0);
}

struct HctxLine {
	unsigned long long timeouts = ~0ull;
	unsigned idx = 0, tags_busy = 0, depth = 0, dispatch = 0;
	unsigned long long queued = 0, run = 0, direct = 0, busy = 0;
	std::vector<unsigned long long> dispatched;
	std::vector<unsigned> cpus;
};
struct CpuLine {
	unsigned cpu = 0, pending = 0, hctx = 0;
	unsigned long long d_read = 0, d_write = 0, c_read = 0, c_write = 0;
};
struct ParsedStats {
	std::vector<HctxLine> hctx;
	std::vector<CpuLine> cpus;
	unsigned long long busy_answers = ~0ull, pages = ~0ull;
	// merge: bios=B requests=R plug_merges=P ctx_merges=C unplugs=U unplug_requests=N
	//        sched_merges=S
	unsigned long long m_bios = ~0ull, m_requests = ~0ull, m_plug = ~0ull, m_ctx = ~0ull,
			   m_unplugs = ~0ull, m_unplugged = ~0ull, m_sched = ~0ull;
	// sched: NAME nr_requests=N hctx0_inflight=I ...
	std::string sched;
	unsigned nr_requests = ~0u;
	unsigned long long batches[6] = {~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull};
	// rq_affinity: local=L moved=M (interrupt completions; the null backend has none)
	unsigned long long irq_local = ~0ull, irq_moved = ~0ull;
	int bad_lines = 0;
};

template <class T> std::vector<T> split_numbers(const std::string &s)
{
	std::vector<T> v;
	std::stringstream ss(s);
	std::string item;
	while (std::getline(ss, item, ','))
		v.push_back(static_cast<T>(std::stoull(item)));
	return v;
}

ParsedStats parse_stats(const std::string &text)
{
	ParsedStats p;
	std::stringstream ss(text);
	std::string line;
	while (std::getline(ss, line)) {
		HctxLine h;
		CpuLine c;
		char disp[512], cpus[512];
		if (sscanf(line.c_str(),
			   "hctx%u: queued=%llu run=%llu direct=%llu busy=%llu timeouts=%llu "
			   "tags_busy=%u/%u dispatch=%u dispatched=%511[0-9,] cpus=%511[0-9,]",
			   &h.idx, &h.queued, &h.run, &h.direct, &h.busy, &h.timeouts, &h.tags_busy,
			   &h.depth, &h.dispatch, disp, cpus) == 11) {
			h.dispatched = split_numbers<unsigned long long>(disp);
			h.cpus = split_numbers<unsigned>(cpus);
			p.hctx.push_back(h);
		} else if (sscanf(line.c_str(),
				  "  cpu%u: dispatched=%llu %llu completed=%llu %llu pending=%u", &c.cpu,
				  &c.d_read, &c.d_write, &c.c_read, &c.c_write, &c.pending) == 6) {
			c.hctx = p.hctx.empty() ? ~0u : p.hctx.back().idx;
			p.cpus.push_back(c);
		} else if (sscanf(line.c_str(), "backend: busy_answers=%llu pages=%llu",
				  &p.busy_answers, &p.pages) == 2) {
		} else if (sscanf(line.c_str(),
				  "merge: bios=%llu requests=%llu plug_merges=%llu ctx_merges=%llu "
				  "unplugs=%llu unplug_requests=%llu sched_merges=%llu",
				  &p.m_bios, &p.m_requests, &p.m_plug, &p.m_ctx, &p.m_unplugs,
				  &p.m_unplugged, &p.m_sched) == 7) {
		} else if (char name[32]; sscanf(line.c_str(), "sched: %31s nr_requests=%u", name,
						 &p.nr_requests) == 2) {
			p.sched = name;
		} else if (sscanf(line.c_str(),
				  "unplug_batches: 1=%llu 2-3=%llu 4-7=%llu 8-15=%llu 16-31=%llu 32=%llu",
				  &p.batches[0], &p.batches[1], &p.batches[2], &p.batches[3],
				  &p.batches[4], &p.batches[5]) == 6) {
		} else if (sscanf(line.c_str(), "rq_affinity: local=%llu moved=%llu", &p.irq_local,
				  &p.irq_moved) == 2) {
		} else {
			p.bad_lines++;
		}
	}
	return p;
}

// A known IO pattern on a machine with a CPU that is not possible: one hctxN line per hardware
// queue, one cpuM line (under its hardware queue) per mapped CPU, and numbers that are the
// queue's counters and what the pattern implies.
TEST_F(NullBackendTest, FormatStatsLinesAndNumbers)
{
	Topology t = simple_topology(6);
	t.possible[5] = t.present[5] = t.online[5] = false;
	t.present[4] = t.online[4] = false; // possible, not present: still mapped
	set_topology(t);
	QueueHandle q(nb_config(2, 16, 0, 1, 16));
	ASSERT_NE(q.q, nullptr);
	uint64_t reads[6] = {}, writes[6] = {};
	uint64_t id = 0;
	IoBuf buf(kPage, 0, 0x66);
	for (uint32_t cpu = 0; cpu < 4; cpu++) {
		set_this_cpu(cpu);
		for (uint32_t k = 0; k < cpu + 1; k++) {
			FakeBio b;
			b.id = ++id;
			submit(q, b, CXMQ_OP_READ);
			EXPECT_EQ(b.status.load(), CXMQ_STS_OK);
			reads[cpu]++;
		}
		for (uint32_t k = 0; k < 2 * cpu + 1; k++) {
			FakeBio b;
			b.id = ++id;
			submit_data(q, b, CXMQ_OP_WRITE, id * 8, buf.p, kPage);
			EXPECT_EQ(b.status.load(), CXMQ_STS_OK);
			writes[cpu]++;
		}
	}
	set_this_cpu(0);
	const std::string text = format_stats(q);
	const ParsedStats p = parse_stats(text);
	EXPECT_EQ(p.bad_lines, 0) << text;
	// Every bio went straight to the backend: one request each, nothing merged or plugged.
	EXPECT_EQ(p.m_bios, id) << text;
	EXPECT_EQ(p.m_requests, id) << text;
	EXPECT_EQ(p.m_plug, 0u) << text;
	EXPECT_EQ(p.m_ctx, 0u) << text;
	EXPECT_EQ(p.m_unplugs, 0u) << text;
	EXPECT_EQ(p.m_unplugged, 0u) << text;
	EXPECT_EQ(p.m_sched, 0u) << text;
	EXPECT_EQ(p.sched, "none") << text;
	EXPECT_EQ(p.nr_requests, Q(q).config().hw_queue_depth) << text;
	for (unsigned long long b : p.batches)
		EXPECT_EQ(b, 0u) << text;
	EXPECT_EQ(p.irq_local, 0u) << text; // completed in the submitter's context: no interrupt
	EXPECT_EQ(p.irq_moved, 0u) << text;
	cxmq::Queue &Qq = Q(q);
	ASSERT_EQ(p.hctx.size(), Qq.nr_hw_queues()) << text;
	for (uint32_t i = 0; i < Qq.nr_hw_queues(); i++) {
		SCOPED_TRACE(i);
		const HctxLine &h = p.hctx[i];
		cxmq::HwQueue &H = Qq.hctx(i);
		EXPECT_EQ(h.idx, i);
		uint64_t expect = 0;
		std::vector<unsigned> cpus;
		for (uint32_t c = 0; c < 5; c++)
			if (Qq.map_cpu(c) == i) {
				expect += reads[c] + writes[c];
				cpus.push_back(c);
			}
		EXPECT_EQ(h.queued, expect);
		EXPECT_EQ(h.queued, H.queued);
		EXPECT_EQ(h.direct, expect) << "irqmode 0, one submitter: every request direct";
		EXPECT_EQ(h.run, 0u);
		EXPECT_EQ(h.busy, 0u);
		EXPECT_EQ(h.tags_busy, 0u);
		EXPECT_EQ(h.depth, 16u);
		EXPECT_EQ(h.dispatch, 0u);
		EXPECT_EQ(h.dispatched, std::vector<unsigned long long>(cxmq::kDispatchBuckets, 0));
		EXPECT_EQ(h.cpus, cpus);
	}
	// CPUs 0..4 (4 possible but offline), each once, under its hardware queue; not 5.
	ASSERT_EQ(p.cpus.size(), 5u) << text;
	std::set<unsigned> seen;
	for (const CpuLine &c : p.cpus) {
		SCOPED_TRACE(c.cpu);
		EXPECT_TRUE(seen.insert(c.cpu).second) << "cpu" << c.cpu << " twice";
		ASSERT_LT(c.cpu, 5u);
		EXPECT_EQ(c.hctx, Qq.map_cpu(c.cpu));
		EXPECT_EQ(c.d_read, reads[c.cpu]);
		EXPECT_EQ(c.d_write, writes[c.cpu]);
		EXPECT_EQ(c.c_read, reads[c.cpu]);
		EXPECT_EQ(c.c_write, writes[c.cpu]);
		EXPECT_EQ(c.d_read, Qq.ctx(c.cpu).dispatched[0]);
		EXPECT_EQ(c.c_write, Qq.ctx(c.cpu).completed[1]);
		EXPECT_EQ(c.pending, 0u);
	}
	EXPECT_EQ(p.busy_answers, 0u);
	EXPECT_EQ(p.pages, writes[0] + writes[1] + writes[2] + writes[3]);
}

// Numbers in flight, in an exact order of events (timers, work and busy answers by hand):
// tags held, a refused request on the dispatch list, the run that sends it again.
TEST_F(NullBackendTest, FormatStatsInFlightAndBusy)
{
	set_timer_manual(true);
	set_work_manual(true);
	QueueHandle q(nb_config(1, 4, 2, 0, 16, 1000));
	cxmq_queue_set_busy_every(q, 2);
	auto bios = make_bios(2);
	set_this_cpu(1);
	submit(q, bios[0]); // call 1: taken, on its timer
	submit(q, bios[1]); // call 2: refused, on the dispatch list
	set_this_cpu(0);
	ParsedStats p = parse_stats(format_stats(q));
	ASSERT_EQ(p.hctx.size(), 1u);
	EXPECT_EQ(p.hctx[0].queued, 2u);
	EXPECT_EQ(p.hctx[0].direct, 2u);
	EXPECT_EQ(p.hctx[0].busy, 1u);
	EXPECT_EQ(p.hctx[0].tags_busy, 2u);
	EXPECT_EQ(p.hctx[0].dispatch, 1u);
	EXPECT_EQ(p.hctx[0].run, 0u);
	EXPECT_EQ(p.busy_answers, 1u);
	ASSERT_EQ(p.cpus.size(), 4u);
	EXPECT_EQ(p.cpus[1].d_write, 2u);
	EXPECT_EQ(p.cpus[1].c_write, 0u);
	// The first completes; the restart runs the queue, which sends the second (call 3: taken).
	EXPECT_EQ(run_pending_timers(), 1u);
	EXPECT_EQ(bios[0].ends.load(), 1);
	EXPECT_EQ(drain_works(), 1u);
	p = parse_stats(format_stats(q));
	EXPECT_EQ(p.hctx[0].run, 1u);
	EXPECT_EQ(p.hctx[0].dispatch, 0u);
	EXPECT_EQ(p.hctx[0].tags_busy, 1u);
	std::vector<unsigned long long> hist(cxmq::kDispatchBuckets, 0);
	hist[1] = 1; // one run that dispatched one request
	EXPECT_EQ(p.hctx[0].dispatched, hist);
	EXPECT_EQ(run_pending_timers(), 1u);
	EXPECT_EQ(bios[1].ends.load(), 1);
	EXPECT_EQ(bios[1].status.load(), CXMQ_STS_OK);
	p = parse_stats(format_stats(q));
	EXPECT_EQ(p.hctx[0].tags_busy, 0u);
	EXPECT_EQ(p.cpus[1].c_write, 2u);
	EXPECT_EQ(p.busy_answers, 1u);
	cxmq_queue_set_busy_every(q, 0);
	set_work_manual(false);
}

// Formatting while IO runs on every CPU: no data race (ThreadSanitizer), always well formed.
TEST_F(NullBackendTest, FormatStatsWhileIoRuns)
{
	QueueHandle q(nb_config(2, 4, 1, 1, 16));
	std::atomic<bool> stop{false};
	std::atomic<int> malformed{0};
	std::thread f([&] {
		std::vector<char> buf(4096);
		while (!stop.load()) {
			const int n = cxmq_queue_format_stats(q, buf.data(), buf.size());
			const ParsedStats p = parse_stats(std::string(buf.data(), size_t(n)));
			if (p.bad_lines || p.hctx.size() != 2 || p.cpus.size() != 4 ||
			    strlen(buf.data()) != size_t(n))
				malformed++;
		}
	});
	std::vector<std::thread> th;
	for (int t = 0; t < 3; t++)
		th.emplace_back([&, t] {
			set_this_cpu(static_cast<uint32_t>(t));
			IoBuf b(kPage, 0, 0x77);
			for (int i = 0; i < (kTsan ? 150 : 600); i++) {
				FakeBio x;
				x.id = uint64_t(t) << 32 | uint64_t(i);
				submit_data(q, x, (i & 1) ? CXMQ_OP_READ : CXMQ_OP_WRITE,
					    uint64_t(t) * 2048 + uint64_t(i % 64) * 8, b.p, kPage);
				wait_ended(x);
			}
		});
	for (auto &x : th)
		x.join();
	stop = true;
	f.join();
	EXPECT_EQ(malformed.load(), 0);
}

} // namespace
