// SPDX-License-Identifier: GPL-2.0
/*
 * cxmq's tracepoints (cxmq_trace.h): the events the core emits through cxmq_os_trace, and the
 * mask that tells the core which are enabled. Built with CXMQ_NO_TRACEPOINTS (make
 * CXMQ_TRACE=0; the KUnit module always), there are none: the mask stays 0.
 */
#include <linux/bitops.h>
#include <linux/compiler.h>
#include <linux/module.h>

#include "cxmq/os.h"

cxmq_u32 cxmq_os_trace_mask;

#ifndef CXMQ_NO_TRACEPOINTS
#define CREATE_TRACE_POINTS
#include "cxmq_trace.h"

/* Register callbacks run under tracepoints_mutex: the bits change one at a time. */
#define CXMQ_TRACE_MASK_FNS(name, e)					\
	int cxmq_trace_reg_##name(void)					\
	{								\
		WRITE_ONCE(cxmq_os_trace_mask, cxmq_os_trace_mask | BIT(e)); \
		return 0;						\
	}								\
	void cxmq_trace_unreg_##name(void)				\
	{								\
		WRITE_ONCE(cxmq_os_trace_mask, cxmq_os_trace_mask & ~BIT(e)); \
	}
CXMQ_TRACE_MASK_FNS(cxmq_rq_insert, CXMQ_TRACE_INSERT)
CXMQ_TRACE_MASK_FNS(cxmq_rq_merge, CXMQ_TRACE_MERGE)
CXMQ_TRACE_MASK_FNS(cxmq_rq_issue, CXMQ_TRACE_ISSUE)
CXMQ_TRACE_MASK_FNS(cxmq_rq_requeue, CXMQ_TRACE_REQUEUE)
CXMQ_TRACE_MASK_FNS(cxmq_rq_complete, CXMQ_TRACE_COMPLETE)
CXMQ_TRACE_MASK_FNS(cxmq_plug, CXMQ_TRACE_PLUG)
CXMQ_TRACE_MASK_FNS(cxmq_unplug, CXMQ_TRACE_UNPLUG)
CXMQ_TRACE_MASK_FNS(cxmq_run, CXMQ_TRACE_RUN)

void cxmq_os_trace(enum cxmq_trace_event e, const struct cxmq_trace_rq *t, cxmq_u32 arg,
		   cxmq_u64 ns)
{
	switch (e) {
	case CXMQ_TRACE_INSERT:
		trace_cxmq_rq_insert(t, arg, ns);
		break;
	case CXMQ_TRACE_MERGE:
		trace_cxmq_rq_merge(t, arg, ns);
		break;
	case CXMQ_TRACE_ISSUE:
		trace_cxmq_rq_issue(t, arg, ns);
		break;
	case CXMQ_TRACE_REQUEUE:
		trace_cxmq_rq_requeue(t, arg, ns);
		break;
	case CXMQ_TRACE_COMPLETE:
		trace_cxmq_rq_complete(t, arg, ns);
		break;
	case CXMQ_TRACE_PLUG:
		trace_cxmq_plug(t, arg, ns);
		break;
	case CXMQ_TRACE_UNPLUG:
		trace_cxmq_unplug(t, arg, ns);
		break;
	case CXMQ_TRACE_RUN:
		trace_cxmq_run(t, arg, ns);
		break;
	default:
		break;
	}
}
#else
void cxmq_os_trace(enum cxmq_trace_event e, const struct cxmq_trace_rq *t, cxmq_u32 arg,
		   cxmq_u64 ns)
{
}
#endif
