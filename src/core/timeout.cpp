// SPDX-License-Identifier: GPL-2.0
// Request timeouts (timeout.h): the deadline set as a request goes to the backend, the scan of
// the requests in flight by tag, and what the backend's answer does.
#include "kstrtox.h"
#include "queue.h"
#include "text.h"

namespace cxmq {

using namespace rq_timeout;

namespace {
bool cas(u64 &word, u64 *expected, u64 desired)
{
	return __atomic_compare_exchange_n(&word, expected, desired, false, __ATOMIC_ACQ_REL,
					   __ATOMIC_ACQUIRE);
}
} // namespace

// The request goes to the backend (blk_mq_start_request): a new generation, in flight until
// its deadline, and the timeout work is due if nothing has it scheduled.
CXMQ_HOT void Queue::start_request(Request &rq)
{
	const u64 w = load_relaxed(rq.tstate); // ours: no one else changes an idle request
	const u32 deadline = now_units() + load_relaxed(timeout_units_);
	// Sequentially consistent, with the load below: against timeout_scan's clearing
	// timeout_armed_ before it looks (one of the two sees the other).
	__atomic_store_n(&rq.tstate, make(deadline, gen(w) + 1, kInFlight), __ATOMIC_SEQ_CST);
	if (cxmq_unlikely(!__atomic_load_n(&timeout_armed_, __ATOMIC_SEQ_CST)))
		arm_timeout();
	trace_issue(rq);
}

// The backend refused the request (busy): idle again, to be sent later. False when a timeout
// ended its bios meanwhile: the backend has given it back (returned_after_timeout), and the
// caller forgets it.
bool Queue::unstart_request(Request &rq)
{
	u64 w = load_relaxed(rq.tstate);
	while (state(w) == kInFlight)
		if (cas(rq.tstate, &w, with_state(w, kIdle))) {
			trace_rq(CXMQ_TRACE_REQUEUE, rq);
			return true;
		}
	returned_after_timeout(rq);
	return false;
}

// The backend gives back (completes, or refuses) a request whose bios a timeout ended or is
// ending: freed here once they have ended, else by the scan when they have.
void Queue::returned_after_timeout(Request &rq)
{
	u64 w = __atomic_load_n(&rq.tstate, __ATOMIC_ACQUIRE);
	for (;;) {
		switch (state(w)) {
		case kTimedOut:
			free_request(rq);
			return;
		case kEndingTimedOut:
			if (cas(rq.tstate, &w, with_state(w, kReturned)))
				return;
			continue; // the scan has just finished: w is kTimedOut
		default:
			CXMQ_WARN_ON(1); // the backend gave back a request it does not hold
			return;
		}
	}
}

// How often the timeout work looks while requests are in flight: an eighth of io_timeout, at
// least every second (blk-mq's timer rounds to a second), at most every 10 ms.
void Queue::arm_timeout()
{
	if (__atomic_exchange_n(&timeout_armed_, 1u, __ATOMIC_SEQ_CST))
		return;
	const u64 us = u64(load_relaxed(io_timeout_ms_)) * 1000 / 8;
	cxmq_os_work_schedule(timeout_work_, u32(min(max(us, u64(10000)), u64(1000000))),
			      cxmq_os_this_cpu());
}

void Queue::timeout_work_fn(void *arg)
{
	static_cast<Queue *>(arg)->timeout_scan();
}

// blk_mq_timeout_work: every request of every hardware queue, by tag. A request that starts
// after the flag is cleared arms the work again itself; one that started before is seen here.
void Queue::timeout_scan()
{
	__atomic_store_n(&timeout_armed_, 0u, __ATOMIC_SEQ_CST);
	// Not a live reference: a freeze may be waiting for the very requests that time out. It
	// keeps the hardware queues as they are (they change only at usage zero).
	if (!cxmq_os_usage_tryget(usage_))
		return; // nothing in flight
	const u32 now = now_units();
	bool pending = false;
	for (u32 i = 0; i < nr_hw_queues_; i++) {
		HwQueue &h = *hctxs_[i];
		for (u32 tag = 0; tag < h.depth(); tag++) {
			Request &rq = *h.rq(tag);
			const u64 w = __atomic_load_n(&rq.tstate, __ATOMIC_SEQ_CST);
			if (state(w) != kInFlight)
				continue;
			if (expired(now, deadline(w)))
				expire(h, rq, w, now, &pending);
			else
				pending = true;
		}
	}
	if (pending)
		arm_timeout();
	else if (set_) // nothing in flight: no longer a sharer of the set's tags (blk_mq_tag_idle)
		for (u32 i = 0; i < nr_hw_queues_; i++)
			shared_tags::idle(*hctxs_[i]);
	cxmq_os_usage_put(usage_);
}

// A request past its deadline, as the scan saw it (w): what the backend answers is done only
// if the request is still that one, in flight.
void Queue::expire(HwQueue &h, Request &rq, u64 w, u32 now, bool *pending)
{
	switch (backend_->timeout(h, rq)) {
	case Backend::Expiry::kResetTimer:
		cas(rq.tstate, &w, with_deadline(w, now + load_relaxed(timeout_units_)));
		*pending = true;
		return;
	case Backend::Expiry::kTimedOut:
		if (!cas(rq.tstate, &w, with_state(w, kEndingTimedOut)))
			return; // it completed meanwhile
		add_relaxed(h.timeouts, u64(1));
		end_timed_out(rq);
		// The backend's until it gives it back; freed here if it already has.
		w = with_state(w, kEndingTimedOut);
		if (!cas(rq.tstate, &w, with_state(w, kTimedOut))) {
			CXMQ_WARN_ON(state(w) != kReturned);
			free_request(rq);
		}
		return;
	case Backend::Expiry::kAbandoned:
		if (!cas(rq.tstate, &w, with_state(w, kComplete)))
			return;
		add_relaxed(h.timeouts, u64(1));
		complete_request(rq, CXMQ_STS_TIMEOUT);
		return;
	}
}

// kEndingTimedOut: the bios end now; the request stays the backend's until it gives it back.
void Queue::end_timed_out(Request &rq)
{
	void *bio = rq.bio, *tail = rq.biotail;
	const u64 cookie = rq.cookie;
	add_relaxed(rq_ctx(rq).completed[rq.is_write()], u64(1));
	trace_complete(rq, CXMQ_STS_TIMEOUT);
	rq.bio = rq.biotail = nullptr;
	Request::end_bios(bio, tail, CXMQ_STS_TIMEOUT, cookie);
}

// What a request whose bios ended holds: its scheduler accounting, its tag, its usage
// reference.
void Queue::free_request(Request &rq)
{
	HwQueue &h = *rq.hctx;
	if (elv_)
		finish_sched(h, rq);
	put_tag(h, rq.tag, cxmq_os_this_cpu());
	restart_after_free(h);
	exit(); // the queue may be freed from here on
}

// queue/io_timeout's store: kstrtouint base 10, not 0.
int Queue::set_io_timeout(const char *text)
{
	u64 v;
	if (!text || !parse_u64_base10(text, &v) || v == 0 || v > 0xffffffffull) {
		cxmq_os_log(CXMQ_LOG_ERR,
			    "cxmq: io_timeout=%.*s is invalid: must be 1..4294967295 (milliseconds)\n",
			    first_line_len(text, 32), text ? text : "");
		return -CXMQ_EINVAL;
	}
	store_relaxed(timeout_units_, ms_to_units(u32(v)));
	store_relaxed(io_timeout_ms_, u32(v));
	return 0;
}

} // namespace cxmq
