// SPDX-License-Identifier: GPL-2.0
/*
 * cxmq's module parameters (null_blk's names): the declarations the kernel needs, and the
 * configuration they make for the devices made at load and as the start of configfs and virtio
 * devices.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/string.h>

#include "cxmq_shim.h"

/*
 * Module parameters (null_blk's names). Each is a setting of the core's table
 * (src/core/settings.cpp), which parses, checks and shows it into g_params: what is declared
 * here is only what the kernel needs. A value that is not a number fails insmod at once (the
 * kernel names the parameter); ranges and combinations are checked by cxmq_init.
 */
static struct cxmq_params g_params; /* under kernel_param_lock(THIS_MODULE), as set ops run */
static bool g_params_ready; /* g_params has its defaults (the first set, or init, loads them) */

/* With kernel_param_lock(THIS_MODULE) held. */
static void cxmq_params_init(void)
{
	if (!g_params_ready) {
		cxmq_params_defaults(&g_params);
		g_params_ready = true;
	}
}

static int cxmq_param_index(const struct kernel_param *kp)
{
	const char *dot = strrchr(kp->name, '.'); /* "cxmq.gb" if ever built in */
	int i = cxmq_setting_find(dot ? dot + 1 : kp->name);

	if (WARN_ON(i < 0 || !(cxmq_setting_flags(i) & CXMQ_SETTING_PARAM)))
		return -EINVAL;
	return i;
}

static int cxmq_param_set(const char *val, const struct kernel_param *kp)
{
	int i = cxmq_param_index(kp);

	if (i < 0)
		return i;
	cxmq_params_init();
	return cxmq_param_parse(i, val, &g_params, 0);
}

static int cxmq_param_get(char *buf, const struct kernel_param *kp)
{
	int i = cxmq_param_index(kp);

	if (i < 0)
		return i;
	cxmq_params_init();
	return cxmq_param_format(i, &g_params, buf, PAGE_SIZE);
}

static const struct kernel_param_ops cxmq_param_ops = {
	.set = cxmq_param_set,
	.get = cxmq_param_get,
};

/* type: what modinfo shows, the C type of the setting's value */
#define CXMQ_PARAM(name, type, desc) \
	module_param_cb(name, &cxmq_param_ops, NULL, 0444); \
	__MODULE_PARM_TYPE(name, #type); \
	MODULE_PARM_DESC(name, desc)

CXMQ_PARAM(gb, ulong, "Size in GiB (1..1048576, default 250)");
CXMQ_PARAM(bs, uint, "Logical block size in bytes (power of two, 512..4096, default 512)");
CXMQ_PARAM(nr_devices, uint, "Number of devices to create (0..1024, default 1)");
CXMQ_PARAM(submit_queues, uint, "Hardware queues (1..possible CPUs, more is capped; default 1)");
CXMQ_PARAM(hw_queue_depth, uint, "Tags per hardware queue (1..4096, default 64)");
CXMQ_PARAM(irqmode, uint, "Completion: 0 in the submitter's context (default), 1 softirq, 2 timer");
CXMQ_PARAM(completion_nsec, ulong, "irqmode=2: completion delay in ns (1..10000000000, default 10000)");
CXMQ_PARAM(memory_backed, uint, "Keep data in memory: 0 no (default), 1 yes (pages allocated on first write)");
CXMQ_PARAM(home_node, int, "NUMA node for device memory (-1: any, default)");
CXMQ_PARAM(scheduler, charp, "First IO scheduler of each device: none (default), mq-deadline or kyber");
CXMQ_PARAM(poll_queues, uint, "Poll queues for IOPOLL (io_uring hipri) bios (0..possible CPUs, more is capped; default 0)");
CXMQ_PARAM(timeout, charp, "Fault injection: requests the backend never completes (null_blk's \"<interval>,<probability>,<space>,<times>\"; default empty: none)");
CXMQ_PARAM(requeue, charp, "Fault injection: requests the backend answers busy (null_blk's \"<interval>,<probability>,<space>,<times>\"; default empty: none)");
CXMQ_PARAM(shared_tags, uint, "Share one tag map per hardware queue index among the devices made with 1 (0 or 1, default 0)");
CXMQ_PARAM(max_sectors, uint, "Largest request in 512-byte sectors (0 or 8..8388607; default 0: the kernel's default)");

/* Writable at runtime: applied to every device at once. */
static int cxmq_set_busy_every(const char *val, const struct kernel_param *kp)
{
	int i = cxmq_param_index(kp);
	int ret;

	if (i < 0)
		return i;
	cxmq_params_init();
	ret = cxmq_param_parse(i, val, &g_params, 1); /* checked now: it may come at runtime */
	if (ret)
		return ret;
	cxmq_devs_set_busy_every(g_params.busy_every);
	return 0;
}

static const struct kernel_param_ops cxmq_busy_every_ops = {
	.set = cxmq_set_busy_every,
	.get = cxmq_param_get,
};
module_param_cb(busy_every, &cxmq_busy_every_ops, NULL, 0644);
__MODULE_PARM_TYPE(busy_every, "uint");
MODULE_PARM_DESC(busy_every, "Test hook: the backend answers busy to every n-th request (0: never)");

/* A configuration from the module parameters (configfs devices start from it too). */
void cxmq_default_config(struct cxmq_dev_config *cfg)
{
	kernel_param_lock(THIS_MODULE);
	cxmq_params_init();
	*cfg = g_params.dev;
	kernel_param_unlock(THIS_MODULE);
}

/*
 * At module init: the parameters' ranges and combinations checked (submit_queues is capped in
 * g_params too), busy_every applied as its runtime store does, and the devices to make.
 */
int cxmq_params_load(struct cxmq_dev_config *cfg, unsigned int *nr_devices)
{
	int ret;

	kernel_param_lock(THIS_MODULE); /* the parameters' files exist already */
	cxmq_params_init();
	ret = cxmq_params_check(&g_params);
	if (!ret) {
		*cfg = g_params.dev;
		*nr_devices = g_params.nr_devices;
		cxmq_devs_set_busy_every(g_params.busy_every);
	}
	kernel_param_unlock(THIS_MODULE);
	return ret;
}
