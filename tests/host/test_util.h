// SPDX-License-Identifier: GPL-2.0
// What the host tests share: the fixture that resets the host and checks for leaks, warnings
// and sanitizer reports after each test; a scriptable backend; queue helpers; a gate.
#pragma once

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "cxmq/core.h"
#include "host.h"
#include "null_backend.h"
#include "queue.h"
#include "text.h"

namespace host {

// Tests that show a known bug of the core are skipped unless CXMQ_RUN_BUG_TESTS=1.
inline bool bug_tests_enabled()
{
	const char *e = getenv("CXMQ_RUN_BUG_TESTS");
	return e && *e && *e != '0';
}
#define SKIP_UNLESS_BUG_TESTS(why)                                                        \
	do {                                                                               \
		if (!::host::bug_tests_enabled())                                          \
			GTEST_SKIP() << "BUG: " << why                                     \
				     << " (CXMQ_RUN_BUG_TESTS=1 runs it)";                 \
	} while (0)

#ifdef __SANITIZE_THREAD__
constexpr bool kTsan = true;
#else
constexpr bool kTsan = false;
#endif

class HostTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		reset();
		allocs0_ = live_allocs();
		objects0_ = live_objects();
		tsan0_ = tsan_reports();
	}
	void TearDown() override
	{
		clear_hooks();
		flush_quarantine();
		set_quarantine(false);
		EXPECT_EQ(live_allocs(), allocs0_) << "allocations leaked by the test";
		EXPECT_EQ(live_objects(), objects0_) << "OS objects leaked by the test";
		EXPECT_EQ(tsan_reports(), tsan0_) << "ThreadSanitizer reported a problem (above)";
		reset();
	}

private:
	long allocs0_ = 0, objects0_ = 0;
	unsigned tsan0_ = 0;
};

// A one-shot gate threads wait at until it opens; also counts who reached it.
class Gate {
public:
	void open()
	{
		std::lock_guard<std::mutex> g(m_);
		open_ = true;
		cv_.notify_all();
	}
	// Returns false on timeout.
	bool wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000))
	{
		std::unique_lock<std::mutex> lk(m_);
		arrived_++;
		cv_.notify_all();
		return cv_.wait_for(lk, timeout, [this] { return open_; });
	}
	bool wait_arrivals(int n, std::chrono::milliseconds timeout = std::chrono::milliseconds(10000))
	{
		std::unique_lock<std::mutex> lk(m_);
		return cv_.wait_for(lk, timeout, [&] { return arrived_ >= n; });
	}
	bool is_open()
	{
		std::lock_guard<std::mutex> g(m_);
		return open_;
	}

private:
	std::mutex m_;
	std::condition_variable cv_;
	bool open_ = false;
	int arrived_ = 0;
};

// ---- configurations and queues ----

inline cxmq_dev_config make_config(uint32_t submit_queues = 1, uint32_t depth = 64)
{
	cxmq_dev_config cfg;
	cxmq_config_defaults(&cfg);
	cfg.submit_queues = submit_queues;
	cfg.hw_queue_depth = depth;
	return cfg;
}

// ---- a backend the test scripts ----

struct Call {
	FakeBio *bio;
	uint32_t hctx;
	uint32_t tag;
	bool last;
	bool in_run;        // called from a run, not a direct issue (exact when one thread submits)
	std::thread::id thread;
	cxmq_status answer; // what queue_rq returned
};

enum class Act {
	Complete, // end the request now, inside queue_rq (null_blk irqmode 0), with `status`
	Hold,     // take it; the test completes it later with complete()
	Busy,     // CXMQ_STS_RESOURCE
	Fail,     // return `status` (an error): the core ends the request
};
struct Decision {
	Act act = Act::Complete;
	cxmq_status status = CXMQ_STS_OK;
};

