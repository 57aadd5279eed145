// SPDX-License-Identifier: GPL-2.0
// The virtio backend (src/core/virtio_backend.cpp) on fake virtqueues (os_vq.cpp): requests as
// the device reads them (header, data, ranges, status), the flush sequence of PREFLUSH and FUA
// writes, a full ring answered busy and the queue restarted by completions, the doorbell rung
// for everything added, scatterlists beyond the inline ones, the map by interrupt affinity,
// poll queues, and submitters racing the interrupt.
#include "test_util.h"

#include <cstring>
#include <memory>
#include <thread>

#include "virtio_backend.h"

using namespace host;
using cxmq::VirtioBackend;

namespace {

class Virtio : public HostTest {};

struct VirtioQueue {
	std::vector<std::unique_ptr<FakeVq>> vqs;
	std::vector<cxmq_os_vq *> handles;
	cxmq_limits lim{};
	cxmq_queue *q = nullptr;

	VirtioQueue(uint32_t nr, uint32_t nr_poll = 0, uint32_t features = CXMQ_VIRTIO_FLUSH |
				    CXMQ_VIRTIO_DISCARD | CXMQ_VIRTIO_WRITE_ZEROES,
		    uint32_t ring = 256, uint32_t depth = 64, uint32_t max_ranges = 1)
	{
		for (uint32_t i = 0; i < nr; i++) {
			vqs.emplace_back(new FakeVq(ring));
			handles.push_back(as_os_vq(vqs.back().get()));
		}
		cxmq_dev_config cfg = make_config(nr - nr_poll, depth);
		cfg.poll_queues = nr_poll;
		cxmq_virtio_config vc{};
		vc.vqs = handles.data();
		vc.nr_vqs = nr;
		vc.nr_poll = nr_poll;
		vc.features = features;
		vc.max_discard_segments = max_ranges;
		int err = 1;
		q = cxmq_queue_create_virtio(&cfg, &vc, &err);
		EXPECT_NE(q, nullptr);
		EXPECT_EQ(err, 0);
		lim.max_sectors = 2560;
		lim.max_segments = 128;
		lim.max_discard_sectors = 1u << 20;
		lim.max_discard_segments = max_ranges;
		lim.max_write_zeroes_sectors = 1u << 20;
		if (q)
			cxmq_queue_set_host(q, &lim);
	}
	~VirtioQueue()
	{
		if (q)
			cxmq_queue_destroy(q);
	}
	FakeVq &vq(uint32_t i = 0) { return *vqs[i]; }
	// The device completes n requests of vq i with status, then interrupts.
	void device_done(uint32_t i = 0, uint32_t n = ~0u, uint8_t status = 0)
	{
		vq(i).complete(n, status);
		cxmq_queue_vq_done(q, i);
	}
};

// A bio that may merge with the others submitted so (the same accounting).
void submit_accounted(cxmq_queue *q, FakeBio &f, uint16_t op, uint64_t sector, uint32_t n)
{
	cxmq_bio b = accounted_bio(f, op, sector, n);
	cxmq_queue_submit(q, &b);
}

void submit_write(cxmq_queue *q, FakeBio &b, uint64_t sector, uint32_t n, uint32_t flags = 0)
{
	submit_range(q, b, CXMQ_OP_WRITE, sector, n, flags);
}

TEST_F(Virtio, ReadsAndWritesBecomeVirtioBlkRequests)
{
	VirtioQueue v(2);
	auto bios = make_bios(2);
	set_this_cpu(0);
	submit_write(v.q, bios[0], 64, 8);
	submit_range(v.q, bios[1], CXMQ_OP_READ, 128, 16);
	ASSERT_EQ(v.vq(0).avail.size(), 2u);
	const VqEntry &w = v.vq(0).avail[0], &r = v.vq(0).avail[1];
	EXPECT_EQ(w.type, VirtioBackend::kTypeOut);
	EXPECT_EQ(w.sector, 64u);
	EXPECT_FALSE(w.data_in);
	ASSERT_EQ(w.bios.size(), 1u);
	EXPECT_EQ(w.bios[0], &bios[0]);
	EXPECT_EQ(r.type, VirtioBackend::kTypeIn);
	EXPECT_EQ(r.sector, 128u);
	EXPECT_TRUE(r.data_in);
	// each went alone (issued directly, `last`): the doorbell rang for both
	EXPECT_EQ(v.vq(0).seen_total.load(), 2u);
	EXPECT_EQ(bios[0].ends.load(), 0);
	v.device_done(0);
	EXPECT_EQ(bios[0].ends.load(), 1);
	EXPECT_EQ(bios[0].status.load(), CXMQ_STS_OK);
	EXPECT_EQ(bios[1].status.load(), CXMQ_STS_OK);
	EXPECT_TRUE(v.vq(1).avail.empty());
}

TEST_F(Virtio, TheStatusByteBecomesTheBiosStatus)
{
	VirtioQueue v(1);
	auto bios = make_bios(3);
	for (int i = 0; i < 3; i++)
		submit_range(v.q, bios[i], CXMQ_OP_READ, 8 * i, 8);
	v.device_done(0, 1, VirtioBackend::kStatusIoErr);
	v.device_done(0, 1, VirtioBackend::kStatusUnsupp);
	v.device_done(0, 1, 7); // anything else is an IO error too
	EXPECT_EQ(bios[0].status.load(), CXMQ_STS_IOERR);
	EXPECT_EQ(bios[1].status.load(), CXMQ_STS_NOTSUPP);
	EXPECT_EQ(bios[2].status.load(), CXMQ_STS_IOERR);
}

TEST_F(Virtio, APreflushFuaWriteIsFlushThenWriteThenFlush)
{
	VirtioQueue v(1);
	auto bios = make_bios(1);
	submit_write(v.q, bios[0], 8, 8, CXMQ_BIO_PREFLUSH | CXMQ_BIO_FUA);
	ASSERT_EQ(v.vq().avail.size(), 1u);
	EXPECT_EQ(v.vq().avail[0].type, VirtioBackend::kTypeFlush);
	EXPECT_TRUE(v.vq().avail[0].bios.empty());
	v.device_done();
	EXPECT_EQ(bios[0].ends.load(), 0);
	ASSERT_EQ(v.vq().avail.size(), 1u);
	EXPECT_EQ(v.vq().avail[0].type, VirtioBackend::kTypeOut);
	EXPECT_EQ(v.vq().avail[0].sector, 8u);
	v.device_done();
	EXPECT_EQ(bios[0].ends.load(), 0);
	ASSERT_EQ(v.vq().avail.size(), 1u);
	EXPECT_EQ(v.vq().avail[0].type, VirtioBackend::kTypeFlush);
	v.device_done();
	EXPECT_EQ(bios[0].ends.load(), 1);
	EXPECT_EQ(bios[0].status.load(), CXMQ_STS_OK);
	// every step was rung for
	EXPECT_EQ(v.vq().seen_total.load(), v.vq().added_total.load());
	EXPECT_EQ(v.vq().added_total.load(), 3u);
}

TEST_F(Virtio, AnEmptyPreflushWriteIsOneFlushAndAFailedFlushEndsTheSequence)
{
	VirtioQueue v(1);
	auto bios = make_bios(2);
	submit_write(v.q, bios[0], 0, 0, CXMQ_BIO_PREFLUSH);
	ASSERT_EQ(v.vq().avail.size(), 1u);
	EXPECT_EQ(v.vq().avail[0].type, VirtioBackend::kTypeFlush);
	v.device_done();
	EXPECT_EQ(bios[0].status.load(), CXMQ_STS_OK);
	submit_write(v.q, bios[1], 16, 8, CXMQ_BIO_PREFLUSH);
	v.device_done(0, 1, VirtioBackend::kStatusIoErr);
	EXPECT_EQ(bios[1].ends.load(), 1);
	EXPECT_EQ(bios[1].status.load(), CXMQ_STS_IOERR);
	EXPECT_TRUE(v.vq().avail.empty()) << "the write went on after its preflush failed";
}

TEST_F(Virtio, WithoutAWriteBackCacheFlushFlagsAreNoSteps)
{
	VirtioQueue v(1, 0, 0);
	auto bios = make_bios(3);
	submit_write(v.q, bios[0], 8, 8, CXMQ_BIO_PREFLUSH | CXMQ_BIO_FUA);
	ASSERT_EQ(v.vq().avail.size(), 1u);
	EXPECT_EQ(v.vq().avail[0].type, VirtioBackend::kTypeOut);
	v.device_done();
	EXPECT_EQ(bios[0].status.load(), CXMQ_STS_OK);
	submit_range(v.q, bios[1], CXMQ_OP_FLUSH, 0, 0);
	EXPECT_EQ(bios[1].status.load(), CXMQ_STS_OK) << "nothing to flush: done at once";
	submit_range(v.q, bios[2], CXMQ_OP_DISCARD, 0, 8);
	EXPECT_EQ(bios[2].status.load(), CXMQ_STS_NOTSUPP);
	EXPECT_TRUE(v.vq().avail.empty());
}

TEST_F(Virtio, AFullRingIsBusyAndCompletionsRestartTheQueue)
{
	VirtioQueue v(1, 0, CXMQ_VIRTIO_FLUSH, /*ring=*/2);
	auto bios = make_bios(6);
	for (int i = 0; i < 6; i++)
		submit_range(v.q, bios[i], CXMQ_OP_READ, 64 * i, 8); // not contiguous: no merges
	EXPECT_EQ(v.vq().avail_count(), 2u);
	EXPECT_GE(v.vq().full, 1u);
	EXPECT_EQ(v.vq().seen_total.load(), v.vq().added_total.load())
		<< "a request on the ring that the device was never told of";
	for (int round = 0; round < 3; round++) {
		v.device_done();
		ASSERT_TRUE(eventually([&] {
			return v.vq().avail_count() == 2u || bios[5].ends.load() == 1;
		}));
	}
	v.device_done();
	for (int i = 0; i < 6; i++) {
		EXPECT_TRUE(wait_ended(bios[i])) << i;
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK) << i;
	}
	EXPECT_EQ(v.vq().seen_total.load(), v.vq().added_total.load());
}

