// SPDX-License-Identifier: GPL-2.0
// Requests of many bios: the merge rules (src/core/merge.*), merging into requests staged on a
// software queue, plugging (src/core/plug.cpp), queue/nomerges, and a randomized model test of
// bio streams through the queue (without a scheduler and under each), each request checked
// against what a request may hold.
#include "merge.h"
#include "test_util.h"

#include <map>
#include <random>
#include <set>

using namespace host;
using cxmq::MergeResult;
using cxmq::MergeSite;
// where the merge rules tests merge (the tracepoint's site; the rules do not depend on it)
constexpr MergeSite kCtx = MergeSite::kCtx;
using cxmq::Queue;
using cxmq::Request;

namespace {

cxmq_limits default_limits()
{
	cxmq_limits l{};
	l.max_sectors = 2560;
	l.max_segments = 128;
	l.max_discard_sectors = ~0u >> 9;
	l.max_discard_segments = 256;
	l.max_write_zeroes_sectors = ~0u >> 9;
	return l;
}

cxmq_bio bio_of(FakeBio &f, uint16_t op, uint64_t sector, uint32_t n, uint32_t flags = 0,
		uint32_t segs = 1)
{
	return accounted_bio(f, op, sector, n, flags, segs);
}

std::vector<FakeBio *> chain_of(Request &rq)
{
	std::vector<FakeBio *> v;
	rq.for_each_bio([&](void *b) { v.push_back(static_cast<FakeBio *>(b)); });
	return v;
}

class MergeRules : public HostTest {
protected:
	// A request made for bio b (as get_request does).
	void make(Request &rq, const cxmq_bio &b) { rq.init_from(b, 0); }
	cxmq_limits lim = default_limits();
};

TEST_F(MergeRules, BackMergeChainsInOrder)
{
	auto f = make_bios(3);
	Request rq{};
	make(rq, bio_of(f[0], CXMQ_OP_WRITE, 100, 8));
	EXPECT_EQ(attempt_merge(rq, bio_of(f[1], CXMQ_OP_WRITE, 108, 8), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[2], CXMQ_OP_WRITE, 116, 16, 0, 2), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_EQ(rq.sector, 100u);
	EXPECT_EQ(rq.nr_sectors, 32u);
	EXPECT_EQ(rq.nr_bios, 3u);
	EXPECT_EQ(rq.nr_segs, 4u);
	EXPECT_EQ(chain_of(rq), (std::vector<FakeBio *>{&f[0], &f[1], &f[2]}));
	EXPECT_EQ(rq.cookie, cookie_of(f[0]) | CXMQ_ACCT_COOKIE);
}

TEST_F(MergeRules, FrontMergeMovesTheStart)
{
	auto f = make_bios(3);
	Request rq{};
	make(rq, bio_of(f[0], CXMQ_OP_READ, 100, 8));
	EXPECT_EQ(attempt_merge(rq, bio_of(f[1], CXMQ_OP_READ, 92, 8), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[2], CXMQ_OP_READ, 108, 8), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_EQ(rq.sector, 92u);
	EXPECT_EQ(rq.nr_sectors, 24u);
	EXPECT_EQ(chain_of(rq), (std::vector<FakeBio *>{&f[1], &f[0], &f[2]}));
	// Every bio ends with the request's cookie: the bio it was made for.
	EXPECT_EQ(rq.cookie, cookie_of(f[0]) | CXMQ_ACCT_COOKIE);
}

TEST_F(MergeRules, NotAdjacentIsNoMerge)
{
	auto f = make_bios(4);
	Request rq{};
	make(rq, bio_of(f[0], CXMQ_OP_WRITE, 100, 8));
	EXPECT_EQ(attempt_merge(rq, bio_of(f[1], CXMQ_OP_WRITE, 109, 8), lim, kCtx),
		  MergeResult::kNone);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[2], CXMQ_OP_WRITE, 91, 8), lim, kCtx),
		  MergeResult::kNone);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[3], CXMQ_OP_WRITE, 104, 8), lim, kCtx),
		  MergeResult::kNone);
	EXPECT_EQ(rq.nr_bios, 1u);
	EXPECT_EQ(rq.nr_sectors, 8u);
}

TEST_F(MergeRules, NeverAcrossOperations)
{
	const uint16_t ops[] = {CXMQ_OP_READ, CXMQ_OP_WRITE, CXMQ_OP_DISCARD};
	for (uint16_t a : ops)
		for (uint16_t b : ops) {
			if (a == b)
				continue;
			auto f = make_bios(2);
			Request rq{};
			make(rq, bio_of(f[0], a, 100, 8));
			EXPECT_EQ(attempt_merge(rq, bio_of(f[1], b, 108, 8), lim, kCtx),
				  MergeResult::kNone)
				<< a << " <- " << b;
		}
}

TEST_F(MergeRules, NeverAcrossFuaPreflushOrNomerge)
{
	for (uint32_t fl : {uint32_t(CXMQ_BIO_FUA), uint32_t(CXMQ_BIO_PREFLUSH),
			    uint32_t(CXMQ_BIO_NOMERGE)}) {
		SCOPED_TRACE(fl);
		auto f = make_bios(4);
		Request rq{};
		make(rq, bio_of(f[0], CXMQ_OP_WRITE, 100, 8));
		// The bio carries the flag...
		EXPECT_EQ(attempt_merge(rq, bio_of(f[1], CXMQ_OP_WRITE, 108, 8, fl), lim, kCtx),
			  MergeResult::kNone);
		EXPECT_EQ(attempt_merge(rq, bio_of(f[2], CXMQ_OP_WRITE, 92, 8, fl), lim, kCtx),
			  MergeResult::kNone);
		// ... or the request does.
		Request r2{};
		make(r2, bio_of(f[3], CXMQ_OP_WRITE, 200, 8, fl));
		FakeBio g;
		EXPECT_EQ(attempt_merge(r2, bio_of(g, CXMQ_OP_WRITE, 208, 8), lim, kCtx),
			  MergeResult::kNone);
	}
}

TEST_F(MergeRules, FlushAndWriteZeroesNeverMerge)
{
	auto f = make_bios(4);
	Request fl{}, wz{};
	make(fl, bio_of(f[0], CXMQ_OP_FLUSH, 0, 0));
	EXPECT_EQ(attempt_merge(fl, bio_of(f[1], CXMQ_OP_FLUSH, 0, 0), lim, kCtx),
		  MergeResult::kNone);
	make(wz, bio_of(f[2], CXMQ_OP_WRITE_ZEROES, 100, 8));
	EXPECT_EQ(attempt_merge(wz, bio_of(f[3], CXMQ_OP_WRITE_ZEROES, 108, 8), lim, kCtx),
		  MergeResult::kNone);
}

