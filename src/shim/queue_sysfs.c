// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/block/cxmqN/cxmq/: the queue settings the kernel leaves inert for a bio-based disk, with
 * the kernel's names and formats: `scheduler` ("[none] mq-deadline", the active one in
 * brackets; writing a name switches), `nr_requests` (the request pool of each hardware queue),
 * `io_timeout` (ms: the kernel hides queue/io_timeout without mq_ops->timeout), and, while a
 * scheduler is active, `iosched/` with its tunables.
 *
 * A switch or a new nr_requests freezes the queue (IO in flight completes, new IO waits), then
 * under sysfs_dir_lock (which also orders it against queue count changes and CPU hotplug)
 * removes iosched/, rebuilds the hardware queues' pools under map_lock (readers of mq/ wait),
 * adds iosched/ for the scheduler now active, and unfreezes. Every directory is its own
 * allocation freed by its kobject's release; show/store reach the queue only under map_lock,
 * and the directories go before the queue does (cxmq_qsys_unregister).
 */
#include <linux/kobject.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "cxmq_shim.h"

struct cxmq_qobj {
	struct kobject kobj;
	struct cxmq_dev *dev;
};

/* A tunable file of iosched/: scheduler `sched`'s tunable `idx`. */
struct cxmq_elv_attr {
	struct attribute attr;
	int sched;
	u32 idx;
};

/* Per scheduler: its iosched/ files (NULL-terminated), made once at module init. */
static struct attribute **cxmq_elv_files[8];

static struct cxmq_qobj *to_qobj(struct kobject *kobj)
{
	return container_of(kobj, struct cxmq_qobj, kobj);
}

static void cxmq_qobj_release(struct kobject *kobj)
{
	kfree(to_qobj(kobj));
}

enum { CXMQ_Q_SCHEDULER, CXMQ_Q_NR_REQUESTS, CXMQ_Q_IO_TIMEOUT };

struct cxmq_q_attr {
	struct attribute attr;
	int id;
};

static ssize_t cxmq_q_show(struct kobject *kobj, struct attribute *attr, char *page)
{
	struct cxmq_dev *dev = to_qobj(kobj)->dev;
	int id = container_of(attr, struct cxmq_q_attr, attr)->id;
	ssize_t ret;

	mutex_lock(&dev->map_lock);
	if (id == CXMQ_Q_SCHEDULER)
		ret = cxmq_queue_show_sched(dev->q, page, PAGE_SIZE);
	else if (id == CXMQ_Q_IO_TIMEOUT)
		ret = sysfs_emit(page, "%u\n", cxmq_queue_io_timeout(dev->q));
	else
		ret = sysfs_emit(page, "%u\n", cxmq_queue_nr_requests(dev->q));
	mutex_unlock(&dev->map_lock);
	return ret;
}

static void cxmq_iosched_del(struct cxmq_dev *dev)
{
	lockdep_assert_held(&dev->sysfs_dir_lock);
	if (!dev->iosched_kobj)
		return;
	kobject_del(dev->iosched_kobj); /* waits for show/store in progress */
	kobject_put(dev->iosched_kobj);
	dev->iosched_kobj = NULL;
}

static const struct kobj_type cxmq_iosched_ktype;

/* iosched/ for the scheduler active now (none: no directory). */
static void cxmq_iosched_add(struct cxmq_dev *dev)
{
	int sched = cxmq_queue_sched(dev->q);
	struct cxmq_qobj *obj;

	lockdep_assert_held(&dev->sysfs_dir_lock);
	if (sched == CXMQ_SCHED_NONE || !cxmq_elv_files[sched])
		return;
	obj = kzalloc(sizeof(*obj), GFP_KERNEL);
	if (!obj)
		goto fail;
	obj->dev = dev;
	if (kobject_init_and_add(&obj->kobj, &cxmq_iosched_ktype, dev->q_kobj, "iosched")) {
		kobject_put(&obj->kobj);
		goto fail;
	}
	if (sysfs_create_files(&obj->kobj, (const struct attribute * const *)cxmq_elv_files[sched])) {
		kobject_del(&obj->kobj);
		kobject_put(&obj->kobj);
		goto fail;
	}
	dev->iosched_kobj = &obj->kobj;
	return;
fail:
	pr_warn("cxmq: %s: out of memory: no iosched/ until the next switch\n",
		dev->disk->disk_name);
}