TEST_F(Virtio, ANextStepThatFindsTheRingFullWaitsForRoom)
{
	VirtioQueue v(1, 0, CXMQ_VIRTIO_FLUSH, /*ring=*/1);
	auto bios = make_bios(2);
	submit_write(v.q, bios[0], 0, 8, CXMQ_BIO_FUA);
	submit_range(v.q, bios[1], CXMQ_OP_READ, 64, 8); // waits: the ring is full
	ASSERT_EQ(v.vq().avail_count(), 1u);
	EXPECT_EQ(v.vq().avail[0].type, VirtioBackend::kTypeOut);
	v.device_done(); // the write is done: its flush goes on (or the read first)
	ASSERT_TRUE(eventually([&] { return v.vq().avail_count() == 1u; }));
	for (int i = 0; i < 4 && !(bios[0].ends.load() && bios[1].ends.load()); i++) {
		v.device_done();
		eventually([&] { return v.vq().avail_count() || (bios[0].ends && bios[1].ends); },
			   std::chrono::milliseconds(500));
	}
	EXPECT_EQ(bios[0].status.load(), CXMQ_STS_OK);
	EXPECT_EQ(bios[1].status.load(), CXMQ_STS_OK);
	EXPECT_EQ(v.vq().added_total.load(), 3u) << "write, its flush, the read";
	EXPECT_EQ(v.vq().seen_total.load(), v.vq().added_total.load());
}

