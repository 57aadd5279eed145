// SPDX-License-Identifier: GPL-2.0
/*
 * cxmq_floor: the benchmark's floor, not part of cxmq. A bio-based disk, /dev/floor0, whose
 * submit_bio ends every bio at once: the least a bio-based driver can do, with what cxmq does
 * around its own queueing and nothing else:
 *   bio_split_to_limits first, then per-bio IO accounting (QUEUE_FLAG_IO_STAT,
 *   bio_start_io_acct at submit, bio_end_io_acct at the end), QUEUE_FLAG_NOWAIT (so io_uring
 *   issues inline instead of handing IO to its workers), NONROT, no entropy contribution, the
 *   same size (gb=) and logical block size (bs=) parameters.
 * No data is kept: reads return whatever the pages held, writes are dropped.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/completion.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

#define FLOOR_MAX_GB (1024 * 1024)

static unsigned long g_gb = 250;
module_param_named(gb, g_gb, ulong, 0444);
MODULE_PARM_DESC(gb, "Size in GiB (1..1048576, default 250)");

static unsigned int g_bs = 512;
module_param_named(bs, g_bs, uint, 0444);
MODULE_PARM_DESC(bs, "Logical block size in bytes (power of two, 512..4096, default 512)");

static int floor_major;
static struct gendisk *floor_disk;
static DECLARE_COMPLETION(floor_released);

static void floor_submit_bio(struct bio *bio)
{
	bio = bio_split_to_limits(bio);
	if (!bio)
		return;
	switch (bio_op(bio)) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
	case REQ_OP_FLUSH:
		break;
	default:
		bio->bi_status = BLK_STS_NOTSUPP;
		bio_endio(bio);
		return;
	}
	if (blk_queue_io_stat(bio->bi_bdev->bd_disk->queue)) {
		unsigned long start = bio_start_io_acct(bio);

		bio_end_io_acct(bio, start);
	}
	bio_endio(bio);
}

/* The gendisk's release can come after del_gendisk and put_disk: exit waits for it. */
static void floor_free_disk(struct gendisk *disk)
{
	complete(&floor_released);
}

static const struct block_device_operations floor_fops = {
	.owner = THIS_MODULE,
	.submit_bio = floor_submit_bio,
	.free_disk = floor_free_disk,
};

static int __init floor_init(void)
{
	struct gendisk *disk;
	int ret;

	if (g_gb == 0 || g_gb > FLOOR_MAX_GB) {
		pr_err("cxmq_floor: gb=%lu is invalid: must be 1..%u\n", g_gb, FLOOR_MAX_GB);
		return -EINVAL;
	}
	if (g_bs < 512 || g_bs > 4096 || (g_bs & (g_bs - 1))) {
		pr_err("cxmq_floor: bs=%u is invalid: must be a power of two, 512..4096\n", g_bs);
		return -EINVAL;
	}
	floor_major = register_blkdev(0, "cxmq_floor");
	if (floor_major < 0)
		return floor_major;
	disk = blk_alloc_disk(NUMA_NO_NODE);
	if (!disk) {
		ret = -ENOMEM;
		goto out_unregister;
	}
	disk->major = floor_major;
	disk->first_minor = 0;
	disk->minors = 1;
	disk->fops = &floor_fops;
	snprintf(disk->disk_name, DISK_NAME_LEN, "floor0");
	set_capacity(disk, ((u64)g_gb << 30) >> SECTOR_SHIFT);
	blk_queue_logical_block_size(disk->queue, g_bs);
	blk_queue_physical_block_size(disk->queue, g_bs);
	blk_queue_io_min(disk->queue, g_bs);
	blk_queue_flag_set(QUEUE_FLAG_NONROT, disk->queue);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, disk->queue);
	blk_queue_flag_set(QUEUE_FLAG_NOWAIT, disk->queue);
	blk_queue_flag_set(QUEUE_FLAG_IO_STAT, disk->queue);
	ret = add_disk(disk);
	if (ret)
		goto out_put;
	floor_disk = disk;
	return 0;

out_put:
	put_disk(disk);
out_unregister:
	unregister_blkdev(floor_major, "cxmq_floor");
	return ret;
}

static void __exit floor_exit(void)
{
	del_gendisk(floor_disk);
	put_disk(floor_disk);
	wait_for_completion(&floor_released);
	unregister_blkdev(floor_major, "cxmq_floor");
}

module_init(floor_init);
module_exit(floor_exit);
MODULE_DESCRIPTION("cxmq benchmark floor: a bio-based disk that ends every bio at once");
MODULE_LICENSE("GPL");
