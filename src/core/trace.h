// SPDX-License-Identifier: GPL-2.0
// Tracepoints from the core (blk-mq's block_rq_insert, block_bio_*merge, block_rq_issue,
// block_rq_requeue, block_rq_complete, block_plug, block_unplug, and the queue runs): each event
// is the kernel's TRACE_EVENT in the shim (src/shim/trace.c, tracefs events/cxmq/). A disabled
// event costs one relaxed load of cxmq_os_trace_mask and a branch; an enabled one an out-of-line
// call that fills struct cxmq_trace_rq.
#pragma once

#include "request.h"

namespace cxmq {

inline bool trace_on(cxmq_trace_event e)
{
	return __atomic_load_n(&cxmq_os_trace_mask, __ATOMIC_RELAXED) & (1u << e);
}

void trace_rq_event(cxmq_trace_event e, const Request &rq, u32 arg, u64 ns);
void trace_hctx_event(cxmq_trace_event e, const HwQueue &h, u32 cpu, u32 arg, u64 ns);

// A request's event (INSERT, MERGE, ISSUE, REQUEUE, COMPLETE).
inline void trace_rq(cxmq_trace_event e, const Request &rq, u32 arg = 0, u64 ns = 0)
{
	if (cxmq_unlikely(trace_on(e)))
		trace_rq_event(e, rq, arg, ns);
}

// A hardware queue's (RUN, UNPLUG, PLUG).
inline void trace_hctx(cxmq_trace_event e, const HwQueue &h, u32 cpu, u32 arg = 0, u64 ns = 0)
{
	if (cxmq_unlikely(trace_on(e)))
		trace_hctx_event(e, h, cpu, arg, ns);
}

// ISSUE, and the time it happened where COMPLETE will want its latency.
inline void trace_issue(Request &rq)
{
	if (cxmq_unlikely(trace_on(CXMQ_TRACE_ISSUE) || trace_on(CXMQ_TRACE_COMPLETE))) {
		rq.issue_ns = cxmq_os_now_ns();
		trace_rq(CXMQ_TRACE_ISSUE, rq);
	}
}

// COMPLETE with its status and the time since its (last) issue, 0 when that was not taken.
inline void trace_complete(const Request &rq, cxmq_status status)
{
	if (cxmq_unlikely(trace_on(CXMQ_TRACE_COMPLETE)))
		trace_rq_event(CXMQ_TRACE_COMPLETE, rq, u32(status),
			       rq.issue_ns ? cxmq_os_now_ns() - rq.issue_ns : 0);
}

} // namespace cxmq
