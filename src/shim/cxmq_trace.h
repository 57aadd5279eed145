/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cxmq's tracepoints (tracefs events/cxmq/, trace-cmd record -e cxmq, perf record -e 'cxmq:*'),
 * with the fields of blk-mq's block events: device, sector, sectors, operation and flags, tag,
 * hardware queue, CPU. The core emits them (src/core/trace.h) through cxmq_os_trace (trace.c);
 * each event's register/unregister callback keeps its bit of cxmq_os_trace_mask, which is all a
 * disabled event costs the core.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM cxmq

#ifndef _CXMQ_TRACE_DEV_H
#define _CXMQ_TRACE_DEV_H
#include <linux/blkdev.h>
#include "cxmq/os.h"
/* The device an event is of: the disk of its queue's host handle (a request_queue). */
static inline dev_t cxmq_trace_dev(const struct cxmq_trace_rq *t)
{
	const struct request_queue *q = t->host;

	return q && q->disk ? disk_devt(q->disk) : 0;
}
#endif

#if !defined(_CXMQ_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _CXMQ_TRACE_H

#include <linux/blkdev.h>
#include <linux/tracepoint.h>

#include "cxmq/os.h"

/* Each event's register/unregister callback (trace.c) keeps its bit of cxmq_os_trace_mask. */
#define CXMQ_TRACE_CALLBACKS(name) int cxmq_trace_reg_##name(void); void cxmq_trace_unreg_##name(void)
CXMQ_TRACE_CALLBACKS(cxmq_rq_insert);
CXMQ_TRACE_CALLBACKS(cxmq_rq_merge);
CXMQ_TRACE_CALLBACKS(cxmq_rq_issue);
CXMQ_TRACE_CALLBACKS(cxmq_rq_requeue);
CXMQ_TRACE_CALLBACKS(cxmq_rq_complete);
CXMQ_TRACE_CALLBACKS(cxmq_plug);
CXMQ_TRACE_CALLBACKS(cxmq_unplug);
CXMQ_TRACE_CALLBACKS(cxmq_run);

#define cxmq_show_op(op)						\
	__print_symbolic(op, { CXMQ_OP_READ, "read" }, { CXMQ_OP_WRITE, "write" },	\
			 { CXMQ_OP_FLUSH, "flush" }, { CXMQ_OP_DISCARD, "discard" },	\
			 { CXMQ_OP_WRITE_ZEROES, "write_zeroes" }, { CXMQ_OP_GET_ID, "get_id" })
#define cxmq_show_flags(f)						\
	__print_flags(f, "|", { CXMQ_BIO_FUA, "fua" }, { CXMQ_BIO_PREFLUSH, "preflush" },	\
		      { CXMQ_BIO_SYNC, "sync" }, { CXMQ_BIO_NOWAIT, "nowait" },		\
		      { CXMQ_BIO_POLLED, "polled" }, { CXMQ_BIO_NOMERGE, "nomerge" })

/* A request's fields: device, range, operation, flags, tag, hardware queue, CPU, bios. */
#define CXMQ_RQ_ENTRY							\
	TP_STRUCT__entry(						\
		__field(dev_t, dev)					\
		__field(u64, sector)					\
		__field(u32, nr_sector)					\
		__field(u32, tag)					\
		__field(u32, hctx)					\
		__field(u32, cpu)					\
		__field(u32, flags)					\
		__field(u16, op)					\
		__field(u16, nr_bios)					\
		__field(u32, arg)					\
		__field(u64, ns)					\
	)
#define CXMQ_RQ_ASSIGN							\
	TP_fast_assign(							\
		__entry->dev = cxmq_trace_dev(t);			\
		__entry->sector = t->sector;				\
		__entry->nr_sector = t->nr_sectors;			\
		__entry->tag = t->tag;					\
		__entry->hctx = t->hctx;				\
		__entry->cpu = t->cpu;					\
		__entry->flags = t->flags;				\
		__entry->op = t->op;					\
		__entry->nr_bios = t->nr_bios;				\
		__entry->arg = arg;					\
		__entry->ns = ns;					\
	)
#define CXMQ_RQ_FMT "%d,%d %s %llu + %u tag=%u hctx=%u cpu=%u bios=%u"
#define CXMQ_RQ_ARGS							\
	MAJOR(__entry->dev), MINOR(__entry->dev), cxmq_show_op(__entry->op),	\
	__entry->sector, __entry->nr_sector, __entry->tag, __entry->hctx, __entry->cpu, \
	__entry->nr_bios

/* A hardware queue's: device, hardware queue, CPU. */
#define CXMQ_HCTX_ENTRY							\
	TP_STRUCT__entry(						\
		__field(dev_t, dev)					\
		__field(u32, hctx)					\
		__field(u32, cpu)					\
		__field(u32, arg)					\
		__field(u64, ns)					\
	)
#define CXMQ_HCTX_ASSIGN						\
	TP_fast_assign(							\
		__entry->dev = cxmq_trace_dev(t);			\
		__entry->hctx = t->hctx;				\
		__entry->cpu = t->cpu;					\
		__entry->arg = arg;					\
		__entry->ns = ns;					\
	)