TEST_F(Virtio, MoreSegmentsThanTheInlineScatterlistGetTheirOwn)
{
	VirtioQueue v(1);
	auto bios = make_bios(2);
	bios[0].nr_segs = CXMQ_VIRTIO_INLINE_SEGS + 9;
	bios[1].nr_segs = CXMQ_VIRTIO_INLINE_SEGS;
	submit_write(v.q, bios[0], 0, 128);
	submit_write(v.q, bios[1], 1024, 8);
	ASSERT_EQ(v.vq().avail.size(), 2u);
	EXPECT_EQ(v.vq().avail[0].segs, CXMQ_VIRTIO_INLINE_SEGS + 9);
	v.device_done();
	EXPECT_EQ(bios[0].status.load(), CXMQ_STS_OK);
	EXPECT_EQ(bios[1].status.load(), CXMQ_STS_OK);
}

struct RangeLE {
	uint64_t sector;
	uint32_t num_sectors, flags;
};
std::vector<RangeLE> ranges_of(const VqEntry &e)
{
	std::vector<RangeLE> r(e.payload.size() / sizeof(RangeLE));
	EXPECT_EQ(e.payload.size() % sizeof(RangeLE), 0u);
	memcpy(r.data(), e.payload.data(), r.size() * sizeof(RangeLE));
	return r;
}

