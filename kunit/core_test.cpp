// SPDX-License-Identifier: GPL-2.0
// Bodies of the cxmq_core KUnit suite: the core's real code on the real kernel, with real
// kernel threads on every online CPU, real bios, real wait queues, percpu_ref and workqueues.
#include "kt.h"
#include "mem_store.h"
#include "null_backend.h"
#include "queue.h"

using namespace cxmq;

namespace {

cxmq_dev_config small_config(u32 queues, u32 depth)
{
	cxmq_dev_config cfg;
	cxmq_config_defaults(&cfg);
	cfg.size_mb = 1024;
	cfg.submit_queues = queues;
	cfg.hw_queue_depth = depth;
	return cfg;
}

// A backend that completes from a worker, later: submitters really run out of tags and sleep.
class DelayBackend final : public Backend {
public:
	explicit DelayBackend(u32 delay_us) : delay_us_(delay_us) {}
	bool init()
	{
		work_ = cxmq_os_work_create(complete_all, this, -1);
		return lock_.init(-1) && work_;
	}
	void attach(Queue *q) { queue_ = q; }
	u32 pdu_size() const override { return 16; }
	int init_hctx(HwQueue &) override { return 0; }
	void exit_hctx(HwQueue &) override {}
	int poll(HwQueue &) override { return 0; }
	cxmq_status queue_rq(HwQueue &, Request &rq, bool) override
	{
		// The payload is ours and sized as asked: write all of it.
		__builtin_memset(rq.pdu(), 0xa5, 16);
		{
			LockGuard g(lock_);
			inflight_.push_back(&rq.backend_node);
		}
		cxmq_os_work_schedule(work_, delay_us_, cxmq_os_this_cpu());
		return CXMQ_STS_OK;
	}
	void release() override
	{
		cxmq_os_work_destroy(work_);
		destroy(this);
	}
	static void complete_all(void *arg)
	{
		auto *self = static_cast<DelayBackend *>(arg);
		List done;
		{
			LockGuard g(self->lock_);
			done.splice_tail(self->inflight_);
		}
		while (ListNode *n = done.pop_front()) {
			Request *rq = CXMQ_CONTAINER_OF(n, Request, backend_node);
			self->queue_->end_request(*rq, CXMQ_STS_OK);
		}
	}

private:
	u32 delay_us_;
	Queue *queue_ = nullptr;
	SpinLock lock_;
	List inflight_;
	cxmq_os_work *work_ = nullptr;
};

Queue *make_null_queue(cxmq_dev_config cfg, NullBackend **out)
{
	NullBackend *b = NullBackend::create(cfg);
	if (!b)
		return nullptr;
	int err;
	Queue *q = Queue::create(cfg, b, &err);
	if (q)
		b->attach(q);
	if (out)
		*out = b;
	return q;
}

void teardown(Queue *q)
{
	q->shutdown();
	destroy(q);
}

struct SubmitArgs {
	Queue *q;
	cxmq_kt_bios *bios;
	u32 per_thread;
	u32 flags;
};

void submit_thread(void *p, unsigned int i)
{
	auto *a = static_cast<SubmitArgs *>(p);
	for (u32 k = 0; k < a->per_thread; k++) {
		u32 idx = i * a->per_thread + k;
		a->q->submit_bio(cxmq_kt_bio(a->bios, idx), (k & 1) ? CXMQ_OP_WRITE : CXMQ_OP_READ,
				 idx * 8ull, 8, a->flags);
	}
}

} // namespace

