// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/block/cxmqN/mq/: one directory per hardware queue that has online CPUs, one cpu<M>/
 * directory per online CPU mapped there, and the files blk-mq had there (formats from the core).
 *
 * Lifetimes: every directory is its own allocation, freed only by its kobject's release (never
 * embedded in memory freed on another schedule). Files point at the queue only from show(),
 * which kernfs drains when the directory is removed; a file held open across the removal reads
 * -ENODEV without calling show(). The directories are always removed before the queue is freed.
 *
 * Changes of the map (CPU hotplug, runtime submit_queues) remove the directories, change the
 * map under map_lock, and add them again, all under sysfs_dir_lock (see cxmq_shim.h).
 */
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/kobject.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "cxmq_shim.h"

struct cxmq_mq_obj {
	struct kobject kobj;
	struct cxmq_dev *dev;
	u32 hctx;
	u32 cpu;
};

struct cxmq_mq_attr {
	struct attribute attr;
	int id;
};

#define CXMQ_HCTX_CPU_LIST (-1)
/* Directories of each kind: a hardware queue of each type per CPU at most, a CPU's software
 * queue of each type. */
#define CXMQ_MQ_OBJS (2 * nr_cpu_ids)

static struct cxmq_mq_obj *to_obj(struct kobject *kobj)
{
	return container_of(kobj, struct cxmq_mq_obj, kobj);
}

static void cxmq_mq_obj_release(struct kobject *kobj)
{
	kfree(to_obj(kobj));
}

/* "0, 1, 2": the online CPUs (as the tree shows them) that feed hardware queue `hctx`. */
static ssize_t cxmq_cpu_list_show(struct cxmq_dev *dev, u32 hctx, char *page)
{
	u32 i, n = cxmq_queue_hctx_nr_cpus(dev->q, hctx);
	ssize_t len = 0;
	bool first = true;

	for (i = 0; i < n; i++) {
		u32 cpu = cxmq_queue_hctx_cpu(dev->q, hctx, i);

		if (cpu >= nr_cpu_ids || !cpumask_test_cpu(cpu, dev->sysfs_cpus))
			continue;
		len += sysfs_emit_at(page, len, first ? "%u" : ", %u", cpu);
		first = false;
	}
	len += sysfs_emit_at(page, len, "\n");
	return len;
}

static const struct kobj_type cxmq_ctx_ktype;

/* Under map_lock: the map and the CPUs shown do not change meanwhile. */
static ssize_t cxmq_mq_attr_show(struct kobject *kobj, struct attribute *attr, char *page)
{
	struct cxmq_mq_obj *obj = to_obj(kobj);
	struct cxmq_mq_attr *a = container_of(attr, struct cxmq_mq_attr, attr);
	struct cxmq_dev *dev = obj->dev;
	ssize_t ret;

	mutex_lock(&dev->map_lock);
	if (kobj->ktype == &cxmq_ctx_ktype)
		ret = cxmq_queue_show_ctx(dev->q, obj->hctx, obj->cpu, a->id, page, PAGE_SIZE);
	else if (a->id == CXMQ_HCTX_CPU_LIST)
		ret = cxmq_cpu_list_show(dev, obj->hctx, page);
	else
		ret = cxmq_queue_show_hctx(dev->q, obj->hctx, a->id, page, PAGE_SIZE);
	mutex_unlock(&dev->map_lock);
	return ret;
}

/* io_poll is the one writable file: any write resets its counters (as 4.x blk-mq did). */
static ssize_t cxmq_mq_attr_store(struct kobject *kobj, struct attribute *attr, const char *page,
				  size_t count)
{
	struct cxmq_mq_obj *obj = to_obj(kobj);
	struct cxmq_mq_attr *a = container_of(attr, struct cxmq_mq_attr, attr);
	struct cxmq_dev *dev = obj->dev;

	if (kobj->ktype == &cxmq_ctx_ktype || a->id != CXMQ_HCTX_IO_POLL)
		return -EIO;
	mutex_lock(&dev->map_lock);
	cxmq_queue_reset_io_poll(dev->q, obj->hctx);
	mutex_unlock(&dev->map_lock);
	return count;
}

static const struct sysfs_ops cxmq_mq_sysfs_ops = {
	.show = cxmq_mq_attr_show,
	.store = cxmq_mq_attr_store,
};


