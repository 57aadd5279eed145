// SPDX-License-Identifier: GPL-2.0
#include "trace.h"
#include "queue.h"

namespace cxmq {

void trace_rq_event(cxmq_trace_event e, const Request &rq, u32 arg, u64 ns)
{
	const HwQueue &h = *rq.hctx;
	cxmq_trace_rq t = {};
	t.host = h.queue->host();
	t.sector = rq.sector;
	t.nr_sectors = rq.nr_sectors;
	t.tag = rq.tag;
	t.hctx = h.index;
	t.cpu = rq.ctx_cpu;
	t.flags = rq.flags;
	t.op = rq.op;
	t.nr_bios = u16(min(rq.nr_bios, 0xffffu));
	cxmq_os_trace(e, &t, arg, ns);
}

void trace_hctx_event(cxmq_trace_event e, const HwQueue &h, u32 cpu, u32 arg, u64 ns)
{
	cxmq_trace_rq t = {};
	t.host = h.queue->host();
	t.hctx = h.index;
	t.cpu = cpu;
	cxmq_os_trace(e, &t, arg, ns);
}

} // namespace cxmq
