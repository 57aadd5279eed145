// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/kernel/config/cxmq/<name>/: devices made at runtime, as null_blk's configfs has them.
 * mkdir makes a powered-off device with the module parameters' settings; its attributes set
 * the configuration; power=1 creates the disk, power=0 removes it; rmdir removes it too. While
 * powered, only submit_queues can change (the hardware queue count, at runtime); the others
 * answer -EBUSY. Malformed or out-of-range writes answer -EINVAL and change nothing.
 */
#include <linux/configfs.h>
#include <linux/cpumask.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "cxmq_shim.h"

struct cxmq_cfs_dev {
	struct config_item item;
	struct mutex lock;              /* cfg and dev */
	struct cxmq_dev_config cfg;
	struct cxmq_dev *dev;           /* when powered on */
};

static struct cxmq_cfs_dev *to_cfs(struct config_item *item)
{
	return container_of(item, struct cxmq_cfs_dev, item);
}

enum cxmq_cfs_field {
	CXMQ_F_SIZE,
	CXMQ_F_BLOCKSIZE,
	CXMQ_F_SUBMIT_QUEUES,
	CXMQ_F_HW_QUEUE_DEPTH,
	CXMQ_F_IRQMODE,
	CXMQ_F_COMPLETION_NSEC,
	CXMQ_F_MEMORY_BACKED,
	CXMQ_F_HOME_NODE,
};

static const char *const cxmq_cfs_names[] = {
	[CXMQ_F_SIZE] = "size",
	[CXMQ_F_BLOCKSIZE] = "blocksize",
	[CXMQ_F_SUBMIT_QUEUES] = "submit_queues",
	[CXMQ_F_HW_QUEUE_DEPTH] = "hw_queue_depth",
	[CXMQ_F_IRQMODE] = "irqmode",
	[CXMQ_F_COMPLETION_NSEC] = "completion_nsec",
	[CXMQ_F_MEMORY_BACKED] = "memory_backed",
	[CXMQ_F_HOME_NODE] = "home_node",
};

static s64 cxmq_cfs_get(const struct cxmq_dev_config *c, int f)
{
	switch (f) {
	case CXMQ_F_SIZE:
		return c->size_mb;
	case CXMQ_F_BLOCKSIZE:
		return c->bs;
	case CXMQ_F_SUBMIT_QUEUES:
		return c->submit_queues;
	case CXMQ_F_HW_QUEUE_DEPTH:
		return c->hw_queue_depth;
	case CXMQ_F_IRQMODE:
		return c->irqmode;
	case CXMQ_F_COMPLETION_NSEC:
		return c->completion_nsec;
	case CXMQ_F_MEMORY_BACKED:
		return c->memory_backed;
	case CXMQ_F_HOME_NODE:
		return c->home_node;
	}
	return 0;
}

/* The range of each attribute; combinations are checked at power on. */
static int cxmq_cfs_check(const char *dev, int f, s64 v)
{
	s64 lo = 0, hi = 0;

	switch (f) {
	case CXMQ_F_SIZE:
		lo = 1, hi = (s64)CXMQ_MAX_GB * 1024;
		break;
	case CXMQ_F_BLOCKSIZE:
		if (v < CXMQ_MIN_BS || v > CXMQ_MAX_BS || !is_power_of_2(v)) {
			pr_err("cxmq: %s: blocksize=%lld is invalid: must be a power of two in %u..%u\n",
			       dev, v, CXMQ_MIN_BS, CXMQ_MAX_BS);
			return -EINVAL;
		}
		return 0;
	case CXMQ_F_SUBMIT_QUEUES:
		lo = 1, hi = num_possible_cpus();
		break;
	case CXMQ_F_HW_QUEUE_DEPTH:
		lo = 1, hi = CXMQ_MAX_QUEUE_DEPTH;
		break;
	case CXMQ_F_IRQMODE:
		lo = 0, hi = 2;
		break;
	case CXMQ_F_COMPLETION_NSEC:
		lo = 1, hi = 10000000000LL;
		break;
	case CXMQ_F_MEMORY_BACKED:
		lo = 0, hi = 1;
		break;
	case CXMQ_F_HOME_NODE:
		return cxmq_check_home_node(v, "home_node");
	}
	if (v < lo || v > hi) {
		pr_err("cxmq: %s: %s=%lld is invalid: must be %lld..%lld\n", dev, cxmq_cfs_names[f],
		       v, lo, hi);
		return -EINVAL;
	}
	return 0;
}