class ScriptBackend final : public cxmq::Backend {
public:
	// The policy sees each call (and its index from 0) and decides; none: Complete/OK.
	using Policy = std::function<Decision(const Call &, uint64_t index)>;

	explicit ScriptBackend(Policy p = {}, uint32_t pdu = 24) : policy_(std::move(p)), pdu_(pdu) {}
	~ScriptBackend() = default;
	Kind kind() const override { return Kind::kOther; }
	void show_stats(cxmq::TextOut &o) const override { o.put("backend: script\n"); }

	void set_policy(Policy p)
	{
		std::lock_guard<std::mutex> g(m_);
		policy_ = std::move(p);
	}

	cxmq::u32 pdu_size() const override { return pdu_; }
	int init_hctx(cxmq::HwQueue &h) override
	{
		std::lock_guard<std::mutex> g(m_);
		inits_.push_back(h.index);
		return fail_init_index_ == static_cast<int>(h.index) ? -CXMQ_ENOMEM : 0;
	}
	void exit_hctx(cxmq::HwQueue &h) override
	{
		std::lock_guard<std::mutex> g(m_);
		exits_.push_back(h.index);
	}
	void release() override
	{
		std::lock_guard<std::mutex> g(m_);
		released_++;
	}

	int poll(cxmq::HwQueue &) override { return 0; }
	cxmq_status queue_rq(cxmq::HwQueue &h, cxmq::Request &rq, bool last) override
	{
		Call c{};
		c.bio = static_cast<FakeBio *>(rq.bio);
		c.hctx = h.index;
		c.tag = rq.tag;
		c.last = last;
		// A direct issue counts itself in direct_issued just before calling us (and holds the
		// run bit too, so that bit alone does not tell).
		{
			std::lock_guard<std::mutex> g(m_);
			const uint64_t d = cxmq::load_relaxed(h.direct_issued);
			c.in_run = d == last_direct_[h.index];
			last_direct_[h.index] = d;
		}
		c.thread = std::this_thread::get_id();
		// What the core hands over must be sane: its own hardware queue, a tag in use, a bio.
		EXPECT_EQ(rq.hctx, &h);
		EXPECT_TRUE(h.tags->is_busy(rq.tag)) << "request with a free tag " << rq.tag;
		EXPECT_EQ(h.rq(rq.tag), &rq);
		EXPECT_TRUE(c.bio && c.bio->magic == FakeBio::kMagic);
		EXPECT_EQ(reinterpret_cast<uintptr_t>(rq.pdu()) % 16, 0u);
		memset(rq.pdu(), 0xa5, pdu_); // the payload is ours: all of it
		// Recorded on entry: the order in which the backend was handed the requests.
		Decision d;
		uint64_t index;
		Policy p;
		{
			std::lock_guard<std::mutex> g(m_);
			index = nr_calls_++;
			c.answer = CXMQ_STS_OK;
			calls_.push_back(c);
			p = policy_;
		}
		if (p)
			d = p(c, index);
		cxmq_status answer = CXMQ_STS_OK;
		switch (d.act) {
		case Act::Complete:
		case Act::Hold:
			answer = CXMQ_STS_OK;
			break;
		case Act::Busy:
			answer = CXMQ_STS_RESOURCE;
			break;
		case Act::Fail:
			answer = d.status;
			break;
		}
		{
			std::lock_guard<std::mutex> g(m_);
			calls_[index].answer = answer;
			if (d.act == Act::Hold)
				held_.push_back(&rq);
		}
		if (d.act == Act::Complete)
			h.queue->end_request(rq, d.status);
		return answer;
	}

	size_t held()
	{
		std::lock_guard<std::mutex> g(m_);
		return held_.size();
	}
	// Completes up to n held requests, oldest first; returns how many.
	size_t complete(size_t n, cxmq_status st = CXMQ_STS_OK)
	{
		size_t done = 0;
		while (done < n) {
			cxmq::Request *rq;
			{
				std::lock_guard<std::mutex> g(m_);
				if (held_.empty())
					break;
				rq = held_.front();
				held_.pop_front();
			}
			rq->hctx->queue->end_request(*rq, st);
			done++;
		}
		return done;
	}
	size_t complete_all(cxmq_status st = CXMQ_STS_OK) { return complete(SIZE_MAX, st); }