#define CXMQ_ATTR(_name, _id) \
	static struct cxmq_mq_attr cxmq_attr_##_name = { \
		.attr = { .name = __stringify(_name), .mode = 0444 }, .id = (_id) }

CXMQ_ATTR(cpu_list, CXMQ_HCTX_CPU_LIST);
CXMQ_ATTR(pending, CXMQ_HCTX_PENDING);
CXMQ_ATTR(active, CXMQ_HCTX_ACTIVE);
CXMQ_ATTR(tags, CXMQ_HCTX_TAGS);
CXMQ_ATTR(nr_tags, CXMQ_HCTX_NR_TAGS);
CXMQ_ATTR(nr_reserved_tags, CXMQ_HCTX_NR_RESERVED_TAGS);
CXMQ_ATTR(queued, CXMQ_HCTX_QUEUED);
CXMQ_ATTR(run, CXMQ_HCTX_RUN);
CXMQ_ATTR(dispatched, CXMQ_HCTX_DISPATCHED);
CXMQ_ATTR(type, CXMQ_HCTX_TYPE);
static struct cxmq_mq_attr cxmq_attr_io_poll = {
	.attr = { .name = "io_poll", .mode = 0644 }, .id = CXMQ_HCTX_IO_POLL };

static struct attribute *cxmq_hctx_attrs[] = {
	&cxmq_attr_cpu_list.attr, &cxmq_attr_pending.attr, &cxmq_attr_active.attr,
	&cxmq_attr_tags.attr, &cxmq_attr_nr_tags.attr, &cxmq_attr_nr_reserved_tags.attr,
	&cxmq_attr_queued.attr, &cxmq_attr_run.attr, &cxmq_attr_dispatched.attr,
	&cxmq_attr_io_poll.attr, &cxmq_attr_type.attr, NULL,
};
ATTRIBUTE_GROUPS(cxmq_hctx);

/* The cpu<M>/ files; the struct names differ from the hctx ones where the file names match. */
static struct cxmq_mq_attr cxmq_ctx_attr_dispatched = {
	.attr = { .name = "dispatched", .mode = 0444 }, .id = CXMQ_CTX_DISPATCHED };
static struct cxmq_mq_attr cxmq_ctx_attr_merged = {
	.attr = { .name = "merged", .mode = 0444 }, .id = CXMQ_CTX_MERGED };
static struct cxmq_mq_attr cxmq_ctx_attr_completed = {
	.attr = { .name = "completed", .mode = 0444 }, .id = CXMQ_CTX_COMPLETED };
static struct cxmq_mq_attr cxmq_ctx_attr_rq_list = {
	.attr = { .name = "rq_list", .mode = 0444 }, .id = CXMQ_CTX_RQ_LIST };

static struct attribute *cxmq_ctx_attrs[] = {
	&cxmq_ctx_attr_dispatched.attr, &cxmq_ctx_attr_merged.attr,
	&cxmq_ctx_attr_completed.attr, &cxmq_ctx_attr_rq_list.attr, NULL,
};
ATTRIBUTE_GROUPS(cxmq_ctx);

static const struct kobj_type cxmq_hctx_ktype = {
	.sysfs_ops = &cxmq_mq_sysfs_ops,
	.default_groups = cxmq_hctx_groups,
	.release = cxmq_mq_obj_release,
};

static const struct kobj_type cxmq_ctx_ktype = {
	.sysfs_ops = &cxmq_mq_sysfs_ops,
	.default_groups = cxmq_ctx_groups,
	.release = cxmq_mq_obj_release,
};

static struct cxmq_mq_obj *cxmq_mq_obj_add(struct cxmq_dev *dev, const struct kobj_type *kt,
					   struct kobject *parent, u32 hctx, u32 cpu,
					   const char *fmt, u32 nr)
{
	struct cxmq_mq_obj *obj = kzalloc(sizeof(*obj), GFP_KERNEL);
	int ret;

	if (!obj)
		return NULL;
	obj->dev = dev;
	obj->hctx = hctx;
	obj->cpu = cpu;
	ret = kobject_init_and_add(&obj->kobj, kt, parent, fmt, nr);
	if (ret) {
		kobject_put(&obj->kobj); /* frees obj through the release */
		return NULL;
	}
	return obj;
}

