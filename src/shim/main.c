// SPDX-License-Identifier: GPL-2.0
/*
 * cxmq: the module and its block devices. Each /dev/cxmqN is a bio-based gendisk whose bios go
 * through cxmq's own multi-queue layer (the C++ core, src/core/) to its backend.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/numa.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "cxmq_shim.h"

static int cxmq_major;
static unsigned int g_busy_every; /* busy_every as applied: what new devices get */
static struct dentry *cxmq_debugfs_root;
/*
 * The shared tag set (shared_tags=1; null_blk has one static tag_set for it) and its devices.
 * cxmq_shared_lock also serialises their creation, removal and changes of the set's hardware
 * queue counts, as the core asks its host to.
 */
static struct cxmq_tag_set *cxmq_shared_set;
static DEFINE_MUTEX(cxmq_shared_lock);
static LIST_HEAD(cxmq_shared_devs);
/*
 * Disks whose gendisk has not been released yet. The release can come after del_gendisk and
 * put_disk (late openers, CONFIG_DEBUG_KOBJECT_RELEASE) and reads our block_device_operations,
 * so module exit waits for every disk's ->free_disk first.
 */
static atomic_t cxmq_disks_alive = ATOMIC_INIT(0);
static DECLARE_WAIT_QUEUE_HEAD(cxmq_disks_wq);
static LIST_HEAD(cxmq_devices);
static DEFINE_MUTEX(cxmq_devices_lock);
static DEFINE_IDA(cxmq_index_ida);

static CXMQ_HOT void cxmq_submit_bio(struct bio *bio)
{
	struct cxmq_dev *dev = bio->bi_bdev->bd_disk->private_data;
	struct cxmq_bio b = { };

	bio = bio_split_to_limits(bio);
	if (!bio)
		return;
	switch (bio_op(bio)) {
	case REQ_OP_READ:
		b.op = CXMQ_OP_READ;
		break;
	case REQ_OP_WRITE:
		b.op = CXMQ_OP_WRITE;
		break;
	case REQ_OP_FLUSH:
		b.op = CXMQ_OP_FLUSH;
		break;
	case REQ_OP_DISCARD:
		b.op = CXMQ_OP_DISCARD;
		break;
	case REQ_OP_WRITE_ZEROES:
		b.op = CXMQ_OP_WRITE_ZEROES;
		break;
	default:
		bio->bi_status = BLK_STS_NOTSUPP;
		bio_endio(bio);
		return;
	}
	if (bio->bi_opf & REQ_NOWAIT)
		b.flags |= CXMQ_BIO_NOWAIT;
	if (bio->bi_opf & REQ_FUA)
		b.flags |= CXMQ_BIO_FUA;
	if (bio->bi_opf & REQ_PREFLUSH)
		b.flags |= CXMQ_BIO_PREFLUSH;
	if (bio->bi_opf & REQ_NOMERGE)
		b.flags |= CXMQ_BIO_NOMERGE;
	if (bio->bi_opf & REQ_SYNC)
		b.flags |= CXMQ_BIO_SYNC;
	if (bio->bi_opf & REQ_NOUNMAP)
		b.flags |= CXMQ_BIO_NOUNMAP;
	/* (the kernel keeps REQ_POLLED only while the queue has QUEUE_FLAG_POLL) */
	if (bio->bi_opf & REQ_POLLED)
		b.flags |= CXMQ_BIO_POLLED;
	if (blk_queue_io_stat(dev->disk->queue))
		b.cookie = CXMQ_ACCT_COOKIE | bio_start_io_acct(bio);
	b.bio = bio;
	b.sector = bio->bi_iter.bi_sector;
	b.nr_sectors = bio_sectors(bio);
	b.ioprio = bio_prio(bio);
	/* b.nr_segs 0: counted (cxmq_os_bio_nr_segs) only if the core tries to merge the bio */
	cxmq_queue_submit(dev->q, &b);
}

static const struct block_device_operations cxmq_fops;

/*
 * bio_poll(), under rcu_read_lock with the disk's queue entered, for a bio whose bi_cookie the
 * core set: it names the poll queue to reap. The bio may have completed already and be on its
 * way to reuse: a polled bio that goes back to its bio set's per-CPU cache gets bi_bdev NULL
 * (bio_put_percpu_cache), so bi_bdev is read once, and only a cxmq disk's is used.
 */