/*
 * Runs change(dev, arg) on the frozen queue with the hardware queues' readers out and iosched/
 * removed, then adds iosched/ again. -ENODEV once the directories are going away.
 */
static int cxmq_q_change(struct cxmq_dev *dev, int (*change)(struct cxmq_queue *q, int arg),
			 int arg)
{
	unsigned int noio;
	int ret;

	cxmq_queue_freeze(dev->q);
	noio = memalloc_noio_save();
	mutex_lock(&dev->sysfs_dir_lock);
	if (dev->q_dying) {
		ret = -ENODEV;
		goto out;
	}
	cxmq_iosched_del(dev);
	mutex_lock(&dev->map_lock);
	ret = change(dev->q, arg);
	mutex_unlock(&dev->map_lock);
	cxmq_iosched_add(dev);
out:
	mutex_unlock(&dev->sysfs_dir_lock);
	memalloc_noio_restore(noio);
	cxmq_queue_unfreeze(dev->q);
	return ret;
}

static int cxmq_change_sched(struct cxmq_queue *q, int sched)
{
	return cxmq_queue_set_sched(q, sched);
}

static int cxmq_change_nr_requests(struct cxmq_queue *q, int nr)
{
	return cxmq_queue_set_nr_requests(q, nr);
}

static ssize_t cxmq_q_store(struct kobject *kobj, struct attribute *attr, const char *page,
			    size_t count)
{
	struct cxmq_dev *dev = to_qobj(kobj)->dev;
	int id = container_of(attr, struct cxmq_q_attr, attr)->id;
	unsigned int nr;
	int ret;

	if (id == CXMQ_Q_IO_TIMEOUT) {
		/* no freeze: requests started from now on get the new deadline */
		mutex_lock(&dev->map_lock);
		ret = cxmq_queue_set_io_timeout(dev->q, page); /* logs a bad value */
		mutex_unlock(&dev->map_lock);
	} else if (id == CXMQ_Q_SCHEDULER) {
		ret = cxmq_sched_lookup(page, count); /* logs an unknown name */
		if (ret < CXMQ_SCHED_NONE)
			return ret;
		if (ret == cxmq_queue_sched(dev->q))
			return count; /* the active one: nothing to do (elevator_change) */
		ret = cxmq_q_change(dev, cxmq_change_sched, ret);
	} else {
		if (kstrtouint(page, 0, &nr) || nr > INT_MAX) {
			pr_err("cxmq: %s: nr_requests=%.*s is invalid: must be a number\n",
			       dev->disk->disk_name, (int)min_t(size_t, strcspn(page, "\n"), 32),
			       page);
			return -EINVAL;
		}
		ret = cxmq_q_change(dev, cxmq_change_nr_requests, nr);
	}
	return ret ? ret : count;
}

static const struct sysfs_ops cxmq_q_sysfs_ops = { .show = cxmq_q_show, .store = cxmq_q_store };

static struct cxmq_q_attr cxmq_q_attr_scheduler = {
	.attr = { .name = "scheduler", .mode = 0644 }, .id = CXMQ_Q_SCHEDULER };
static struct cxmq_q_attr cxmq_q_attr_nr_requests = {
	.attr = { .name = "nr_requests", .mode = 0644 }, .id = CXMQ_Q_NR_REQUESTS };

static struct cxmq_q_attr cxmq_q_attr_io_timeout = {
	.attr = { .name = "io_timeout", .mode = 0644 }, .id = CXMQ_Q_IO_TIMEOUT };

static struct attribute *cxmq_q_attrs[] = {
	&cxmq_q_attr_scheduler.attr, &cxmq_q_attr_nr_requests.attr, &cxmq_q_attr_io_timeout.attr,
	NULL,
};
ATTRIBUTE_GROUPS(cxmq_q);

static const struct kobj_type cxmq_q_ktype = {
	.sysfs_ops = &cxmq_q_sysfs_ops,
	.default_groups = cxmq_q_groups,
	.release = cxmq_qobj_release,
};

