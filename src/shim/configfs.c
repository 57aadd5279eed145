// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/kernel/config/cxmq/<name>/: devices made at runtime, as null_blk's configfs has them.
 * mkdir makes a powered-off device with the module parameters' settings; its attributes set
 * the configuration; power=1 creates the disk, power=0 removes it; rmdir removes it too. While
 * powered, only submit_queues and poll_queues (the hardware queue counts) and the fault injection
 * points timeout and requeue can change; the others
 * answer -EBUSY. Malformed or out-of-range writes answer -EINVAL and change nothing.
 */
#include <linux/configfs.h>
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

/*
 * The attributes that are settings: each is a setting of the core's table
 * (src/core/settings.cpp), by name, which parses, checks and shows it. Only what the kernel
 * needs is declared here: the attribute, and the one action a live setting takes.
 */
static int cxmq_cfs_setting(const char *name)
{
	int i = cxmq_setting_find(name);

	if (WARN_ON_ONCE(i < 0 || !(cxmq_setting_flags(i) & CXMQ_SETTING_ATTR)))
		return -EINVAL;
	return i;
}

/*
 * Under d->lock: the configuration, with what a powered device has in use for the hardware
 * queue counts and depth (a shared set's, which another device of the set may change).
 */
static void cxmq_cfs_config(struct cxmq_cfs_dev *d, struct cxmq_dev_config *cfg)
{
	*cfg = d->cfg;
	if (d->dev) {
		cfg->submit_queues = READ_ONCE(d->dev->cfg.submit_queues);
		cfg->poll_queues = READ_ONCE(d->dev->cfg.poll_queues);
		cfg->hw_queue_depth = d->dev->cfg.hw_queue_depth;
	}
}

static ssize_t cxmq_cfs_show(struct config_item *item, char *page, const char *setting)
{
	struct cxmq_cfs_dev *d = to_cfs(item);
	struct cxmq_dev_config cfg;
	int i = cxmq_cfs_setting(setting);
	ssize_t ret;

	if (i < 0)
		return i;
	mutex_lock(&d->lock);
	cxmq_cfs_config(d, &cfg);
	ret = cxmq_setting_format(i, &cfg, page, PAGE_SIZE);
	mutex_unlock(&d->lock);
	return ret;
}

static ssize_t cxmq_cfs_store(struct config_item *item, const char *page, size_t count,
			      const char *setting)
{
	struct cxmq_cfs_dev *d = to_cfs(item);
	struct cxmq_dev_config cfg;
	int i = cxmq_cfs_setting(setting);
	int ret;

	if (i < 0)
		return i;
	mutex_lock(&d->lock);
	cxmq_cfs_config(d, &cfg);
	/* while powered, only a live setting passes */
	ret = cxmq_setting_parse(i, page, &cfg, config_item_name(item), d->dev != NULL);
	if (!ret && d->dev) {
		/*
		 * The live settings take effect now: the hardware queue counts (fewer than asked
		 * when memory runs short, and the attributes show what is in use), the faults.
		 */
		if (!strcmp(setting, "timeout") || !strcmp(setting, "requeue")) {
			/* fault injection: test hooks, taken at once */
			d->dev->cfg.timeout = cfg.timeout;
			d->dev->cfg.requeue = cfg.requeue;
			cxmq_queue_set_faults(d->dev->q, &cfg);
		} else {
			cxmq_dev_set_nr_hw_queues(d->dev, cfg.submit_queues, cfg.poll_queues);
			cfg.submit_queues = d->dev->cfg.submit_queues;
			cfg.poll_queues = d->dev->cfg.poll_queues;
		}
	}
	if (!ret)
		d->cfg = cfg;
	mutex_unlock(&d->lock);
	return ret ? ret : count;
}

#define CXMQ_CFS_SETTING(_name) \
	static ssize_t cxmq_cfs_##_name##_show(struct config_item *item, char *page) \
	{ \
		return cxmq_cfs_show(item, page, #_name); \
	} \
	static ssize_t cxmq_cfs_##_name##_store(struct config_item *item, const char *page, \
						size_t count) \
	{ \
		return cxmq_cfs_store(item, page, count, #_name); \
	} \
	CONFIGFS_ATTR(cxmq_cfs_, _name)

CXMQ_CFS_SETTING(size);
CXMQ_CFS_SETTING(blocksize);
CXMQ_CFS_SETTING(submit_queues);
CXMQ_CFS_SETTING(poll_queues);
CXMQ_CFS_SETTING(timeout);
CXMQ_CFS_SETTING(requeue);
CXMQ_CFS_SETTING(hw_queue_depth);
CXMQ_CFS_SETTING(irqmode);
CXMQ_CFS_SETTING(completion_nsec);
CXMQ_CFS_SETTING(memory_backed);
CXMQ_CFS_SETTING(home_node);
CXMQ_CFS_SETTING(max_sectors);
CXMQ_CFS_SETTING(scheduler);
CXMQ_CFS_SETTING(shared_tags);

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
	&cxmq_cfs_attr_poll_queues,
	&cxmq_cfs_attr_hw_queue_depth, &cxmq_cfs_attr_irqmode, &cxmq_cfs_attr_completion_nsec,
	&cxmq_cfs_attr_memory_backed, &cxmq_cfs_attr_home_node, &cxmq_cfs_attr_max_sectors,
	&cxmq_cfs_attr_scheduler, &cxmq_cfs_attr_timeout, &cxmq_cfs_attr_requeue,
	&cxmq_cfs_attr_shared_tags,
	&cxmq_cfs_attr_power, &cxmq_cfs_attr_index, NULL,
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