static int cxmq_poll_bio(struct bio *bio, struct io_comp_batch *iob, unsigned int flags)
{
	struct block_device *bdev = READ_ONCE(bio->bi_bdev);
	u32 cookie = READ_ONCE(bio->bi_cookie);
	struct cxmq_dev *dev;
	int ret;

	if (!bdev || bdev->bd_disk->fops != &cxmq_fops)
		return 0;
	dev = bdev->bd_disk->private_data;
	ret = cxmq_queue_poll(dev->q, cookie, flags & BLK_POLL_ONESHOT);

	__set_current_state(TASK_RUNNING); /* as blk_mq_poll leaves it */
	return ret;
}

/* QUEUE_FLAG_POLL (queue/io_poll) exactly while the disk has poll queues. */
static void cxmq_update_poll_flag(struct cxmq_dev *dev)
{
	if (cxmq_queue_nr_poll_queues(dev->q))
		blk_queue_flag_set(QUEUE_FLAG_POLL, dev->disk->queue);
	else
		blk_queue_flag_clear(QUEUE_FLAG_POLL, dev->disk->queue);
}

static void cxmq_free_disk(struct gendisk *disk)
{
	if (atomic_dec_and_test(&cxmq_disks_alive))
		wake_up_all(&cxmq_disks_wq);
}

static const struct block_device_operations cxmq_fops = {
	.owner = THIS_MODULE,
	.submit_bio = cxmq_submit_bio,
	.poll_bio = cxmq_poll_bio,
	.free_disk = cxmq_free_disk,
};

/* The busy_every parameter applied (at load, and when written at runtime): every device at once. */
void cxmq_devs_set_busy_every(unsigned int n)
{
	struct cxmq_dev *dev;

	mutex_lock(&cxmq_devices_lock);
	WRITE_ONCE(g_busy_every, n);
	list_for_each_entry(dev, &cxmq_devices, list)
		cxmq_queue_set_busy_every(dev->q, n);
	mutex_unlock(&cxmq_devices_lock);
}

/* /sys/kernel/debug/cxmq/cxmqN/stats: the queue's counters, one page at most. */
static ssize_t cxmq_stats_read(struct file *file, char __user *ubuf, size_t count, loff_t *ppos)
{
	struct cxmq_dev *dev = file->private_data;
	char *buf;
	ssize_t ret;
	int len;

	buf = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	mutex_lock(&dev->map_lock); /* the hardware queues do not change meanwhile */
	len = cxmq_queue_format_stats(dev->q, buf, PAGE_SIZE);
	mutex_unlock(&dev->map_lock);
	ret = simple_read_from_buffer(ubuf, count, ppos, buf, len);
	kfree(buf);
	return ret;
}

static const struct file_operations cxmq_stats_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = cxmq_stats_read,
	.llseek = default_llseek,
};

static void cxmq_dev_free(struct cxmq_dev *dev)
{
	if (dev->q)
		cxmq_queue_destroy(dev->q);
	if (dev->index >= 0)
		ida_free(&cxmq_index_ida, dev->index);
	cxmq_mq_dev_free(dev);
	kfree(dev);
}

/* A new device from a checked configuration: the disk is live when this returns. */
struct cxmq_dev *cxmq_dev_create(const struct cxmq_dev_config *cfg, int *err)
{
	return cxmq_dev_create_hw(cfg, NULL, err);
}

/* The limits requests are merged up to: the core's defaults, null_blk's max_sectors. */
static void cxmq_null_setup_disk(const struct cxmq_dev_config *cfg, struct gendisk *disk)
{
	struct cxmq_limits lim;

	cxmq_queue_default_limits(cfg, &lim);
	blk_queue_max_hw_sectors(disk->queue, cfg->max_sectors ? cfg->max_sectors : BLK_DEF_MAX_SECTORS);
	blk_queue_max_segments(disk->queue, lim.max_segments);
	if (cfg->memory_backed) {
		blk_queue_max_discard_sectors(disk->queue, lim.max_discard_sectors);
		blk_queue_max_discard_segments(disk->queue, lim.max_discard_segments);
		blk_queue_max_write_zeroes_sectors(disk->queue, lim.max_write_zeroes_sectors);
		disk->queue->limits.discard_granularity = CXMQ_PAGE_SIZE;
	}
}