static void cxmq_cfs_set(struct cxmq_dev_config *c, int f, s64 v)
{
	switch (f) {
	case CXMQ_F_SIZE:
		c->size_mb = v;
		break;
	case CXMQ_F_BLOCKSIZE:
		c->bs = v;
		break;
	case CXMQ_F_SUBMIT_QUEUES:
		c->submit_queues = v;
		break;
	case CXMQ_F_HW_QUEUE_DEPTH:
		c->hw_queue_depth = v;
		break;
	case CXMQ_F_IRQMODE:
		c->irqmode = v;
		break;
	case CXMQ_F_COMPLETION_NSEC:
		c->completion_nsec = v;
		break;
	case CXMQ_F_MEMORY_BACKED:
		c->memory_backed = v;
		break;
	case CXMQ_F_HOME_NODE:
		c->home_node = v;
		break;
	}
}

static ssize_t cxmq_cfs_show(struct config_item *item, char *page, int f)
{
	struct cxmq_cfs_dev *d = to_cfs(item);
	s64 v;

	mutex_lock(&d->lock);
	v = cxmq_cfs_get(&d->cfg, f);
	mutex_unlock(&d->lock);
	return sprintf(page, "%lld\n", v);
}

static ssize_t cxmq_cfs_store(struct config_item *item, const char *page, size_t count, int f)
{
	struct cxmq_cfs_dev *d = to_cfs(item);
	const char *name = config_item_name(item);
	s64 v;
	int ret;

	if (f == CXMQ_F_HOME_NODE) {
		int node;

		ret = kstrtoint(page, 0, &node);
		v = node;
	} else {
		u64 u;

		ret = kstrtou64(page, 0, &u);
		v = u > S64_MAX ? S64_MAX : (s64)u;
	}
	if (ret) {
		pr_err("cxmq: %s: %s: not a number\n", name, cxmq_cfs_names[f]);
		return -EINVAL;
	}
	ret = cxmq_cfs_check(name, f, v);
	if (ret)
		return ret;

	mutex_lock(&d->lock);
	if (d->dev && f != CXMQ_F_SUBMIT_QUEUES) {
		pr_err("cxmq: %s: %s cannot change while powered on (write 0 to power first)\n",
		       name, cxmq_cfs_names[f]);
		ret = -EBUSY;
	} else if (d->dev) {
		/* fewer than asked when memory runs short: the attribute shows what is in use */
		d->cfg.submit_queues = cxmq_dev_set_nr_hw_queues(d->dev, v);
	} else {
		cxmq_cfs_set(&d->cfg, f, v);
	}
	mutex_unlock(&d->lock);
	return ret ? ret : count;
}

#define CXMQ_CFS_ATTR(_name, _f) \
	static ssize_t cxmq_cfs_##_name##_show(struct config_item *item, char *page) \
	{ \
		return cxmq_cfs_show(item, page, _f); \
	} \
	static ssize_t cxmq_cfs_##_name##_store(struct config_item *item, const char *page, \
						size_t count) \
	{ \
		return cxmq_cfs_store(item, page, count, _f); \
	} \
	CONFIGFS_ATTR(cxmq_cfs_, _name)

CXMQ_CFS_ATTR(size, CXMQ_F_SIZE);
CXMQ_CFS_ATTR(blocksize, CXMQ_F_BLOCKSIZE);
CXMQ_CFS_ATTR(submit_queues, CXMQ_F_SUBMIT_QUEUES);
CXMQ_CFS_ATTR(hw_queue_depth, CXMQ_F_HW_QUEUE_DEPTH);
CXMQ_CFS_ATTR(irqmode, CXMQ_F_IRQMODE);
CXMQ_CFS_ATTR(completion_nsec, CXMQ_F_COMPLETION_NSEC);
CXMQ_CFS_ATTR(memory_backed, CXMQ_F_MEMORY_BACKED);
CXMQ_CFS_ATTR(home_node, CXMQ_F_HOME_NODE);

static ssize_t cxmq_cfs_power_show(struct config_item *item, char *page)
{
	struct cxmq_cfs_dev *d = to_cfs(item);
	int on;

	mutex_lock(&d->lock);
	on = d->dev != NULL;
	mutex_unlock(&d->lock);
	return sprintf(page, "%d\n", on);
}

