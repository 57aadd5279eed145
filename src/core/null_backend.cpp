// SPDX-License-Identifier: GPL-2.0
#include "null_backend.h"

namespace cxmq {

NullBackend *NullBackend::create(const cxmq_dev_config &cfg)
{
	return make<NullBackend>(cfg.home_node, cfg);
}

void NullBackend::release()
{
	destroy(this);
}

int NullBackend::init_hctx(HwQueue &)
{
	return 0;
}

void NullBackend::exit_hctx(HwQueue &)
{
}

cxmq_status NullBackend::queue_rq(HwQueue &, Request &rq, bool)
{
	u32 every = load_relaxed(busy_every_);
	if (cxmq_unlikely(every) && add_relaxed(busy_counter_, 1u) % every == 0)
		return CXMQ_STS_RESOURCE;
	// irqmode 0: complete in the submitter's context.
	queue_->end_request(rq, CXMQ_STS_OK);
	return CXMQ_STS_OK;
}

} // namespace cxmq
