// SPDX-License-Identifier: GPL-2.0
// The null backend, after null_blk: no data or data kept in memory (memory_backed), completion
// in the submitter's context (irqmode 0), from a softirq (1) or from a timer after
// completion_nsec (2); on poll queues, whatever the irqmode, only when polled (null_poll).
#pragma once

#include "fault_inject.h"
#include "mem_store.h"
#include "queue.h"

namespace cxmq {

class NullBackend final : public Backend {
public:
	static NullBackend *create(const cxmq_dev_config &cfg);

	void attach(Queue *q) { queue_ = q; }
	Kind kind() const override { return Kind::kNull; }
	u32 pdu_size() const override { return 0; }
	int init_hctx(HwQueue &hctx) override;
	void exit_hctx(HwQueue &hctx) override;
	cxmq_status queue_rq(HwQueue &hctx, Request &rq, bool last) override;
	int poll(HwQueue &hctx) override;
	Expiry timeout(HwQueue &hctx, Request &rq) override;
	void release() override;
	void show_stats(TextOut &o) const override;

	// Test hook: refuse every n-th request with CXMQ_STS_RESOURCE (0: never).
	void set_busy_every(u32 n) { store_relaxed(busy_every_, n); }
	u64 busy_answers() const { return load_relaxed(busy_answers_); }
	// Requests completed from the softirq (irqmode 1), by timers (irqmode 2), by polls.
	u64 softirq_done() const;
	u64 timer_done() const { return load_relaxed(timer_done_); }
	u64 poll_done() const { return load_relaxed(poll_done_); }
	// Fault injection (null_blk's timeout= and requeue=): requests dropped (only a timeout
	// ends them) and answered busy.
	void set_faults(const cxmq_dev_config &cfg);
	u64 lost() const { return load_relaxed(lost_); }
	u64 requeues() const { return load_relaxed(requeues_); }
	const MemStore *store() const { return store_; }

	explicit NullBackend(const cxmq_dev_config &cfg) : cfg_(cfg) {}
	~NullBackend();

private:
	int init();
	cxmq_status transfer(Request &rq);
	void complete(Request &rq, cxmq_status st);
	u32 end_all(LListNode *n);
	static void softirq_fn(void *arg, u32 i);
	static void timer_fn(void *arg);

	cxmq_dev_config cfg_;
	Queue *queue_ = nullptr;
	MemStore *store_ = nullptr;
	// irqmode 1: per-CPU completion lists drained by per-CPU softirq contexts
	struct alignas(kCacheLine) DoneList {
		LList list;
		u64 done; // requests completed from it
	};
	DoneList *done_lists_ = nullptr;
	u32 nr_lists_ = 0;
	cxmq_os_softirq *softirq_ = nullptr;
	u32 busy_every_ = 0;
	u32 busy_counter_ = 0;
	u64 busy_answers_ = 0;
	u64 timer_done_ = 0;
	u64 poll_done_ = 0;
	FaultAttr timeout_fault_;
	FaultAttr requeue_fault_;
	u64 lost_ = 0;
	u64 requeues_ = 0;
};

} // namespace cxmq
