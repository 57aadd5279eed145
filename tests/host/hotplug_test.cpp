// SPDX-License-Identifier: GPL-2.0
// CPU hotplug and the software queues (src/core/queue.cpp, Queue::assign_ctxs / dispatch_once):
// every possible CPU's software queue (ctx) belongs to the hardware queue its CPU maps to,
// online or not, and every run of that hardware queue drains all of them. The map is not
// rebuilt when a CPU goes offline or comes online. So:
//  - requests staged on the ctx of a CPU that then goes offline are still dispatched and
//    completed, by the next run of their hardware queue from another CPU;
//  - a CPU that was offline (even absent) when the queue was created and comes online later has
//    a working ctx: its submissions complete and are counted on it.
#include "test_util.h"

#include <algorithm>
#include <string>
#include <thread>

using namespace host;
using cxmq::Queue;

namespace {

class Hotplug : public HostTest {};
class HotplugIrqmode : public HostTest, public ::testing::WithParamInterface<uint32_t> {};

constexpr uint32_t kNoCpu = ~0u;
constexpr size_t kPage = 4096;
const std::string kCtxHeader = "CTX pending:\n";
const std::string kHctxHeader = "HCTX pending:\n";

cxmq_queue *C(Queue *q) { return reinterpret_cast<cxmq_queue *>(q); }

// A show() into a page: the text, which must fit with its NUL.
std::string hctx_file(cxmq_queue *q, uint32_t h, cxmq_hctx_attr a)
{
	std::string buf(kPage, '\0');
	const int n = cxmq_queue_show_hctx(q, h, a, &buf[0], kPage);
	EXPECT_GE(n, 0);
	EXPECT_LT(static_cast<size_t>(n), kPage);
	return n < 0 ? "<error " + std::to_string(n) + ">" : buf.substr(0, static_cast<size_t>(n));
}
std::string ctx_file(cxmq_queue *q, uint32_t cpu, cxmq_ctx_attr a)
{
	std::string buf(kPage, '\0');
	const int n = cxmq_queue_show_ctx(q, Q(q).map_cpu(cpu), cpu, a, &buf[0], kPage);
	EXPECT_GE(n, 0);
	EXPECT_LT(static_cast<size_t>(n), kPage);
	return n < 0 ? "<error " + std::to_string(n) + ">" : buf.substr(0, static_cast<size_t>(n));
}

// "reads writes\n", as the ctx's dispatched / completed files show them.
std::string rw(uint64_t reads, uint64_t writes)
{
	return std::to_string(reads) + " " + std::to_string(writes) + "\n";
}

// The request lines of a ctx's rq_list file (a short list: no "..." allowed).
size_t rq_list_lines(cxmq_queue *q, uint32_t cpu)
{
	const std::string s = ctx_file(q, cpu, CXMQ_CTX_RQ_LIST);
	EXPECT_EQ(s.compare(0, kCtxHeader.size(), kCtxHeader), 0) << s;
	EXPECT_EQ(s.find("..."), std::string::npos) << s;
	size_t n = 0;
	for (size_t at = s.find("\n\ttag "); at != std::string::npos; at = s.find("\n\ttag ", at + 1))
		n++;
	return n;
}

uint32_t nr_staged(Queue *q, uint32_t cpu)
{
	cxmq::SwQueue &x = q->ctx(cpu);
	cxmq::LockGuard g(x.lock);
	return x.nr_pending;
}

// The CPUs the mq/ tree lists under hardware queue h.
std::vector<uint32_t> hctx_cpus(cxmq_queue *q, uint32_t h)
{
	std::vector<uint32_t> l;
	const uint32_t nr = cxmq_queue_hctx_nr_cpus(q, h);
	for (uint32_t i = 0; i < nr; i++)
		l.push_back(cxmq_queue_hctx_cpu(q, h, i));
	return l;
}
bool lists_cpu(cxmq_queue *q, uint32_t h, uint32_t cpu)
{
	const std::vector<uint32_t> l = hctx_cpus(q, h);
	return std::find(l.begin(), l.end(), cpu) != l.end();
}

// An online CPU other than `not_cpu` whose map entry is (or, when `same` is false, is not) h.
uint32_t online_cpu(Queue *q, uint32_t h, bool same, uint32_t not_cpu)
{
	const Topology &t = topology();
	for (uint32_t c = 0; c < t.nr_cpu_ids; c++)
		if (c != not_cpu && t.online[c] && (q->map_cpu(c) == h) == same)
			return c;
	return kNoCpu;
}

// Opens the gate and joins the thread on every way out of a test (an ASSERT included).
struct JoinOnExit {
	Gate &gate;
	std::thread &thread;
	~JoinOnExit()
	{
		gate.open();
		if (thread.joinable())
			thread.join();
	}
};

// ---- a CPU that goes offline with requests staged on its software queue ----

// CPU 2 stages requests on its ctx while another CPU of the same hardware queue is inside the
// backend (holding the run), then goes offline. The run that follows, on the other CPU, drains
// CPU 2's ctx: every request is dispatched once, in order, ends once with OK on the running CPU
// (never on the offline one: the host reports a thread on an offline CPU), and CPU 2's counters
// and lists show it all done. The map and the hardware queue's CPU list keep CPU 2.
TEST_F(Hotplug, RequestsStagedOnACpuThatGoesOfflineCompleteOnTheNextRunFromAnotherCpu)
{
	set_topology(simple_topology(4));
	constexpr uint32_t kGone = 2;
	FakeBio first;
	first.id = 1000;
	Gate in_backend;
	ScriptBackend be([&](const Call &c, uint64_t) {
		if (c.bio == &first) {
			in_backend.wait();
			return Decision{Act::Hold};
		}
		return Decision{Act::Complete};
	});
	Queue *q = make_queue(make_config(2, 64), &be);
	ASSERT_NE(q, nullptr);
	cxmq_queue *c = C(q);
	ASSERT_EQ(q->nr_hw_queues(), 2u);
	const uint32_t h = q->map_cpu(kGone);
	const uint32_t other_h = 1 - h;
	// The runner shares CPU 2's hardware queue; the test thread moves to a CPU of the other.
	const uint32_t runner_cpu = online_cpu(q, h, true, kGone);
	const uint32_t elsewhere = online_cpu(q, h, false, kGone);
	ASSERT_NE(runner_cpu, kNoCpu);
	ASSERT_NE(elsewhere, kNoCpu);
	ASSERT_TRUE(lists_cpu(c, h, kGone));

	constexpr size_t kN = 12;
	auto bios = make_bios(kN); // before the runner, which may send them
	std::thread runner([&] {
		set_this_cpu(runner_cpu);
		submit(q, first); // a direct issue: holds the run until the gate opens
	});
	JoinOnExit join{in_backend, runner};
	ASSERT_TRUE(in_backend.wait_arrivals(1));

	uint64_t reads = 0, writes = 0;
	set_this_cpu(kGone);
	for (size_t i = 0; i < kN; i++) {
		const bool read = i % 3 == 1;
		submit(q, bios[i], read ? CXMQ_OP_READ : CXMQ_OP_WRITE);
		(read ? reads : writes)++;
	}
	set_this_cpu(elsewhere);
	ASSERT_EQ(nr_staged(q, kGone), kN) << "the requests were not staged on CPU 2's ctx";
	EXPECT_EQ(rq_list_lines(c, kGone), kN);
	EXPECT_EQ(hctx_file(c, h, CXMQ_HCTX_ACTIVE), std::to_string(kN + 1) + "\n");

	// CPU 2 goes offline; nothing remaps.
	Topology t = simple_topology(4);
	t.online[kGone] = false;
	set_topology(t);
	EXPECT_EQ(q->map_cpu(kGone), h);
	EXPECT_EQ(q->ctx(kGone).hctx_idx, h);
	EXPECT_TRUE(lists_cpu(c, h, kGone));
	EXPECT_EQ(nr_staged(q, kGone), kN);
	EXPECT_EQ(rq_list_lines(c, kGone), kN);
	for (size_t i = 0; i < kN; i++)
		EXPECT_EQ(bios[i].ends.load(), 0) << "bio " << i << " ended before any run";

	// The runner leaves the backend and runs the hardware queue again, on its own CPU.
	in_backend.open();
	runner.join();
	for (size_t i = 0; i < kN; i++) {
		EXPECT_EQ(bios[i].ends.load(), 1) << "bio " << i;
		EXPECT_EQ(bios[i].status.load(), CXMQ_STS_OK) << "bio " << i;
		EXPECT_EQ(bios[i].end_cpu.load(), runner_cpu) << "bio " << i;
		EXPECT_EQ(bios[i].end_context.load(), kProcess) << "bio " << i;
	}
	if (std::any_of(bios.get(), bios.get() + kN, [](const FakeBio &b) { return !b.ends.load(); })) {
		be.complete_all();
		// Stranded requests keep the queue's usage count up: destroying it would hang.
		FAIL() << "requests stranded on the offline CPU's ctx (the queue is leaked)";
	}
	std::vector<uint64_t> order{first.id};
	for (size_t i = 0; i < kN; i++)
		order.push_back(bios[i].id);
	EXPECT_EQ(be.accepted_ids(), order);
	for (const Call &call : be.calls()) {
		EXPECT_EQ(call.hctx, h);
		if (call.bio != &first) {
			EXPECT_TRUE(call.in_run) << "bio " << call.bio->id << " was not sent by a run";
		}
	}
	EXPECT_EQ(nr_staged(q, kGone), 0u);
	EXPECT_EQ(ctx_file(c, kGone, CXMQ_CTX_RQ_LIST), kCtxHeader);
	EXPECT_EQ(hctx_file(c, h, CXMQ_HCTX_PENDING), kHctxHeader);
	EXPECT_EQ(ctx_file(c, kGone, CXMQ_CTX_DISPATCHED), rw(reads, writes));
	EXPECT_EQ(ctx_file(c, kGone, CXMQ_CTX_COMPLETED), rw(reads, writes));
	EXPECT_EQ(hctx_file(c, h, CXMQ_HCTX_QUEUED), std::to_string(kN + 1) + "\n");
	EXPECT_EQ(hctx_file(c, h, CXMQ_HCTX_RUN), "1\n");
	EXPECT_EQ(hctx_file(c, other_h, CXMQ_HCTX_QUEUED), "0\n");
	EXPECT_EQ(hctx_file(c, other_h, CXMQ_HCTX_RUN), "0\n");

	EXPECT_EQ(be.complete_all(), 1u);
	EXPECT_EQ(first.ends.load(), 1);
	EXPECT_EQ(first.status.load(), CXMQ_STS_OK);
	EXPECT_EQ(ctx_file(c, runner_cpu, CXMQ_CTX_DISPATCHED), rw(0, 1));
	EXPECT_EQ(ctx_file(c, runner_cpu, CXMQ_CTX_COMPLETED), rw(0, 1));
	EXPECT_EQ(hctx_file(c, h, CXMQ_HCTX_ACTIVE), "0\n");

	// The queue goes on without CPU 2: a submission from its partner completes, and CPU 2's
	// counters do not move.
	set_this_cpu(runner_cpu);
	FakeBio later;
	later.id = 2000;
	submit(q, later, CXMQ_OP_READ);
	EXPECT_EQ(later.ends.load(), 1);
	EXPECT_EQ(later.status.load(), CXMQ_STS_OK);
	EXPECT_EQ(ctx_file(c, kGone, CXMQ_CTX_COMPLETED), rw(reads, writes));
	EXPECT_EQ(hctx_file(c, h, CXMQ_HCTX_QUEUED), std::to_string(kN + 2) + "\n");
	destroy_queue(q);
}

// ---- CPUs that were offline when the queue was created ----

// 4 CPUs: 2 possible but absent (hot-added later), 3 present but offline.
Topology late_cpus_topology()
{
	Topology t = simple_topology(4);
	t.present[2] = t.online[2] = false;
	t.online[3] = false;
	return t;
}
constexpr uint32_t kLateCpus[] = {2, 3};

// Both late CPUs have a ctx on the hardware queue they map to, listed in the mq/ tree.
void check_late_cpus_mapped(Queue *q)
{
	for (uint32_t cpu : kLateCpus) {
		EXPECT_LT(q->map_cpu(cpu), q->nr_hw_queues()) << "cpu " << cpu;
		EXPECT_EQ(q->ctx(cpu).hctx_idx, q->map_cpu(cpu)) << "cpu " << cpu;
		EXPECT_TRUE(lists_cpu(C(q), q->map_cpu(cpu), cpu)) << "cpu " << cpu;
	}
}

// CPUs 2 and 3 come online after the queue was made (the map is not rebuilt). From each:
// direct issues complete inline, and requests staged on its ctx while another CPU of its
// hardware queue holds the run are sent by that run. Every bio ends once with OK, and the ctx
// counts exactly what it issued, with nothing left on any list.
TEST_F(Hotplug, ACpuOfflineAtCreationThatComesOnlineLaterHasAWorkingCtx)
{
	set_topology(late_cpus_topology());
	constexpr uint64_t kHolderBase = 1000;
	Gate gates[2];
	ScriptBackend be([&](const Call &c, uint64_t) {
		if (c.bio->id >= kHolderBase) {
			gates[c.bio->id - kHolderBase].wait();
			return Decision{Act::Hold};
		}
		return Decision{Act::Complete};
	});
	Queue *q = make_queue(make_config(2, 64), &be);
	ASSERT_NE(q, nullptr);
	cxmq_queue *c = C(q);
	ASSERT_EQ(q->nr_hw_queues(), 2u);
	check_late_cpus_mapped(q);
	std::vector<uint32_t> map0;
	for (uint32_t cpu = 0; cpu < 4; cpu++)
		map0.push_back(q->map_cpu(cpu));

	set_topology(simple_topology(4));
	std::vector<uint32_t> map1;
	for (uint32_t cpu = 0; cpu < 4; cpu++)
		map1.push_back(q->map_cpu(cpu));
	EXPECT_EQ(map1, map0) << "the map changed on hotplug";
	check_late_cpus_mapped(q);

	constexpr size_t kDirect = 5, kStaged = 7;
	std::vector<uint64_t> queued(2, 0);
	uint64_t next_id = 0;
	for (size_t k = 0; k < 2; k++) {
		const uint32_t cpu = kLateCpus[k];
		const uint32_t h = q->map_cpu(cpu);
		SCOPED_TRACE("cpu " + std::to_string(cpu) + ", hctx " + std::to_string(h));
		uint64_t reads = 0, writes = 0;

		// Direct issues (nothing ahead of them): each completes inside submit, on this CPU.
		std::vector<std::unique_ptr<FakeBio>> direct;
		set_this_cpu(cpu);
		for (size_t i = 0; i < kDirect; i++) {
			direct.emplace_back(new FakeBio);
			direct.back()->id = next_id++;
			const bool read = i % 2 == 0;
			submit(q, *direct.back(), read ? CXMQ_OP_READ : CXMQ_OP_WRITE);
			(read ? reads : writes)++;
			queued[h]++;
			EXPECT_EQ(direct.back()->ends.load(), 1) << "direct bio " << i;
			EXPECT_EQ(direct.back()->status.load(), CXMQ_STS_OK) << "direct bio " << i;
			EXPECT_EQ(direct.back()->end_cpu.load(), cpu) << "direct bio " << i;
		}
		EXPECT_EQ(ctx_file(c, cpu, CXMQ_CTX_DISPATCHED), rw(reads, writes));
		EXPECT_EQ(ctx_file(c, cpu, CXMQ_CTX_COMPLETED), rw(reads, writes));

		// Staged on this CPU's ctx while a partner CPU holds the run.
		const uint32_t partner = online_cpu(q, h, true, cpu);
		ASSERT_NE(partner, kNoCpu);
		FakeBio holder;
		holder.id = kHolderBase + k;
		auto staged = std::unique_ptr<FakeBio[]>(new FakeBio[kStaged]);
		std::thread runner([&] {
			set_this_cpu(partner);
			submit(q, holder);
		});
		JoinOnExit join{gates[k], runner};
		ASSERT_TRUE(gates[k].wait_arrivals(1));
		queued[h]++;
		set_this_cpu(cpu);
		for (size_t i = 0; i < kStaged; i++) {
			staged[i].id = next_id++;
			const bool read = i % 3 == 0;
			submit(q, staged[i], read ? CXMQ_OP_READ : CXMQ_OP_WRITE);
			(read ? reads : writes)++;
			queued[h]++;
		}
		EXPECT_EQ(nr_staged(q, cpu), kStaged);
		EXPECT_EQ(rq_list_lines(c, cpu), kStaged);
		for (size_t i = 0; i < kStaged; i++)
			EXPECT_EQ(staged[i].ends.load(), 0) << "staged bio " << i;
		gates[k].open();
		runner.join();
		for (size_t i = 0; i < kStaged; i++) {
			EXPECT_EQ(staged[i].ends.load(), 1) << "staged bio " << i;
			EXPECT_EQ(staged[i].status.load(), CXMQ_STS_OK) << "staged bio " << i;
			EXPECT_EQ(staged[i].end_cpu.load(), partner) << "staged bio " << i;
		}
		if (std::any_of(staged.get(), staged.get() + kStaged,
				[](const FakeBio &b) { return !b.ends.load(); })) {
			be.complete_all();
			// Stranded requests keep the queue's usage count up: destroying it would hang.
			FAIL() << "requests stranded on the late CPU's ctx (the queue is leaked)";
		}
		EXPECT_EQ(be.complete_all(), 1u);
		EXPECT_EQ(holder.ends.load(), 1);
		EXPECT_EQ(holder.status.load(), CXMQ_STS_OK);

		EXPECT_EQ(nr_staged(q, cpu), 0u);
		EXPECT_EQ(ctx_file(c, cpu, CXMQ_CTX_RQ_LIST), kCtxHeader);
		EXPECT_EQ(hctx_file(c, h, CXMQ_HCTX_PENDING), kHctxHeader);
		EXPECT_EQ(hctx_file(c, h, CXMQ_HCTX_ACTIVE), "0\n");
		EXPECT_EQ(ctx_file(c, cpu, CXMQ_CTX_DISPATCHED), rw(reads, writes));
		EXPECT_EQ(ctx_file(c, cpu, CXMQ_CTX_COMPLETED), rw(reads, writes));
		// The partner counts its holder's write only.
		EXPECT_EQ(ctx_file(c, partner, CXMQ_CTX_DISPATCHED), rw(0, 1));
		EXPECT_EQ(ctx_file(c, partner, CXMQ_CTX_COMPLETED), rw(0, 1));
	}
	for (uint32_t h = 0; h < 2; h++)
		EXPECT_EQ(hctx_file(c, h, CXMQ_HCTX_QUEUED), std::to_string(queued[h]) + "\n")
			<< "hctx " << h;
	set_this_cpu(0);
	destroy_queue(q);
}

// The same through the C API and the null backend, in each completion mode: bios from the late
// CPUs end once with OK, on the CPU that submitted them and in the mode's context, and each late
// CPU's ctx counts exactly its reads and writes as dispatched and completed.
TEST_P(HotplugIrqmode, LateOnlineCpusCompleteAndAreCountedOnTheirCtx)
{
	const uint32_t irqmode = GetParam();
	set_topology(late_cpus_topology());
	cxmq_dev_config cfg = make_config(2, 64);
	cfg.irqmode = irqmode;
	QueueHandle qh(cfg);
	ASSERT_NE(qh.q, nullptr);
	Queue *q = &Q(qh.q);
	check_late_cpus_mapped(q);
	set_topology(simple_topology(4));

	constexpr size_t kReads = 9, kWrites = 14;
	std::vector<std::unique_ptr<FakeBio>> bios;
	std::vector<uint32_t> cpu_of;
	uint64_t next_id = 0;
	for (uint32_t cpu : kLateCpus) {
		set_this_cpu(cpu);
		for (size_t i = 0; i < kReads + kWrites; i++) {
			bios.emplace_back(new FakeBio);
			bios.back()->id = next_id++;
			cpu_of.push_back(cpu);
			submit(qh.q, *bios.back(), i < kReads ? CXMQ_OP_READ : CXMQ_OP_WRITE);
		}
	}
	set_this_cpu(0);
	const int context = irqmode == 0 ? kProcess : irqmode == 1 ? kSoftirq : kHardirq;
	if (!eventually([&] {
		    return std::all_of(bios.begin(), bios.end(),
				       [](const std::unique_ptr<FakeBio> &b) { return b->ends.load() != 0; });
	    })) {
		qh.q = nullptr; // destroying it would wait for the missing completions forever
		FAIL() << "bios from the late CPUs never ended (the queue is leaked)";
	}
	for (size_t i = 0; i < bios.size(); i++) {
		EXPECT_EQ(bios[i]->ends.load(), 1) << "bio " << i;
		EXPECT_EQ(bios[i]->status.load(), CXMQ_STS_OK) << "bio " << i;
		EXPECT_EQ(bios[i]->end_cpu.load(), cpu_of[i]) << "bio " << i;
		EXPECT_EQ(bios[i]->end_context.load(), context) << "bio " << i;
	}
	std::vector<uint64_t> queued(2, 0);
	for (uint32_t cpu : kLateCpus) {
		EXPECT_EQ(ctx_file(qh.q, cpu, CXMQ_CTX_DISPATCHED), rw(kReads, kWrites)) << "cpu " << cpu;
		EXPECT_EQ(ctx_file(qh.q, cpu, CXMQ_CTX_COMPLETED), rw(kReads, kWrites)) << "cpu " << cpu;
		EXPECT_EQ(ctx_file(qh.q, cpu, CXMQ_CTX_RQ_LIST), kCtxHeader) << "cpu " << cpu;
		queued[q->map_cpu(cpu)] += kReads + kWrites;
	}
	for (uint32_t cpu = 0; cpu < 2; cpu++) {
		EXPECT_EQ(ctx_file(qh.q, cpu, CXMQ_CTX_DISPATCHED), rw(0, 0)) << "cpu " << cpu;
		EXPECT_EQ(ctx_file(qh.q, cpu, CXMQ_CTX_COMPLETED), rw(0, 0)) << "cpu " << cpu;
	}
	for (uint32_t h = 0; h < 2; h++) {
		EXPECT_EQ(hctx_file(qh.q, h, CXMQ_HCTX_QUEUED), std::to_string(queued[h]) + "\n")
			<< "hctx " << h;
		EXPECT_EQ(hctx_file(qh.q, h, CXMQ_HCTX_PENDING), kHctxHeader) << "hctx " << h;
		// The tag is freed before the bio ends.
		EXPECT_EQ(hctx_file(qh.q, h, CXMQ_HCTX_ACTIVE), "0\n") << "hctx " << h;
	}
	qh.destroy();
}

INSTANTIATE_TEST_SUITE_P(Irqmodes, HotplugIrqmode, ::testing::Values(0u, 1u, 2u),
			 [](const ::testing::TestParamInfo<uint32_t> &i) {
				 return "irqmode" + std::to_string(i.param);
			 });

} // namespace
