// SPDX-License-Identifier: GPL-2.0
// Ending requests: the backend's answer (end_request), the bios ended and the request freed; and
// completions from interrupts and queue/rq_affinity (blk-mq's blk_mq_complete_request_remote):
// with rq_affinity 1 a request whose interrupt lands on a CPU that shares no cache with the one
// that submitted it completes there instead, by IPI; with 2 it always does (unless the
// submitter is offline); with 0, and for polled requests, it completes where it is.
#include "queue.h"

namespace cxmq {

int Queue::init_remote()
{
	remote_ = static_cast<RemoteDone *>(cxmq_os_zalloc(sizeof(RemoteDone) * nr_cpu_ids_,
							    cfg_.home_node));
	if (!remote_)
		return -CXMQ_ENOMEM;
	for (u32 cpu = 0; cpu < nr_cpu_ids_; cpu++)
		new (&remote_[cpu]) RemoteDone();
	ipi_ = cxmq_os_ipi_create(remote_fn, this);
	return ipi_ ? 0 : -CXMQ_ENOMEM;
}

// After shutdown: nothing is in flight, but an IPI may still be running its last completion.
void Queue::free_remote()
{
	if (ipi_)
		cxmq_os_ipi_destroy(ipi_);
	ipi_ = nullptr;
	if (remote_) {
		for (u32 cpu = 0; cpu < nr_cpu_ids_; cpu++)
			CXMQ_WARN_ON(!remote_[cpu].list.empty());
		cxmq_os_free(remote_);
	}
	remote_ = nullptr;
}

// blk_mq_complete_need_ipi, for the submitting CPU `cpu` of rq, seen from where this runs.
bool Queue::complete_remote(Request &rq, u32 here)
{
	const u32 cpu = rq.ctx_cpu;
	if (cpu == here || (rq.flags & CXMQ_BIO_POLLED) || !host_)
		return false;
	const int mode = cxmq_os_queue_rq_affinity(host_);
	if (!mode || (mode == 1 && cxmq_os_cpus_share_cache(here, cpu)))
		return false;
	return cxmq_os_cpu_online(cpu);
}

void Queue::complete_irq(Request &rq, cxmq_status status)
{
	const u32 here = cxmq_os_this_cpu();
	RemoteDone &r = remote_[here];
	if (cxmq_likely(!complete_remote(rq, here))) {
		add_relaxed(r.local, u64(1));
		end_request(rq, status);
		return;
	}
	add_relaxed(r.moved, u64(1));
	rq.backend_status = status;
	const u32 cpu = rq.ctx_cpu;
	if (remote_[cpu].list.push(&rq.llnode))
		cxmq_os_ipi_send(ipi_, cpu);
}

void Queue::remote_fn(void *arg, u32 cpu)
{
	auto *q = static_cast<Queue *>(arg);
	for (LListNode *n = q->remote_[cpu].list.take_all_fifo(); n;) {
		LListNode *next = n->next;
		Request &rq = *Request::from_llnode(n);
		q->end_request(rq, static_cast<cxmq_status>(rq.backend_status));
		n = next;
	}
}

void Queue::irq_completions(u64 *local, u64 *moved) const
{
	*local = *moved = 0;
	for (u32 cpu = 0; cpu < nr_cpu_ids_; cpu++) {
		*local += load_relaxed(remote_[cpu].local);
		*moved += load_relaxed(remote_[cpu].moved);
	}
}

// ---- ending requests ----

CXMQ_HOT void Queue::end_request(Request &rq, cxmq_status status)
{
	using namespace rq_timeout;
	u64 w = load_relaxed(rq.tstate);
	while (cxmq_likely(state(w) == kInFlight)) // against the timeout scan (timeout.cpp)
		if (__atomic_compare_exchange_n(&rq.tstate, &w, with_state(w, kComplete), false,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			complete_request(rq, status);
			return;
		}
	returned_after_timeout(rq); // its bios ended, or are ending, with a timeout (timeout.cpp)
}

// Ends every bio of the request with its status, in order (blk_update_request), and frees it.
CXMQ_HOT void Queue::complete_request(Request &rq, cxmq_status status)
{
	HwQueue &h = *rq.hctx;
	void *bio = rq.bio, *tail = rq.biotail;
	const u64 cookie = rq.cookie;
	add_relaxed(rq_ctx(rq).completed[rq.is_write()], u64(1));
	trace_complete(rq, status);
	if (elv_)
		finish_sched(h, rq);
	rq.bio = rq.biotail = nullptr;
	put_tag(h, rq.tag, cxmq_os_this_cpu()); // rq may be reused from here on
	Request::end_bios(bio, tail, status, cookie);
	restart_after_free(h);
	exit(); // the queue may be freed from here on
}

// A tag was freed: a hardware queue waiting for one (the backend was busy, or a scheduler was
// at its depth) runs again.
CXMQ_HOT void Queue::restart_after_free(HwQueue &h)
{
	// Sequentially consistent: against dispatch_sched's setting kRestart at the depth.
	if (__atomic_load_n(&h.state, __ATOMIC_SEQ_CST) & HwQueue::kRestart) {
		fetch_and(h.state, ~HwQueue::kRestart);
		run_hw_queue_async(h, 0);
	}
}

} // namespace cxmq