extern "C" {

void cxmq_kt_config_defaults(cxmq_kt *t)
{
	cxmq_dev_config cfg;
	cxmq_config_defaults(&cfg);
	KT_EXPECT(t, cfg.size_mb == 250ull * 1024);
	KT_EXPECT(t, cfg.bs == 512);
	KT_EXPECT(t, cfg.submit_queues == 1);
	KT_EXPECT(t, cfg.hw_queue_depth == 64);
	KT_EXPECT(t, cfg.irqmode == 0);
	KT_EXPECT(t, cfg.home_node == -1);
	KT_EXPECT(t, cxmq_config_check(&cfg) == 0);
}

void cxmq_kt_config_rejects_bad_input(cxmq_kt *t)
{
	struct Case {
		u64 size_mb;
		u32 bs, depth, irqmode, queues;
	} bad[] = {
		{0, 512, 64, 0, 1},    {1024, 3000, 64, 0, 1}, {1024, 256, 64, 0, 1},
		{1024, 8192, 64, 0, 1}, {1024, 512, 0, 0, 1},  {1024, 512, 4097, 0, 1},
		{1024, 512, 64, 3, 1},  {1024, 512, 64, 0, 0},
	};
	for (const Case &c : bad) {
		cxmq_dev_config cfg;
		cxmq_config_defaults(&cfg);
		cfg.size_mb = c.size_mb;
		cfg.bs = c.bs;
		cfg.hw_queue_depth = c.depth;
		cfg.irqmode = c.irqmode;
		cfg.submit_queues = c.queues;
		cxmq_dev_config before = cfg;
		KT_EXPECT(t, cxmq_config_check(&cfg) == -CXMQ_EINVAL);
		KT_EXPECT(t, __builtin_memcmp(&before, &cfg, sizeof(cfg)) == 0);
	}
	cxmq_dev_config cfg = small_config(4096, 64);
	KT_EXPECT(t, cxmq_config_check(&cfg) == 0);
	u32 possible = 0;
	for (u32 c = 0; c < cxmq_os_nr_cpu_ids(); c++)
		possible += cxmq_os_cpu_possible(c) ? 1 : 0;
	KT_EXPECT(t, cfg.submit_queues == possible);
}

void cxmq_kt_tags_distinct_and_exhaustible(cxmq_kt *t)
{
	const u32 depths[] = {1, 2, 3, 31, 64, 65, 100, 4096};
	for (u32 depth : depths) {
		TagMap *m = make<TagMap>(-1);
		KT_ASSERT(t, m && m->init(depth, -1) == 0);
		u8 *seen = static_cast<u8 *>(cxmq_os_zalloc(depth, -1));
		KT_ASSERT(t, seen);
		for (u32 i = 0; i < depth; i++) {
			s32 tag = m->try_get(i % cxmq_os_nr_cpu_ids());
			KT_EXPECT(t, tag >= 0 && u32(tag) < depth);
			if (tag >= 0 && u32(tag) < depth) {
				KT_EXPECT(t, !seen[tag]);
				seen[tag] = 1;
			}
		}
		KT_EXPECT(t, m->try_get(0) == TagMap::kNoTag);
		KT_EXPECT(t, m->busy() == depth);
		for (u32 i = 0; i < depth; i++)
			m->put(i, 0);
		KT_EXPECT(t, m->busy() == 0);
		cxmq_os_free(seen);
		destroy(m);
	}
}

void cxmq_kt_tags_cache_hot_reuse(cxmq_kt *t)
{
	TagMap *m = make<TagMap>(-1);
	KT_ASSERT(t, m && m->init(128, -1) == 0);
	s32 a = m->try_get(0);
	s32 b = m->try_get(0);
	KT_EXPECT(t, a >= 0 && b >= 0 && a != b);
	m->put(u32(a), 0);
	KT_EXPECT(t, m->try_get(0) == a); // the tag this CPU freed last comes back first
	m->put(u32(a), 0);
	m->put(u32(b), 0);
	destroy(m);
}

namespace {
struct TagStress {
	TagMap *map;
	u32 *owner; // one word per tag: 0 free, 1 owned
	u32 iterations;
	u32 violations;
	bool wait;
};

void tag_stress_thread(void *p, unsigned int)
{
	auto *s = static_cast<TagStress *>(p);
	for (u32 k = 0; k < s->iterations; k++) {
		u32 cpu = cxmq_os_this_cpu();
		s32 tag;
		if (s->wait) {
			tag = s32(s->map->get_wait(cpu));
		} else {
			tag = s->map->try_get(cpu);
			if (tag == TagMap::kNoTag)
				continue;
		}
		u32 expected = 0;
		if (!__atomic_compare_exchange_n(&s->owner[tag], &expected, 1u, false,
						 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			__atomic_add_fetch(&s->violations, 1u, __ATOMIC_RELAXED);
		__atomic_store_n(&s->owner[tag], 0u, __ATOMIC_RELEASE);
		s->map->put(u32(tag), cxmq_os_this_cpu());
	}
}
} // namespace

void cxmq_kt_tags_concurrent_unique(cxmq_kt *t)
{
	TagStress s{};
	s.map = make<TagMap>(-1);
	KT_ASSERT(t, s.map && s.map->init(8, -1) == 0);
	s.owner = static_cast<u32 *>(cxmq_os_zalloc(sizeof(u32) * 8, -1));
	KT_ASSERT(t, s.owner);
	s.iterations = 20000;
	u32 threads = cxmq_kt_nr_online_cpus() * 2;
	KT_EXPECT(t, cxmq_kt_run_threads(threads, tag_stress_thread, &s) == 0);
	KT_EXPECT(t, s.violations == 0);
	KT_EXPECT(t, s.map->busy() == 0);
	cxmq_os_free(s.owner);
	destroy(s.map);
}

void cxmq_kt_tags_wait_for_free(cxmq_kt *t)
{
	TagStress s{};
	s.map = make<TagMap>(-1);
	KT_ASSERT(t, s.map && s.map->init(2, -1) == 0);
	s.owner = static_cast<u32 *>(cxmq_os_zalloc(sizeof(u32) * 2, -1));
	KT_ASSERT(t, s.owner);
	s.iterations = 5000;
	s.wait = true; // more threads than tags: they sleep and must all be woken
	KT_EXPECT(t, cxmq_kt_run_threads(cxmq_kt_nr_online_cpus() * 3, tag_stress_thread, &s) == 0);
	KT_EXPECT(t, s.violations == 0);
	KT_EXPECT(t, s.map->busy() == 0);
	cxmq_os_free(s.owner);
	destroy(s.map);
}

void cxmq_kt_queue_all_cpus_complete(cxmq_kt *t)
{
	const u32 threads = cxmq_kt_nr_online_cpus() * 2, per = 4000;
	cxmq_dev_config cfg = small_config(cxmq_kt_nr_online_cpus(), 16);
	KT_ASSERT(t, cxmq_config_check(&cfg) == 0);
	Queue *q = make_null_queue(cfg, nullptr);
	KT_ASSERT(t, q);
	q->set_live();
	cxmq_kt_bios *bios = cxmq_kt_bios_create(threads * per);
	KT_ASSERT(t, bios);
	SubmitArgs a{q, bios, per, 0};
	KT_EXPECT(t, cxmq_kt_run_threads(threads, submit_thread, &a) == 0);
	KT_EXPECT(t, cxmq_kt_bios_wait(bios, u64(threads) * per, 10000));
	KT_EXPECT(t, cxmq_kt_bios_errors(bios) == 0);
	// Every request is accounted once on its software queue and its hardware queue.
	u64 dispatched = 0, completed = 0, queued = 0;
	for (u32 c = 0; c < q->nr_cpus(); c++) {
		dispatched += q->ctx(c).dispatched[0] + q->ctx(c).dispatched[1];
		completed += q->ctx(c).completed[0] + q->ctx(c).completed[1];
	}
	for (u32 i = 0; i < q->nr_hw_queues(); i++) {
		queued += q->hctx(i).queued;
		KT_EXPECT(t, q->hctx(i).tags->busy() == 0);
	}
	KT_EXPECT(t, dispatched == u64(threads) * per);
	KT_EXPECT(t, completed == u64(threads) * per);
	KT_EXPECT(t, queued == u64(threads) * per);
	teardown(q);
	cxmq_kt_bios_destroy(bios);
}

void cxmq_kt_queue_async_depth1(cxmq_kt *t)
{
	const u32 threads = cxmq_kt_nr_online_cpus() * 2, per = 300;
	cxmq_dev_config cfg = small_config(1, 1);
	DelayBackend *b = make<DelayBackend>(-1, 50u);
	KT_ASSERT(t, b && b->init());
	int err;
	Queue *q = Queue::create(cfg, b, &err);
	KT_ASSERT(t, q);
	b->attach(q);
	q->set_live();
	cxmq_kt_bios *bios = cxmq_kt_bios_create(threads * per);
	KT_ASSERT(t, bios);
	SubmitArgs a{q, bios, per, 0};
	KT_EXPECT(t, cxmq_kt_run_threads(threads, submit_thread, &a) == 0);
	KT_EXPECT(t, cxmq_kt_bios_wait(bios, u64(threads) * per, 30000));
	KT_EXPECT(t, cxmq_kt_bios_errors(bios) == 0);
	teardown(q);
	cxmq_kt_bios_destroy(bios);
}

void cxmq_kt_queue_busy_backend(cxmq_kt *t)
{
	const u32 threads = cxmq_kt_nr_online_cpus(), per = 3000;
	cxmq_dev_config cfg = small_config(1, 8);
	NullBackend *nb;
	Queue *q = make_null_queue(cfg, &nb);
	KT_ASSERT(t, q);
	q->set_live();
	nb->set_busy_every(7);
	cxmq_kt_bios *bios = cxmq_kt_bios_create(threads * per);
	KT_ASSERT(t, bios);
	SubmitArgs a{q, bios, per, 0};
	KT_EXPECT(t, cxmq_kt_run_threads(threads, submit_thread, &a) == 0);
	KT_EXPECT(t, cxmq_kt_bios_wait(bios, u64(threads) * per, 30000));
	KT_EXPECT(t, cxmq_kt_bios_errors(bios) == 0);
	KT_EXPECT(t, q->hctx(0).busy_events > 0);
	KT_EXPECT(t, q->hctx(0).run > 0);
	cxmq_kt_log(t, "busy answers %llu, runs %llu, direct issues %llu",
		    (unsigned long long)q->hctx(0).busy_events, (unsigned long long)q->hctx(0).run,
		    (unsigned long long)q->hctx(0).direct_issued);
	teardown(q);
	cxmq_kt_bios_destroy(bios);
}

void cxmq_kt_queue_freeze_nowait(cxmq_kt *t)
{
	cxmq_dev_config cfg = small_config(1, 4);
	Queue *q = make_null_queue(cfg, nullptr);
	KT_ASSERT(t, q);
	q->set_live();
	cxmq_kt_bios *bios = cxmq_kt_bios_create(3);
	KT_ASSERT(t, bios);
	q->freeze();
	q->submit_bio(cxmq_kt_bio(bios, 0), CXMQ_OP_READ, 0, 8, CXMQ_BIO_NOWAIT);
	KT_EXPECT(t, cxmq_kt_bios_status_count(bios, CXMQ_STS_AGAIN) == 1);
	q->unfreeze();
	q->submit_bio(cxmq_kt_bio(bios, 1), CXMQ_OP_READ, 0, 8, CXMQ_BIO_NOWAIT);
	q->submit_bio(cxmq_kt_bio(bios, 2), CXMQ_OP_WRITE, 0, 8, 0);
	KT_EXPECT(t, cxmq_kt_bios_wait(bios, 3, 5000));
	KT_EXPECT(t, cxmq_kt_bios_status_count(bios, CXMQ_STS_OK) == 2);
	teardown(q);
	cxmq_kt_bios_destroy(bios);
}

void cxmq_kt_queue_cpu_map(cxmq_kt *t)
{
	const u32 nr_cpus = cxmq_os_nr_cpu_ids();
	for (u32 queues = 1; queues <= 4; queues++) {
		cxmq_dev_config cfg = small_config(queues, 4);
		if (cxmq_config_check(&cfg))
			continue;
		Queue *q = make_null_queue(cfg, nullptr);
		KT_ASSERT(t, q);
		u32 *per_queue = static_cast<u32 *>(cxmq_os_zalloc(sizeof(u32) * cfg.submit_queues, -1));
		KT_ASSERT(t, per_queue);
		for (u32 c = 0; c < nr_cpus; c++) {
			if (!cxmq_os_cpu_possible(c))
				continue;
			KT_EXPECT(t, q->map_cpu(c) < cfg.submit_queues);
			if (q->map_cpu(c) < cfg.submit_queues)
				per_queue[q->map_cpu(c)]++;
		}
		u32 possible = 0;
		for (u32 c = 0; c < nr_cpus; c++)
			possible += cxmq_os_cpu_possible(c) ? 1 : 0;
		for (u32 i = 0; i < cfg.submit_queues && i < possible; i++)
			KT_EXPECT(t, per_queue[i] > 0);
		cxmq_os_free(per_queue);
		teardown(q);
	}
}

} // extern "C"

namespace {
// A live queue on the null backend with `nr` bios for it; finish() checks that every bio
// completed once without error, also after teardown, and frees everything.
struct NullRun {
	Queue *q = nullptr;
	cxmq_kt_bios *bios = nullptr;
	u64 nr = 0;

	bool start(cxmq_kt *t, cxmq_dev_config cfg, u64 nr_bios)
	{
		if (!KT_EXPECT(t, cxmq_config_check(&cfg) == 0))
			return false;
		q = make_null_queue(cfg, nullptr);
		if (!KT_EXPECT(t, q))
			return false;
		q->set_live();
		nr = nr_bios;
		bios = cxmq_kt_bios_create(static_cast<unsigned int>(nr));
		if (!KT_EXPECT(t, bios)) {
			teardown(q);
			return false;
		}
		return true;
	}
	void finish(cxmq_kt *t)
	{
		KT_EXPECT(t, cxmq_kt_bios_wait(bios, nr, 60000));
		KT_EXPECT(t, cxmq_kt_bios_errors(bios) == 0);
		teardown(q); // waits for any completion still on a timer or softirq list
		KT_EXPECT(t, cxmq_kt_bios_done(bios) == nr);
		cxmq_kt_bios_destroy(bios);
	}
};

void run_null_irqmode(cxmq_kt *t, u32 irqmode)
{
	const u32 threads = cxmq_kt_nr_online_cpus() * 2, per = 1500;
	cxmq_dev_config cfg = small_config(cxmq_kt_nr_online_cpus(), 8);
	cfg.irqmode = irqmode;
	cfg.completion_nsec = 20000;
	NullRun run;
	if (!run.start(t, cfg, u64(threads) * per))
		return;
	SubmitArgs a{run.q, run.bios, per, 0};
	KT_EXPECT(t, cxmq_kt_run_threads(threads, submit_thread, &a) == 0);
	run.finish(t);
}

struct StoreStress {
	MemStore *store;
	u32 violations;
};

// Each thread owns pages i, i + n, i + 2n, ...: writes a pattern, reads it back, discards
// every other page, checks it reads back zero. Threads share the stripe locks and the radix
// nodes (installed concurrently), never a page.
void store_thread(void *p, unsigned int i)
{
	auto *s = static_cast<StoreStress *>(p);
	const u32 n = cxmq_kt_nr_online_cpus() * 2;
	u8 *buf = static_cast<u8 *>(cxmq_os_zalloc(CXMQ_PAGE_SIZE, -1));
	if (!buf)
		return;
	for (u32 round = 0; round < 4; round++) {
		for (u64 page = i; page < 512; page += n) {
			u64 off = page * CXMQ_PAGE_SIZE + 100;
			__builtin_memset(buf, int(page + round) & 0xff, 3000);
			if (s->store->write(off, buf, 3000, true))
				__atomic_add_fetch(&s->violations, 1u, __ATOMIC_RELAXED);
			__builtin_memset(buf, 0, 3000);
			s->store->read(off, buf, 3000);
			for (u32 k = 0; k < 3000; k++)
				if (buf[k] != ((page + round) & 0xff)) {
					__atomic_add_fetch(&s->violations, 1u, __ATOMIC_RELAXED);
					break;
				}
			if (page & 1) {
				s->store->discard(page * CXMQ_PAGE_SIZE, CXMQ_PAGE_SIZE);
				s->store->read(off, buf, 3000);
				for (u32 k = 0; k < 3000; k++)
					if (buf[k]) {
						__atomic_add_fetch(&s->violations, 1u, __ATOMIC_RELAXED);
						break;
					}
			}
		}
	}
	cxmq_os_free(buf);
}
} // namespace

extern "C" {

void cxmq_kt_null_irqmode_softirq(cxmq_kt *t)
{
	run_null_irqmode(t, 1);
}

void cxmq_kt_null_irqmode_timer(cxmq_kt *t)
{
	run_null_irqmode(t, 2);
}

void cxmq_kt_mem_store_concurrent(cxmq_kt *t)
{
	StoreStress s{};
	s.store = make<MemStore>(-1);
	KT_ASSERT(t, s.store && s.store->init(u64(1) << 40, -1) == 0); // 1 TiB: four levels
	KT_EXPECT(t, cxmq_kt_run_threads(cxmq_kt_nr_online_cpus() * 2, store_thread, &s) == 0);
	KT_EXPECT(t, s.violations == 0);
	KT_EXPECT(t, s.store->nr_pages() == 256); // the even pages are kept
	// a write at the far end of the device works and is read back
	u8 tail[8] = {1, 2, 3, 4, 5, 6, 7, 8}, back[8] = {};
	KT_EXPECT(t, s.store->write((u64(1) << 40) - 8, tail, 8, true) == 0);
	s.store->read((u64(1) << 40) - 8, back, 8);
	KT_EXPECT(t, __builtin_memcmp(tail, back, 8) == 0);
	destroy(s.store); // frees every page and node: kmemleak checks
}

// The hardware queue count changes (freeze, update, unfreeze) again and again, 2 ms apart, for as
// long as threads on every CPU submit (and at least kMinResizes times), with completions from
// softirqs on other CPUs: every bio completes once, without error, and no submitter is left
// inside a hardware queue that a shrink freed (KASAN). The pause matters: back-to-back freezes
// would starve the submitters (each woken submitter finds the queue frozen again).
enum : u32 { kMinResizes = 10 };

struct ResizeArgs {
	SubmitArgs submit;
	u32 max_queues;
	u32 changes;
	u32 changes_under_io; // changes that began and ended while submitters were submitting
	u32 bad_counts;
	u32 submitters_left;
};

void resize_thread(void *p, unsigned int i)
{
	auto *a = static_cast<ResizeArgs *>(p);
	if (i > 0) {
		submit_thread(&a->submit, i - 1);
		__atomic_sub_fetch(&a->submitters_left, 1u, __ATOMIC_RELEASE);
		return;
	}
	for (u32 n = 0; n < kMinResizes || __atomic_load_n(&a->submitters_left, __ATOMIC_ACQUIRE); n++) {
		const bool busy_before = __atomic_load_n(&a->submitters_left, __ATOMIC_ACQUIRE);
		const u32 want = n % 2 ? 1 : a->max_queues;
		a->submit.q->freeze();
		if (a->submit.q->update_nr_hw_queues(want) != want)
			a->bad_counts++;
		a->submit.q->unfreeze();
		a->changes++;
		if (busy_before && __atomic_load_n(&a->submitters_left, __ATOMIC_ACQUIRE))
			a->changes_under_io++;
		cxmq_kt_msleep(2);
	}
}

void cxmq_kt_queue_resize_under_io(cxmq_kt *t)
{
	const u32 cpus = cxmq_kt_nr_online_cpus(), submitters = cpus * 2, per = 4000;
	cxmq_dev_config cfg = small_config(1, 16);
	cfg.irqmode = 1;
	NullRun run;
	if (!run.start(t, cfg, u64(submitters) * per))
		return;
	ResizeArgs a{{run.q, run.bios, per, 0}, cpus, 0, 0, 0, submitters};
	KT_EXPECT(t, cxmq_kt_run_threads(submitters + 1, resize_thread, &a) == 0);
	KT_EXPECT(t, a.bad_counts == 0);
	KT_EXPECT(t, a.changes_under_io >= 2); // both directions under IO at least once
	cxmq_kt_log(t, "%u hardware queue count changes (1 <-> %u), %u of them under %u submitters",
		    a.changes, cpus, a.changes_under_io, submitters);
	run.finish(t);
}

} // extern "C"

namespace {
struct PlugArgs {
	Queue *q;
	cxmq_kt_bios *bios;
	u32 per_thread;
	u32 batch;
};

// Plugged batches of sequential writes, each thread in its own region; every fourth batch
// sleeps while plugged, so the kernel unplugs it on the way to sleep (from_schedule).
void plug_thread(void *p, unsigned int i)
{
	auto *a = static_cast<PlugArgs *>(p);
	for (u32 k = 0; k < a->per_thread;) {
		void *plug = cxmq_kt_plug_start();
		const u32 start = k;
		for (; k < a->per_thread && k - start < a->batch; k++) {
			const u32 idx = i * a->per_thread + k;
			Bio b{};
			b.bio = cxmq_kt_bio(a->bios, idx);
			b.op = CXMQ_OP_WRITE;
			b.sector = (u64(i) << 24) + u64(k) * 8;
			b.nr_sectors = 8;
			b.nr_segs = 1;
			a->q->submit(b);
			if ((start / a->batch) % 4 == 3 && k - start == a->batch / 2)
				cxmq_kt_msleep(1);
		}
		cxmq_kt_plug_finish(plug);
	}
}
} // namespace

extern "C" {

// Submission under real plugs (blk_start_plug) from kernel threads on every CPU, irqmode 1:
// the plugged bios merge (the requests the backend saw are far fewer than the bios), every
// bio completes once without error, and the counters add up.
void cxmq_kt_plug_all_cpus_merge(cxmq_kt *t)
{
	const u32 threads = cxmq_kt_nr_online_cpus() * 2, per = 2048, batch = 64;
	cxmq_dev_config cfg = small_config(cxmq_kt_nr_online_cpus(), 16);
	cfg.irqmode = 1;
	KT_ASSERT(t, cxmq_config_check(&cfg) == 0);
	Queue *q = make_null_queue(cfg, nullptr);
	KT_ASSERT(t, q);
	q->set_live();
	cxmq_kt_bios *bios = cxmq_kt_bios_create(threads * per);
	KT_ASSERT(t, bios);
	PlugArgs a{q, bios, per, batch};
	KT_EXPECT(t, cxmq_kt_run_threads(threads, plug_thread, &a) == 0);
	KT_EXPECT(t, cxmq_kt_bios_wait(bios, u64(threads) * per, 20000));
	KT_EXPECT(t, cxmq_kt_bios_errors(bios) == 0);
	u64 requests = 0, plug_merged = 0, ctx_merged = 0, unplugs = 0, unplugged = 0;
	for (u32 c = 0; c < q->nr_cpus(); c++) {
		SwQueue &x = q->ctx(c);
		requests += x.dispatched[0] + x.dispatched[1];
		plug_merged += x.plug_merged;
		ctx_merged += x.merged;
		unplugs += x.unplugs;
		unplugged += x.unplugged;
	}
	cxmq_kt_log(t, "%u bios: %llu requests, %llu plug merges, %llu unplugs", threads * per,
		    (unsigned long long)requests, (unsigned long long)plug_merged,
		    (unsigned long long)unplugs);
	KT_EXPECT(t, requests + plug_merged + ctx_merged == u64(threads) * per);
	KT_EXPECT(t, plug_merged > 0);
	KT_EXPECT(t, requests * 4 < u64(threads) * per);
	KT_EXPECT(t, unplugs > 0);
	KT_EXPECT(t, unplugged <= requests);
	for (u32 i = 0; i < q->nr_hw_queues(); i++)
		KT_EXPECT(t, q->hctx(i).tags->busy() == 0);
	teardown(q);
	cxmq_kt_bios_destroy(bios);
}

} // extern "C"