TEST_F(Virtio, ADiscardOfSeveralBiosCarriesARangeForEach)
{
	VirtioQueue v(1, 0, CXMQ_VIRTIO_DISCARD, 256, 64, /*max_ranges=*/4);
	auto bios = make_bios(3);
	plug_start();
	submit_accounted(v.q, bios[0], CXMQ_OP_DISCARD, 0, 8);
	submit_accounted(v.q, bios[1], CXMQ_OP_DISCARD, 800, 16);
	submit_accounted(v.q, bios[2], CXMQ_OP_DISCARD, 4000, 8);
	plug_finish();
	ASSERT_EQ(v.vq().avail.size(), 1u) << "the three discards merged into one request";
	const VqEntry &e = v.vq().avail[0];
	EXPECT_EQ(e.type, VirtioBackend::kTypeDiscard);
	EXPECT_TRUE(e.bios.empty());
	auto r = ranges_of(e);
	ASSERT_EQ(r.size(), 3u);
	EXPECT_EQ(r[0].sector, 0u);
	EXPECT_EQ(r[0].num_sectors, 8u);
	EXPECT_EQ(r[1].sector, 800u);
	EXPECT_EQ(r[1].num_sectors, 16u);
	EXPECT_EQ(r[2].sector, 4000u);
	EXPECT_EQ(r[2].flags, 0u);
	v.device_done();
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK) << i;
}

TEST_F(Virtio, WriteZeroesUnmapsUnlessNounmapAndOneRangeCoversTheRequest)
{
	VirtioQueue v(1, 0, CXMQ_VIRTIO_WRITE_ZEROES | CXMQ_VIRTIO_DISCARD);
	auto bios = make_bios(4);
	submit_range(v.q, bios[0], CXMQ_OP_WRITE_ZEROES, 16, 32);
	submit_range(v.q, bios[1], CXMQ_OP_WRITE_ZEROES, 64, 8, CXMQ_BIO_NOUNMAP);
	plug_start(); // contiguous discards merge into one range when the device takes one
	submit_accounted(v.q, bios[2], CXMQ_OP_DISCARD, 100, 8);
	submit_accounted(v.q, bios[3], CXMQ_OP_DISCARD, 108, 8);
	plug_finish();
	ASSERT_EQ(v.vq().avail.size(), 3u);
	auto a = ranges_of(v.vq().avail[0]), b = ranges_of(v.vq().avail[1]);
	auto c = ranges_of(v.vq().avail[2]);
	EXPECT_EQ(v.vq().avail[0].type, VirtioBackend::kTypeWriteZeroes);
	ASSERT_EQ(a.size(), 1u);
	EXPECT_EQ(a[0].sector, 16u);
	EXPECT_EQ(a[0].num_sectors, 32u);
	EXPECT_EQ(a[0].flags, VirtioBackend::kWriteZeroesUnmap);
	ASSERT_EQ(b.size(), 1u);
	EXPECT_EQ(b[0].flags, 0u);
	ASSERT_EQ(c.size(), 1u);
	EXPECT_EQ(c[0].sector, 100u);
	EXPECT_EQ(c[0].num_sectors, 16u);
	v.device_done();
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK) << i;
}