#define CXMQ_HCTX_FMT "%d,%d hctx=%u cpu=%u"
#define CXMQ_HCTX_ARGS MAJOR(__entry->dev), MINOR(__entry->dev), __entry->hctx, __entry->cpu

/* insert, issue, requeue: the request, its flags (fua, sync, ...) last */
DECLARE_EVENT_CLASS(cxmq_rq,
	TP_PROTO(const struct cxmq_trace_rq *t, u32 arg, u64 ns),
	TP_ARGS(t, arg, ns),
	CXMQ_RQ_ENTRY,
	CXMQ_RQ_ASSIGN,
	TP_printk(CXMQ_RQ_FMT " %s", CXMQ_RQ_ARGS, cxmq_show_flags(__entry->flags))
);

#define CXMQ_RQ_EVENT(name)						\
DEFINE_EVENT_FN(cxmq_rq, name,						\
	TP_PROTO(const struct cxmq_trace_rq *t, u32 arg, u64 ns),	\
	TP_ARGS(t, arg, ns),						\
	cxmq_trace_reg_##name, cxmq_trace_unreg_##name)

CXMQ_RQ_EVENT(cxmq_rq_insert);
CXMQ_RQ_EVENT(cxmq_rq_issue);
CXMQ_RQ_EVENT(cxmq_rq_requeue);

/* A bio merged: the request's range after it, where it was, which end the bio joined. */
TRACE_EVENT_FN(cxmq_rq_merge,
	TP_PROTO(const struct cxmq_trace_rq *t, u32 arg, u64 ns),
	TP_ARGS(t, arg, ns),
	CXMQ_RQ_ENTRY,
	CXMQ_RQ_ASSIGN,
	TP_printk(CXMQ_RQ_FMT " %s %s", CXMQ_RQ_ARGS,
		  __print_symbolic(__entry->arg >> 4, { CXMQ_TRACE_MERGE_PLUG, "plug" },
				   { CXMQ_TRACE_MERGE_CTX, "ctx" }, { CXMQ_TRACE_MERGE_SCHED, "sched" }),
		  __print_symbolic(__entry->arg & 15, { CXMQ_TRACE_MERGE_BACK, "back" },
				   { CXMQ_TRACE_MERGE_FRONT, "front" },
				   { CXMQ_TRACE_MERGE_DISCARD, "discard" })),
	cxmq_trace_reg_cxmq_rq_merge, cxmq_trace_unreg_cxmq_rq_merge);

/* Ended: its status (enum cxmq_status: 0 ok) and the nanoseconds since it was issued. */
TRACE_EVENT_FN(cxmq_rq_complete,
	TP_PROTO(const struct cxmq_trace_rq *t, u32 arg, u64 ns),
	TP_ARGS(t, arg, ns),
	CXMQ_RQ_ENTRY,
	CXMQ_RQ_ASSIGN,
	TP_printk(CXMQ_RQ_FMT " status=%u latency_ns=%llu", CXMQ_RQ_ARGS, __entry->arg,
		  __entry->ns),
	cxmq_trace_reg_cxmq_rq_complete, cxmq_trace_unreg_cxmq_rq_complete);

/* A task's plug took its first request (for this hardware queue). */
TRACE_EVENT_FN(cxmq_plug,
	TP_PROTO(const struct cxmq_trace_rq *t, u32 arg, u64 ns),
	TP_ARGS(t, arg, ns),
	CXMQ_HCTX_ENTRY,
	CXMQ_HCTX_ASSIGN,
	TP_printk(CXMQ_HCTX_FMT, CXMQ_HCTX_ARGS),
	cxmq_trace_reg_cxmq_plug, cxmq_trace_unreg_cxmq_plug);

/* The plug flushed: its requests, and whether the task was on its way to sleep (implicit). */
TRACE_EVENT_FN(cxmq_unplug,
	TP_PROTO(const struct cxmq_trace_rq *t, u32 arg, u64 ns),
	TP_ARGS(t, arg, ns),
	CXMQ_HCTX_ENTRY,
	CXMQ_HCTX_ASSIGN,
	TP_printk(CXMQ_HCTX_FMT " nr=%u %s", CXMQ_HCTX_ARGS, __entry->arg,
		  __entry->ns ? "implicit" : "explicit"),
	cxmq_trace_reg_cxmq_unplug, cxmq_trace_unreg_cxmq_unplug);

/* A run of a hardware queue, and the requests it dispatched. */
TRACE_EVENT_FN(cxmq_run,
	TP_PROTO(const struct cxmq_trace_rq *t, u32 arg, u64 ns),
	TP_ARGS(t, arg, ns),
	CXMQ_HCTX_ENTRY,
	CXMQ_HCTX_ASSIGN,
	TP_printk(CXMQ_HCTX_FMT " dispatched=%u", CXMQ_HCTX_ARGS, __entry->arg),
	cxmq_trace_reg_cxmq_run, cxmq_trace_unreg_cxmq_run);

#endif /* _CXMQ_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE cxmq_trace
#include <trace/define_trace.h>