	std::vector<Call> calls()
	{
		std::lock_guard<std::mutex> g(m_);
		return calls_;
	}
	// Bio ids in the order the backend took them (answered OK).
	std::vector<uint64_t> accepted_ids()
	{
		std::vector<uint64_t> ids;
		for (const Call &c : calls())
			if (c.answer == CXMQ_STS_OK)
				ids.push_back(c.bio->id);
		return ids;
	}
	uint64_t nr_calls()
	{
		std::lock_guard<std::mutex> g(m_);
		return nr_calls_;
	}
	std::vector<uint32_t> inits()
	{
		std::lock_guard<std::mutex> g(m_);
		return inits_;
	}
	std::vector<uint32_t> exits()
	{
		std::lock_guard<std::mutex> g(m_);
		return exits_;
	}
	int released()
	{
		std::lock_guard<std::mutex> g(m_);
		return released_;
	}
	void fail_init_of(int index) { fail_init_index_ = index; }

private:
	std::mutex m_;
	std::map<uint32_t, uint64_t> last_direct_;
	Policy policy_;
	uint32_t pdu_;
	uint64_t nr_calls_ = 0;
	std::vector<Call> calls_;
	std::deque<cxmq::Request *> held_;
	std::vector<uint32_t> inits_, exits_;
	int released_ = 0;
	int fail_init_index_ = -1;
};

// Builds a queue for cfg (checked first) with backend b; fails the test on error.
inline cxmq::Queue *make_queue(cxmq_dev_config cfg, cxmq::Backend *b)
{
	EXPECT_EQ(cxmq_config_check(&cfg), 0);
	int err = 1;
	cxmq::Queue *q = cxmq::Queue::create(cfg, b, &err);
	EXPECT_NE(q, nullptr);
	EXPECT_EQ(err, 0);
	return q;
}

// What cxmq_queue_destroy does, for a queue built with Queue::create.
inline void destroy_queue(cxmq::Queue *q)
{
	q->shutdown();
	cxmq::destroy(q);
}

inline cxmq::Queue &Q(cxmq_queue *q) { return *reinterpret_cast<cxmq::Queue *>(q); }
inline cxmq::NullBackend &null_backend(cxmq_queue *q)
{
	return static_cast<cxmq::NullBackend &>(Q(q).backend());
}

// The cookie a test submits a bio with: distinct per bio, and with the shim's accounting bit on
// every other one. The submit helpers set it as the bio's expected cookie, so that
// cxmq_os_bio_end reports (and fails the test) when another comes back.
inline uint64_t cookie_of(const FakeBio &b)
{
	return (0x5c00c1e000000000ull ^ (b.id * 0x9e3779b97f4a7c15ull >> 8)) |
	       ((b.id & 1) ? CXMQ_ACCT_COOKIE : 0);
}
inline uint64_t arm_cookie(FakeBio &b)
{
	b.expect_cookie = cookie_of(b);
	b.check_cookie = true;
	return b.expect_cookie;
}

// A bio the core may merge: its range on the FakeBio and in the description, accounted (as every
// bio of a disk with iostats on: bios merge only with requests of the same accounting), its
// cookie checked when it ends.
inline cxmq_bio accounted_bio(FakeBio &f, uint16_t op, uint64_t sector, uint32_t n,
			      uint32_t flags = 0, uint32_t segs = 1, uint16_t ioprio = 0)
{
	f.sector = sector;
	f.nr_sectors = n;
	cxmq_bio b{};
	b.bio = &f;
	b.op = op;
	b.sector = sector;
	b.nr_sectors = n;
	b.flags = flags;
	b.nr_segs = segs;
	b.ioprio = ioprio;
	b.cookie = cookie_of(f) | CXMQ_ACCT_COOKIE;
	f.expect_cookie = b.cookie;
	f.check_cookie = true;
	return b;
}

