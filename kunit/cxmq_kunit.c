// SPDX-License-Identifier: GPL-2.0
/*
 * cxmq's KUnit suites: the real core (the same sources as cxmq.ko) on the real kernel. The test
 * bodies are C++ (core_test.cpp); this file holds the suites and the bridge of kt.h.
 */
#include <kunit/test.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/wait.h>

#include "kt.h"

int cxmq_kt_check(struct cxmq_kt *t, int ok, const char *file, int line, const char *expr)
{
	if (!ok)
		KUNIT_FAIL((struct kunit *)t, "%s:%d: expected %s", file, line, expr);
	return ok;
}

void cxmq_kt_log(struct cxmq_kt *t, const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	kunit_info((struct kunit *)t, "%pV", &vaf);
	va_end(args);
}

unsigned int cxmq_kt_nr_online_cpus(void)
{
	return num_online_cpus();
}

void cxmq_kt_msleep(unsigned int ms)
{
	msleep(ms);
}

void *cxmq_kt_plug_start(void)
{
	struct blk_plug *plug = kmalloc(sizeof(*plug), GFP_KERNEL);

	if (plug)
		blk_start_plug(plug);
	return plug;
}

void cxmq_kt_plug_finish(void *plug)
{
	if (!plug)
		return;
	blk_finish_plug(plug);
	kfree(plug);
}

struct cxmq_kt_thread {
	void (*fn)(void *arg, unsigned int i);
	void *arg;
	unsigned int i;
	struct completion done;
};

static int cxmq_kt_thread_fn(void *p)
{
	struct cxmq_kt_thread *th = p;

	th->fn(th->arg, th->i);
	complete(&th->done);
	return 0;
}

int cxmq_kt_run_threads(unsigned int nr, void (*fn)(void *arg, unsigned int i), void *arg)
{
	struct cxmq_kt_thread *th;
	unsigned int i, started = 0, cpu;
	int ret = 0;

	th = kcalloc(nr, sizeof(*th), GFP_KERNEL);
	if (!th)
		return -ENOMEM;
	cpu = cpumask_first(cpu_online_mask);
	for (i = 0; i < nr; i++) {
		struct task_struct *task;

		th[i].fn = fn;
		th[i].arg = arg;
		th[i].i = i;
		init_completion(&th[i].done);
		task = kthread_create(cxmq_kt_thread_fn, &th[i], "cxmq_kt/%u", i);
		if (IS_ERR(task)) {
			ret = PTR_ERR(task);
			break;
		}
		kthread_bind(task, cpu);
		wake_up_process(task);
		started++;
		cpu = cpumask_next(cpu, cpu_online_mask);
		if (cpu >= nr_cpu_ids)
			cpu = cpumask_first(cpu_online_mask);
	}
	for (i = 0; i < started; i++)
		wait_for_completion(&th[i].done);
	kfree(th);
	return ret;
}

struct cxmq_kt_bio {
	struct bio bio;
	atomic_t ends;
};

struct cxmq_kt_bios {
	unsigned int nr;
	atomic_long_t done;
	atomic_long_t errors;
	atomic_long_t by_status[8];
	atomic_long_t double_ends;
	wait_queue_head_t wq;
	struct cxmq_kt_bio *bios;
};

static void cxmq_kt_end_io(struct bio *bio)
{
	struct cxmq_kt_bio *kb = container_of(bio, struct cxmq_kt_bio, bio);
	struct cxmq_kt_bios *b = bio->bi_private;
	blk_status_t st = bio->bi_status;

	if (atomic_inc_return(&kb->ends) > 1)
		atomic_long_inc(&b->double_ends);
	if (st != BLK_STS_OK)
		atomic_long_inc(&b->errors);
	if (st == BLK_STS_AGAIN)
		atomic_long_inc(&b->by_status[CXMQ_STS_AGAIN]);
	else if (st == BLK_STS_IOERR)
		atomic_long_inc(&b->by_status[CXMQ_STS_IOERR]);
	else if (st == BLK_STS_OK)
		atomic_long_inc(&b->by_status[CXMQ_STS_OK]);
	atomic_long_inc(&b->done);
	wake_up_all(&b->wq);
}

