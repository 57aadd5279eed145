// SPDX-License-Identifier: GPL-2.0
// A request: one contiguous range of one operation, made of one or more bios in order (blk-mq's
// rq->bio ... rq->biotail), on its way through a hardware queue and identified by its tag; a
// discard request may hold non-contiguous ranges (max_discard_segments). Requests live in a
// per-hardware-queue array indexed by tag, each followed by the backend's payload.
#pragma once

#include "cxmq/core.h"
#include "sort_tree.h"
#include "util.h"

namespace cxmq {

struct HwQueue;
using Bio = cxmq_bio;

struct Request {
	enum : u32 {
		kNoMerge = 1u << 0, // a merge failed on a limit: never try this one again (REQ_NOMERGE)
		kSched = 1u << 1,   // the scheduler gave it out: it counts against hw_queue_depth
	};

	ListNode node;       // on a software queue's rq_list, a plug, or a hardware queue's dispatch list
	void *bio;           // the host's bios: the first, chained (cxmq_os_bio_next) to the last
	void *biotail;
	u64 cookie;          // the first bio's, handed back when each bio ends
	u64 sector;
	u32 nr_sectors;      // the whole request (every range, for a discard)
	u32 tag;
	u32 flags;           // cxmq_bio_flags: NOWAIT only while every bio is NOWAIT
	u32 rq_flags;        // kNoMerge
	u32 nr_bios;
	u32 nr_segs;         // physical segments (discard: ranges); 0: not counted yet (merge.cpp)
	u16 op;              // cxmq_op
	u16 ioprio;
	u16 ctx_cpu;         // software queue it was submitted on (completion accounting)
	HwQueue *hctx;
	u32 backend_status;  // backend use: the status a deferred completion ends with
	ListNode backend_node; // backend use (completion lists)
	LListNode llnode;      // backend use (lock-free completion lists)
	// The scheduler's (elevator.h), while it holds the request (`node` is its FIFO link then).
	SortNode sort_node;    // its sector-sorted tree
	u64 fifo_time;         // mq-deadline: when it expires (cxmq_os_now_ns)
	u64 start_ns;          // kyber: when it was made (rq->start_time_ns)
	u64 io_start_ns;       // kyber: when it went to the backend (rq->io_start_time_ns)
	u32 elv_priv;          // the scheduler's flags
	u64 tstate;            // the timeout state (timeout.h): deadline, generation, where it is
	u32 driver_tag;        // a shared set's, with a scheduler: 1 + the shared tag held, 0 none
	u64 issue_ns;          // when it last went to the backend, while tracing (trace.h)

	// The backend's payload, sized by Backend::pdu_size() and cache-line aligned.
	void *pdu() { return reinterpret_cast<char *>(this) + pdu_offset(); }
	static constexpr size_t pdu_offset() { return round_up(sizeof(Request), 16); }
	static Request *from_pdu(void *pdu)
	{
		return reinterpret_cast<Request *>(static_cast<char *>(pdu) - pdu_offset());
	}
	static Request *from_node(ListNode *n) { return CXMQ_CONTAINER_OF(n, Request, node); }
	static Request *from_llnode(LListNode *n) { return CXMQ_CONTAINER_OF(n, Request, llnode); }
	bool is_write() const { return op == CXMQ_OP_WRITE; }
	u64 end_sector() const { return sector + nr_sectors; }

	// Makes this (free) request hold exactly one bio.
	void init_from(const Bio &b, u32 cpu)
	{
		bio = biotail = b.bio;
		cookie = b.cookie;
		sector = b.sector;
		nr_sectors = b.nr_sectors;
		flags = b.flags;
		rq_flags = 0;
		elv_priv = 0;
		issue_ns = 0;
		nr_bios = 1;
		nr_segs = b.nr_segs;
		op = b.op;
		ioprio = b.ioprio;
		ctx_cpu = static_cast<u16>(cpu);
	}
	// Calls fn(bio) for each bio of the chain head..tail in order; fn may end the bio (the
	// next is read first).
	template <class F> static void for_each_bio(void *head, void *tail, F fn)
	{
		for (void *b = head; b;) {
			void *next = b == tail ? nullptr : cxmq_os_bio_next(b);
			fn(b);
			b = next;
		}
	}
	template <class F> void for_each_bio(F fn) { for_each_bio(bio, biotail, fn); }
	// Ends every bio of the chain head..tail with status, in order (blk_update_request),
	// unchained: each ends with the request's cookie.
	static void end_bios(void *head, void *tail, cxmq_status status, u64 cookie)
	{
		for_each_bio(head, tail, [&](void *b) {
			cxmq_os_bio_set_next(b, nullptr);
			cxmq_os_bio_end(b, status, cookie);
		});
	}
};

} // namespace cxmq
