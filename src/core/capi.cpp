// SPDX-License-Identifier: GPL-2.0
// The core's C entry points (include/cxmq/core.h).
#include "cxmq/core.h"
#include "null_backend.h"
#include "queue.h"
#include "text.h"

using namespace cxmq;

// struct cxmq_queue is never defined: the handle is a Queue.
static Queue &Q(struct cxmq_queue *q) { return *reinterpret_cast<Queue *>(q); }
static const Queue &Q(const struct cxmq_queue *q) { return *reinterpret_cast<const Queue *>(q); }


extern "C" {

void cxmq_config_defaults(struct cxmq_dev_config *cfg)
{
	*cfg = cxmq_dev_config{};
	cfg->size_mb = 250 * 1024; // null_blk: gb=250
	cfg->bs = 512;
	cfg->submit_queues = 1;
	cfg->hw_queue_depth = 64;
	cfg->irqmode = 0;
	cfg->completion_nsec = 10000;
	cfg->home_node = -1;
	cfg->memory_backed = 0;
}

int cxmq_config_check(struct cxmq_dev_config *cfg)
{
	const u64 max_mb = u64(CXMQ_MAX_GB) * 1024;
	if (cfg->size_mb == 0 || cfg->size_mb > max_mb) {
		cxmq_os_log(CXMQ_LOG_ERR,
			    "cxmq: size=%llu MiB is invalid: must be 1..%llu MiB (gb=1..%u)\n",
			    static_cast<unsigned long long>(cfg->size_mb),
			    static_cast<unsigned long long>(max_mb), CXMQ_MAX_GB);
		return -CXMQ_EINVAL;
	}
	if (!is_power_of_2(cfg->bs) || cfg->bs < CXMQ_MIN_BS || cfg->bs > CXMQ_MAX_BS) {
		cxmq_os_log(CXMQ_LOG_ERR,
			    "cxmq: bs=%u is invalid: must be a power of two in %u..%u\n", cfg->bs,
			    CXMQ_MIN_BS, CXMQ_MAX_BS);
		return -CXMQ_EINVAL;
	}
	if (cfg->size_mb * 1024 * 1024 % cfg->bs) {
		cxmq_os_log(CXMQ_LOG_ERR, "cxmq: size is not a multiple of bs=%u\n", cfg->bs);
		return -CXMQ_EINVAL;
	}
	if (cfg->hw_queue_depth == 0 || cfg->hw_queue_depth > CXMQ_MAX_QUEUE_DEPTH) {
		cxmq_os_log(CXMQ_LOG_ERR, "cxmq: hw_queue_depth=%u is invalid: must be 1..%u\n",
			    cfg->hw_queue_depth, CXMQ_MAX_QUEUE_DEPTH);
		return -CXMQ_EINVAL;
	}
	if (cfg->irqmode > 2) {
		cxmq_os_log(CXMQ_LOG_ERR,
			    "cxmq: irqmode=%u is invalid: must be 0 (none), 1 (softirq) or 2 (timer)\n",
			    cfg->irqmode);
		return -CXMQ_EINVAL;
	}
	if (cfg->irqmode == 2 && (cfg->completion_nsec == 0 || cfg->completion_nsec > 10000000000ull)) {
		cxmq_os_log(CXMQ_LOG_ERR,
			    "cxmq: completion_nsec=%llu is invalid: must be 1..10000000000 (10 s)\n",
			    static_cast<unsigned long long>(cfg->completion_nsec));
		return -CXMQ_EINVAL;
	}
	if (cfg->memory_backed > 1) {
		cxmq_os_log(CXMQ_LOG_ERR, "cxmq: memory_backed=%u is invalid: must be 0 or 1\n",
			    cfg->memory_backed);
		return -CXMQ_EINVAL;
	}
	if (cfg->submit_queues == 0) {
		cxmq_os_log(CXMQ_LOG_ERR, "cxmq: submit_queues=0 is invalid: must be at least 1\n");
		return -CXMQ_EINVAL;
	}
	u32 possible = 0;
	for (u32 cpu = 0; cpu < cxmq_os_nr_cpu_ids(); cpu++)
		possible += cxmq_os_cpu_possible(cpu) ? 1 : 0;
	if (cfg->submit_queues > possible) {
		cxmq_os_log(CXMQ_LOG_WARN,
			    "cxmq: submit_queues=%u is more than the %u possible CPUs: using %u\n",
			    cfg->submit_queues, possible, possible);
		cfg->submit_queues = possible;
	}
	return 0;
}

struct cxmq_queue *cxmq_queue_create(const struct cxmq_dev_config *cfg, int *err)
{
	NullBackend *backend = NullBackend::create(*cfg);
	if (!backend) {
		*err = -CXMQ_ENOMEM;
		return nullptr;
	}
	Queue *q = Queue::create(*cfg, backend, err);
	if (!q)
		return nullptr;
	backend->attach(q);
	return reinterpret_cast<cxmq_queue *>(q);
}

void cxmq_queue_set_live(struct cxmq_queue *q)
{
	Q(q).set_live();
}

void cxmq_queue_destroy(struct cxmq_queue *q)
{
	if (!q)
		return;
	Q(q).shutdown();
	destroy(&Q(q));
}

void cxmq_queue_submit_bio(struct cxmq_queue *q, void *bio, enum cxmq_op op, cxmq_u64 sector,
			   cxmq_u32 nr_sectors, cxmq_u32 flags, cxmq_u64 cookie)
{
	Q(q).submit_bio(bio, op, sector, nr_sectors, flags, cookie);
}

void cxmq_queue_freeze(struct cxmq_queue *q)
{
	Q(q).freeze();
}

void cxmq_queue_unfreeze(struct cxmq_queue *q)
{
	Q(q).unfreeze();
}

cxmq_u32 cxmq_queue_nr_hw_queues(const struct cxmq_queue *q)
{
	return Q(q).nr_hw_queues();
}

void cxmq_queue_set_busy_every(struct cxmq_queue *q, cxmq_u32 n)
{
	static_cast<NullBackend &>(Q(q).backend()).set_busy_every(n);
}


int cxmq_queue_format_stats(struct cxmq_queue *q, char *buf, cxmq_size_t size)
{
	Queue &qu = Q(q);
	TextOut o(buf, size);
	for (u32 i = 0; i < qu.nr_hw_queues(); i++) {
		HwQueue &h = qu.hctx(i);
		o.put("hctx%u: queued=%llu run=%llu direct=%llu busy=%llu tags_busy=%u/%u dispatch=%u",
		      i, ull(load_relaxed(h.queued)), ull(load_relaxed(h.run)),
		      ull(load_relaxed(h.direct_issued)), ull(load_relaxed(h.busy_events)),
		      h.tags.busy(), h.depth(), load_relaxed(h.nr_dispatch));
		o.put(" dispatched=");
		for (u32 b = 0; b < kDispatchBuckets; b++)
			o.put("%s%llu", b ? "," : "", ull(load_relaxed(h.dispatched[b])));
		o.put(" cpus=");
		for (u32 c = 0; c < h.nr_ctx; c++)
			o.put("%s%u", c ? "," : "", h.ctx_cpus[c]);
		o.put("\n");
		for (u32 c = 0; c < h.nr_ctx; c++) {
			SwQueue &x = qu.ctx(h.ctx_cpus[c]);
			o.put("  cpu%u: dispatched=%llu %llu completed=%llu %llu pending=%u\n", x.cpu,
			      ull(load_relaxed(x.dispatched[0])), ull(load_relaxed(x.dispatched[1])),
			      ull(load_relaxed(x.completed[0])), ull(load_relaxed(x.completed[1])),
			      load_relaxed(x.nr_pending));
		}
	}
	auto &nb = static_cast<NullBackend &>(qu.backend());
	o.put("backend: busy_answers=%llu pages=%llu\n", ull(nb.busy_answers()),
	      ull(nb.store() ? nb.store()->nr_pages() : 0));
	return o.result();
}

} // extern "C"
