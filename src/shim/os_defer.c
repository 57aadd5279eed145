// SPDX-License-Identifier: GPL-2.0
/*
 * The deferred-execution half of include/cxmq/os.h: work items (on kblockd, as blk-mq's run and
 * timeout work), tasklets (null_blk's softirq completions), hrtimers (its timer completions) and
 * IPIs (completions moved to the submitting CPU).
 */
#include <linux/blkdev.h>
#include <linux/delay.h>
#include <linux/hrtimer.h>
#include <linux/interrupt.h>
#include <linux/jiffies.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/workqueue.h>

#include "cxmq/os.h"
#include "cxmq_shim.h"

struct cxmq_os_work {
	struct delayed_work dwork;
	void (*fn)(void *arg);
	void *arg;
};

static void cxmq_work_fn(struct work_struct *work)
{
	struct cxmq_os_work *w = container_of(to_delayed_work(work), struct cxmq_os_work, dwork);

	w->fn(w->arg);
}

struct cxmq_os_work *cxmq_os_work_create(void (*fn)(void *arg), void *arg, int node)
{
	struct cxmq_os_work *w = kzalloc_node(sizeof(*w), GFP_KERNEL, node);

	if (!w)
		return NULL;
	INIT_DELAYED_WORK(&w->dwork, cxmq_work_fn);
	w->fn = fn;
	w->arg = arg;
	return w;
}

struct cxmq_os_work *cxmq_os_work_create_background(void (*fn)(void *arg), void *arg, int node)
{
	return cxmq_os_work_create(fn, arg, node);
}

void cxmq_os_work_destroy(struct cxmq_os_work *w)
{
	if (!w)
		return;
	cancel_delayed_work_sync(&w->dwork);
	kfree(w);
}

void cxmq_os_work_schedule(struct cxmq_os_work *w, cxmq_u32 delay_us, cxmq_u32 cpu)
{
	int where = cpu < nr_cpu_ids && cpu_online(cpu) ? (int)cpu : WORK_CPU_UNBOUND;

	kblockd_mod_delayed_work_on(where, &w->dwork, usecs_to_jiffies(delay_us));
}

void cxmq_os_work_cancel_sync(struct cxmq_os_work *w)
{
	cancel_delayed_work_sync(&w->dwork);
}

struct cxmq_os_softirq_ctx {
	struct tasklet_struct tasklet;
	struct cxmq_os_softirq *owner;
	u32 index;
};

struct cxmq_os_softirq {
	void (*fn)(void *arg, cxmq_u32 i);
	void *arg;
	u32 nr;
	struct cxmq_os_softirq_ctx ctx[];
};

static void cxmq_softirq_fn(struct tasklet_struct *t)
{
	struct cxmq_os_softirq_ctx *c = container_of(t, struct cxmq_os_softirq_ctx, tasklet);

	c->owner->fn(c->owner->arg, c->index);
}

struct cxmq_os_softirq *cxmq_os_softirq_create(cxmq_u32 nr, void (*fn)(void *arg, cxmq_u32 i),
					       void *arg)
{
	struct cxmq_os_softirq *s = kvzalloc(struct_size(s, ctx, nr), GFP_KERNEL);
	u32 i;

	if (!s)
		return NULL;
	s->fn = fn;
	s->arg = arg;
	s->nr = nr;
	for (i = 0; i < nr; i++) {
		s->ctx[i].owner = s;
		s->ctx[i].index = i;
		tasklet_setup(&s->ctx[i].tasklet, cxmq_softirq_fn);
	}
	return s;
}

void cxmq_os_softirq_destroy(struct cxmq_os_softirq *s)
{
	u32 i;

	if (!s)
		return;
	for (i = 0; i < s->nr; i++)
		tasklet_kill(&s->ctx[i].tasklet);
	kvfree(s);
}

void cxmq_os_softirq_raise(struct cxmq_os_softirq *s, cxmq_u32 i)
{
	tasklet_schedule(&s->ctx[i].tasklet);
}

struct cxmq_os_timer {
	struct hrtimer timer;
	void (*fn)(void *arg);
	void *arg;
};

static enum hrtimer_restart cxmq_timer_fn(struct hrtimer *h)
{
	struct cxmq_os_timer *t = container_of(h, struct cxmq_os_timer, timer);

	t->fn(t->arg);
	return HRTIMER_NORESTART;
}

struct cxmq_os_timer *cxmq_os_timer_create(void (*fn)(void *arg), void *arg, int node)
{
	struct cxmq_os_timer *t = kzalloc_node(sizeof(*t), GFP_KERNEL, node);

	if (!t)
		return NULL;
	hrtimer_init(&t->timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	t->timer.function = cxmq_timer_fn;
	t->fn = fn;
	t->arg = arg;
	return t;
}

void cxmq_os_timer_destroy(struct cxmq_os_timer *t)
{
	if (!t)
		return;
	hrtimer_cancel(&t->timer);
	kfree(t);
}

void cxmq_os_timer_start(struct cxmq_os_timer *t, cxmq_u64 nsec)
{
	hrtimer_start(&t->timer, ns_to_ktime(nsec), HRTIMER_MODE_REL);
}

/* ---- completions moved to another CPU ---- */
struct cxmq_os_ipi {
	void (*fn)(void *arg, cxmq_u32 cpu);
	void *arg;
	atomic_t pending;          /* sent and not yet run to their end */
	call_single_data_t *csd;   /* one per possible CPU */
};

static void cxmq_ipi_fn(void *info)
{
	struct cxmq_os_ipi *ipi = info;

	ipi->fn(ipi->arg, smp_processor_id());
	atomic_dec(&ipi->pending); /* the last touch */
}

struct cxmq_os_ipi *cxmq_os_ipi_create(void (*fn)(void *arg, cxmq_u32 cpu), void *arg)
{
	struct cxmq_os_ipi *ipi = kzalloc(sizeof(*ipi), GFP_KERNEL);
	unsigned int cpu;

	if (!ipi)
		return NULL;
	ipi->csd = kcalloc(nr_cpu_ids, sizeof(*ipi->csd), GFP_KERNEL);
	if (!ipi->csd) {
		kfree(ipi);
		return NULL;
	}
	ipi->fn = fn;
	ipi->arg = arg;
	atomic_set(&ipi->pending, 0);
	for (cpu = 0; cpu < nr_cpu_ids; cpu++)
		INIT_CSD(&ipi->csd[cpu], cxmq_ipi_fn, ipi);
	return ipi;
}

void cxmq_os_ipi_destroy(struct cxmq_os_ipi *ipi)
{
	if (!ipi)
		return;
	while (atomic_read(&ipi->pending))
		msleep(1);
	kfree(ipi->csd);
	kfree(ipi);
}

/* As blk_mq_complete_send_ipi; a CPU that went offline since the caller looked: run it here. */
void cxmq_os_ipi_send(struct cxmq_os_ipi *ipi, cxmq_u32 cpu)
{
	int ret;

	atomic_inc(&ipi->pending);
	ret = smp_call_function_single_async(cpu, &ipi->csd[cpu]);
	if (ret) /* -EBUSY: queued already, it runs for this one too */
		atomic_dec(&ipi->pending);
	if (ret == -ENXIO)
		ipi->fn(ipi->arg, cpu);
}
