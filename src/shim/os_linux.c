// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel side of include/cxmq/os.h (its block-layer half is os_bio.c, deferred execution
 * os_defer.c, virtqueues os_vq.c): thin wrappers over the kernel's own primitives, so that the
 * C++ core never includes a kernel header.
 */
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/fault-inject.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/nodemask.h>
#include <linux/percpu-refcount.h>
#include <linux/prandom.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <linux/topology.h>
#include <linux/wait.h>

#include "cxmq/os.h"
#include "cxmq_shim.h"

static_assert(sizeof(cxmq_u64) == sizeof(u64) && sizeof(cxmq_size_t) == sizeof(size_t));
static_assert(CXMQ_ENOMEM == ENOMEM && CXMQ_EINVAL == EINVAL && CXMQ_EBUSY == EBUSY &&
	      CXMQ_ENODEV == ENODEV && CXMQ_EAGAIN == EAGAIN);

void cxmq_os_log(int level, const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	switch (level) {
	case CXMQ_LOG_ERR:
		printk(KERN_ERR "%pV", &vaf);
		break;
	case CXMQ_LOG_WARN:
		printk(KERN_WARNING "%pV", &vaf);
		break;
	case CXMQ_LOG_INFO:
		printk(KERN_INFO "%pV", &vaf);
		break;
	default:
		printk(KERN_DEBUG "%pV", &vaf);
		break;
	}
	va_end(args);
}

int cxmq_os_snprintf(char *buf, cxmq_size_t size, const char *fmt, ...)
{
	va_list args;
	int n;

	va_start(args, fmt);
	n = vscnprintf(buf, size, fmt, args);
	va_end(args);
	return n;
}

void cxmq_os_bug_report(const char *file, int line, const char *what)
{
	pr_crit("cxmq: BUG at %s:%d: %s\n", file, line, what);
}

void cxmq_os_warn(const char *file, int line, const char *what)
{
	WARN(1, "cxmq: %s:%d: %s\n", file, line, what);
}

/*
 * kmalloc aligns power-of-two sizes naturally; larger sizes come page-aligned (kmalloc's large
 * caches, the page allocator or vmalloc). Small sizes are rounded up to a power of two of at
 * least a cache line, so every allocation is cache-line aligned as os.h promises.
 */
static size_t cxmq_alloc_size(size_t size)
{
	return size < PAGE_SIZE ? roundup_pow_of_two(max_t(size_t, size, SMP_CACHE_BYTES)) : size;
}

#ifdef CONFIG_FAULT_INJECTION
static DECLARE_FAULT_ATTR(cxmq_fail_init_hctx);

int cxmq_os_should_fail_init_hctx(void)
{
	return should_fail(&cxmq_fail_init_hctx, 1);
}

void cxmq_fault_debugfs_init(struct dentry *root)
{
	fault_create_debugfs_attr("fail_init_hctx", root, &cxmq_fail_init_hctx);
}
#else
int cxmq_os_should_fail_init_hctx(void)
{
	return 0;
}

void cxmq_fault_debugfs_init(struct dentry *root)
{
}
#endif

void *cxmq_os_zalloc(cxmq_size_t size, int node)
{
	return kvzalloc_node(cxmq_alloc_size(size), GFP_KERNEL, node);
}

void *cxmq_os_zalloc_nowait(cxmq_size_t size, int node)
{
	return kzalloc_node(cxmq_alloc_size(size), GFP_NOWAIT | __GFP_NOWARN, node);
}

void cxmq_os_msleep(cxmq_u32 ms)
{
	msleep(ms);
}

cxmq_u64 cxmq_os_now_ns(void)
{
	return ktime_get_ns();
}

CXMQ_HOT cxmq_u64 cxmq_os_now_coarse_ns(void)
{
	return ktime_get_coarse_ns();
}

void cxmq_os_free(const void *p)
{
	kvfree(p);
}

cxmq_u32 cxmq_os_nr_cpu_ids(void)
{
	return nr_cpu_ids;
}

CXMQ_HOT cxmq_u32 cxmq_os_this_cpu(void)
{
	return raw_smp_processor_id();
}

int cxmq_os_cpu_possible(cxmq_u32 cpu)
{
	return cpu < nr_cpu_ids && cpu_possible(cpu);
}

int cxmq_os_cpu_online(cxmq_u32 cpu)
{
	return cpu < nr_cpu_ids && cpu_online(cpu);
}

