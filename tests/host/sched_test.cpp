// SPDX-License-Identifier: GPL-2.0
// IO schedulers (src/core/elevator.*, deadline.*, kyber.*): mq-deadline's dispatch order under a
// simulated clock (sector order within a batch, expired requests first, fifo_batch,
// writes_starved, priority classes, front merges on and off), its request depth for writes
// (async_depth); kyber's domains and batches, its token pools bounding what is out, its depth
// for asynchronous writes, its pools shrinking under a slow simulated backend and growing back;
// the tunables and nr_requests and their bounds; switching schedulers with requests out on
// every hardware queue.
#include "test_util.h"
#include "text.h"

#include <deque>
#include <mutex>
#include <thread>

using namespace host;
using cxmq::Queue;
using cxmq::Request;

namespace {

struct Rec {
	uint64_t sector;
	uint32_t nr_sectors;
	uint16_t op;
	uint32_t hctx;
	uint32_t nr_bios;
};

// Records each request it takes; holds it (completes it when told) or completes it at once.
class HoldBackend final : public cxmq::Backend {
public:
	explicit HoldBackend(bool hold = true) : hold_(hold) {}
	cxmq::u32 pdu_size() const override { return 0; }
	int init_hctx(cxmq::HwQueue &) override { return 0; }
	void exit_hctx(cxmq::HwQueue &) override {}
	void release() override {}
	int poll(cxmq::HwQueue &) override { return 0; }
	cxmq_status queue_rq(cxmq::HwQueue &h, Request &rq, bool) override
	{
		bool hold;
		{
			std::lock_guard<std::mutex> g(m_);
			recs_.push_back({rq.sector, rq.nr_sectors, rq.op, h.index, rq.nr_bios});
			hold = hold_;
			if (hold)
				held_.push_back(&rq);
		}
		if (!hold)
			h.queue->end_request(rq, CXMQ_STS_OK);
		return CXMQ_STS_OK;
	}
	// Completes the oldest held request; false if none.
	bool complete_one()
	{
		Request *rq;
		{
			std::lock_guard<std::mutex> g(m_);
			if (held_.empty())
				return false;
			rq = held_.front();
			held_.pop_front();
		}
		rq->hctx->queue->end_request(*rq, CXMQ_STS_OK);
		return true;
	}
	// Completes every held request of operation op; returns how many.
	size_t complete_op(uint16_t op)
	{
		std::vector<Request *> done;
		{
			std::lock_guard<std::mutex> g(m_);
			for (auto it = held_.begin(); it != held_.end();)
				if ((*it)->op == op) {
					done.push_back(*it);
					it = held_.erase(it);
				} else {
					++it;
				}
		}
		for (Request *rq : done)
			rq->hctx->queue->end_request(*rq, CXMQ_STS_OK);
		return done.size();
	}
	void set_hold(bool hold)
	{
		std::lock_guard<std::mutex> g(m_);
		hold_ = hold;
	}
	size_t held()
	{
		std::lock_guard<std::mutex> g(m_);
		return held_.size();
	}
	std::vector<Rec> recs()
	{
		std::lock_guard<std::mutex> g(m_);
		return recs_;
	}

private:
	std::mutex m_;
	bool hold_;
	std::vector<Rec> recs_;
	std::deque<Request *> held_;
};

constexpr uint16_t kRt = 1u << 13; // IOPRIO_CLASS_RT << IOPRIO_CLASS_SHIFT

cxmq_bio bio_at(FakeBio &f, uint16_t op, uint64_t sector, uint32_t n = 8, uint16_t ioprio = 0)
{
	return accounted_bio(f, op, sector, n, 0, 1, ioprio);
}

const cxmq::ElevatorType *sched_type(const char *name)
{
	const cxmq::ElevatorType *t = nullptr;
	EXPECT_TRUE(cxmq::elevator_lookup(name, strlen(name), &t));
	return t;
}
const cxmq::ElevatorType *deadline_type() { return sched_type("mq-deadline"); }
const cxmq::ElevatorType *kyber_type() { return sched_type("kyber"); }

class Sched : public HostTest {
protected:
	// One hardware queue of `depth` tags for the backend, mq-deadline attached, the clock and
	// the run work under the test's control.
	Queue *deadline_queue(uint32_t depth = 1, uint32_t queues = 1)
	{
		return sched_queue(deadline_type(), depth, queues);
	}
	Queue *sched_queue(const cxmq::ElevatorType *type, uint32_t depth, uint32_t queues = 1)
	{
		set_work_manual(true);
		set_clock_manual(true);
		Queue *q = make_queue(make_config(queues, depth), &be());
		lim = cxmq_limits{};
		cxmq_queue_default_limits(&q->config(), &lim);
		q->set_host(&lim);
		q->freeze();
		EXPECT_EQ(q->set_elevator(type), 0);
		// A pool of 2 * hw_queue_depth would not hold the tests' plugged batches.
		if (depth < 32) {
			EXPECT_EQ(q->set_nr_requests(64), 0);
		}
		q->unfreeze();
		return q;
	}
	void tune(Queue *q, const char *name, const char *value)
	{
		const cxmq::ElevatorType *t = q->elevator_type();
		for (uint32_t i = 0; i < t->nr_attrs; i++)
			if (std::string(t->attrs[i].name) == name) {
				ASSERT_EQ(q->elevator()->store(i, value), 0) << name;
				return;
			}
		FAIL() << "no tunable " << name;
	}
	std::string shown(Queue *q, const char *name)
	{
		const cxmq::ElevatorType *t = q->elevator_type();
		char buf[64];
		for (uint32_t i = 0; i < t->nr_attrs; i++)
			if (std::string(t->attrs[i].name) == name) {
				int n = q->elevator()->show(i, buf, sizeof(buf));
				return std::string(buf, size_t(n > 0 ? n : 0));
			}
		return "?";
	}
	// Completes held requests one by one (each completion runs the queue again) and returns
	// the sectors of everything the backend took, in order.
	std::vector<uint64_t> drain()
	{
		drain_works();
		while (be().complete_one())
			drain_works();
		std::vector<uint64_t> v;
		for (const Rec &r : be().recs())
			v.push_back(r.sector);
		return v;
	}
	void finish(Queue *q)
	{
		be().set_hold(false);
		drain();
		destroy_queue(q);
	}
	void submit_plugged(Queue *q, FakeBio *f, const std::vector<std::pair<uint16_t, uint64_t>> &ios,
			    uint16_t ioprio = 0)
	{
		plug_start();
		for (size_t i = 0; i < ios.size(); i++)
			q->submit(bio_at(f[i], ios[i].first, ios[i].second, 8, ioprio));
		plug_finish();
	}