struct cxmq_kt_bios *cxmq_kt_bios_create(unsigned int nr)
{
	struct cxmq_kt_bios *b = kzalloc(sizeof(*b), GFP_KERNEL);

	if (!b)
		return NULL;
	b->bios = kvcalloc(nr, sizeof(*b->bios), GFP_KERNEL);
	if (!b->bios) {
		kfree(b);
		return NULL;
	}
	b->nr = nr;
	init_waitqueue_head(&b->wq);
	return b;
}

void *cxmq_kt_bio(struct cxmq_kt_bios *b, unsigned int i)
{
	struct cxmq_kt_bio *kb = &b->bios[i];

	bio_init(&kb->bio, NULL, NULL, 0, REQ_OP_READ);
	kb->bio.bi_end_io = cxmq_kt_end_io;
	kb->bio.bi_private = b;
	atomic_set(&kb->ends, 0);
	return &kb->bio;
}

unsigned long cxmq_kt_bios_done(struct cxmq_kt_bios *b)
{
	return atomic_long_read(&b->done);
}

unsigned long cxmq_kt_bios_errors(struct cxmq_kt_bios *b)
{
	return atomic_long_read(&b->errors) + atomic_long_read(&b->double_ends);
}

unsigned long cxmq_kt_bios_status_count(struct cxmq_kt_bios *b, enum cxmq_status st)
{
	return (unsigned int)st < ARRAY_SIZE(b->by_status) ? atomic_long_read(&b->by_status[st]) : 0;
}

int cxmq_kt_bios_wait(struct cxmq_kt_bios *b, unsigned long nr, unsigned int ms)
{
	return wait_event_timeout(b->wq, atomic_long_read(&b->done) >= nr,
				  msecs_to_jiffies(ms)) > 0;
}

void cxmq_kt_bios_destroy(struct cxmq_kt_bios *b)
{
	unsigned int i;

	if (!b)
		return;
	for (i = 0; i < b->nr; i++)
		bio_uninit(&b->bios[i].bio);
	kvfree(b->bios);
	kfree(b);
}

#define CXMQ_KT_CASES(X)                                                                     \
	X(config_defaults)                                                                   \
	X(config_rejects_bad_input)                                                          \
	X(tags_distinct_and_exhaustible)                                                     \
	X(tags_cache_hot_reuse)                                                              \
	X(tags_concurrent_unique)                                                            \
	X(tags_wait_for_free)                                                                \
	X(queue_all_cpus_complete)                                                           \
	X(queue_async_depth1)                                                                \
	X(queue_busy_backend)                                                                \
	X(queue_freeze_nowait)                                                               \
	X(queue_cpu_map)                                                                      \
	X(null_irqmode_softirq)                                                              \
	X(null_irqmode_timer)                                                                \
	X(mem_store_concurrent)                                                              \
	X(queue_resize_under_io)                                                             \
	X(plug_all_cpus_merge)

#define CXMQ_KT_DECLARE(name) void cxmq_kt_##name(struct cxmq_kt *t);
CXMQ_KT_CASES(CXMQ_KT_DECLARE)

#define CXMQ_KT_WRAP(name)                                                                   \
	static void cxmq_kunit_##name(struct kunit *test)                                    \
	{                                                                                    \
		cxmq_kt_##name((struct cxmq_kt *)test);                                      \
	}
CXMQ_KT_CASES(CXMQ_KT_WRAP)

#define CXMQ_KT_CASE(name) KUNIT_CASE(cxmq_kunit_##name),
static struct kunit_case cxmq_core_cases[] = {
	CXMQ_KT_CASES(CXMQ_KT_CASE)
	{}
};

static struct kunit_suite cxmq_core_suite = {
	.name = "cxmq_core",
	.test_cases = cxmq_core_cases,
};

kunit_test_suites(&cxmq_core_suite);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("cxmq KUnit suites");