TEST_F(Virtio, GetIdReadsIntoItsBio)
{
	VirtioQueue v(1);
	auto bios = make_bios(1);
	cxmq_bio b{};
	b.bio = &bios[0];
	b.op = CXMQ_OP_GET_ID;
	b.flags = CXMQ_BIO_NOMERGE;
	b.nr_segs = 1;
	cxmq_queue_submit(v.q, &b);
	ASSERT_EQ(v.vq().avail.size(), 1u);
	EXPECT_EQ(v.vq().avail[0].type, VirtioBackend::kTypeGetId);
	EXPECT_TRUE(v.vq().avail[0].data_in);
	EXPECT_EQ(v.vq().avail[0].bios.size(), 1u);
	v.device_done();
	EXPECT_EQ(bios[0].status.load(), CXMQ_STS_OK);
}

TEST_F(Virtio, CpusMapToTheQueueOfTheirInterruptsAffinity)
{
	set_topology(simple_topology(4));
	{
		VirtioQueue v(4);
		// no masks: the default map (CPU i -> queue i)
		for (uint32_t cpu = 0; cpu < 4; cpu++)
			EXPECT_EQ(Q(v.q).map_cpu(cpu), cpu);
	}
	std::vector<std::unique_ptr<FakeVq>> vqs;
	std::vector<cxmq_os_vq *> h;
	for (int i = 0; i < 2; i++) {
		vqs.emplace_back(new FakeVq());
		h.push_back(as_os_vq(vqs.back().get()));
	}
	vqs[0]->affinity_cpu = 3; // queue 0 takes CPU 3 only, queue 1 CPU 0 only
	vqs[1]->affinity_cpu = 0;
	cxmq_dev_config cfg = make_config(2, 16);
	cxmq_virtio_config vc{};
	vc.vqs = h.data();
	vc.nr_vqs = 2;
	int err = 1;
	cxmq_queue *q = cxmq_queue_create_virtio(&cfg, &vc, &err);
	ASSERT_NE(q, nullptr);
	EXPECT_EQ(Q(q).map_cpu(3), 0u);
	EXPECT_EQ(Q(q).map_cpu(0), 1u);
	EXPECT_EQ(Q(q).map_cpu(1), 0u) << "a CPU in no mask takes the first queue";
	auto bios = make_bios(1);
	set_this_cpu(0);
	submit_range(q, bios[0], CXMQ_OP_READ, 0, 8);
	EXPECT_EQ(vqs[1]->avail.size(), 1u);
	vqs[1]->complete();
	cxmq_queue_vq_done(q, 1);
	EXPECT_EQ(bios[0].status.load(), CXMQ_STS_OK);
	cxmq_queue_destroy(q);
}

TEST_F(Virtio, ACountMismatchIsRefused)
{
	std::unique_ptr<FakeVq> vq(new FakeVq());
	cxmq_os_vq *h = as_os_vq(vq.get());
	cxmq_dev_config cfg = make_config(2, 16);
	cxmq_virtio_config vc{};
	vc.vqs = &h;
	vc.nr_vqs = 1;
	int err = 0;
	EXPECT_EQ(cxmq_queue_create_virtio(&cfg, &vc, &err), nullptr);
	EXPECT_EQ(err, -CXMQ_EINVAL);
	EXPECT_TRUE(logged(CXMQ_LOG_ERR, "virtqueues"));
}

TEST_F(Virtio, PolledBiosGoToThePollVirtqueueAndCompleteWhenPolled)
{
	VirtioQueue v(2, 1);
	auto bios = make_bios(1);
	submit_range(v.q, bios[0], CXMQ_OP_READ, 0, 8, CXMQ_BIO_POLLED);
	ASSERT_EQ(v.vq(1).avail.size(), 1u);
	v.vq(1).complete();
	EXPECT_EQ(bios[0].ends.load(), 0);
	EXPECT_TRUE(v.vq(1).cb_enabled) << "a poll queue's interrupts are never touched";
	EXPECT_EQ(cxmq_queue_poll(v.q, bios[0].poll_cookie.load(), 1), 1);
	EXPECT_EQ(bios[0].status.load(), CXMQ_STS_OK);
}