int cxmq_os_cpu_present(cxmq_u32 cpu)
{
	return cpu < nr_cpu_ids && cpu_present(cpu);
}

int cxmq_os_cpu_to_node(cxmq_u32 cpu)
{
	return cpu_to_node(cpu);
}

cxmq_u32 cxmq_os_cpu_first_sibling(cxmq_u32 cpu)
{
	unsigned int first = cpumask_first(topology_sibling_cpumask(cpu));

	return first < nr_cpu_ids ? first : cpu;
}

cxmq_u32 cxmq_os_nr_node_ids(void)
{
	return nr_node_ids;
}

int cxmq_os_node_online(int node)
{
	return node >= 0 && node < nr_node_ids && node_online(node);
}

struct cxmq_os_lock {
	spinlock_t lock;
};

struct cxmq_os_lock *cxmq_os_lock_create(int node)
{
	struct cxmq_os_lock *l = kzalloc_node(sizeof(*l), GFP_KERNEL, node);

	if (l)
		spin_lock_init(&l->lock);
	return l;
}

void cxmq_os_lock_destroy(struct cxmq_os_lock *l)
{
	kfree(l);
}

unsigned long cxmq_os_lock_irqsave(struct cxmq_os_lock *l)
{
	unsigned long flags;

	spin_lock_irqsave(&l->lock, flags);
	return flags;
}

void cxmq_os_unlock_irqrestore(struct cxmq_os_lock *l, unsigned long flags)
{
	spin_unlock_irqrestore(&l->lock, flags);
}

struct cxmq_os_mutex {
	struct mutex m;
};

struct cxmq_os_mutex *cxmq_os_mutex_create(void)
{
	struct cxmq_os_mutex *m = kzalloc(sizeof(*m), GFP_KERNEL);

	if (m)
		mutex_init(&m->m);
	return m;
}

void cxmq_os_mutex_destroy(struct cxmq_os_mutex *m)
{
	if (m)
		mutex_destroy(&m->m);
	kfree(m);
}

void cxmq_os_mutex_lock(struct cxmq_os_mutex *m)
{
	mutex_lock(&m->m);
}

void cxmq_os_mutex_unlock(struct cxmq_os_mutex *m)
{
	mutex_unlock(&m->m);
}

struct cxmq_os_waitq {
	wait_queue_head_t wq;
};

struct cxmq_os_waitq *cxmq_os_waitq_create(int node)
{
	struct cxmq_os_waitq *w = kzalloc_node(sizeof(*w), GFP_KERNEL, node);

	if (w)
		init_waitqueue_head(&w->wq);
	return w;
}

void cxmq_os_waitq_destroy(struct cxmq_os_waitq *w)
{
	if (w)
		WARN_ON(waitqueue_active(&w->wq));
	kfree(w);
}

void cxmq_os_wait_exclusive(struct cxmq_os_waitq *w, int (*try_fn)(void *arg), void *arg)
{
	DEFINE_WAIT(wait);
	bool used_wake = false, wasted;

	for (;;) {
		/* queues us at the tail, unless we are still queued (a spurious wake-up) */
		prepare_to_wait_exclusive(&w->wq, &wait, TASK_UNINTERRUPTIBLE);
		if (try_fn(arg))
			break;
		io_schedule();
		/* woken (and dequeued): try before queueing again, so we keep our turn */
		used_wake = list_empty_careful(&wait.entry);
		if (try_fn(arg))
			break;
		used_wake = false;
	}
	/*
	 * A wake-up that dequeued us after a try had already succeeded was meant for the next
	 * waiter: pass it on rather than lose it. One we used is not passed on (that would wake
	 * the next waiter for nothing and send it to the back of the queue).
	 */
	wasted = !used_wake && list_empty_careful(&wait.entry);
	finish_wait(&w->wq, &wait);
	if (wasted)
		wake_up(&w->wq);
}

void cxmq_os_wait_event(struct cxmq_os_waitq *w, int (*cond_fn)(void *arg), void *arg)
{
	wait_event(w->wq, cond_fn(arg));
}

void cxmq_os_wake_one(struct cxmq_os_waitq *w)
{
	wake_up(&w->wq);
}

void cxmq_os_wake_all(struct cxmq_os_waitq *w)
{
	wake_up_all(&w->wq);
}

