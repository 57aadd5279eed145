// SPDX-License-Identifier: GPL-2.0
// Polling (blk-mq's blk_mq_poll): a polled bio (REQ_POLLED, from io_uring's IOPOLL) goes to the
// poll queue of its CPU (Queue::bio_type), whose backend never completes it by itself; the core
// writes that queue's index into the bio (cxmq_os_bio_set_poll_queue) before the request can
// complete, and the submitter, spinning in bio_poll, hands it back here to reap the queue.
#include "queue.h"

namespace cxmq {

// The bio behind `cookie` may have completed long ago and its memory been reused: the cookie
// only names a queue, and one that is no poll queue (any more) finds nothing.
int Queue::poll(u32 cookie, bool oneshot)
{
	// A usage reference, but not a live one: a freeze waits for the very requests reaped
	// here. It keeps the hardware queues from changing (they change only at usage zero).
	if (!cxmq_os_usage_tryget(usage_))
		return 0;
	int found = 0;
	if (cookie >= nr_default_queues() && cookie < nr_hw_queues_) {
		HwQueue &h = *hctxs_[cookie];
		add_relaxed(h.poll_considered, u64(1));
		for (;;) {
			add_relaxed(h.poll_invoked, u64(1));
			found = backend_->poll(h);
			if (found > 0) {
				add_relaxed(h.poll_success, u64(1));
				break;
			}
			if (oneshot)
				break;
			const cxmq_poll_next next = cxmq_os_poll_next();
			if (next != CXMQ_POLL_AGAIN) {
				found = next == CXMQ_POLL_WOKEN ? 1 : 0;
				break;
			}
		}
	}
	cxmq_os_usage_put(usage_);
	return found;
}

} // namespace cxmq