static void cxmq_mq_obj_del(struct cxmq_mq_obj **slot)
{
	if (!*slot)
		return;
	kobject_del(&(*slot)->kobj); /* waits for show() calls in progress */
	kobject_put(&(*slot)->kobj);
	*slot = NULL;
}

static void cxmq_mq_remove_dirs(struct cxmq_dev *dev)
{
	unsigned int i;

	lockdep_assert_held(&dev->sysfs_dir_lock);
	for (i = 0; i < CXMQ_MQ_OBJS; i++)
		cxmq_mq_obj_del(&dev->ctx_objs[i]);
	for (i = 0; i < CXMQ_MQ_OBJS; i++)
		cxmq_mq_obj_del(&dev->hctx_objs[i]);
}

/* The directories for the current map; the map cannot change meanwhile (sysfs_dir_lock). */
static int cxmq_mq_add_dirs(struct cxmq_dev *dev)
{
	u32 h, i, nr_hw = cxmq_queue_nr_hw_queues(dev->q);
	u32 first_poll = nr_hw - cxmq_queue_nr_poll_queues(dev->q);

	lockdep_assert_held(&dev->sysfs_dir_lock);
	for (h = 0; h < nr_hw; h++) {
		u32 n = cxmq_queue_hctx_nr_cpus(dev->q, h);
		struct cxmq_mq_obj *hobj = NULL;
		/* a CPU has a software queue under its default and under its poll queue */
		struct cxmq_mq_obj **ctx_objs = dev->ctx_objs + (h >= first_poll ? nr_cpu_ids : 0);

		for (i = 0; i < n; i++) {
			u32 cpu = cxmq_queue_hctx_cpu(dev->q, h, i);

			if (cpu >= nr_cpu_ids || !cpumask_test_cpu(cpu, dev->sysfs_cpus))
				continue;
			if (!hobj) {
				hobj = cxmq_mq_obj_add(dev, &cxmq_hctx_ktype, dev->mq_kobj, h, 0,
						       "%u", h);
				if (!hobj)
					goto fail;
				dev->hctx_objs[h] = hobj;
			}
			ctx_objs[cpu] = cxmq_mq_obj_add(dev, &cxmq_ctx_ktype, &hobj->kobj, h, cpu,
							"cpu%u", cpu);
			if (!ctx_objs[cpu])
				goto fail;
		}
	}
	return 0;
fail:
	cxmq_mq_remove_dirs(dev);
	return -ENOMEM;
}

/*
 * A change of the map or of the CPUs shown: between begin and end the caller holds map_lock
 * (readers wait), the directories are gone, and they are added again for the new map at end.
 */
void cxmq_mq_change_begin(struct cxmq_dev *dev)
{
	mutex_lock(&dev->sysfs_dir_lock);
	if (dev->mq_registered)
		cxmq_mq_remove_dirs(dev);
	mutex_lock(&dev->map_lock);
}

void cxmq_mq_change_end(struct cxmq_dev *dev)
{
	mutex_unlock(&dev->map_lock);
	if (dev->mq_registered && cxmq_mq_add_dirs(dev))
		pr_warn("cxmq: %s: out of memory: mq/ shows no hardware queues until the next change\n",
			dev->disk->disk_name);
	mutex_unlock(&dev->sysfs_dir_lock);
}

int cxmq_mq_dev_init(struct cxmq_dev *dev)
{
	mutex_init(&dev->sysfs_dir_lock);
	mutex_init(&dev->map_lock);
	dev->hctx_objs = kcalloc(CXMQ_MQ_OBJS, sizeof(*dev->hctx_objs), GFP_KERNEL);
	dev->ctx_objs = kcalloc(CXMQ_MQ_OBJS, sizeof(*dev->ctx_objs), GFP_KERNEL);
	if (!dev->hctx_objs || !dev->ctx_objs || !zalloc_cpumask_var(&dev->sysfs_cpus, GFP_KERNEL))
		return -ENOMEM;
	return 0;
}

void cxmq_mq_dev_free(struct cxmq_dev *dev)
{
	kfree(dev->hctx_objs);
	kfree(dev->ctx_objs);
	free_cpumask_var(dev->sysfs_cpus);
	mutex_destroy(&dev->map_lock);
	mutex_destroy(&dev->sysfs_dir_lock);
}