inline void submit(cxmq::Queue *q, FakeBio &b, cxmq_op op = CXMQ_OP_WRITE, uint32_t flags = 0)
{
	const uint64_t cookie = arm_cookie(b);
	b.sector = b.id * 8;
	b.nr_sectors = 8;
	q->submit_bio(&b, op, b.id * 8, 8, flags, cookie);
}
inline void submit(cxmq_queue *q, FakeBio &b, cxmq_op op = CXMQ_OP_WRITE, uint32_t flags = 0)
{
	const uint64_t cookie = arm_cookie(b);
	b.sector = b.id * 8;
	b.nr_sectors = 8;
	cxmq_queue_submit_bio(q, &b, op, b.id * 8, 8, flags, cookie);
}

// A bio with data: `len` bytes of `buf` (a multiple of 512) at `sector`.
inline void submit_data(cxmq_queue *q, FakeBio &b, cxmq_op op, uint64_t sector, void *buf,
			uint32_t len, uint32_t flags = 0)
{
	b.data = buf;
	b.len = len;
	b.sector = sector;
	b.nr_sectors = len >> 9;
	const uint64_t cookie = arm_cookie(b);
	cxmq_queue_submit_bio(q, &b, op, sector, len >> 9, flags, cookie);
}
// A bio without data (discard, write zeroes, flush) over nr_sectors at sector.
inline void submit_range(cxmq_queue *q, FakeBio &b, cxmq_op op, uint64_t sector,
			 uint32_t nr_sectors, uint32_t flags = 0)
{
	b.sector = sector;
	b.nr_sectors = nr_sectors;
	const uint64_t cookie = arm_cookie(b);
	cxmq_queue_submit_bio(q, &b, op, sector, nr_sectors, flags, cookie);
}

// Waits for a bio to end (polling); false on timeout.
inline bool wait_ended(const FakeBio &b,
		       std::chrono::milliseconds timeout = std::chrono::milliseconds(10000))
{
	if (b.ends.load())
		return true;
	const auto end = std::chrono::steady_clock::now() + timeout;
	while (!b.ends.load()) {
		if (std::chrono::steady_clock::now() >= end)
			return b.ends.load() != 0;
		std::this_thread::yield();
	}
	return true;
}

// A queue made through the C API (cxmq_queue_create, the null backend); destroyed at scope end.
struct QueueHandle {
	cxmq_queue *q = nullptr;
	explicit QueueHandle(cxmq_dev_config cfg)
	{
		EXPECT_EQ(cxmq_config_check(&cfg), 0);
		int err = 1;
		q = cxmq_queue_create(&cfg, &err);
		EXPECT_NE(q, nullptr);
		EXPECT_EQ(err, 0);
	}
	~QueueHandle()
	{
		if (q)
			cxmq_queue_destroy(q);
	}
	QueueHandle(const QueueHandle &) = delete;
	QueueHandle &operator=(const QueueHandle &) = delete;
	void destroy()
	{
		cxmq_queue_destroy(q);
		q = nullptr;
	}
	operator cxmq_queue *() const { return q; }
};

// Fresh bios with ids 0..n-1.
inline std::unique_ptr<FakeBio[]> make_bios(size_t n)
{
	std::unique_ptr<FakeBio[]> b(new FakeBio[n]);
	for (size_t i = 0; i < n; i++)
		b[i].id = i;
	return b;
}

// Sum of a hardware queue's dispatch histogram.
inline uint64_t histogram_sum(const cxmq::HwQueue &h)
{
	uint64_t s = 0;
	for (uint64_t v : h.dispatched)
		s += v;
	return s;
}

} // namespace host
