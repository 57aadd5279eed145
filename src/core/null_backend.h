// SPDX-License-Identifier: GPL-2.0
// The null backend, after null_blk: no data (or, later, data kept in memory), completion in the
// submitter's context, from a softirq, or from a timer.
#pragma once

#include "queue.h"

namespace cxmq {

class NullBackend final : public Backend {
public:
	static NullBackend *create(const cxmq_dev_config &cfg);

	void attach(Queue *q) { queue_ = q; }
	u32 pdu_size() const override { return 0; }
	int init_hctx(HwQueue &hctx) override;
	void exit_hctx(HwQueue &hctx) override;
	cxmq_status queue_rq(HwQueue &hctx, Request &rq, bool last) override;
	void release() override;

	// Test hook: refuse every n-th request with CXMQ_STS_RESOURCE (0: never).
	void set_busy_every(u32 n) { store_relaxed(busy_every_, n); }

	explicit NullBackend(const cxmq_dev_config &cfg) : cfg_(cfg) {}

private:
	cxmq_dev_config cfg_;
	Queue *queue_ = nullptr;
	u32 busy_every_ = 0;
	u32 busy_counter_ = 0;
};

} // namespace cxmq
