// SPDX-License-Identifier: GPL-2.0
// Queue usage counting and freezing (the kernel's blk_queue_enter and blk_freeze_queue): every
// bio holds a usage reference from submission until its request completes; a freeze kills the
// reference and waits for it to reach zero, so nothing is in flight while the queue changes
// (queue count, scheduler, pools); new submitters wait, or fail under NOWAIT, until unfreeze.
#include "queue.h"

namespace cxmq {

void Queue::usage_zero(void *arg)
{
	auto *q = static_cast<Queue *>(arg);
	cxmq_os_wake_all(q->freeze_wq_);
	store_release(q->zero_done_, true); // the last touch of the queue
}

namespace {
int queue_enterable(void *arg)
{
	auto *q = static_cast<Queue *>(arg);
	return !q->frozen() || q->dying();
}
struct FreezeWait {
	cxmq_os_usage *usage;
};
int usage_is_zero(void *arg)
{
	return cxmq_os_usage_is_zero(static_cast<FreezeWait *>(arg)->usage);
}
} // namespace

// Takes a usage reference. Returns false when the queue is dying (the caller fails the bio with
// IOERR) or frozen under nowait (AGAIN); *dying tells which.
CXMQ_HOT bool Queue::enter(bool nowait, bool *dying)
{
	*dying = false;
	if (cxmq_likely(cxmq_os_usage_tryget_live(usage_)))
		return true;
	// Slow path: counted, so that shutdown does not free the queue under a woken sleeper.
	add_relaxed(enter_sleepers_, 1u);
	bool entered = false;
	for (;;) {
		if (cxmq_os_usage_tryget_live(usage_)) {
			entered = true;
			break;
		}
		if (load_acquire(dying_)) {
			*dying = true;
			break;
		}
		if (nowait)
			break;
		cxmq_os_wait_event(freeze_wq_, queue_enterable, this);
	}
	__atomic_sub_fetch(&enter_sleepers_, 1u, __ATOMIC_RELEASE); // last touch when failing
	return entered;
}

void Queue::freeze()
{
	freeze_lock_.lock();
	if (freeze_depth_ == 0)
		cxmq_os_usage_kill(usage_);
	store_relaxed(freeze_depth_, freeze_depth_ + 1);
	freeze_lock_.unlock();
	FreezeWait fw{usage_};
	cxmq_os_wait_event(freeze_wq_, usage_is_zero, &fw);
}

void Queue::unfreeze()
{
	MutexGuard g(freeze_lock_);
	CXMQ_BUG_ON(freeze_depth_ <= 0);
	store_relaxed(freeze_depth_, freeze_depth_ - 1);
	if (freeze_depth_ == 0) {
		store_relaxed(zero_done_, false);
		cxmq_os_usage_resurrect(usage_);
		cxmq_os_wake_all(freeze_wq_);
	}
}

} // namespace cxmq
