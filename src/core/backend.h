// SPDX-License-Identifier: GPL-2.0
// The hardware behind the queues: what a hardware queue run hands requests to.
#pragma once

#include "request.h"

namespace cxmq {

class Queue;
struct TextOut;

class Backend {
public:
	// Which one it is (no RTTI): the null backend's test hooks reach only a null backend.
	enum class Kind { kNull, kVirtio, kOther };
	virtual Kind kind() const { return Kind::kOther; }
	// Bytes of per-request payload the backend wants next to each request.
	virtual u32 pdu_size() const = 0;
	// Called once per hardware queue as it is set up / torn down.
	virtual int init_hctx(HwQueue &hctx) = 0;
	virtual void exit_hctx(HwQueue &hctx) = 0;
	// Takes a request. CXMQ_STS_OK: the backend owns it and will complete it through
	// Queue::end_request(). CXMQ_STS_RESOURCE: busy, the caller keeps it and retries later.
	// Any other status: the request failed; the caller ends it with that status.
	// `last` is false when more requests follow in this run (a doorbell may wait).
	virtual cxmq_status queue_rq(HwQueue &hctx, Request &rq, bool last) = 0;
	// A run stopped after requests it sent with `last` false (blk-mq's ->commit_rqs): ring
	// the doorbell for them.
	virtual void commit_rqs(HwQueue &) {}
	// The CPU -> hardware queue map of the default type, nr queues from `offset` (blk-mq's
	// ->map_queues): false leaves it to the queue's default map.
	virtual bool map_queues(u32 *, u32, u32, u32) { return false; }
	// The backend's line of the debugfs stats ("backend: ...\n"), if it has one.
	virtual void show_stats(TextOut &) const {}
	// A poll queue (HwQueue::type kHctxPoll) completes nothing by itself: this completes
	// (Queue::end_request) what it has done, and returns how many. Never sleeps; may run on
	// several CPUs at once for the same queue.
	virtual int poll(HwQueue &hctx) = 0;
	// A request held past its deadline (the queue's timeout scan; blk-mq's ->timeout). It may
	// be asked about a request that completes meanwhile: answer without side effects (or
	// synchronise with the completion). kResetTimer: still working on it (the default, as
	// blk-mq's without ->timeout). kAbandoned: the backend dropped it and will never end it:
	// the queue ends it with CXMQ_STS_TIMEOUT. kTimedOut: the backend no longer touches its
	// data: its bios end with CXMQ_STS_TIMEOUT now, and the backend's Queue::end_request later
	// only frees it.
	enum class Expiry { kResetTimer, kAbandoned, kTimedOut };
	virtual Expiry timeout(HwQueue &, Request &) { return Expiry::kResetTimer; }
	// Frees the backend (its own destructor, its own memory).
	virtual void release() = 0;

protected:
	Backend() = default;
	~Backend() = default;
};

} // namespace cxmq
