// SPDX-License-Identifier: GPL-2.0
// The core's tracepoints (src/core/trace.h, cxmq_os_trace): with the events on, every request
// the backend took shows up once as issued and once as completed, with requeues between issues
// when the backend is busy; merges say where and which end; each plug that took a request is
// flushed once; a queue's events carry its host handle. Disabled events are never emitted (the
// host reports one that is, os_user.cpp).
#include "test_util.h"

#include <map>
#include <thread>
#include <utility>

using namespace host;

namespace {

class Trace : public HostTest {};

constexpr uint32_t kAll = (1u << CXMQ_TRACE_NR_EVENTS) - 1;

std::vector<TraceEvent> of(const std::vector<TraceEvent> &ev, cxmq_trace_event e)
{
	std::vector<TraceEvent> v;
	for (const TraceEvent &t : ev)
		if (t.e == e)
			v.push_back(t);
	return v;
}

// Per (hardware queue, tag), in the order they were emitted: ISSUE, then REQUEUE (and ISSUE
// again) or COMPLETE. Fails the test on any other order; returns the completions.
uint64_t check_issue_order(const std::vector<TraceEvent> &ev)
{
	std::map<std::pair<uint32_t, uint32_t>, bool> in_flight;
	uint64_t completes = 0;
	for (const TraceEvent &t : ev) {
		const auto key = std::make_pair(t.rq.hctx, t.rq.tag);
		switch (t.e) {
		case CXMQ_TRACE_ISSUE:
			EXPECT_FALSE(in_flight[key]) << "tag " << t.rq.tag << " issued twice";
			in_flight[key] = true;
			break;
		case CXMQ_TRACE_REQUEUE:
		case CXMQ_TRACE_COMPLETE:
			EXPECT_TRUE(in_flight[key]) << "tag " << t.rq.tag << " ended, never issued";
			in_flight[key] = false;
			completes += t.e == CXMQ_TRACE_COMPLETE;
			break;
		default:
			break;
		}
	}
	for (const auto &kv : in_flight)
		EXPECT_FALSE(kv.second) << "tag " << kv.first.second << " issued, never completed";
	return completes;
}

TEST_F(Trace, EachIssuedRequestCompletesOnceUnderABusyBackend)
{
	cxmq_dev_config cfg = make_config(2, 16);
	cfg.irqmode = 1; // completions from the softirq threads
	QueueHandle q(cfg);
	cxmq_limits lim;
	cxmq::Queue::default_limits(cfg, &lim);
	cxmq_queue_set_host(q, &lim);
	cxmq_queue_set_busy_every(q, 7);
	set_trace(kAll);
	constexpr int kThreads = 4, kPer = 400;
	auto f = make_bios(kThreads * kPer);
	std::vector<std::thread> ts;
	for (int t = 0; t < kThreads; t++)
		ts.emplace_back([&, t] {
			set_this_cpu(uint32_t(t));
			for (int i = 0; i < kPer; i++) {
				FakeBio &b = f[size_t(t * kPer + i)];
				// every other group of 8 plugged: sequential, so they merge
				const bool plug = (i / 8) % 2;
				if (plug && i % 8 == 0)
					plug_start();
				Q(q).submit(accounted_bio(b, (i / 16) % 2 ? CXMQ_OP_WRITE
									  : CXMQ_OP_READ,
							  uint64_t(t * kPer + i) * 8, 8));
				if (plug && i % 8 == 7)
					plug_finish();
			}
		});
	for (auto &t : ts)
		t.join();
	for (int i = 0; i < kThreads * kPer; i++)
		ASSERT_TRUE(wait_ended(f[size_t(i)])) << i;
	drain_works();
	const auto ev = trace_events();
	set_trace(0);

	const uint64_t completes = check_issue_order(ev);
	const auto comp = of(ev, CXMQ_TRACE_COMPLETE);
	EXPECT_EQ(comp.size(), completes);
	uint64_t bios = 0, ns = 0;
	for (const TraceEvent &t : comp) {
		EXPECT_EQ(t.arg, uint32_t(CXMQ_STS_OK));
		bios += t.rq.nr_bios;
		ns += t.ns;
	}
	EXPECT_EQ(bios, uint64_t(kThreads * kPer)); // every bio in one completed request
	EXPECT_GT(ns, 0u);                          // latencies since issue
	// each merge added a bio to a request
	EXPECT_EQ(of(ev, CXMQ_TRACE_MERGE).size(), uint64_t(kThreads * kPer) - completes);
	EXPECT_GT(of(ev, CXMQ_TRACE_MERGE).size(), 0u);
	EXPECT_GT(of(ev, CXMQ_TRACE_REQUEUE).size(), 0u); // busy_every
	EXPECT_EQ(of(ev, CXMQ_TRACE_ISSUE).size(), completes + of(ev, CXMQ_TRACE_REQUEUE).size());
	// a plug that took a request is flushed once, with what it held
	const auto plugs = of(ev, CXMQ_TRACE_PLUG), unplugs = of(ev, CXMQ_TRACE_UNPLUG);
	EXPECT_EQ(plugs.size(), unplugs.size());
	EXPECT_GT(unplugs.size(), 0u);
	for (const TraceEvent &t : unplugs) // (implicit ones too: waiting for a tag unplugs)
		EXPECT_GE(t.arg, 1u);
	uint64_t dispatched = 0;
	for (const TraceEvent &t : of(ev, CXMQ_TRACE_RUN))
		dispatched += t.arg;
	EXPECT_LE(dispatched, of(ev, CXMQ_TRACE_ISSUE).size());
	for (const TraceEvent &t : ev) {
		EXPECT_EQ(t.rq.host, static_cast<void *>(&lim));
		EXPECT_LT(t.rq.hctx, 2u);
	}
}

TEST_F(Trace, PlugMergesSayWhereAndWhichEnd)
{
	QueueHandle q(make_config(1, 16));
	set_trace(kAll);
	auto f = make_bios(9);
	plug_start();
	for (int i = 0; i < 8; i++) // 1000, 1008, ...: back merges into the first
		Q(q).submit(accounted_bio(f[size_t(i)], CXMQ_OP_WRITE, 1000 + uint64_t(i) * 8, 8));
	Q(q).submit(accounted_bio(f[8], CXMQ_OP_WRITE, 992, 8)); // ends where it starts: front
	plug_finish();
	for (int i = 0; i < 9; i++)
		ASSERT_TRUE(wait_ended(f[size_t(i)]));
	const auto ev = trace_events();
	set_trace(0);
	const auto merges = of(ev, CXMQ_TRACE_MERGE);
	ASSERT_EQ(merges.size(), 8u);
	for (int i = 0; i < 7; i++) {
		EXPECT_EQ(merges[size_t(i)].arg,
			  uint32_t(CXMQ_TRACE_MERGE_ARG(CXMQ_TRACE_MERGE_PLUG, CXMQ_TRACE_MERGE_BACK)));
		EXPECT_EQ(merges[size_t(i)].rq.nr_sectors, 16u + 8u * uint32_t(i)); // after it
	}
	EXPECT_EQ(merges[7].arg,
		  uint32_t(CXMQ_TRACE_MERGE_ARG(CXMQ_TRACE_MERGE_PLUG, CXMQ_TRACE_MERGE_FRONT)));
	const auto issues = of(ev, CXMQ_TRACE_ISSUE);
	ASSERT_EQ(issues.size(), 1u);
	EXPECT_EQ(issues[0].rq.sector, 992u);
	EXPECT_EQ(issues[0].rq.nr_sectors, 72u);
	EXPECT_EQ(issues[0].rq.nr_bios, 9u);
	EXPECT_EQ(issues[0].rq.op, uint16_t(CXMQ_OP_WRITE));
	ASSERT_EQ(of(ev, CXMQ_TRACE_UNPLUG).size(), 1u);
	EXPECT_EQ(of(ev, CXMQ_TRACE_UNPLUG)[0].arg, 1u);
	EXPECT_EQ(check_issue_order(ev), 1u);
}

// Only what is enabled is emitted (os_user reports anything else), and nothing while off.
TEST_F(Trace, OnlyEnabledEventsAreEmitted)
{
	QueueHandle q(make_config(1, 16));
	auto f = make_bios(20);
	for (int i = 0; i < 10; i++)
		submit_range(q, f[size_t(i)], CXMQ_OP_READ, uint64_t(i) * 64, 8);
	EXPECT_TRUE(trace_events().empty());
	set_trace(1u << CXMQ_TRACE_COMPLETE);
	for (int i = 10; i < 20; i++)
		submit_range(q, f[size_t(i)], CXMQ_OP_READ, uint64_t(i) * 64, 8);
	for (int i = 0; i < 20; i++)
		ASSERT_TRUE(wait_ended(f[size_t(i)]));
	const auto ev = trace_events();
	set_trace(0);
	ASSERT_EQ(ev.size(), 10u);
	for (const TraceEvent &t : ev) {
		EXPECT_EQ(t.e, CXMQ_TRACE_COMPLETE);
		EXPECT_GT(t.ns, 0u); // timed from its issue (COMPLETE on: trace_issue takes the time)
	}
}

} // namespace