/* iosched/ files: the scheduler they were made for must still be the active one. */
static ssize_t cxmq_elv_show(struct kobject *kobj, struct attribute *attr, char *page)
{
	struct cxmq_dev *dev = to_qobj(kobj)->dev;
	struct cxmq_elv_attr *a = container_of(attr, struct cxmq_elv_attr, attr);
	ssize_t ret;

	mutex_lock(&dev->map_lock);
	ret = cxmq_queue_sched_show(dev->q, a->sched, a->idx, page, PAGE_SIZE);
	mutex_unlock(&dev->map_lock);
	return ret;
}

static ssize_t cxmq_elv_store(struct kobject *kobj, struct attribute *attr, const char *page,
			      size_t count)
{
	struct cxmq_dev *dev = to_qobj(kobj)->dev;
	struct cxmq_elv_attr *a = container_of(attr, struct cxmq_elv_attr, attr);
	int ret;

	mutex_lock(&dev->map_lock);
	ret = cxmq_queue_sched_store(dev->q, a->sched, a->idx, page); /* logs a bad value */
	mutex_unlock(&dev->map_lock);
	return ret ? ret : count;
}

static const struct sysfs_ops cxmq_elv_sysfs_ops = { .show = cxmq_elv_show,
						     .store = cxmq_elv_store };

static const struct kobj_type cxmq_iosched_ktype = {
	.sysfs_ops = &cxmq_elv_sysfs_ops,
	.release = cxmq_qobj_release,
};

int cxmq_qsys_register(struct cxmq_dev *dev)
{
	struct cxmq_qobj *obj = kzalloc(sizeof(*obj), GFP_KERNEL);

	if (!obj)
		return -ENOMEM;
	obj->dev = dev;
	if (kobject_init_and_add(&obj->kobj, &cxmq_q_ktype, &disk_to_dev(dev->disk)->kobj,
				 "cxmq")) {
		kobject_put(&obj->kobj);
		return -ENOMEM;
	}
	mutex_lock(&dev->sysfs_dir_lock);
	dev->q_kobj = &obj->kobj;
	cxmq_iosched_add(dev);
	mutex_unlock(&dev->sysfs_dir_lock);
	return 0;
}

void cxmq_qsys_unregister(struct cxmq_dev *dev)
{
	if (!dev->q_kobj)
		return;
	mutex_lock(&dev->sysfs_dir_lock);
	dev->q_dying = true;
	cxmq_iosched_del(dev);
	mutex_unlock(&dev->sysfs_dir_lock);
	/* Waits for a store in progress (which may hold sysfs_dir_lock: not held here). */
	kobject_del(dev->q_kobj);
	kobject_put(dev->q_kobj);
	dev->q_kobj = NULL;
}

int cxmq_qsys_init(void)
{
	u32 s, i, n = cxmq_sched_count();

	if (n > ARRAY_SIZE(cxmq_elv_files))
		return -EINVAL;
	for (s = 0; s < n; s++) {
		u32 nr = cxmq_sched_nr_attrs(s);
		struct cxmq_elv_attr *a = kcalloc(nr, sizeof(*a), GFP_KERNEL);
		struct attribute **files = kcalloc(nr + 1, sizeof(*files), GFP_KERNEL);

		if (!a || !files) {
			kfree(a);
			kfree(files);
			cxmq_qsys_exit();
			return -ENOMEM;
		}
		for (i = 0; i < nr; i++) {
			sysfs_attr_init(&a[i].attr);
			a[i].attr.name = cxmq_sched_attr_name(s, i);
			a[i].attr.mode = 0644;
			a[i].sched = s;
			a[i].idx = i;
			files[i] = &a[i].attr;
		}
		cxmq_elv_files[s] = files;
	}
	return 0;
}

void cxmq_qsys_exit(void)
{
	u32 s;

	for (s = 0; s < ARRAY_SIZE(cxmq_elv_files); s++) {
		if (!cxmq_elv_files[s])
			continue;
		if (cxmq_elv_files[s][0])
			kfree(container_of(cxmq_elv_files[s][0], struct cxmq_elv_attr, attr));
		kfree(cxmq_elv_files[s]);
		cxmq_elv_files[s] = NULL;
	}
}
