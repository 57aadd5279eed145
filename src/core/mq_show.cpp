// SPDX-License-Identifier: GPL-2.0
// What the mq/ sysfs tree shows (include/cxmq/core.h): per hardware queue and per software
// queue, in the formats blk-mq's mq/ directory had. Lists are walked under their lock and never
// exceed the caller's buffer: they end with a "..." line instead.
#include "cxmq/core.h"
#include "queue.h"
#include "text.h"

using namespace cxmq;

namespace {

Queue &Q(struct cxmq_queue *q) { return *reinterpret_cast<Queue *>(q); }

const char *op_name(u16 op)
{
	switch (op) {
	case CXMQ_OP_READ:
		return "read";
	case CXMQ_OP_WRITE:
		return "write";
	case CXMQ_OP_FLUSH:
		return "flush";
	case CXMQ_OP_DISCARD:
		return "discard";
	case CXMQ_OP_WRITE_ZEROES:
		return "write_zeroes";
	default:
		return "?";
	}
}

// "<header>\n" then one line per request of `list` (held under `lock`), ending with "\t...\n"
// when the next line and that marker would not both fit.
int show_list(TextOut &o, const char *header, SpinLock &lock, List &list)
{
	static const char kMore[] = "\t...\n";
	o.put("%s\n", header);
	LockGuard g(lock);
	u32 left = 0;
	list.for_each([&](ListNode *) { left++; });
	bool full = false;
	list.for_each([&](ListNode *n) {
		if (full)
			return;
		const Request &rq = *Request::from_node(n);
		// Room for the marker is kept only while another line would follow.
		const size_t reserve = --left ? sizeof(kMore) - 1 : 0;
		if (!o.put_line_reserving(reserve, "\ttag %u %s sector %llu len %u\n", rq.tag,
					  op_name(rq.op), ull(rq.sector), rq.nr_sectors)) {
			o.put("%s", kMore);
			full = true;
		}
	});
	return o.result();
}

} // namespace

extern "C" {

cxmq_u32 cxmq_queue_update_nr_hw_queues(struct cxmq_queue *q, cxmq_u32 nr, cxmq_u32 nr_poll)
{
	return Q(q).update_nr_hw_queues(nr, nr_poll);
}

cxmq_u32 cxmq_queue_hctx_nr_cpus(struct cxmq_queue *q, cxmq_u32 hctx)
{
	Queue &qu = Q(q);
	return hctx < qu.nr_hw_queues() ? qu.hctx(hctx).nr_ctx : 0;
}

cxmq_u32 cxmq_queue_hctx_cpu(struct cxmq_queue *q, cxmq_u32 hctx, cxmq_u32 i)
{
	Queue &qu = Q(q);
	if (hctx >= qu.nr_hw_queues() || i >= qu.hctx(hctx).nr_ctx)
		return ~0u;
	return qu.hctx(hctx).ctx_cpus[i];
}

int cxmq_queue_show_hctx(struct cxmq_queue *q, cxmq_u32 hctx, enum cxmq_hctx_attr attr, char *buf,
			 cxmq_size_t size)
{
	Queue &qu = Q(q);
	if (hctx >= qu.nr_hw_queues())
		return -CXMQ_EINVAL;
	HwQueue &h = qu.hctx(hctx);
	TextOut o(buf, size);
	switch (attr) {
	case CXMQ_HCTX_PENDING:
		return show_list(o, "HCTX pending:", h.lock, h.dispatch);
	case CXMQ_HCTX_ACTIVE:
		// blk-mq's __blk_mq_active_requests: of a shared map, the tags this queue holds.
		o.put("%u\n", h.active());
		break;
	case CXMQ_HCTX_TAGS: {
		// The driver tags (blk-mq's hctx->tags): the shared map of a shared set; without
		// sharing, the queue's own map, and no queue counts as an active sharer.
		const TagMap &m = h.shared ? h.shared->map : *h.tags;
		const u32 busy = m.busy();
		o.put("nr_tags=%u, reserved_tags=0, bits_per_word=%u\n", m.depth(),
		      m.bits_per_word());
		o.put("nr_free=%u, nr_reserved=0\n", m.depth() - min(busy, m.depth()));
		o.put("active_queues=%u\n", h.shared ? load_relaxed(h.shared->active_queues) : 0u);
		break;
	}
	case CXMQ_HCTX_NR_TAGS:
		o.put("%u\n", h.depth());
		break;
	case CXMQ_HCTX_NR_RESERVED_TAGS:
		o.put("0\n");
		break;
	case CXMQ_HCTX_QUEUED:
		o.put("%llu\n", ull(load_relaxed(h.queued)));
		break;
	case CXMQ_HCTX_RUN:
		o.put("%llu\n", ull(load_relaxed(h.run)));
		break;
	case CXMQ_HCTX_DISPATCHED:
		// Bucket 0: runs that dispatched nothing; bucket b: 2^(b-1) .. 2^b - 1; the last: more.
		o.put("%8u\t%llu\n", 0u, ull(load_relaxed(h.dispatched[0])));
		for (u32 b = 1; b < kDispatchBuckets - 1; b++)
			o.put("%8u\t%llu\n", 1u << (b - 1), ull(load_relaxed(h.dispatched[b])));
		o.put("%8u+\t%llu\n", 1u << (kDispatchBuckets - 2),
		      ull(load_relaxed(h.dispatched[kDispatchBuckets - 1])));
		break;
	case CXMQ_HCTX_IO_POLL:
		o.put("considered=%llu, invoked=%llu, success=%llu\n",
		      ull(load_relaxed(h.poll_considered)), ull(load_relaxed(h.poll_invoked)),
		      ull(load_relaxed(h.poll_success)));
		break;
	case CXMQ_HCTX_TYPE:
		o.put("%s\n", h.type == kHctxPoll ? "poll" : "default");
		break;
	default:
		return -CXMQ_EINVAL;
	}
	return o.result();
}

void cxmq_queue_reset_io_poll(struct cxmq_queue *q, cxmq_u32 hctx)
{
	Queue &qu = Q(q);
	if (hctx >= qu.nr_hw_queues())
		return;
	HwQueue &h = qu.hctx(hctx);
	store_relaxed(h.poll_considered, u64(0));
	store_relaxed(h.poll_invoked, u64(0));
	store_relaxed(h.poll_success, u64(0));
}

int cxmq_queue_show_ctx(struct cxmq_queue *q, cxmq_u32 hctx, cxmq_u32 cpu,
			enum cxmq_ctx_attr attr, char *buf, cxmq_size_t size)
{
	Queue &qu = Q(q);
	if (hctx >= qu.nr_hw_queues() || cpu >= qu.nr_cpus() || !cxmq_os_cpu_possible(cpu))
		return -CXMQ_EINVAL;
	SwQueue &c = qu.ctx(cpu, qu.hctx(hctx).type);
	TextOut o(buf, size);
	switch (attr) {
	case CXMQ_CTX_DISPATCHED:
		o.put("%llu %llu\n", ull(load_relaxed(c.dispatched[0])), ull(load_relaxed(c.dispatched[1])));
		break;
	case CXMQ_CTX_MERGED:
		o.put("%llu\n", ull(load_relaxed(c.merged)));
		break;
	case CXMQ_CTX_COMPLETED:
		o.put("%llu %llu\n", ull(load_relaxed(c.completed[0])), ull(load_relaxed(c.completed[1])));
		break;
	case CXMQ_CTX_RQ_LIST:
		return show_list(o, "CTX pending:", c.lock, c.rq_list);
	default:
		return -CXMQ_EINVAL;
	}
	return o.result();
}

} // extern "C"