// virtblk_done's loop: what the device finishes while the interrupt ends what it took is taken
// by the same interrupt (callbacks off meanwhile), not left for another.
TEST_F(Virtio, AnInterruptTakesWhatTheDeviceFinishedWhileItEndedTheFirst)
{
	VirtioQueue v(1);
	auto bios = make_bios(3);
	for (int i = 0; i < 3; i++)
		submit_range(v.q, bios[i], CXMQ_OP_READ, uint64_t(i) * 8, 8);
	ASSERT_EQ(v.vq().avail_count(), 3u);
	std::atomic<int> hook_runs{0};
	Hooks h;
	h.before_bio_end = [&](void *b) {
		hook_runs++;
		EXPECT_FALSE(v.vq().cb_enabled) << "callbacks on while the interrupt ends requests";
		if (b == &bios[0] || b == &bios[1])
			v.vq().complete(1); // the next one, while this one is being ended
	};
	set_hooks(h);
	v.device_done(0, 1);
	clear_hooks();
	EXPECT_EQ(hook_runs.load(), 3);
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(bios[i].ends.load(), 1) << i << ": left for another interrupt";
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK) << i;
	}
	EXPECT_TRUE(v.vq().used.empty());
	EXPECT_TRUE(v.vq().cb_enabled) << "the interrupt ends with callbacks on";
	v.device_done(); // (what a failing version left: the queue's destruction waits for it)
}

TEST_F(Virtio, SubmittersRaceTheInterrupt)
{
	set_topology(simple_topology(4));
	VirtioQueue v(2, 0, CXMQ_VIRTIO_FLUSH, /*ring=*/8, /*depth=*/16);
	constexpr int kThreads = 4, kPerThread = 300;
	std::unique_ptr<FakeBio[]> bios = make_bios(kThreads * kPerThread);
	std::atomic<bool> stop{false};
	std::thread device([&] { // completes what is on the rings, then interrupts
		while (!stop.load()) {
			for (uint32_t i = 0; i < 2; i++)
				if (v.vq(i).complete(3))
					cxmq_queue_vq_done(v.q, i);
			std::this_thread::yield();
		}
	});
	std::vector<std::thread> subs;
	for (int t = 0; t < kThreads; t++)
		subs.emplace_back([&, t] {
			set_this_cpu(uint32_t(t));
			for (int i = 0; i < kPerThread; i++) {
				FakeBio &b = bios[t * kPerThread + i];
				const uint32_t flags = i % 17 == 0 ? CXMQ_BIO_PREFLUSH | CXMQ_BIO_FUA : 0;
				submit_range(v.q, b, i % 2 ? CXMQ_OP_READ : CXMQ_OP_WRITE,
					     uint64_t(b.id) * 64, 8, flags);
			}
		});
	for (auto &t : subs)
		t.join();
	for (int i = 0; i < kThreads * kPerThread; i++) {
		ASSERT_TRUE(wait_ended(bios[i])) << i;
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK) << i;
	}
	stop = true;
	device.join();
	for (uint32_t i = 0; i < 2; i++) {
		EXPECT_TRUE(v.vq(i).avail.empty());
		EXPECT_EQ(v.vq(i).seen_total.load(), v.vq(i).added_total.load()) << i;
	}
}

// queue/rq_affinity (complete.cpp): the interrupt lands on CPU 0, the request came from CPU 1.
uint32_t end_cpu_with(uint32_t rq_affinity, bool share_cache, uint32_t flags, uint64_t *moved)
{
	Topology t = simple_topology(2);
	if (!share_cache)
		t.node = {0, 1};
	set_topology(t);
	VirtioQueue v(1);
	v.lim.rq_affinity = rq_affinity;
	auto bios = make_bios(1);
	set_this_cpu(1);
	submit_range(v.q, bios[0], CXMQ_OP_READ, 0, 8, flags);
	set_this_cpu(0);
	v.vq().complete();
	cxmq_queue_vq_done(v.q, 0);
	EXPECT_TRUE(wait_ended(bios[0]));
	EXPECT_EQ(bios[0].status.load(), CXMQ_STS_OK);
	uint64_t local = 0;
	Q(v.q).irq_completions(&local, moved);
	EXPECT_EQ(local + *moved, 1u);
	return bios[0].end_cpu.load();
}

