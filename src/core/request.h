// SPDX-License-Identifier: GPL-2.0
// A request: one bio on its way through a hardware queue, identified by its tag. Requests live in
// a per-hardware-queue array indexed by tag, each followed by the backend's payload.
#pragma once

#include "util.h"

namespace cxmq {

struct HwQueue;

struct Request {
	ListNode node;       // on a software queue's rq_list or a hardware queue's dispatch list
	void *bio;           // the host's bio (opaque)
	u64 cookie;          // the host's, handed back when the bio ends
	u64 sector;
	u32 nr_sectors;
	u32 tag;
	u32 flags;           // cxmq_bio_flags
	u16 op;              // cxmq_op
	u16 ctx_cpu;         // software queue it was submitted on (completion accounting)
	HwQueue *hctx;
	u32 backend_status;  // backend use: the status a deferred completion ends with
	ListNode backend_node; // backend use (completion lists)
	LListNode llnode;      // backend use (lock-free completion lists)

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
};

} // namespace cxmq