struct cxmq_dev *cxmq_dev_create_hw(const struct cxmq_dev_config *cfg, struct cxmq_hw *hw,
				    int *err)
{
	struct cxmq_dev *dev;
	struct gendisk *disk;
	int ret;

	dev = kzalloc_node(sizeof(*dev), GFP_KERNEL, cfg->home_node);
	if (!dev) {
		*err = -ENOMEM;
		return NULL;
	}
	dev->cfg = *cfg;
	dev->hw = hw;
	INIT_LIST_HEAD(&dev->list);
	INIT_LIST_HEAD(&dev->shared_list);
	if (cfg->shared_tags) /* until it is on cxmq_shared_devs, or gone */
		mutex_lock(&cxmq_shared_lock);
	dev->index = ida_alloc_max(&cxmq_index_ida, CXMQ_MAX_DEVICES - 1, GFP_KERNEL);
	if (dev->index < 0) {
		ret = dev->index;
		goto out_free;
	}
	ret = cxmq_mq_dev_init(dev);
	if (ret)
		goto out_free;
	if (hw)
		dev->q = hw->create_queue(hw, cfg, &ret);
	else if (cfg->shared_tags)
		dev->q = cxmq_queue_create_shared(cfg, cxmq_shared_set, &ret);
	else
		dev->q = cxmq_queue_create(cfg, &ret);
	if (!dev->q)
		goto out_free;
	/* a shared set's counts and depth are the set's */
	dev->cfg.hw_queue_depth = cxmq_queue_hw_queue_depth(dev->q);
	dev->cfg.poll_queues = cxmq_queue_nr_poll_queues(dev->q);
	dev->cfg.submit_queues = cxmq_queue_nr_hw_queues(dev->q) - dev->cfg.poll_queues;
	cxmq_queue_set_busy_every(dev->q, g_busy_every);

	disk = blk_alloc_disk(cfg->home_node);
	if (!disk) {
		ret = -ENOMEM;
		goto out_free;
	}
	dev->disk = disk;
	disk->major = cxmq_major;
	disk->first_minor = dev->index;
	disk->minors = 1;
	disk->fops = &cxmq_fops;
	disk->private_data = dev;
	snprintf(disk->disk_name, DISK_NAME_LEN, "cxmq%d", dev->index);
	set_capacity(disk, hw ? hw->capacity : cfg->size_mb << (20 - SECTOR_SHIFT));
	blk_queue_logical_block_size(disk->queue, cfg->bs);
	blk_queue_physical_block_size(disk->queue, cfg->bs);
	blk_queue_io_min(disk->queue, cfg->bs);
	blk_queue_flag_set(QUEUE_FLAG_NONROT, disk->queue);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, disk->queue);
	/* Submission never sleeps under REQ_NOWAIT: the core fails such bios with AGAIN. */
	blk_queue_flag_set(QUEUE_FLAG_NOWAIT, disk->queue);
	/* /proc/diskstats: each bio is accounted (bio_start_io_acct/bio_end_io_acct) */
	blk_queue_flag_set(QUEUE_FLAG_IO_STAT, disk->queue);
	/* queue/rq_affinity 1, blk-mq's default (a bio-based queue starts at 0) */
	blk_queue_flag_set(QUEUE_FLAG_SAME_COMP, disk->queue);
	cxmq_update_poll_flag(dev);
	if (hw)
		hw->setup_disk(hw, disk);
	else
		cxmq_null_setup_disk(cfg, disk);
	cxmq_queue_set_host(dev->q, disk->queue);

	ret = cxmq_hotplug_add(dev);
	if (ret)
		goto out_put_disk;
	ret = hw ? device_add_disk(hw->parent, disk, hw->groups) : add_disk(disk);
	if (ret)
		goto out_hotplug;
	atomic_inc(&cxmq_disks_alive); /* ->free_disk is called only for added disks */
	ret = cxmq_mq_register(dev);
	if (ret) {
		pr_err("cxmq: %s: cannot create its mq/ directory: %d\n", disk->disk_name, ret);
		cxmq_hotplug_remove(dev);
		del_gendisk(disk);
		goto out_put_disk;
	}
	ret = cxmq_qsys_register(dev);
	if (ret) {
		pr_err("cxmq: %s: cannot create its cxmq/ directory: %d\n", disk->disk_name, ret);
		cxmq_hotplug_remove(dev);
		cxmq_mq_unregister(dev);
		del_gendisk(disk);
		goto out_put_disk;
	}
	cxmq_queue_set_live(dev->q);
	if (cxmq_debugfs_root) {
		dev->debugfs = debugfs_create_dir(disk->disk_name, cxmq_debugfs_root);
		debugfs_create_file("stats", 0444, dev->debugfs, dev, &cxmq_stats_fops);
	}

	if (!hw) {
		mutex_lock(&cxmq_devices_lock);
		list_add_tail(&dev->list, &cxmq_devices);
		mutex_unlock(&cxmq_devices_lock);
	}
	if (cfg->shared_tags) {
		list_add_tail(&dev->shared_list, &cxmq_shared_devs);
		mutex_unlock(&cxmq_shared_lock);
	}
	*err = 0;
	return dev;