TEST_F(MergeRules, PriorityPollingAndAccountingMustMatch)
{
	auto f = make_bios(6);
	Request rq{};
	make(rq, bio_of(f[0], CXMQ_OP_WRITE, 100, 8));
	cxmq_bio prio = bio_of(f[1], CXMQ_OP_WRITE, 108, 8);
	prio.ioprio = 3;
	EXPECT_EQ(attempt_merge(rq, prio, lim, kCtx), MergeResult::kNone);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[2], CXMQ_OP_WRITE, 108, 8, CXMQ_BIO_POLLED), lim,
				kCtx),
		  MergeResult::kNone);
	// Not accounted (iostats turned off between the two bios), the request is.
	cxmq_bio unacct = bio_of(f[3], CXMQ_OP_WRITE, 108, 8);
	unacct.cookie &= ~CXMQ_ACCT_COOKIE;
	EXPECT_EQ(attempt_merge(rq, unacct, lim, kCtx), MergeResult::kNone);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[4], CXMQ_OP_WRITE, 108, 8), lim, kCtx),
		  MergeResult::kMerged);
}

TEST_F(MergeRules, MaxSectorsExactlyAndOneMore)
{
	lim.max_sectors = 24;
	auto f = make_bios(4);
	Request rq{};
	make(rq, bio_of(f[0], CXMQ_OP_WRITE, 0, 8));
	EXPECT_EQ(attempt_merge(rq, bio_of(f[1], CXMQ_OP_WRITE, 8, 16), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_EQ(rq.nr_sectors, 24u); // exactly the limit
	EXPECT_EQ(attempt_merge(rq, bio_of(f[2], CXMQ_OP_WRITE, 24, 1), lim, kCtx),
		  MergeResult::kFailed);
	EXPECT_EQ(rq.nr_sectors, 24u);
	EXPECT_EQ(rq.nr_bios, 2u);
	// A request a limit stopped takes nothing more (REQ_NOMERGE), even what would fit.
	lim.max_sectors = 2560;
	EXPECT_EQ(attempt_merge(rq, bio_of(f[3], CXMQ_OP_WRITE, 24, 1), lim, kCtx),
		  MergeResult::kNone);
}

TEST_F(MergeRules, MaxSegmentsExactlyAndOneMore)
{
	lim.max_segments = 5;
	auto f = make_bios(3);
	Request rq{};
	make(rq, bio_of(f[0], CXMQ_OP_READ, 0, 8, 0, 2));
	EXPECT_EQ(attempt_merge(rq, bio_of(f[1], CXMQ_OP_READ, 8, 24, 0, 3), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_EQ(rq.nr_segs, 5u);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[2], CXMQ_OP_READ, 32, 8, 0, 1), lim, kCtx),
		  MergeResult::kFailed);
	EXPECT_EQ(rq.nr_segs, 5u);
	EXPECT_EQ(rq.nr_sectors, 32u);
}

// The host leaves segments uncounted (nr_segs 0): the core asks for them only when a merge is
// tried, once per bio, and the limit holds as if they had been counted up front.
TEST_F(MergeRules, UncountedSegmentsAreCountedOnlyWhenAMergeIsTried)
{
	lim.max_segments = 5;
	auto f = make_bios(4);
	f[0].nr_segs = 2;
	f[1].nr_segs = 3;
	f[2].nr_segs = 1;
	f[3].nr_segs = 1;
	Request rq{};
	make(rq, bio_of(f[0], CXMQ_OP_READ, 0, 8, 0, 0));
	EXPECT_EQ(rq.nr_segs, 0u);
	// Not adjacent: nothing counted.
	EXPECT_EQ(attempt_merge(rq, bio_of(f[3], CXMQ_OP_READ, 500, 8, 0, 0), lim, kCtx),
		  MergeResult::kNone);
	EXPECT_EQ(f[0].seg_counts.load() + f[3].seg_counts.load(), 0);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[1], CXMQ_OP_READ, 8, 24, 0, 0), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_EQ(rq.nr_segs, 5u);
	EXPECT_EQ(f[0].seg_counts.load(), 1);
	EXPECT_EQ(f[1].seg_counts.load(), 1);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[2], CXMQ_OP_READ, 32, 8, 0, 0), lim, kCtx),
		  MergeResult::kFailed);
	EXPECT_EQ(f[0].seg_counts.load(), 1); // the request's count is kept
	EXPECT_EQ(rq.nr_segs, 5u);
	EXPECT_EQ(rq.nr_sectors, 32u);
}

TEST_F(MergeRules, DiscardRangesUpToMaxDiscardSegments)
{
	lim.max_discard_segments = 3;
	auto f = make_bios(4);
	Request rq{};
	make(rq, bio_of(f[0], CXMQ_OP_DISCARD, 1000, 8));
	// Anywhere on the disk: a range of its own.
	EXPECT_EQ(attempt_merge(rq, bio_of(f[1], CXMQ_OP_DISCARD, 10, 16), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[2], CXMQ_OP_DISCARD, 5000, 8), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_EQ(rq.nr_segs, 3u);
	EXPECT_EQ(rq.nr_sectors, 32u);
	EXPECT_EQ(rq.sector, 1000u);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[3], CXMQ_OP_DISCARD, 1008, 8), lim, kCtx),
		  MergeResult::kFailed);
	EXPECT_EQ(chain_of(rq), (std::vector<FakeBio *>{&f[0], &f[1], &f[2]}));
}

TEST_F(MergeRules, DiscardSectorsExactlyAndOneMore)
{
	lim.max_discard_sectors = 64;
	auto f = make_bios(3);
	Request rq{};
	make(rq, bio_of(f[0], CXMQ_OP_DISCARD, 0, 32));
	EXPECT_EQ(attempt_merge(rq, bio_of(f[1], CXMQ_OP_DISCARD, 512, 32), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[2], CXMQ_OP_DISCARD, 1024, 1), lim, kCtx),
		  MergeResult::kFailed);
	EXPECT_EQ(rq.nr_sectors, 64u);
}