CXMQ_HOT int cxmq_os_waitq_active(struct cxmq_os_waitq *w)
{
	return wq_has_sleeper(&w->wq);
}

struct cxmq_os_usage {
	struct percpu_ref ref;
	void (*on_zero)(void *arg);
	void *arg;
};

static void cxmq_usage_release(struct percpu_ref *ref)
{
	struct cxmq_os_usage *u = container_of(ref, struct cxmq_os_usage, ref);

	u->on_zero(u->arg);
}

struct cxmq_os_usage *cxmq_os_usage_create(void (*on_zero)(void *arg), void *arg)
{
	struct cxmq_os_usage *u = kzalloc(sizeof(*u), GFP_KERNEL);

	if (!u)
		return NULL;
	u->on_zero = on_zero;
	u->arg = arg;
	/* Atomic until registered: killing a per-CPU ref costs an RCU grace period. */
	if (percpu_ref_init(&u->ref, cxmq_usage_release, PERCPU_REF_INIT_ATOMIC, GFP_KERNEL)) {
		kfree(u);
		return NULL;
	}
	return u;
}

void cxmq_os_usage_destroy(struct cxmq_os_usage *u)
{
	percpu_ref_exit(&u->ref);
	kfree(u);
}

CXMQ_HOT int cxmq_os_usage_tryget_live(struct cxmq_os_usage *u)
{
	return percpu_ref_tryget_live(&u->ref);
}

cxmq_u32 cxmq_os_random_below(cxmq_u32 n)
{
	return prandom_u32_max(n);
}

int cxmq_os_usage_tryget(struct cxmq_os_usage *u)
{
	return percpu_ref_tryget(&u->ref);
}

/* blk_mq_poll's loop: a task woken (or with a signal for its sleep) stops with a success, one
 * whose CPU is wanted stops without. */
enum cxmq_poll_next cxmq_os_poll_next(void)
{
	if (signal_pending_state(get_current_state(), current))
		__set_current_state(TASK_RUNNING);
	if (task_is_running(current))
		return CXMQ_POLL_WOKEN;
	if (need_resched())
		return CXMQ_POLL_STOP;
	cpu_relax();
	return CXMQ_POLL_AGAIN;
}

CXMQ_HOT void cxmq_os_usage_get(struct cxmq_os_usage *u)
{
	percpu_ref_get(&u->ref);
}

CXMQ_HOT void cxmq_os_usage_put(struct cxmq_os_usage *u)
{
	percpu_ref_put(&u->ref);
}

void cxmq_os_usage_kill(struct cxmq_os_usage *u)
{
	percpu_ref_kill(&u->ref);
}

int cxmq_os_usage_is_zero(struct cxmq_os_usage *u)
{
	return percpu_ref_is_zero(&u->ref);
}

void cxmq_os_usage_resurrect(struct cxmq_os_usage *u)
{
	percpu_ref_resurrect(&u->ref);
}

void cxmq_os_usage_switch_to_percpu(struct cxmq_os_usage *u)
{
	percpu_ref_switch_to_percpu(&u->ref);
}

void *cxmq_os_zalloc_io(cxmq_size_t size, int may_sleep, int node)
{
	gfp_t gfp = (may_sleep ? GFP_NOIO : GFP_NOWAIT) | __GFP_NOWARN;

	return kzalloc_node(cxmq_alloc_size(size), gfp, node);
}

void *cxmq_os_page_alloc(int may_sleep, int node)
{
	gfp_t gfp = (may_sleep ? GFP_NOIO : GFP_NOWAIT) | __GFP_ZERO | __GFP_NOWARN;
	struct page *page = alloc_pages_node(node, gfp, 0);

	return page ? page_address(page) : NULL;
}

void cxmq_os_page_free(void *page)
{
	if (page)
		free_page((unsigned long)page);
}

/*
 * cpus_share_cache is not exported to modules in 6.1 (nor is x86's cpu_llc_shared_map): CPUs of
 * one die are taken as sharing the last-level cache, which they do on Intel parts and in these
 * VMs; on parts with several L3s a die (AMD's CCXs) rq_affinity 1 moves fewer completions than
 * blk-mq's.
 */
int cxmq_os_cpus_share_cache(cxmq_u32 a, cxmq_u32 b)
{
	return a == b || cpumask_test_cpu(b, topology_die_cpumask(a));
}