out_hotplug:
	cxmq_hotplug_remove(dev);
out_put_disk:
	put_disk(disk);
out_free:
	cxmq_dev_free(dev);
	if (cfg->shared_tags)
		mutex_unlock(&cxmq_shared_lock);
	*err = ret;
	return NULL;
}

/* Removes the disk (IO still in flight drains; new IO fails) and frees the device. */
void cxmq_dev_destroy(struct cxmq_dev *dev)
{
	const bool shared = dev->cfg.shared_tags;

	if (shared) { /* the set does not change meanwhile; the queue leaves it at its end */
		mutex_lock(&cxmq_shared_lock);
		list_del_init(&dev->shared_list);
	}
	mutex_lock(&cxmq_devices_lock);
	list_del_init(&dev->list);
	mutex_unlock(&cxmq_devices_lock);
	debugfs_remove_recursive(dev->debugfs);
	cxmq_hotplug_remove(dev);
	cxmq_qsys_unregister(dev);
	cxmq_mq_unregister(dev);
	/* No new bios after del_gendisk; the queue then drains what is in flight. */
	del_gendisk(dev->disk);
	/* a poller (cxmq_poll_bio, under RCU) that read this disk from a stale bio is gone */
	synchronize_rcu();
	if (dev->hw) { /* drained: the device stops before the queue its interrupts reach goes */
		cxmq_queue_shutdown(dev->q);
		dev->hw->stop(dev->hw);
	}
	cxmq_queue_destroy(dev->q);
	dev->q = NULL;
	if (shared)
		mutex_unlock(&cxmq_shared_lock);
	put_disk(dev->disk);
	cxmq_dev_free(dev);
}

/* A frozen device's new counts: the mq/ directories go, the map changes, they come back. */
static void cxmq_dev_remap(struct cxmq_dev *dev, u32 nr, u32 nr_poll)
{
	cxmq_mq_change_begin(dev);
	dev->cfg.submit_queues = cxmq_queue_update_nr_hw_queues(dev->q, nr, nr_poll);
	dev->cfg.poll_queues = cxmq_queue_nr_poll_queues(dev->q);
	cxmq_update_poll_flag(dev); /* frozen: no polled bio is in flight */
	cxmq_mq_change_end(dev);
}

/*
 * A shared set's counts change for every device of it (blk_mq_update_nr_hw_queues on a tag
 * set): all of them frozen, each remapped (one at a time: each one's sysfs locks alone), those
 * that got more than another (memory ran short) brought down to it.
 */
static void cxmq_shared_set_nr_hw_queues(u32 nr, u32 nr_poll)
{
	struct cxmq_dev *d;
	unsigned int noio;
	bool again;

	mutex_lock(&cxmq_shared_lock);
	list_for_each_entry(d, &cxmq_shared_devs, shared_list)
		cxmq_queue_freeze(d->q);
	noio = memalloc_noio_save();
	cxmq_tag_set_prepare_update(cxmq_shared_set, &nr, &nr_poll);
	do {
		again = false;
		list_for_each_entry(d, &cxmq_shared_devs, shared_list) {
			if (d->cfg.submit_queues == nr && d->cfg.poll_queues == nr_poll)
				continue;
			cxmq_dev_remap(d, nr, nr_poll);
			if (d->cfg.submit_queues < nr || d->cfg.poll_queues < nr_poll) {
				nr = min(nr, d->cfg.submit_queues);
				nr_poll = min(nr_poll, d->cfg.poll_queues);
				again = true;
			}
		}
	} while (again);
	cxmq_tag_set_finish_update(cxmq_shared_set);
	memalloc_noio_restore(noio);
	list_for_each_entry(d, &cxmq_shared_devs, shared_list)
		cxmq_queue_unfreeze(d->q);
	mutex_unlock(&cxmq_shared_lock);
}