	HoldBackend &be() { return *bp_; }
	void renew() { bp_.reset(new HoldBackend); }
	std::unique_ptr<HoldBackend> bp_{new HoldBackend};
	cxmq_limits lim{};
};

using V = std::vector<uint64_t>;

// Inserted together (one unplug), the reads start from the oldest, then a batch follows the
// sectors upwards from where it started.
TEST_F(Sched, ABatchFollowsSectorOrder)
{
	Queue *q = deadline_queue();
	auto f = make_bios(4);
	submit_plugged(q, f.get(), {{CXMQ_OP_READ, 300}, {CXMQ_OP_READ, 100}, {CXMQ_OP_READ, 250},
				    {CXMQ_OP_READ, 200}});
	EXPECT_EQ(drain(), (V{300, 100, 200, 250}));
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(f[i].ends.load(), 1);
	finish(q);
}

// A batch ends after fifo_batch requests; the next starts where the sorted walk left off,
// unless the oldest request has expired (read_expire), which then goes first.
TEST_F(Sched, FifoBatchThenExpiredFirst)
{
	for (bool expire : {false, true}) {
		SCOPED_TRACE(expire ? "read_expire passed" : "nothing expired");
		Queue *q = deadline_queue();
		tune(q, "fifo_batch", "2");
		auto f = make_bios(4);
		be().set_hold(true);
		submit_plugged(q, f.get(), {{CXMQ_OP_READ, 100}, {CXMQ_OP_READ, 400},
					    {CXMQ_OP_READ, 200}, {CXMQ_OP_READ, 300}});
		drain_works();
		ASSERT_TRUE(be().complete_one()); // 100 went first; 200 continues its batch
		drain_works();
		if (expire)
			advance_clock(501 * 1000000ll);
		EXPECT_EQ(drain(), expire ? (V{100, 200, 400, 300}) : (V{100, 200, 300, 400}));
		finish(q);
		renew();
	}
}

// Reads go first, but a waiting write is passed over at most writes_starved times.
TEST_F(Sched, WritesAreStarvedAtMostWritesStarvedTimes)
{
	Queue *q = deadline_queue();
	tune(q, "fifo_batch", "1");
	EXPECT_EQ(shown(q, "writes_starved"), "2\n");
	auto f = make_bios(8);
	submit_plugged(q, f.get(), {{CXMQ_OP_READ, 100}, {CXMQ_OP_WRITE, 1000}, {CXMQ_OP_READ, 200},
				    {CXMQ_OP_READ, 300}, {CXMQ_OP_WRITE, 2000}, {CXMQ_OP_READ, 400},
				    {CXMQ_OP_READ, 500}, {CXMQ_OP_READ, 600}});
	EXPECT_EQ(drain(), (V{100, 200, 1000, 300, 400, 2000, 500, 600}));
	finish(q);
}

// A real-time request goes before best-effort ones queued earlier.
TEST_F(Sched, RealTimeClassFirst)
{
	Queue *q = deadline_queue();
	auto f = make_bios(3);
	plug_start();
	q->submit(bio_at(f[0], CXMQ_OP_READ, 100));
	q->submit(bio_at(f[1], CXMQ_OP_READ, 200));
	q->submit(bio_at(f[2], CXMQ_OP_READ, 900, 8, kRt));
	plug_finish();
	EXPECT_EQ(drain(), (V{900, 100, 200}));
	finish(q);
}

// A bio that ends where a queued request starts merges into it only with front_merges 1; one
// that starts where a request ends always merges (back merge through the sorted tree).
TEST_F(Sched, FrontMergesOnlyWhenEnabled)
{
	for (int front : {1, 0}) {
		SCOPED_TRACE(front ? "front_merges=1" : "front_merges=0");
		Queue *q = deadline_queue();
		tune(q, "front_merges", front ? "1" : "0");
		auto f = make_bios(5);
		q->submit(bio_at(f[0], CXMQ_OP_READ, 0));   // out, held (depth 1)
		q->submit(bio_at(f[1], CXMQ_OP_READ, 100)); // queued: the merge cache
		q->submit(bio_at(f[2], CXMQ_OP_READ, 500)); // queued
		q->submit(bio_at(f[3], CXMQ_OP_READ, 508)); // back merge: the cache moves to 500
		q->submit(bio_at(f[4], CXMQ_OP_READ, 92));  // ends at 100: a front merge, or not
		EXPECT_EQ(q->ctx(0).sched_merged, front ? 2u : 1u);
		auto order = drain();
		auto recs = be().recs();
		if (front) {
			EXPECT_EQ(order, (V{0, 92, 500}));
			EXPECT_EQ(recs[1].nr_sectors, 16u);
			EXPECT_EQ(recs[1].nr_bios, 2u);
		} else {
			EXPECT_EQ(order, (V{0, 100, 500, 92}));
		}
		EXPECT_EQ(recs.back().nr_sectors, front ? 16u : 8u);
		for (int i = 0; i < 5; i++)
			EXPECT_EQ(f[i].ends.load(), 1) << i;
		finish(q);
		renew();
	}
}

// Writes may hold only async_depth of the pool (as a share of each bitmap word); reads any.
TEST_F(Sched, AsyncDepthLimitsWritesNotReads)
{
	Queue *q = deadline_queue(64);
	EXPECT_EQ(q->nr_requests(), 128u);
	EXPECT_EQ(shown(q, "async_depth"), "128\n");
	tune(q, "async_depth", "4"); // 128 tags in 4 words of 32: one tag per word
	auto w = make_bios(10), r = make_bios(10);
	// NOWAIT: a write that finds no tag it may use ends with AGAIN at once.
	for (int i = 0; i < 10; i++) {
		cxmq_bio b = bio_at(w[i], CXMQ_OP_WRITE, uint64_t(i) * 64);
		b.flags = CXMQ_BIO_NOWAIT;
		q->submit(b);
	}
	EXPECT_EQ(be().held(), 4u);
	int again = 0;
	for (int i = 0; i < 10; i++) {
		again += w[i].ends.load() == 1 && w[i].status.load() == CXMQ_STS_AGAIN;
		// ended without a request: not counted in the IO statistics (blk-mq's way)
		EXPECT_EQ(w[i].failed.load(), w[i].status.load() == CXMQ_STS_AGAIN ? 1 : 0) << i;
	}
	EXPECT_EQ(again, 6);
	for (int i = 0; i < 10; i++)
		q->submit(bio_at(r[i], CXMQ_OP_READ, 100000 + uint64_t(i) * 64));
	EXPECT_EQ(be().held(), 14u);
	finish(q);
	for (int i = 0; i < 10; i++) {
		EXPECT_EQ(w[i].ends.load(), 1) << i;
		EXPECT_EQ(r[i].ends.load(), 1) << i;
	}
}

// Settings: the tunables' names, defaults, ranges; nr_requests' bounds with and without a
// scheduler; bad text changes nothing and says what was wrong.
TEST_F(Sched, TunablesAndNrRequestsRefuseBadValues)
{
	Queue *q = deadline_queue(64);
	EXPECT_EQ(shown(q, "read_expire"), "500\n");
	EXPECT_EQ(shown(q, "write_expire"), "5000\n");
	EXPECT_EQ(shown(q, "fifo_batch"), "16\n");
	EXPECT_EQ(shown(q, "front_merges"), "1\n");
	EXPECT_EQ(shown(q, "prio_aging_expire"), "10000\n");
	const cxmq::ElevatorType *t = q->elevator_type();
	ASSERT_EQ(t->nr_attrs, 7u);
	EXPECT_EQ(q->elevator()->store(0, "abc"), -CXMQ_EINVAL);
	EXPECT_TRUE(logged(CXMQ_LOG_ERR, "mq-deadline: read_expire=abc is invalid"));
	EXPECT_EQ(q->elevator()->store(0, "-1"), -CXMQ_EINVAL);
	EXPECT_EQ(q->elevator()->store(3, "2"), -CXMQ_EINVAL); // front_merges: 0 or 1
	EXPECT_EQ(q->elevator()->store(4, "0"), -CXMQ_EINVAL); // async_depth: at least 1
	EXPECT_EQ(shown(q, "read_expire"), "500\n");
	EXPECT_EQ(q->elevator()->store(0, "250\n"), 0);
	EXPECT_EQ(shown(q, "read_expire"), "250\n");

	q->freeze();
	EXPECT_EQ(q->set_nr_requests(2049), -CXMQ_EINVAL);
	EXPECT_TRUE(logged(CXMQ_LOG_ERR, "nr_requests=2049 is invalid: must be 4..2048"));
	EXPECT_EQ(q->set_nr_requests(3), -CXMQ_EINVAL);
	EXPECT_EQ(q->nr_requests(), 128u);
	EXPECT_EQ(q->set_nr_requests(2048), 0);
	EXPECT_EQ(q->hctx(0).depth(), 2048u);
	EXPECT_EQ(shown(q, "async_depth"), "2048\n");
	// none: the pool is hw_queue_depth at most
	EXPECT_EQ(q->set_elevator(nullptr), 0);
	EXPECT_EQ(q->nr_requests(), 64u);
	EXPECT_EQ(q->set_nr_requests(65), -CXMQ_EINVAL);
	EXPECT_EQ(q->set_nr_requests(16), 0);
	EXPECT_EQ(q->hctx(0).depth(), 16u);
	q->unfreeze();
	finish(q);
}

TEST_F(Sched, NamesAndAliases)
{
	const cxmq::ElevatorType *t = reinterpret_cast<const cxmq::ElevatorType *>(1);
	EXPECT_TRUE(cxmq::elevator_lookup("none\n", 5, &t));
	EXPECT_EQ(t, nullptr);
	EXPECT_TRUE(cxmq::elevator_lookup("deadline", 8, &t));
	EXPECT_EQ(t, deadline_type());
	EXPECT_FALSE(cxmq::elevator_lookup("mq-deadlin", 10, &t));
	EXPECT_FALSE(cxmq::elevator_lookup("", 0, &t));
	EXPECT_EQ(cxmq_sched_lookup("bfq\n", 4), -CXMQ_EINVAL);
	EXPECT_TRUE(logged(CXMQ_LOG_ERR, "scheduler=bfq is invalid: must be none, mq-deadline"));
	EXPECT_EQ(cxmq_sched_lookup("none", 4), CXMQ_SCHED_NONE);
	EXPECT_EQ(cxmq_sched_lookup("mq-deadline\n", 12), 0);
}

// Switching while requests are out on every hardware queue: the freeze waits for them, the
// switch rebuilds the pools, and IO goes on through the new scheduler; nothing is lost.
TEST_F(Sched, SwitchWithRequestsOutOnEveryHardwareQueue)
{
	set_work_manual(false);
	Queue *q = make_queue(make_config(4, 8), &be());
	auto f = make_bios(96);
	size_t next = 0;
	const cxmq::ElevatorType *types[] = {deadline_type(), nullptr, kyber_type(), deadline_type(),
						   kyber_type(), nullptr};
	for (const cxmq::ElevatorType *t : types) {
		for (uint32_t cpu = 0; cpu < 4; cpu++) {
			set_this_cpu(cpu);
			for (int i = 0; i < 4; i++, next++)
				q->submit(bio_at(f[next], i % 2 ? CXMQ_OP_WRITE : CXMQ_OP_READ,
						 next * 64));
		}
		set_this_cpu(0);
		for (uint32_t h = 0; h < 4; h++)
			EXPECT_GT(q->hctx(h).tags->busy(), 0u) << h;
		std::atomic<bool> done{false};
		std::thread switcher([&] {
			q->freeze();
			EXPECT_EQ(q->set_elevator(t), 0);
			q->unfreeze();
			done = true;
		});
		while (!done) {
			be().complete_one();
			std::this_thread::yield();
		}
		switcher.join();
		EXPECT_EQ(q->elevator_type(), t);
		EXPECT_EQ(q->hctx(0).depth(), t ? 16u : 8u);
	}
	be().set_hold(false);
	while (be().complete_one()) {
	}
	EXPECT_TRUE(eventually([&] { return f[next - 1].ends.load() == 1; }));
	for (size_t i = 0; i < next; i++) {
		EXPECT_EQ(f[i].ends.load(), 1) << i;
		EXPECT_EQ(f[i].status.load(), CXMQ_STS_OK) << i;
	}
	EXPECT_TRUE(eventually([] { return works_idle(); }));
	destroy_queue(q);
}

// The configuration's scheduler (the `scheduler` parameter and configfs attribute) is attached
// when the queue is made, with its pool.
TEST_F(Sched, ConfigurationChoosesTheFirstScheduler)
{
	cxmq_dev_config cfg = make_config(2, 8);
	cfg.sched = 2;
	Queue *q = make_queue(cfg, &be());
	EXPECT_EQ(q->elevator_type(), kyber_type());
	EXPECT_EQ(q->nr_requests(), 16u);
	EXPECT_EQ(q->hctx(1).depth(), 16u);
	be().set_hold(false);
	auto f = make_bios(4);
	for (int i = 0; i < 4; i++)
		q->submit(bio_at(f[i], CXMQ_OP_READ, uint64_t(i) * 64));
	EXPECT_TRUE(eventually([&] { return f[3].ends.load() == 1; }));
	EXPECT_EQ(q->ctx(0).dispatched[0], 4u);
	destroy_queue(q);
}

// ---- kyber ----

// " <domain>_tokens=used/depth" of kyber's stats: {used, depth}.
std::pair<uint32_t, uint32_t> tokens(Queue *q, const char *domain)
{
	char buf[256];
	cxmq::TextOut o(buf, sizeof(buf));
	q->elevator()->show_stats(o);
	const std::string s(buf, o.len), key = std::string(" ") + domain + "_tokens=";
	const size_t at = s.find(key);
	EXPECT_NE(at, std::string::npos) << s;
	unsigned used = 0, depth = 0;
	EXPECT_EQ(sscanf(s.c_str() + at + key.size(), "%u/%u", &used, &depth), 2) << s;
	return {used, depth};
}

// The domains take turns, each a batch of its size (read 16, write 8, discard 1), starting
// with reads; a domain with nothing queued is passed over.
TEST_F(Sched, KyberServesDomainsInBatches)
{
	Queue *q = sched_queue(kyber_type(), 64);
	auto f = make_bios(33);
	std::vector<std::pair<uint16_t, uint64_t>> ios;
	for (int i = 0; i < 20; i++)
		ios.push_back({CXMQ_OP_READ, uint64_t(i) * 64});
	for (int i = 0; i < 10; i++)
		ios.push_back({CXMQ_OP_WRITE, 100000 + uint64_t(i) * 64});
	for (int i = 0; i < 3; i++)
		ios.push_back({CXMQ_OP_DISCARD, 200000 + uint64_t(i) * 64});
	lim.max_discard_segments = 1; // one range a request: the discards stay three
	submit_plugged(q, f.get(), ios);
	drain();
	std::string order;
	for (const Rec &r : be().recs())
		order += r.op == CXMQ_OP_READ ? 'R' : r.op == CXMQ_OP_WRITE ? 'W' : 'D';
	EXPECT_EQ(order, std::string(16, 'R') + std::string(8, 'W') + "D" + std::string(4, 'R') +
				 "WW" + "D" + "D");
	for (int i = 0; i < 33; i++)
		EXPECT_EQ(f[i].ends.load(), 1) << i;
	finish(q);
}

// A domain's tokens bound its requests at the backend (other: 16); a completion hands the
// freed token to the waiting hardware queue, which runs again.
TEST_F(Sched, KyberTokensBoundWhatIsOut)
{
	Queue *q = sched_queue(kyber_type(), 64);
	auto f = make_bios(20);
	for (int i = 0; i < 20; i++) // write-zeroes requests never merge
		q->submit(bio_at(f[i], CXMQ_OP_WRITE_ZEROES, uint64_t(i) * 64));
	drain_works();
	EXPECT_EQ(be().held(), 16u);
	EXPECT_EQ(tokens(q, "other"), std::make_pair(16u, 16u));
	ASSERT_TRUE(be().complete_one());
	drain_works();
	EXPECT_EQ(be().held(), 16u);
	EXPECT_EQ(be().recs().size(), 17u);
	be().set_hold(false);
	drain();
	EXPECT_EQ(tokens(q, "other").first, 0u);
	destroy_queue(q);
	for (int i = 0; i < 20; i++)
		EXPECT_EQ(f[i].ends.load(), 1) << i;
}

// Asynchronous writes may use 75% of each bitmap word of the pool; sync ones (O_DIRECT's
// REQ_SYNC) and reads all of it.
TEST_F(Sched, KyberAsyncDepthLimitsAsyncWrites)
{
	Queue *q = sched_queue(kyber_type(), 256); // the backend takes all that come
	q->freeze();
	ASSERT_EQ(q->set_nr_requests(128), 0); // 4 words of 32
	q->unfreeze();
	auto a = make_bios(128), sy = make_bios(128);
	for (int i = 0; i < 128; i++) {
		cxmq_bio b = bio_at(a[i], CXMQ_OP_WRITE, uint64_t(i) * 64);
		b.flags = CXMQ_BIO_NOWAIT;
		q->submit(b);
	}
	drain_works();
	EXPECT_EQ(be().held(), 4u * 24);
	int again = 0;
	for (int i = 0; i < 128; i++)
		again += a[i].ends.load() == 1 && a[i].status.load() == CXMQ_STS_AGAIN;
	EXPECT_EQ(again, 128 - 4 * 24);
	while (be().complete_one())
		drain_works();
	for (int i = 0; i < 128; i++) {
		cxmq_bio b = bio_at(sy[i], CXMQ_OP_WRITE, 100000 + uint64_t(i) * 64);
		b.flags = CXMQ_BIO_NOWAIT | CXMQ_BIO_SYNC;
		q->submit(b);
	}
	drain_works();
	EXPECT_EQ(be().held(), 128u);
	finish(q);
}

// Latency control under a simulated clock. A backend slow for writes (50 ms each: over the 10 ms
// target) while reads take 1 ms (within their 2 ms): the device is congested, and the read
// pool, whose latency is good, is throttled. Then reads that take 3 ms (over target): the read
// pool grows back to its 256 tokens. Meanwhile the tokens bound the reads that are out.
TEST_F(Sched, KyberPoolsShrinkWhenCongestedAndGrowBack)
{
	Queue *q = sched_queue(kyber_type(), 512); // nr_requests 256
	EXPECT_EQ(tokens(q, "read"), std::make_pair(0u, 256u));
	EXPECT_EQ(tokens(q, "write"), std::make_pair(0u, 128u));
	uint64_t sector = 0;
	auto submit_n = [&](uint16_t op, int n) {
		auto f = make_bios(size_t(n));
		for (int i = 0; i < n; i++, sector += 64)
			q->submit(bio_at(f[i], op, sector));
		drain_works();
		return f;
	};
	// 1.5 s: each 50 ms, one write out while 50 reads come and go, 1 ms each
	for (int it = 0; it < 30; it++) {
		auto w = submit_n(CXMQ_OP_WRITE, 1);
		for (int j = 0; j < 50; j++) {
			auto r = submit_n(CXMQ_OP_READ, 1);
			advance_clock(1000000);
			ASSERT_EQ(be().complete_op(CXMQ_OP_READ), 1u);
			drain_works();
		}
		ASSERT_EQ(be().complete_op(CXMQ_OP_WRITE), 1u);
		drain_works();
	}
	// congested once the writes' IO p90 counts (a second of samples): reads, p99 in their
	// second bucket (1 ms of 2), go to (1 + 1) / 4 of their 256 tokens
	const uint32_t throttled = tokens(q, "read").second;
	EXPECT_EQ(throttled, 128u);
	EXPECT_EQ(tokens(q, "write").second, 128u); // over target: never throttled
	{
		auto r = submit_n(CXMQ_OP_READ, 200); // fewer than the pool: none waits for a request
		EXPECT_EQ(be().held(), size_t(throttled));
		advance_clock(1000000);
		while (be().complete_op(CXMQ_OP_READ))
			drain_works();
		for (int i = 0; i < 200; i++)
			EXPECT_EQ(r[i].ends.load(), 1) << i;
	}
	// 2 s of reads, 10 at a time, 3 ms each
	for (int it = 0; it < 700; it++) {
		auto r = submit_n(CXMQ_OP_READ, 10);
		advance_clock(3000000);
		ASSERT_EQ(be().complete_op(CXMQ_OP_READ), 10u);
		drain_works();
	}
	EXPECT_EQ(tokens(q, "read").second, 256u);
	finish(q);
}

TEST_F(Sched, KyberTunables)
{
	Queue *q = sched_queue(kyber_type(), 64);
	const cxmq::ElevatorType *t = q->elevator_type();
	ASSERT_EQ(t->nr_attrs, 2u);
	EXPECT_EQ(shown(q, "read_lat_nsec"), "2000000\n");
	EXPECT_EQ(shown(q, "write_lat_nsec"), "10000000\n");
	for (const char *bad : {"abc", "-1", "0x10", "", "18446744073709551616", "1 2"}) {
		EXPECT_EQ(q->elevator()->store(0, bad), -CXMQ_EINVAL) << bad;
	}
	EXPECT_TRUE(logged(CXMQ_LOG_ERR, "kyber: read_lat_nsec=abc is invalid: must be a number"));
	EXPECT_EQ(shown(q, "read_lat_nsec"), "2000000\n");
	EXPECT_EQ(q->elevator()->store(1, "+5000000\n"), 0);
	EXPECT_EQ(shown(q, "write_lat_nsec"), "5000000\n");
	EXPECT_EQ(q->elevator()->store(0, "18446744073709551615"), 0);
	EXPECT_EQ(shown(q, "read_lat_nsec"), "18446744073709551615\n");
	finish(q);
}

} // namespace
