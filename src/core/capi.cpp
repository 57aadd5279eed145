// SPDX-License-Identifier: GPL-2.0
// The core's C entry points (include/cxmq/core.h).
#include "cxmq/core.h"
#include "null_backend.h"
#include "queue.h"
#include "settings.h"
#include "text.h"
#include "virtio_backend.h"

using namespace cxmq;

// struct cxmq_queue is never defined: the handle is a Queue.
static Queue &Q(struct cxmq_queue *q) { return *reinterpret_cast<Queue *>(q); }
static const Queue &Q(const struct cxmq_queue *q) { return *reinterpret_cast<const Queue *>(q); }


extern "C" {

// The settings table (settings.cpp) holds the defaults and the checks.
void cxmq_config_defaults(struct cxmq_dev_config *cfg)
{
	settings::config_defaults(cfg);
}

int cxmq_config_check(struct cxmq_dev_config *cfg)
{
	return settings::config_check(cfg);
}

struct cxmq_queue *cxmq_queue_create(const struct cxmq_dev_config *cfg, int *err)
{
	return cxmq_queue_create_shared(cfg, nullptr, err);
}

struct cxmq_queue *cxmq_queue_create_shared(const struct cxmq_dev_config *cfg,
					    struct cxmq_tag_set *set, int *err)
{
	NullBackend *backend = NullBackend::create(*cfg);
	if (!backend) {
		*err = -CXMQ_ENOMEM;
		return nullptr;
	}
	Queue *q = Queue::create(*cfg, backend, err, reinterpret_cast<TagSet *>(set));
	if (!q)
		return nullptr;
	backend->attach(q);
	return reinterpret_cast<cxmq_queue *>(q);
}

struct cxmq_queue *cxmq_queue_create_virtio(const struct cxmq_dev_config *cfg,
					    const struct cxmq_virtio_config *vc, int *err)
{
	if (cfg->submit_queues + cfg->poll_queues != vc->nr_vqs || cfg->poll_queues != vc->nr_poll) {
		cxmq_os_log(CXMQ_LOG_ERR, "cxmq: virtio: %u + %u hardware queues for %u virtqueues\n",
			    cfg->submit_queues, cfg->poll_queues, vc->nr_vqs);
		*err = -CXMQ_EINVAL;
		return nullptr;
	}
	VirtioBackend *backend = VirtioBackend::create(*vc, cfg->home_node, err);
	if (!backend)
		return nullptr;
	Queue *q = Queue::create(*cfg, backend, err);
	if (!q)
		return nullptr;
	backend->attach(q);
	return reinterpret_cast<cxmq_queue *>(q);
}

void cxmq_queue_vq_done(struct cxmq_queue *q, cxmq_u32 index)
{
	Backend &b = Q(q).backend();
	if (b.kind() == Backend::Kind::kVirtio)
		static_cast<VirtioBackend &>(b).vq_done(index);
}

cxmq_u32 cxmq_queue_hw_queue_depth(const struct cxmq_queue *q)
{
	return Q(q).config().hw_queue_depth;
}

struct cxmq_tag_set *cxmq_tag_set_create(void)
{
	return reinterpret_cast<cxmq_tag_set *>(TagSet::create());
}

void cxmq_tag_set_destroy(struct cxmq_tag_set *set)
{
	if (set)
		destroy(reinterpret_cast<TagSet *>(set));
}

void cxmq_tag_set_prepare_update(struct cxmq_tag_set *set, cxmq_u32 *nr, cxmq_u32 *nr_poll)
{
	reinterpret_cast<TagSet *>(set)->prepare_update(nr, nr_poll);
}

void cxmq_tag_set_finish_update(struct cxmq_tag_set *set)
{
	reinterpret_cast<TagSet *>(set)->finish_update();
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

void cxmq_queue_cpu_offline(struct cxmq_queue *q, cxmq_u32 cpu)
{
	Q(q).cpu_offline(cpu);
}

void cxmq_queue_cpu_online(struct cxmq_queue *q, cxmq_u32 cpu)
{
	Q(q).cpu_online(cpu);
}

void cxmq_queue_shutdown(struct cxmq_queue *q)
{
	Q(q).shutdown();
}

void cxmq_queue_submit_bio(struct cxmq_queue *q, void *bio, enum cxmq_op op, cxmq_u64 sector,
			   cxmq_u32 nr_sectors, cxmq_u32 flags, cxmq_u64 cookie)
{
	Q(q).submit_bio(bio, op, sector, nr_sectors, flags, cookie);
}

CXMQ_HOT void cxmq_queue_submit(struct cxmq_queue *q, const struct cxmq_bio *b)
{
	Q(q).submit(*b);
}

void cxmq_queue_set_host(struct cxmq_queue *q, void *host)
{
	Q(q).set_host(host);
}

void cxmq_queue_default_limits(const struct cxmq_dev_config *cfg, struct cxmq_limits *lim)
{
	Queue::default_limits(*cfg, lim);
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

cxmq_u32 cxmq_queue_nr_poll_queues(const struct cxmq_queue *q)
{
	return Q(q).nr_poll_queues();
}

int cxmq_queue_poll(struct cxmq_queue *q, cxmq_u32 cookie, int oneshot)
{
	return Q(q).poll(cookie, oneshot != 0);
}

void cxmq_queue_set_busy_every(struct cxmq_queue *q, cxmq_u32 n)
{
	if (Q(q).backend().kind() == Backend::Kind::kNull)
		static_cast<NullBackend &>(Q(q).backend()).set_busy_every(n);
}

void cxmq_queue_set_faults(struct cxmq_queue *q, const struct cxmq_dev_config *cfg)
{
	if (Q(q).backend().kind() == Backend::Kind::kNull)
		static_cast<NullBackend &>(Q(q).backend()).set_faults(*cfg);
}

cxmq_u32 cxmq_queue_io_timeout(const struct cxmq_queue *q)
{
	return Q(q).io_timeout();
}

int cxmq_queue_set_io_timeout(struct cxmq_queue *q, const char *text)
{
	return Q(q).set_io_timeout(text);
}


int cxmq_queue_format_stats(struct cxmq_queue *q, char *buf, cxmq_size_t size)
{
	Queue &qu = Q(q);
	TextOut o(buf, size);
	for (u32 i = 0; i < qu.nr_hw_queues(); i++) {
		HwQueue &h = qu.hctx(i);
		o.put("hctx%u: queued=%llu run=%llu direct=%llu busy=%llu timeouts=%llu tags_busy=%u/%u "
		      "dispatch=%u",
		      i, ull(load_relaxed(h.queued)), ull(load_relaxed(h.run)),
		      ull(load_relaxed(h.direct_issued)), ull(load_relaxed(h.busy_events)),
		      ull(load_relaxed(h.timeouts)),
		      h.tags->busy(), h.depth(), load_relaxed(h.nr_dispatch));
		if (h.shared)
			o.put(" shared_active=%u/%u active_queues=%u", load_relaxed(h.nr_active),
			      shared_tags::fair_share(h), load_relaxed(h.shared->active_queues));
		o.put(" dispatched=");
		for (u32 b = 0; b < kDispatchBuckets; b++)
			o.put("%s%llu", b ? "," : "", ull(load_relaxed(h.dispatched[b])));
		o.put(" cpus=");
		for (u32 c = 0; c < h.nr_ctx; c++)
			o.put("%s%u", c ? "," : "", h.ctx_cpus[c]);
		if (load_relaxed(h.state) & HwQueue::kInactive)
			o.put(" inactive");
		o.put(" offline_drains=%llu,%llu", ull(load_relaxed(h.offline_drains)),
		      ull(load_relaxed(h.offline_drained)));
		if (h.type == kHctxPoll)
			o.put(" type=poll polls=%llu,%llu,%llu", ull(load_relaxed(h.poll_considered)),
			      ull(load_relaxed(h.poll_invoked)), ull(load_relaxed(h.poll_success)));
		o.put("\n");
		for (u32 c = 0; c < h.nr_ctx; c++) {
			SwQueue &x = qu.ctx(h.ctx_cpus[c], h.type);
			o.put("  cpu%u: dispatched=%llu %llu completed=%llu %llu pending=%u\n", x.cpu,
			      ull(load_relaxed(x.dispatched[0])), ull(load_relaxed(x.dispatched[1])),
			      ull(load_relaxed(x.completed[0])), ull(load_relaxed(x.completed[1])),
			      load_relaxed(x.nr_pending));
		}
	}
	u64 reqs = 0, plug = 0, merged = 0, sched = 0, unplugs = 0, unplugged = 0;
	u64 sizes[kUnplugBuckets] = {};
	for (u32 i = 0; i < qu.nr_cpus() * kHctxTypes; i++) {
		SwQueue &x = qu.ctx(i % qu.nr_cpus(), i / qu.nr_cpus());
		reqs += load_relaxed(x.dispatched[0]) + load_relaxed(x.dispatched[1]);
		plug += load_relaxed(x.plug_merged);
		merged += load_relaxed(x.merged);
		sched += load_relaxed(x.sched_merged);
		unplugs += load_relaxed(x.unplugs);
		unplugged += load_relaxed(x.unplugged);
		for (u32 b = 0; b < kUnplugBuckets; b++)
			sizes[b] += load_relaxed(x.unplug_sizes[b]);
	}
	o.put("merge: bios=%llu requests=%llu plug_merges=%llu ctx_merges=%llu unplugs=%llu "
	      "unplug_requests=%llu sched_merges=%llu\n",
	      ull(reqs + plug + merged + sched), ull(reqs), ull(plug), ull(merged), ull(unplugs),
	      ull(unplugged), ull(sched));
	o.put("sched: %s nr_requests=%u", qu.elevator_type() ? qu.elevator_type()->name : "none",
	      qu.nr_requests());
	for (u32 i = 0; i < qu.nr_hw_queues(); i++)
		o.put(" hctx%u_inflight=%u", i, load_relaxed(qu.hctx(i).sched_inflight));
	if (qu.elevator())
		qu.elevator()->show_stats(o);
	o.put("\n");
	o.put("unplug_batches: 1=%llu 2-3=%llu 4-7=%llu 8-15=%llu 16-31=%llu 32=%llu\n",
	      ull(sizes[0]), ull(sizes[1]), ull(sizes[2]), ull(sizes[3]), ull(sizes[4]),
	      ull(sizes[5]));
	u64 local, moved;
	qu.irq_completions(&local, &moved);
	o.put("rq_affinity: local=%llu moved=%llu\n", ull(local), ull(moved));
	qu.backend().show_stats(o);
	return o.result();
}

// ---- IO schedulers ----

cxmq_u32 cxmq_sched_count(void)
{
	return kNrElevatorTypes;
}

const char *cxmq_sched_name(cxmq_u32 i)
{
	return i < kNrElevatorTypes ? kElevatorTypes[i]->name : nullptr;
}

cxmq_u32 cxmq_sched_nr_attrs(cxmq_u32 i)
{
	return i < kNrElevatorTypes ? kElevatorTypes[i]->nr_attrs : 0;
}

const char *cxmq_sched_attr_name(cxmq_u32 i, cxmq_u32 attr)
{
	if (i >= kNrElevatorTypes || attr >= kElevatorTypes[i]->nr_attrs)
		return nullptr;
	return kElevatorTypes[i]->attrs[attr].name;
}

static_assert(CXMQ_SCHED_NONE == -1, "elevator_index's none");

int cxmq_sched_lookup(const char *text, cxmq_size_t len)
{
	const ElevatorType *t;
	if (elevator_lookup(text, len, &t))
		return elevator_index(t);
	char names[128];
	elevator_names(names, sizeof(names));
	if (len && text[len - 1] == '\n')
		len--;
	cxmq_os_log(CXMQ_LOG_ERR, "cxmq: scheduler=%.*s is invalid: must be %s\n",
		    int(min(len, size_t(32))), text, names);
	return -CXMQ_EINVAL;
}

int cxmq_queue_sched(const struct cxmq_queue *q)
{
	return elevator_index(Q(q).elevator_type());
}

int cxmq_queue_show_sched(const struct cxmq_queue *q, char *buf, cxmq_size_t size)
{
	const int cur = cxmq_queue_sched(q);
	TextOut o(buf, size);
	o.put(cur == CXMQ_SCHED_NONE ? "[none]" : "none");
	for (u32 i = 0; i < kNrElevatorTypes; i++)
		o.put(int(i) == cur ? " [%s]" : " %s", kElevatorTypes[i]->name);
	o.put("\n");
	return o.result();
}

int cxmq_queue_set_sched(struct cxmq_queue *q, int index)
{
	if (index != CXMQ_SCHED_NONE && (index < 0 || u32(index) >= kNrElevatorTypes))
		return -CXMQ_EINVAL;
	return Q(q).set_elevator(index == CXMQ_SCHED_NONE ? nullptr : kElevatorTypes[index]);
}

cxmq_u32 cxmq_queue_nr_requests(const struct cxmq_queue *q)
{
	return Q(q).nr_requests();
}

int cxmq_queue_set_nr_requests(struct cxmq_queue *q, cxmq_u32 nr)
{
	return Q(q).set_nr_requests(nr);
}

// The active scheduler, if it is `sched` and has tunable `attr` (an iosched/ file may outlive a
// switch by a moment), else nullptr.
static Elevator *tunable_owner(struct cxmq_queue *q, int sched, cxmq_u32 attr)
{
	Queue &qu = Q(q);
	if (sched == CXMQ_SCHED_NONE || cxmq_queue_sched(q) != sched ||
	    attr >= qu.elevator_type()->nr_attrs)
		return nullptr;
	return qu.elevator();
}

int cxmq_queue_sched_show(struct cxmq_queue *q, int sched, cxmq_u32 attr, char *buf,
			  cxmq_size_t size)
{
	Elevator *e = tunable_owner(q, sched, attr);
	return e ? e->show(attr, buf, size) : -CXMQ_EINVAL;
}

int cxmq_queue_sched_store(struct cxmq_queue *q, int sched, cxmq_u32 attr, const char *text)
{
	Elevator *e = tunable_owner(q, sched, attr);
	return e ? e->store(attr, text) : -CXMQ_EINVAL;
}

} // extern "C"