/*
 * Changes the number of hardware queues of a live device (nr default, nr_poll poll ones), of
 * every device of its set with shared_tags: freeze (IO in flight drains, new IO waits), remove
 * the mq/ directories, remap, add them again, unfreeze. Allocations meanwhile must not recurse
 * into IO (to a frozen queue, for one). dev->cfg.submit_queues and poll_queues then say what is
 * in use.
 */
void cxmq_dev_set_nr_hw_queues(struct cxmq_dev *dev, u32 nr, u32 nr_poll)
{
	unsigned int noio;

	if (dev->cfg.shared_tags) {
		cxmq_shared_set_nr_hw_queues(nr, nr_poll);
		return;
	}
	cxmq_queue_freeze(dev->q);
	noio = memalloc_noio_save();
	cxmq_dev_remap(dev, nr, nr_poll);
	memalloc_noio_restore(noio);
	cxmq_queue_unfreeze(dev->q);
}

static void cxmq_del_all(void)
{
	struct cxmq_dev *dev;

	for (;;) {
		mutex_lock(&cxmq_devices_lock);
		dev = list_first_entry_or_null(&cxmq_devices, struct cxmq_dev, list);
		mutex_unlock(&cxmq_devices_lock);
		if (!dev)
			break;
		cxmq_dev_destroy(dev);
	}
}

static void cxmq_cleanup(void)
{
	cxmq_virtio_exit(); /* its devices go with their driver */
	cxmq_del_all();
	/* ->free_disk and our kobjects' releases (each holds its parent, up to the disk) are done */
	wait_event(cxmq_disks_wq, atomic_read(&cxmq_disks_alive) == 0);
	cxmq_hotplug_exit();
	cxmq_tag_set_destroy(cxmq_shared_set);
	cxmq_shared_set = NULL;
	debugfs_remove_recursive(cxmq_debugfs_root);
	unregister_blkdev(cxmq_major, "cxmq");
	cxmq_qsys_exit();
}

static int __init cxmq_init(void)
{
	struct cxmq_dev_config cfg;
	unsigned int i, nr_devices;
	int ret;

	ret = cxmq_params_load(&cfg, &nr_devices);
	if (ret)
		return ret;

	ret = cxmq_qsys_init();
	if (ret)
		return ret;
	cxmq_shared_set = cxmq_tag_set_create();
	if (!cxmq_shared_set) {
		cxmq_qsys_exit();
		return -ENOMEM;
	}
	cxmq_major = register_blkdev(0, "cxmq");
	if (cxmq_major < 0) {
		cxmq_tag_set_destroy(cxmq_shared_set);
		cxmq_qsys_exit();
		return cxmq_major;
	}
	cxmq_debugfs_root = debugfs_create_dir("cxmq", NULL);
	if (IS_ERR(cxmq_debugfs_root))
		cxmq_debugfs_root = NULL;
	if (cxmq_debugfs_root)
		cxmq_fault_debugfs_init(cxmq_debugfs_root);
	ret = cxmq_hotplug_init();
	if (ret) {
		pr_err("cxmq: cannot register for CPU hotplug: %d\n", ret);
		goto fail;
	}
	for (i = 0; i < nr_devices; i++) {
		if (!cxmq_dev_create(&cfg, &ret)) {
			pr_err("cxmq: creating device %u failed: %d\n", i, ret);
			goto fail;
		}
	}
	ret = cxmq_configfs_init();
	if (ret) {
		pr_err("cxmq: cannot register /sys/kernel/config/cxmq: %d\n", ret);
		goto fail;
	}
	/* last: the null devices are cxmq0.. as before, virtio ones take the next numbers */
	ret = cxmq_virtio_init();
	if (ret) {
		pr_err("cxmq: cannot register its virtio driver: %d\n", ret);
		cxmq_configfs_exit();
		goto fail;
	}
	pr_info("cxmq: %u device(s), %u hardware queue(s) of depth %u each\n",
		nr_devices, cfg.submit_queues, cfg.hw_queue_depth);
	return 0;
fail:
	cxmq_cleanup();
	return ret;
}

static void __exit cxmq_exit(void)
{
	/* configfs devices pin the module: none is left when this runs */
	cxmq_configfs_exit();
	cxmq_cleanup();
	ida_destroy(&cxmq_index_ida);
}

module_init(cxmq_init);
module_exit(cxmq_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("cxmq: blk-mq rebuilt in freestanding C++");
MODULE_VERSION(CXMQ_VERSION);
