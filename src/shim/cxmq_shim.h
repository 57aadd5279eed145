/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the module's C files share: a device (gendisk + cxmq queue), its mq/ sysfs tree, the CPU
 * hotplug state, configfs.
 */
#ifndef CXMQ_SHIM_H
#define CXMQ_SHIM_H

#include <linux/blkdev.h>
#include <linux/cpumask.h>
#include <linux/list.h>
#include <linux/mutex.h>

#include "cxmq/core.h"

struct cxmq_mq_obj;
struct cxmq_dev;

/* A device with hardware behind it (virtio.c): what cxmq_dev_create does otherwise for it. */
struct cxmq_hw {
	struct device *parent;                  /* the disk's parent in sysfs */
	const struct attribute_group **groups;  /* the disk's own attributes (serial) */
	sector_t capacity;
	/* Builds the queue, for a configuration the caller made. */
	struct cxmq_queue *(*create_queue)(struct cxmq_hw *hw, const struct cxmq_dev_config *cfg,
					   int *err);
	/* The disk's limits and flags, just before add_disk: the device is live after it. */
	void (*setup_disk)(struct cxmq_hw *hw, struct gendisk *disk);
	/* Once the queue has drained, before it is freed: stop the device (no interrupts). */
	void (*stop)(struct cxmq_hw *hw);
};

struct cxmq_dev {
	struct list_head list;          /* cxmq_devices, under cxmq_devices_lock */
	struct list_head shared_list;   /* shared_tags: cxmq_shared_devs, under cxmq_shared_lock */
	int index;
	struct cxmq_dev_config cfg;     /* submit_queues, poll_queues: the hardware queues in use */
	struct cxmq_queue *q;
	struct gendisk *disk;
	struct dentry *debugfs;
	struct cxmq_hw *hw;             /* NULL: the null backend */

	/*
	 * The mq/ tree. sysfs_dir_lock serialises adding and removing its directories and every
	 * change of what they show (the map, sysfs_cpus); it is held across kobject removal,
	 * which waits for readers, so no reader ever takes it. map_lock is what readers take
	 * (show, the debugfs stats): it is held only while the map or sysfs_cpus change, with
	 * sysfs_dir_lock held and the directories removed, so a reader never sees half a map.
	 */
	struct mutex sysfs_dir_lock;
	struct mutex map_lock;
	bool mq_registered;             /* under sysfs_dir_lock: the tree exists */
	cpumask_var_t sysfs_cpus;       /* online CPUs, as the tree shows them */
	struct kobject *mq_kobj;
	struct cxmq_mq_obj **hctx_objs; /* 2 * nr_cpu_ids entries each (default, poll) */
	struct cxmq_mq_obj **ctx_objs;

	struct hlist_node cpuhp_node;
	bool cpuhp_added;

	/* /sys/block/cxmqN/cxmq/ (queue_sysfs.c); iosched_kobj and q_dying under sysfs_dir_lock */
	struct kobject *q_kobj;
	struct kobject *iosched_kobj;
	bool q_dying;
};

/* main.c */
struct cxmq_dev *cxmq_dev_create(const struct cxmq_dev_config *cfg, int *err);
/* A device of hw: not on the module's list of null devices; its driver destroys it. */
struct cxmq_dev *cxmq_dev_create_hw(const struct cxmq_dev_config *cfg, struct cxmq_hw *hw,
				    int *err);
void cxmq_dev_destroy(struct cxmq_dev *dev);
void cxmq_dev_set_nr_hw_queues(struct cxmq_dev *dev, u32 nr, u32 nr_poll);
void cxmq_devs_set_busy_every(unsigned int n);

/* params.c: the module parameters */
void cxmq_default_config(struct cxmq_dev_config *cfg);
int cxmq_params_load(struct cxmq_dev_config *cfg, unsigned int *nr_devices);

/* os_linux.c: /sys/kernel/debug/cxmq/fail_init_hctx/ where the kernel has fault injection */
void cxmq_fault_debugfs_init(struct dentry *root);

/* mq_sysfs.c */
int cxmq_mq_dev_init(struct cxmq_dev *dev);        /* before the queue exists */
void cxmq_mq_dev_free(struct cxmq_dev *dev);
int cxmq_mq_register(struct cxmq_dev *dev);        /* after add_disk */
void cxmq_mq_unregister(struct cxmq_dev *dev);     /* before del_gendisk */
/* Around a change of the map or of sysfs_cpus: the tree is removed, then rebuilt. */
void cxmq_mq_change_begin(struct cxmq_dev *dev);
void cxmq_mq_change_end(struct cxmq_dev *dev);
int cxmq_hotplug_init(void);
void cxmq_hotplug_exit(void);
int cxmq_hotplug_add(struct cxmq_dev *dev);
void cxmq_hotplug_remove(struct cxmq_dev *dev);

/* queue_sysfs.c: /sys/block/cxmqN/cxmq/ (scheduler, nr_requests, iosched/) */
int cxmq_qsys_init(void);                         /* at module init: the iosched/ files */
void cxmq_qsys_exit(void);
int cxmq_qsys_register(struct cxmq_dev *dev);     /* after cxmq_mq_register */
void cxmq_qsys_unregister(struct cxmq_dev *dev);  /* before cxmq_mq_unregister */

/* virtio.c: cxmq's virtio driver (VIRTIO_ID_BLOCK) */
int cxmq_virtio_init(void);
void cxmq_virtio_exit(void);

/* configfs.c */
int cxmq_configfs_init(void);
void cxmq_configfs_exit(void);

#endif