TEST_F(Virtio, RqAffinityMovesCompletionsToTheSubmitterAsAsked)
{
	uint64_t moved = 0;
	EXPECT_EQ(end_cpu_with(0, false, 0, &moved), 0u) << "0: where the interrupt landed";
	EXPECT_EQ(moved, 0u);
	EXPECT_EQ(end_cpu_with(1, true, 0, &moved), 0u) << "1, a shared cache: locally";
	EXPECT_EQ(moved, 0u);
	EXPECT_EQ(end_cpu_with(1, false, 0, &moved), 1u) << "1, no shared cache: the submitter";
	EXPECT_EQ(moved, 1u);
	EXPECT_EQ(end_cpu_with(2, true, 0, &moved), 1u) << "2: always the submitter";
	EXPECT_EQ(moved, 1u);
}

TEST_F(Virtio, RqAffinityLeavesAnOfflineSubmittersCompletionWhereItIs)
{
	Topology t = simple_topology(2);
	set_topology(t);
	VirtioQueue v(1);
	v.lim.rq_affinity = 2;
	auto bios = make_bios(1);
	set_this_cpu(1);
	submit_range(v.q, bios[0], CXMQ_OP_READ, 0, 8);
	t.online[1] = false;
	set_topology(t);
	set_this_cpu(0);
	v.device_done();
	EXPECT_EQ(bios[0].end_cpu.load(), 0u);
	uint64_t local = 0, moved = 0;
	Q(v.q).irq_completions(&local, &moved);
	EXPECT_EQ(local, 1u);
}

TEST_F(Virtio, ManyCompletionsMovedAtOnceAllEnd)
{
	Topology t = simple_topology(4);
	set_topology(t);
	VirtioQueue v(1, 0, CXMQ_VIRTIO_FLUSH, 256, 128);
	v.lim.rq_affinity = 2;
	auto bios = make_bios(100);
	for (int i = 0; i < 100; i++) {
		set_this_cpu(1 + i % 3);
		submit_range(v.q, bios[i], CXMQ_OP_READ, 64 * i, 8);
	}
	set_this_cpu(0);
	v.device_done();
	for (int i = 0; i < 100; i++) {
		ASSERT_TRUE(wait_ended(bios[i])) << i;
		EXPECT_EQ(bios[i].end_cpu.load(), uint32_t(1 + i % 3)) << i;
	}
	uint64_t local = 0, moved = 0;
	Q(v.q).irq_completions(&local, &moved);
	EXPECT_EQ(moved, 100u);
}

} // namespace

namespace {

// virtio_blk's cache_type words, a trailing newline allowed; anything else refused, named.
TEST_F(Virtio, CacheTypeTakesVirtioBlksTwoWordsOnly)
{
	EXPECT_EQ(cxmq_virtio_cache_type_parse("cxmq3", "write through"), 0);
	EXPECT_EQ(cxmq_virtio_cache_type_parse("cxmq3", "write back\n"), 1);
	EXPECT_TRUE(logs().empty());
	for (const char *bad : {"write back\n\n", "write-back", "write backx", "write", "",
				"Write back", " write back", "write through\nwrite back", "1"}) {
		clear_logs();
		EXPECT_EQ(cxmq_virtio_cache_type_parse("cxmq3", bad), -CXMQ_EINVAL) << bad;
		EXPECT_TRUE(logged(CXMQ_LOG_ERR, "cxmq: cxmq3: cache_type=")) << bad;
		EXPECT_TRUE(logged(CXMQ_LOG_ERR, "must be \"write through\" or \"write back\"")) << bad;
	}
	clear_logs();
	EXPECT_EQ(cxmq_virtio_cache_type_parse("cxmq3", nullptr), -CXMQ_EINVAL);
	EXPECT_TRUE(logged(CXMQ_LOG_ERR, "cxmq: cxmq3: cache_type= is invalid"));
	const std::string longer(200, 'w');
	clear_logs();
	EXPECT_EQ(cxmq_virtio_cache_type_parse("cxmq3", longer.c_str()), -CXMQ_EINVAL);
	clear_logs();
}

} // namespace