int cxmq_mq_register(struct cxmq_dev *dev)
{
	int ret;

	mutex_lock(&dev->sysfs_dir_lock);
	dev->mq_kobj = kobject_create_and_add("mq", &disk_to_dev(dev->disk)->kobj);
	if (!dev->mq_kobj) {
		ret = -ENOMEM;
		goto out;
	}
	ret = cxmq_mq_add_dirs(dev);
	if (ret) {
		kobject_put(dev->mq_kobj);
		dev->mq_kobj = NULL;
		goto out;
	}
	dev->mq_registered = true;
out:
	mutex_unlock(&dev->sysfs_dir_lock);
	return ret;
}

void cxmq_mq_unregister(struct cxmq_dev *dev)
{
	mutex_lock(&dev->sysfs_dir_lock);
	if (dev->mq_registered) {
		cxmq_mq_remove_dirs(dev);
		kobject_del(dev->mq_kobj);
		kobject_put(dev->mq_kobj);
		dev->mq_kobj = NULL;
		dev->mq_registered = false;
	}
	mutex_unlock(&dev->sysfs_dir_lock);
}

/*
 * CPU hotplug: the map stays what it is (every possible CPU keeps its hardware queue and a run
 * drains the software queues of offline CPUs too, so nothing is stranded); the tree follows the
 * online CPUs. Before the last online CPU of a hardware queue goes, the core drains it (its
 * interrupt may go with the CPU). Both callbacks run in the hotplugged CPU's hotplug thread
 * while it is online; under map_lock the hardware queues do not change.
 */
static enum cpuhp_state cxmq_cpuhp_state = CPUHP_INVALID;

static int cxmq_cpu_online(unsigned int cpu, struct hlist_node *node)
{
	struct cxmq_dev *dev = hlist_entry(node, struct cxmq_dev, cpuhp_node);

	cxmq_mq_change_begin(dev);
	cxmq_queue_cpu_online(dev->q, cpu);
	cpumask_set_cpu(cpu, dev->sysfs_cpus);
	cxmq_mq_change_end(dev);
	return 0;
}

static int cxmq_cpu_offline(unsigned int cpu, struct hlist_node *node)
{
	struct cxmq_dev *dev = hlist_entry(node, struct cxmq_dev, cpuhp_node);

	mutex_lock(&dev->map_lock);
	cxmq_queue_cpu_offline(dev->q, cpu);
	mutex_unlock(&dev->map_lock);
	cxmq_mq_change_begin(dev);
	cpumask_clear_cpu(cpu, dev->sysfs_cpus);
	cxmq_mq_change_end(dev);
	return 0;
}

int cxmq_hotplug_init(void)
{
	int ret = cpuhp_setup_state_multi(CPUHP_AP_ONLINE_DYN, "block/cxmq:online",
					  cxmq_cpu_online, cxmq_cpu_offline);

	if (ret < 0)
		return ret;
	cxmq_cpuhp_state = ret;
	return 0;
}

void cxmq_hotplug_exit(void)
{
	if (cxmq_cpuhp_state != CPUHP_INVALID)
		cpuhp_remove_multi_state(cxmq_cpuhp_state);
	cxmq_cpuhp_state = CPUHP_INVALID;
}

/*
 * From now on the tree follows the online CPUs. Registered first, then the snapshot taken with
 * hotplug held off: a CPU that comes or goes afterwards runs the callbacks for this device.
 */
int cxmq_hotplug_add(struct cxmq_dev *dev)
{
	int ret = cpuhp_state_add_instance_nocalls(cxmq_cpuhp_state, &dev->cpuhp_node);

	if (ret)
		return ret;
	dev->cpuhp_added = true;
	cpus_read_lock();
	mutex_lock(&dev->sysfs_dir_lock);
	mutex_lock(&dev->map_lock);
	cpumask_copy(dev->sysfs_cpus, cpu_online_mask);
	mutex_unlock(&dev->map_lock);
	mutex_unlock(&dev->sysfs_dir_lock);
	cpus_read_unlock();
	return 0;
}

/* No callback runs for dev once this returns. */
void cxmq_hotplug_remove(struct cxmq_dev *dev)
{
	if (dev->cpuhp_added)
		cpuhp_state_remove_instance_nocalls(cxmq_cpuhp_state, &dev->cpuhp_node);
	dev->cpuhp_added = false;
}