static ssize_t cxmq_cfs_power_store(struct config_item *item, const char *page, size_t count)
{
	struct cxmq_cfs_dev *d = to_cfs(item);
	const char *name = config_item_name(item);
	struct cxmq_dev_config cfg;
	bool on;
	int ret = 0;

	if (kstrtobool(page, &on)) {
		pr_err("cxmq: %s: power: write 1 or 0\n", name);
		return -EINVAL;
	}
	mutex_lock(&d->lock);
	if (on && !d->dev) {
		cfg = d->cfg;
		ret = cxmq_config_check(&cfg);
		if (!ret) {
			d->dev = cxmq_dev_create(&cfg, &ret);
			if (!d->dev)
				pr_err("cxmq: %s: creating the device failed: %d\n", name, ret);
		}
		if (d->dev)
			pr_info("cxmq: %s: %s is on: %u hardware queue(s) of depth %u\n", name,
				d->dev->disk->disk_name, d->dev->cfg.submit_queues,
				cfg.hw_queue_depth);
	} else if (!on && d->dev) {
		cxmq_dev_destroy(d->dev);
		d->dev = NULL;
	}
	mutex_unlock(&d->lock);
	return ret ? ret : count;
}
CONFIGFS_ATTR(cxmq_cfs_, power);

/* The disk's number (cxmqN) while powered on, -1 otherwise. */
static ssize_t cxmq_cfs_index_show(struct config_item *item, char *page)
{
	struct cxmq_cfs_dev *d = to_cfs(item);
	int index;

	mutex_lock(&d->lock);
	index = d->dev ? d->dev->index : -1;
	mutex_unlock(&d->lock);
	return sprintf(page, "%d\n", index);
}
CONFIGFS_ATTR_RO(cxmq_cfs_, index);

static struct configfs_attribute *cxmq_cfs_attrs[] = {
	&cxmq_cfs_attr_size, &cxmq_cfs_attr_blocksize, &cxmq_cfs_attr_submit_queues,
	&cxmq_cfs_attr_hw_queue_depth, &cxmq_cfs_attr_irqmode, &cxmq_cfs_attr_completion_nsec,
	&cxmq_cfs_attr_memory_backed, &cxmq_cfs_attr_home_node, &cxmq_cfs_attr_power,
	&cxmq_cfs_attr_index, NULL,
};

static void cxmq_cfs_release(struct config_item *item)
{
	struct cxmq_cfs_dev *d = to_cfs(item);

	WARN_ON(d->dev); /* powered off by drop_item */
	mutex_destroy(&d->lock);
	kfree(d);
}

static struct configfs_item_operations cxmq_cfs_item_ops = {
	.release = cxmq_cfs_release,
};

static const struct config_item_type cxmq_cfs_dev_type = {
	.ct_item_ops = &cxmq_cfs_item_ops,
	.ct_attrs = cxmq_cfs_attrs,
	.ct_owner = THIS_MODULE,
};

static struct config_item *cxmq_cfs_make_item(struct config_group *group, const char *name)
{
	struct cxmq_cfs_dev *d = kzalloc(sizeof(*d), GFP_KERNEL);

	if (!d)
		return ERR_PTR(-ENOMEM);
	mutex_init(&d->lock);
	cxmq_default_config(&d->cfg);
	config_item_init_type_name(&d->item, name, &cxmq_cfs_dev_type);
	return &d->item;
}

static void cxmq_cfs_drop_item(struct config_group *group, struct config_item *item)
{
	struct cxmq_cfs_dev *d = to_cfs(item);

	mutex_lock(&d->lock);
	if (d->dev) {
		cxmq_dev_destroy(d->dev);
		d->dev = NULL;
	}
	mutex_unlock(&d->lock);
	config_item_put(item);
}

static struct configfs_group_operations cxmq_cfs_group_ops = {
	.make_item = cxmq_cfs_make_item,
	.drop_item = cxmq_cfs_drop_item,
};

static const struct config_item_type cxmq_cfs_group_type = {
	.ct_group_ops = &cxmq_cfs_group_ops,
	.ct_owner = THIS_MODULE,
};

static struct configfs_subsystem cxmq_cfs_subsys = {
	.su_group = {
		.cg_item = {
			.ci_namebuf = "cxmq",
			.ci_type = &cxmq_cfs_group_type,
		},
	},
};

int cxmq_configfs_init(void)
{
	config_group_init(&cxmq_cfs_subsys.su_group);
	mutex_init(&cxmq_cfs_subsys.su_mutex);
	return configfs_register_subsystem(&cxmq_cfs_subsys);
}

void cxmq_configfs_exit(void)
{
	configfs_unregister_subsystem(&cxmq_cfs_subsys);
}