// With one discard range per request (the kernel's default, virtio disks without
// max_discard_seg), discards merge only contiguously, into the one range: such a merge adds no
// segment (6.1's ll_new_hw_segment: "discard request merge won't add new segment").
TEST_F(MergeRules, SingleRangeDiscardDiskMergesOnlyContiguousDiscards)
{
	lim.max_discard_segments = 1;
	auto f = make_bios(4);
	Request rq{};
	make(rq, bio_of(f[0], CXMQ_OP_DISCARD, 8, 8));
	EXPECT_EQ(attempt_merge(rq, bio_of(f[1], CXMQ_OP_DISCARD, 16, 8), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[2], CXMQ_OP_DISCARD, 0, 8), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_EQ(rq.sector, 0u);
	EXPECT_EQ(rq.nr_sectors, 24u);
	EXPECT_EQ(rq.nr_segs, 1u);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[3], CXMQ_OP_DISCARD, 100, 8), lim, kCtx),
		  MergeResult::kNone);
}

TEST_F(MergeRules, NowaitOnlyWhileEveryBioIsNowait)
{
	auto f = make_bios(3);
	Request rq{};
	make(rq, bio_of(f[0], CXMQ_OP_WRITE, 0, 8, CXMQ_BIO_NOWAIT));
	EXPECT_EQ(attempt_merge(rq, bio_of(f[1], CXMQ_OP_WRITE, 8, 8, CXMQ_BIO_NOWAIT), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_TRUE(rq.flags & CXMQ_BIO_NOWAIT);
	EXPECT_EQ(attempt_merge(rq, bio_of(f[2], CXMQ_OP_WRITE, 16, 8), lim, kCtx),
		  MergeResult::kMerged);
	EXPECT_FALSE(rq.flags & CXMQ_BIO_NOWAIT);
}

// ---- a backend that records every request it takes, with its whole chain ----

struct RqRecord {
	uint16_t op;
	uint64_t sector;
	uint32_t nr_sectors, flags, nr_segs, hctx;
	std::vector<FakeBio *> bios;
	bool last;
	std::thread::id thread;
};

class ChainBackend final : public cxmq::Backend {
public:
	enum class Mode { kComplete, kHold, kBusy, kRandomBusy };
	explicit ChainBackend(Mode m = Mode::kComplete, uint32_t seed = 1) : mode_(m), rng_(seed) {}
	cxmq::u32 pdu_size() const override { return 0; }
	int init_hctx(cxmq::HwQueue &) override { return 0; }
	void exit_hctx(cxmq::HwQueue &) override {}
	void release() override {}
	int poll(cxmq::HwQueue &) override { return 0; }
	cxmq_status queue_rq(cxmq::HwQueue &h, Request &rq, bool last) override
	{
		{
			std::lock_guard<std::mutex> g(m_);
			calls_++;
			if (mode_ == Mode::kBusy || take_left_ == 0 ||
			    (mode_ == Mode::kRandomBusy && rng_() % 8 == 0)) {
				busy_++;
				return CXMQ_STS_RESOURCE;
			}
			RqRecord r{rq.op, rq.sector, rq.nr_sectors, rq.flags, rq.nr_segs, h.index,
				   chain_of(rq), last, std::this_thread::get_id()};
			EXPECT_EQ(r.bios.size(), rq.nr_bios);
			recs_.push_back(r);
			if (take_left_ > 0)
				take_left_--;
			if (mode_ == Mode::kHold) {
				held_.push_back(&rq);
				return CXMQ_STS_OK;
			}
		}
		h.queue->end_request(rq, CXMQ_STS_OK);
		return CXMQ_STS_OK;
	}
	void set_mode(Mode m)
	{
		std::lock_guard<std::mutex> g(m_);
		mode_ = m;
		take_left_ = -1;
	}
	// Takes n more requests, then answers busy until the next set_mode.
	void busy_after(int n)
	{
		std::lock_guard<std::mutex> g(m_);
		take_left_ = n;
	}
	void complete_all()
	{
		for (;;) {
			Request *rq;
			{
				std::lock_guard<std::mutex> g(m_);
				if (held_.empty())
					return;
				rq = held_.front();
				held_.pop_front();
			}
			rq->hctx->queue->end_request(*rq, CXMQ_STS_OK);
		}
	}
	std::vector<RqRecord> recs()
	{
		std::lock_guard<std::mutex> g(m_);
		return recs_;
	}
	size_t held()
	{
		std::lock_guard<std::mutex> g(m_);
		return held_.size();
	}
	uint64_t busy()
	{
		std::lock_guard<std::mutex> g(m_);
		return busy_;
	}

private:
	std::mutex m_;
	Mode mode_;
	int take_left_ = -1; // busy_after: requests still taken before busy (-1: no limit)
	std::mt19937 rng_;
	uint64_t calls_ = 0, busy_ = 0;
	std::vector<RqRecord> recs_;
	std::deque<Request *> held_;
};

void submit_bio(Queue *q, FakeBio &f, uint16_t op, uint64_t sector, uint32_t n,
		uint32_t flags = 0, uint32_t segs = 1)
{
	cxmq_bio b = bio_of(f, op, sector, n, flags, segs);
	q->submit(b);
}

uint64_t sum_ctx(Queue *q, uint64_t cxmq::SwQueue::*field)
{
	uint64_t s = 0;
	for (uint32_t c = 0; c < q->nr_cpus(); c++)
		s += cxmq::load_relaxed(q->ctx(c).*field);
	return s;
}

class MergeQueue : public HostTest {
protected:
	void SetUp() override
	{
		HostTest::SetUp();
		lim = default_limits();
	}
	// One hardware queue; with a backend that answers busy (ChainBackend::Mode::kBusy), the
	// first request waits on the dispatch list and what follows is staged on the software
	// queue until the backend takes requests again and the test runs the retry (manual work).
	Queue *staged_queue(ChainBackend &be, uint32_t depth = 64)
	{
		set_work_manual(true);
		Queue *q = make_queue(make_config(1, depth), &be);
		q->set_host(&lim);
		return q;
	}
	void finish(Queue *q, ChainBackend &be)
	{
		be.set_mode(ChainBackend::Mode::kComplete);
		drain_works();
		destroy_queue(q);
	}
	cxmq_limits lim;
};

TEST_F(MergeQueue, StagedRequestsTakeBackAndFrontMerges)
{
	ChainBackend be(ChainBackend::Mode::kBusy);
	Queue *q = staged_queue(be);
	auto f = make_bios(8);
	submit_bio(q, f[0], CXMQ_OP_WRITE, 0, 8);      // busy: on the dispatch list
	submit_bio(q, f[2], CXMQ_OP_WRITE, 1000, 8);   // staged
	submit_bio(q, f[4], CXMQ_OP_WRITE, 1008, 8);   // back merge
	submit_bio(q, f[6], CXMQ_OP_WRITE, 992, 8);    // front merge
	submit_bio(q, f[1], CXMQ_OP_READ, 1016, 8);    // another op: a request of its own
	EXPECT_EQ(q->ctx(0).nr_pending, 2u);
	EXPECT_EQ(q->ctx(0).merged, 2u);
	EXPECT_EQ(f[4].merges.load() + f[6].merges.load(), 2);
	be.set_mode(ChainBackend::Mode::kComplete);
	drain_works();
	auto recs = be.recs();
	ASSERT_EQ(recs.size(), 3u);
	EXPECT_EQ(recs[1].sector, 992u);
	EXPECT_EQ(recs[1].nr_sectors, 24u);
	EXPECT_EQ(recs[1].bios, (std::vector<FakeBio *>{&f[6], &f[2], &f[4]}));
	EXPECT_FALSE(recs[1].last);
	EXPECT_TRUE(recs[2].last); // one run: the doorbell on its final request only
	for (int i : {0, 1, 2, 4, 6}) {
		EXPECT_EQ(f[i].ends.load(), 1) << i;
		EXPECT_EQ(f[i].status.load(), CXMQ_STS_OK) << i;
	}
	EXPECT_EQ(sum_ctx(q, &cxmq::SwQueue::merged), 2u);
	finish(q, be);
}

// blk_bio_list_merge: only the newest 8 staged requests are tried.
TEST_F(MergeQueue, OnlyTheNewestEightStagedRequestsAreTried)
{
	ChainBackend be(ChainBackend::Mode::kBusy);
	Queue *q = staged_queue(be);
	auto f = make_bios(16);
	submit_bio(q, f[0], CXMQ_OP_WRITE, 0, 8);
	for (int i = 1; i <= 9; i++) // staged: 1000, 2000, ... 9000
		submit_bio(q, f[i], CXMQ_OP_WRITE, uint64_t(i) * 1000, 8);
	submit_bio(q, f[10], CXMQ_OP_WRITE, 1008, 8); // continues the 9th newest: not tried
	EXPECT_EQ(f[10].merges.load(), 0);
	submit_bio(q, f[11], CXMQ_OP_WRITE, 2008, 8); // the 8th newest (of 10 now: 3rd oldest)
	EXPECT_EQ(f[11].merges.load(), 0);
	submit_bio(q, f[12], CXMQ_OP_WRITE, 4008, 8); // 4000 is the 8th newest of 11
	EXPECT_EQ(f[12].merges.load(), 1);
	submit_bio(q, f[13], CXMQ_OP_WRITE, 9008, 8);
	EXPECT_EQ(f[13].merges.load(), 1);
	be.set_mode(ChainBackend::Mode::kComplete);
	drain_works();
	EXPECT_EQ(be.recs().size(), 12u);
	finish(q, be);
}

// A request whose position fits but whose limit does not ends the search (BIO_MERGE_FAILED),
// even when an older staged request would have taken the bio.
TEST_F(MergeQueue, AFailedLimitStopsTheSearch)
{
	lim.max_sectors = 16;
	ChainBackend be(ChainBackend::Mode::kBusy);
	Queue *q = staged_queue(be);
	auto f = make_bios(6);
	submit_bio(q, f[0], CXMQ_OP_WRITE, 0, 8);
	submit_bio(q, f[1], CXMQ_OP_WRITE, 120, 8);  // older: would take 116..120 in front
	submit_bio(q, f[2], CXMQ_OP_WRITE, 100, 16); // newest: 100..116, full
	submit_bio(q, f[3], CXMQ_OP_WRITE, 116, 4);  // fits behind the newest's position only
	EXPECT_EQ(f[3].merges.load(), 0);
	EXPECT_EQ(q->ctx(0).nr_pending, 3u);
	finish(q, be);
}

TEST_F(MergeQueue, NomergesOneTriesOnlyTheOneHitCache)
{
	lim.nomerges = 1;
	ChainBackend be(ChainBackend::Mode::kBusy);
	Queue *q = staged_queue(be);
	auto f = make_bios(8);
	submit_bio(q, f[0], CXMQ_OP_WRITE, 0, 8);
	submit_bio(q, f[2], CXMQ_OP_WRITE, 1000, 8); // staged first: the cache
	submit_bio(q, f[4], CXMQ_OP_WRITE, 2000, 8);
	submit_bio(q, f[6], CXMQ_OP_WRITE, 2008, 8); // continues a request not in the cache
	EXPECT_EQ(f[6].merges.load(), 0);
	FakeBio a, b;
	a.id = 100;
	b.id = 102;
	submit_bio(q, a, CXMQ_OP_WRITE, 1008, 8); // continues the cached one
	EXPECT_EQ(a.merges.load(), 1);
	submit_bio(q, b, CXMQ_OP_WRITE, 1016, 8); // still the cache: the last merged into
	EXPECT_EQ(b.merges.load(), 1);
	finish(q, be);
}

TEST_F(MergeQueue, NomergesTwoMergesNothingAndMayChangeLive)
{
	lim.nomerges = 2;
	ChainBackend be(ChainBackend::Mode::kBusy);
	Queue *q = staged_queue(be);
	auto f = make_bios(8);
	submit_bio(q, f[0], CXMQ_OP_WRITE, 0, 8);
	submit_bio(q, f[2], CXMQ_OP_WRITE, 1000, 8);
	submit_bio(q, f[4], CXMQ_OP_WRITE, 1008, 8);
	EXPECT_EQ(f[4].merges.load(), 0);
	__atomic_store_n(&lim.nomerges, 0u, __ATOMIC_RELAXED); // the user writes 0
	FakeBio h;
	h.id = 202;
	submit_bio(q, h, CXMQ_OP_WRITE, 1016, 8);
	EXPECT_EQ(h.merges.load(), 1);
	__atomic_store_n(&lim.nomerges, 2u, __ATOMIC_RELAXED); // and 2 again
	plug_start();
	submit_bio(q, f[6], CXMQ_OP_WRITE, 3000, 8);
	FakeBio g;
	g.id = 200;
	submit_bio(q, g, CXMQ_OP_WRITE, 3008, 8);
	plug_finish();
	EXPECT_EQ(g.merges.load(), 0);
	EXPECT_EQ(sum_ctx(q, &cxmq::SwQueue::plug_merged), 0u);
	finish(q, be);
}

// ---- plugging ----

TEST_F(MergeQueue, PluggedSequentialBiosBecomeFewLargeRequests)
{
	lim.max_sectors = 256; // 128 KiB
	ChainBackend be;
	Queue *q = staged_queue(be);
	const int n = 4096;
	auto f = make_bios(n);
	plug_start();
	for (int i = 0; i < n; i++)
		submit_bio(q, f[i], CXMQ_OP_WRITE, uint64_t(i) * 8, 8);
	EXPECT_TRUE(be.recs().size() < size_t(n) / 32); // batches went out on the way
	plug_finish();
	auto recs = be.recs();
	ASSERT_EQ(recs.size(), size_t(n) * 8 / 256);
	uint64_t next = 0;
	int id = 0;
	for (const RqRecord &r : recs) {
		EXPECT_EQ(r.sector, next);
		EXPECT_EQ(r.nr_sectors, 256u);
		ASSERT_EQ(r.bios.size(), 32u);
		for (FakeBio *b : r.bios)
			EXPECT_EQ(b->id, uint64_t(id++));
		next += 256;
	}
	for (int i = 0; i < n; i++)
		ASSERT_EQ(f[i].ends.load(), 1) << i;
	EXPECT_EQ(sum_ctx(q, &cxmq::SwQueue::plug_merged), uint64_t(n - n / 32));
	// A batch is sent when its newest request reached 128 KiB: one request per unplug.
	EXPECT_EQ(sum_ctx(q, &cxmq::SwQueue::unplugs), recs.size());
	EXPECT_EQ(sum_ctx(q, &cxmq::SwQueue::unplugged), recs.size());
	finish(q, be);
}

// BLK_MAX_REQUEST_COUNT: a plug of 32 requests is sent before the 33rd joins; in each batch
// the backend is told `last` only on its final request.
TEST_F(MergeQueue, PlugSendsBatchesOf32WithOneDoorbell)
{
	ChainBackend be;
	Queue *q = staged_queue(be);
	const int n = 100;
	auto f = make_bios(n);
	plug_start();
	for (int i = 0; i < n; i++)
		submit_bio(q, f[i], CXMQ_OP_READ, uint64_t(i) * 64, 8);
	EXPECT_EQ(be.recs().size(), 96u);
	plug_finish();
	auto recs = be.recs();
	ASSERT_EQ(recs.size(), size_t(n));
	for (int i = 0; i < n; i++) {
		EXPECT_EQ(recs[size_t(i)].bios[0]->id, uint64_t(i));
		const bool end_of_batch = (i % 32 == 31) || i == n - 1;
		EXPECT_EQ(recs[size_t(i)].last, end_of_batch) << i;
	}
	EXPECT_EQ(sum_ctx(q, &cxmq::SwQueue::unplugs), 4u);
	EXPECT_EQ(sum_ctx(q, &cxmq::SwQueue::unplugged), uint64_t(n));
	uint64_t sizes[cxmq::kUnplugBuckets] = {};
	for (uint32_t c = 0; c < q->nr_cpus(); c++)
		for (uint32_t b = 0; b < cxmq::kUnplugBuckets; b++)
			sizes[b] += q->ctx(c).unplug_sizes[b];
	EXPECT_EQ(sizes[5], 3u); // 32, 32, 32
	EXPECT_EQ(sizes[2], 1u); // and 4

	// Each batch of one software queue found its hardware queue idle: straight to the
	// backend (blk_mq_plug_issue_direct), nothing staged.
	EXPECT_EQ(q->hctx(0).direct_issued, uint64_t(n));
	EXPECT_EQ(q->hctx(0).run, 0u);
	finish(q, be);
}

// A batch whose hardware queue has requests waiting (here: one the backend refused) is staged
// behind them and sent by a run; a busy answer in the middle of a direct batch leaves the rest
// on the dispatch list in order, and nothing is lost or reordered.
TEST_F(MergeQueue, PlugBatchBehindWaitingRequestsIsStaged)
{
	ChainBackend be(ChainBackend::Mode::kBusy);
	Queue *q = staged_queue(be);
	auto f = make_bios(5);
	submit_bio(q, f[0], CXMQ_OP_READ, 0, 8); // refused: waits on the dispatch list
	plug_start();
	for (int i = 1; i < 5; i++)
		submit_bio(q, f[i], CXMQ_OP_READ, uint64_t(i) * 64, 8);
	plug_finish();
	EXPECT_EQ(q->hctx(0).direct_issued, 1u); // f[0] only
	EXPECT_EQ(q->ctx(0).nr_pending, 4u);    // behind the refused one
	be.set_mode(ChainBackend::Mode::kComplete);
	drain_works();
	auto recs = be.recs();
	ASSERT_EQ(recs.size(), 5u);
	for (int i = 0; i < 5; i++)
		EXPECT_EQ(recs[size_t(i)].bios[0]->id, uint64_t(i));
	finish(q, be);
}

TEST_F(MergeQueue, BusyInsideADirectPlugBatchKeepsTheRestInOrder)
{
	ChainBackend be;
	Queue *q = staged_queue(be);
	auto f = make_bios(6);
	plug_start();
	for (int i = 0; i < 6; i++)
		submit_bio(q, f[i], CXMQ_OP_READ, uint64_t(i) * 64, 8);
	be.busy_after(3); // takes three, then answers busy
	plug_finish();
	EXPECT_EQ(q->hctx(0).direct_issued, 6u);
	EXPECT_EQ(q->hctx(0).nr_dispatch, 3u);
	be.set_mode(ChainBackend::Mode::kComplete);
	drain_works();
	auto recs = be.recs();
	ASSERT_EQ(recs.size(), 6u);
	for (int i = 0; i < 6; i++) {
		EXPECT_EQ(recs[size_t(i)].bios[0]->id, uint64_t(i));
		EXPECT_EQ(f[i].ends.load(), 1) << i;
	}
	finish(q, be);
}

TEST_F(MergeQueue, FlushAndFuaAreNeverPlugged)
{
	ChainBackend be;
	Queue *q = staged_queue(be);
	auto f = make_bios(4);
	plug_start();
	submit_bio(q, f[0], CXMQ_OP_WRITE, 0, 8);
	submit_bio(q, f[1], CXMQ_OP_WRITE, 8, 8, CXMQ_BIO_FUA);
	submit_bio(q, f[2], CXMQ_OP_FLUSH, 0, 0, CXMQ_BIO_PREFLUSH);
	EXPECT_EQ(f[1].ends.load(), 1);
	EXPECT_EQ(f[2].ends.load(), 1);
	EXPECT_EQ(f[0].ends.load(), 0); // still on the plug
	plug_finish();
	EXPECT_EQ(f[0].ends.load(), 1);
	finish(q, be);
}

// A task that sleeps while plugged (here: waiting for a tag its own plug holds) unplugs on
// the way to sleep; that unplug must not block, so the batch is left to the run work.
TEST_F(MergeQueue, UnplugFromScheduleHandsTheBatchToTheRunWork)
{
	ChainBackend be;
	Queue *q = staged_queue(be, 4);
	auto f = make_bios(5);
	const uint64_t sched0 = unplugs_from_schedule();
	std::atomic<bool> done{false};
	std::thread t([&] {
		plug_start();
		for (int i = 0; i < 5; i++) // the 5th waits for a tag
			submit_bio(q, f[i], CXMQ_OP_WRITE, uint64_t(i) * 100, 8);
		done = true;
		plug_finish();
	});
	ASSERT_TRUE(eventually([&] { return pending_works() > 0; }));
	EXPECT_EQ(unplugs_from_schedule(), sched0 + 1);
	EXPECT_EQ(be.recs().size(), 0u); // nothing was run in the sleeping task
	EXPECT_FALSE(done.load());
	run_pending_works();
	ASSERT_TRUE(eventually([&] { return done.load(); }));
	t.join();
	auto recs = be.recs();
	ASSERT_EQ(recs.size(), 5u);
	for (int i = 0; i < 4; i++)
		EXPECT_NE(recs[size_t(i)].thread, t.get_id());
	for (int i = 0; i < 5; i++)
		EXPECT_EQ(f[i].ends.load(), 1);
	finish(q, be);
}

// No plug storage (GFP_ATOMIC failed): the bio goes unplugged, as without a plug.
TEST_F(MergeQueue, NoPlugStorageSubmitsUnplugged)
{
	ChainBackend be;
	Queue *q = staged_queue(be);
	FakeBio f;
	plug_start();
	fail_allocation_at(0);
	submit_bio(q, f, CXMQ_OP_WRITE, 0, 8);
	fail_allocation_at(-1);
	EXPECT_EQ(f.ends.load(), 1);
	EXPECT_EQ(q->hctx(0).direct_issued, 1u);
	plug_finish();
	finish(q, be);
}

// Many threads, each plugged, writing interleaved sequential streams on every CPU.
TEST_F(MergeQueue, PlugsOnEveryCpuAtOnce)
{
	set_work_manual(false);
	ChainBackend be(ChainBackend::Mode::kRandomBusy, 7);
	Queue *q = make_queue(make_config(2, 16), &be);
	q->set_host(&lim);
	const int threads = 4, per = kTsan ? 300 : 2000;
	auto f = make_bios(size_t(threads) * per);
	std::vector<std::thread> th;
	for (int t = 0; t < threads; t++)
		th.emplace_back([&, t] {
			set_this_cpu(uint32_t(t));
			for (int i = 0; i < per;) {
				plug_start();
				for (int k = 0; k < 40 && i < per; k++, i++)
					submit_bio(q, f[size_t(t) * per + size_t(i)], CXMQ_OP_WRITE,
						   uint64_t(t) << 30 | uint64_t(i) * 8, 8);
				plug_finish();
			}
		});
	for (auto &x : th)
		x.join();
	ASSERT_TRUE(eventually([&] {
		for (size_t i = 0; i < size_t(threads) * per; i++)
			if (f[i].ends.load() != 1)
				return false;
		return true;
	}));
	uint64_t bios = 0;
	for (const RqRecord &r : be.recs())
		bios += r.bios.size();
	EXPECT_EQ(bios, uint64_t(threads) * per);
	EXPECT_LT(be.recs().size(), size_t(threads) * per / 4);
	ASSERT_TRUE(eventually([&] { return works_idle(); }));
	destroy_queue(q);
}

// ---- the randomized model test ----

struct ModelParams {
	uint32_t seed;
	uint32_t nomerges;
	ChainBackend::Mode mode;
	const char *sched = "none";
};

class MergeModel : public HostTest, public ::testing::WithParamInterface<ModelParams> {};

// Random bio streams (operations, flags, sizes, positions that often continue one another,
// plugs opened and closed at random, limits varied per run) through the queue; every request
// the backend took is checked against what one request may hold, and every bio against having
// been in exactly one request and ended once, OK, with its request's cookie.
TEST_P(MergeModel, EveryRequestIsOneTheRulesAllow)
{
	const ModelParams prm = GetParam();
	std::mt19937 rng(prm.seed);
	cxmq_limits lim = default_limits();
	lim.max_sectors = 8u << (rng() % 6);      // 8 .. 256
	lim.max_segments = 1 + rng() % 16;
	lim.max_discard_sectors = 8u << (rng() % 8);
	lim.max_discard_segments = 1 + rng() % 8;
	lim.max_write_zeroes_sectors = 256;
	lim.nomerges = prm.nomerges;
	set_work_manual(false);
	ChainBackend be(prm.mode, prm.seed);
	Queue *q = make_queue(make_config(2, 8), &be);
	q->set_host(&lim);
	const cxmq::ElevatorType *sched;
	ASSERT_TRUE(cxmq::elevator_lookup(prm.sched, strlen(prm.sched), &sched));
	q->freeze();
	ASSERT_EQ(q->set_elevator(sched), 0);
	q->unfreeze();

	const int n = kTsan ? 3000 : 20000;
	auto f = make_bios(size_t(n));
	std::map<FakeBio *, int> index;
	std::vector<cxmq_bio> desc(static_cast<size_t>(n));
	uint64_t pos = 0;
	bool plugged = false;
	for (int i = 0; i < n; i++) {
		if (rng() % 50 == 0) {
			if (plugged)
				plug_finish();
			else
				plug_start();
			plugged = !plugged;
		}
		if (rng() % 200 == 0)
			set_this_cpu(rng() % 4);
		const uint32_t r = rng() % 100;
		uint16_t op = r < 45 ? CXMQ_OP_WRITE : r < 80 ? CXMQ_OP_READ : r < 92 ? CXMQ_OP_DISCARD
			    : r < 96 ? CXMQ_OP_WRITE_ZEROES : CXMQ_OP_FLUSH;
		uint32_t flags = 0;
		if (rng() % 20 == 0)
			flags |= CXMQ_BIO_FUA;
		if (rng() % 25 == 0)
			flags |= CXMQ_BIO_PREFLUSH;
		if (rng() % 40 == 0)
			flags |= CXMQ_BIO_NOMERGE;
		if (rng() % 4 == 0)
			flags |= CXMQ_BIO_NOWAIT;
		const uint32_t len = op == CXMQ_OP_FLUSH ? 0 : 1 + rng() % 16;
		const uint32_t k = rng() % 10;
		if (k >= 6 && k < 8) // ends where something began
			pos = pos >= 2 * len ? pos - 2 * len : 0;
		else if (k >= 8)
			pos = rng() % 100000;
		// else: continues the previous bio
		const uint32_t segs = len ? 1 + rng() % 3 : 1;
		cxmq_bio b = bio_of(f[size_t(i)], op, op == CXMQ_OP_FLUSH ? 0 : pos, len, flags, segs);
		b.ioprio = rng() % 30 == 0 ? 1 : 0;
		if (rng() % 30 == 0) { // iostats off for this one
			b.cookie &= ~CXMQ_ACCT_COOKIE;
			f[size_t(i)].expect_cookie = b.cookie;
		}
		desc[size_t(i)] = b;
		index[&f[size_t(i)]] = i;
		pos += len;
		q->submit(b);
	}
	if (plugged)
		plug_finish();
	ASSERT_TRUE(eventually([&] {
		for (int i = 0; i < n; i++)
			if (f[size_t(i)].ends.load() == 0 && f[size_t(i)].status.load() == -1)
				return false;
		return true;
	}));
	ASSERT_TRUE(eventually([&] { return works_idle(); }));

	std::vector<int> seen(size_t(n), 0);
	uint64_t merged = 0;
	for (const RqRecord &r : be.recs()) {
		ASSERT_FALSE(r.bios.empty());
		const cxmq_bio &first = desc[size_t(index.at(r.bios[0]))];
		bool all_nowait = true;
		uint64_t sectors = 0, segs = 0, at = r.sector;
		for (size_t j = 0; j < r.bios.size(); j++) {
			const int i = index.at(r.bios[j]);
			const cxmq_bio &b = desc[size_t(i)];
			seen[size_t(i)]++;
			EXPECT_EQ(b.op, r.op);
			EXPECT_EQ(b.ioprio, first.ioprio);
			EXPECT_EQ((b.cookie ^ first.cookie) & CXMQ_ACCT_COOKIE, 0u);
			all_nowait &= (b.flags & CXMQ_BIO_NOWAIT) != 0;
			sectors += b.nr_sectors;
			segs += b.nr_segs;
			if (r.bios.size() > 1) {
				EXPECT_FALSE(b.flags & (CXMQ_BIO_FUA | CXMQ_BIO_PREFLUSH | CXMQ_BIO_NOMERGE));
				EXPECT_NE(r.op, CXMQ_OP_FLUSH);
				EXPECT_NE(r.op, CXMQ_OP_WRITE_ZEROES);
			}
			const bool multi_range = r.op == CXMQ_OP_DISCARD && lim.max_discard_segments > 1;
			if (!multi_range) { // contiguous, in order
				EXPECT_EQ(b.sector, at) << "request at " << r.sector << " bio " << j;
				at += b.nr_sectors;
			}
		}
		merged += r.bios.size() - 1;
		EXPECT_EQ(r.nr_sectors, sectors);
		EXPECT_EQ((r.flags & CXMQ_BIO_NOWAIT) != 0, all_nowait);
		if (r.bios.size() > 1) {
			EXPECT_LE(sectors, cxmq::max_rq_sectors(lim, r.op));
			if (r.op == CXMQ_OP_DISCARD) {
				// (one range a request: contiguous, any number of bios)
				if (lim.max_discard_segments > 1) {
					EXPECT_LE(r.bios.size(), lim.max_discard_segments);
				}
			} else
				EXPECT_LE(segs, lim.max_segments);
			EXPECT_NE(lim.nomerges, 2u);
		}
	}
	for (int i = 0; i < n; i++) {
		// A bio is in one request, or ended without one (AGAIN: NOWAIT, no free tag).
		if (seen[size_t(i)] == 0)
			EXPECT_EQ(f[size_t(i)].status.load(), CXMQ_STS_AGAIN) << i;
		else
			EXPECT_EQ(f[size_t(i)].status.load(), CXMQ_STS_OK) << i;
		EXPECT_LE(seen[size_t(i)], 1) << i;
		EXPECT_EQ(f[size_t(i)].ends.load(), 1) << i;
	}
	const uint64_t counted = sum_ctx(q, &cxmq::SwQueue::merged) +
				 sum_ctx(q, &cxmq::SwQueue::plug_merged) +
				 sum_ctx(q, &cxmq::SwQueue::sched_merged);
	EXPECT_EQ(counted, merged);
	if (prm.nomerges < 2)
		EXPECT_GT(merged, 0u);
	else
		EXPECT_EQ(merged, 0u);
	destroy_queue(q);
}

INSTANTIATE_TEST_SUITE_P(
	Streams, MergeModel,
	::testing::Values(ModelParams{1, 0, ChainBackend::Mode::kComplete},
			  ModelParams{2, 0, ChainBackend::Mode::kRandomBusy},
			  ModelParams{3, 1, ChainBackend::Mode::kRandomBusy},
			  ModelParams{4, 2, ChainBackend::Mode::kRandomBusy},
			  ModelParams{5, 0, ChainBackend::Mode::kRandomBusy},
			  ModelParams{6, 1, ChainBackend::Mode::kComplete},
			  ModelParams{7, 0, ChainBackend::Mode::kComplete, "mq-deadline"},
			  ModelParams{8, 0, ChainBackend::Mode::kRandomBusy, "mq-deadline"},
			  ModelParams{9, 1, ChainBackend::Mode::kRandomBusy, "mq-deadline"},
			  ModelParams{10, 0, ChainBackend::Mode::kComplete, "kyber"},
			  ModelParams{11, 0, ChainBackend::Mode::kRandomBusy, "kyber"},
			  ModelParams{12, 1, ChainBackend::Mode::kRandomBusy, "kyber"}),
	[](const ::testing::TestParamInfo<ModelParams> &i) {
		std::string sched = i.param.sched;
		for (char &c : sched)
			if (c == '-')
				c = '_';
		return "seed" + std::to_string(i.param.seed) + "_nomerges" +
		       std::to_string(i.param.nomerges) +
		       (i.param.mode == ChainBackend::Mode::kComplete ? "" : "_busy") +
		       (sched == "none" ? "" : "_" + sched);
	});

// ---- the null backend walks every bio of a request ----

class MergeData : public HostTest, public ::testing::WithParamInterface<uint32_t> {};

// Plugged random-size writes, mostly sequential, into a memory-backed device, then plugged
// reads of random ranges: what reads back is what the model says was written last.
TEST_P(MergeData, PluggedWritesAndReadsKeepTheData)
{
	const uint32_t irqmode = GetParam();
	cxmq_dev_config cfg = make_config(2, 16);
	cfg.memory_backed = 1;
	cfg.irqmode = irqmode;
	cfg.size_mb = 4;
	cfg.completion_nsec = 2000;
	QueueHandle q(cfg);
	ASSERT_NE(q.q, nullptr);
	const uint64_t size = 4ull << 20, sectors = size >> 9;
	std::vector<uint8_t> model(size, 0);
	std::mt19937 rng(irqmode + 11);
	const int rounds = kTsan ? 40 : 200;
	uint64_t id = 0;
	for (int round = 0; round < rounds; round++) {
		const bool write = round % 2 == 0;
		const int nb = 1 + rng() % 24;
		std::vector<std::unique_ptr<FakeBio>> bios;
		std::vector<std::vector<uint8_t>> bufs;
		std::vector<uint64_t> at;
		uint64_t pos = rng() % (sectors - 2048);
		plug_start();
		for (int k = 0; k < nb; k++) {
			const uint32_t len = (1 + rng() % 16) * 512;
			if (rng() % 5 == 0)
				pos = rng() % (sectors - 2048);
			bufs.emplace_back(len);
			for (auto &c : bufs.back())
				c = write ? uint8_t(rng()) : 0;
			bios.emplace_back(new FakeBio);
			FakeBio &b = *bios.back();
			b.id = ++id;
			b.data = bufs.back().data();
			b.len = len;
			cxmq_bio d = bio_of(b, write ? CXMQ_OP_WRITE : CXMQ_OP_READ, pos, len >> 9, 0,
					    (len + 4095) / 4096);
			at.push_back(pos);
			if (write)
				memcpy(&model[pos << 9], bufs.back().data(), len);
			cxmq_queue_submit(q, &d);
			pos += len >> 9;
		}
		plug_finish();
		for (int k = 0; k < nb; k++) {
			ASSERT_TRUE(wait_ended(*bios[size_t(k)]));
			ASSERT_EQ(bios[size_t(k)]->status.load(), CXMQ_STS_OK);
			if (!write) {
				ASSERT_EQ(memcmp(bufs[size_t(k)].data(), &model[at[size_t(k)] << 9],
						 bufs[size_t(k)].size()), 0)
					<< "round " << round << " bio " << k;
			}
		}
	}
	EXPECT_GT(sum_ctx(&Q(q), &cxmq::SwQueue::plug_merged), 0u);
}

INSTANTIATE_TEST_SUITE_P(Irqmode, MergeData, ::testing::Values(0u, 1u, 2u),
			 [](const ::testing::TestParamInfo<uint32_t> &i) {
				 return "irqmode" + std::to_string(i.param);
			 });

// Discards of many ranges in one plug become one request; every range reads back zero.
TEST_F(MergeQueue, PluggedDiscardRangesBecomeOneRequestAndAllAreZeroed)
{
	cxmq_dev_config cfg = make_config(1, 16);
	cfg.memory_backed = 1;
	cfg.size_mb = 4;
	QueueHandle q(cfg);
	ASSERT_NE(q.q, nullptr);
	std::vector<uint8_t> ones(1 << 20, 0xff);
	FakeBio w;
	w.id = 1;
	w.data = ones.data();
	w.len = uint32_t(ones.size());
	cxmq_bio wd = bio_of(w, CXMQ_OP_WRITE, 0, uint32_t(ones.size() >> 9), 0, 256);
	cxmq_queue_submit(q, &wd);
	ASSERT_TRUE(wait_ended(w));
	auto d = make_bios(64);
	plug_start();
	for (int i = 0; i < 64; i++) {
		cxmq_bio b = bio_of(d[size_t(i)], CXMQ_OP_DISCARD, uint64_t(i) * 32, 8);
		cxmq_queue_submit(q, &b);
	}
	plug_finish();
	for (int i = 0; i < 64; i++)
		ASSERT_EQ(d[size_t(i)].status.load(), CXMQ_STS_OK);
	EXPECT_EQ(sum_ctx(&Q(q), &cxmq::SwQueue::plug_merged), 63u);
	std::vector<uint8_t> back(1 << 20, 0x5a);
	FakeBio r;
	r.id = 3;
	r.data = back.data();
	r.len = uint32_t(back.size());
	cxmq_bio rd = bio_of(r, CXMQ_OP_READ, 0, uint32_t(back.size() >> 9), 0, 256);
	cxmq_queue_submit(q, &rd);
	ASSERT_TRUE(wait_ended(r));
	for (uint64_t s = 0; s < 2048; s++) {
		const bool discarded = s < 64 * 32 && s % 32 < 8;
		ASSERT_EQ(back[s << 9], discarded ? 0 : 0xff) << s;
	}
	// The stats file: one write, one discard request of 64 bios (one unplug of one request),
	// one read.
	std::vector<char> buf(4096);
	const int len = cxmq_queue_format_stats(q, buf.data(), buf.size());
	const std::string text(buf.data(), size_t(len));
	EXPECT_NE(text.find("merge: bios=66 requests=3 plug_merges=63 ctx_merges=0 unplugs=1 "
			    "unplug_requests=1 sched_merges=0\n"), std::string::npos) << text;
	EXPECT_NE(text.find("unplug_batches: 1=1 2-3=0 4-7=0 8-15=0 16-31=0 32=0\n"),
		  std::string::npos) << text;
}

} // namespace
