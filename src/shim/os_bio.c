// SPDX-License-Identifier: GPL-2.0
/*
 * The block-layer half of include/cxmq/os.h: ending bios (with their IO accounting), walking
 * their data, chaining them into requests, the queue's limits, merge accounting, and the
 * per-task plug. The rest of os.h (memory, CPUs, locks, waits, works, timers) is os_linux.c.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/highmem.h>
#include <linux/part_stat.h>

#include "cxmq/os.h"
#include "cxmq_shim.h"

static const blk_status_t cxmq_status_to_blk[] = {
	[CXMQ_STS_OK] = BLK_STS_OK,
	[CXMQ_STS_IOERR] = BLK_STS_IOERR,
	[CXMQ_STS_AGAIN] = BLK_STS_AGAIN,
	[CXMQ_STS_NOTSUPP] = BLK_STS_NOTSUPP,
	[CXMQ_STS_RESOURCE] = BLK_STS_RESOURCE,
	[CXMQ_STS_NOSPC] = BLK_STS_NOSPC,
	[CXMQ_STS_TIMEOUT] = BLK_STS_TIMEOUT,
};

CXMQ_HOT void cxmq_os_bio_end(void *p, enum cxmq_status status, cxmq_u64 cookie)
{
	struct bio *bio = p;

	if (cookie & CXMQ_ACCT_COOKIE)
		bio_end_io_acct(bio, (unsigned long)(cookie & ~CXMQ_ACCT_COOKIE));

	if (WARN_ON_ONCE((unsigned int)status >= ARRAY_SIZE(cxmq_status_to_blk)))
		status = CXMQ_STS_IOERR;
	bio->bi_status = cxmq_status_to_blk[status];
	bio_endio(bio);
}

/*
 * bdev_start_io_acct, taken back: 6.1.192's counts the IO and its sectors when it starts and
 * marks it in flight. A bio io_uring gets back with AGAIN is submitted again and would
 * otherwise count twice.
 */
void cxmq_os_bio_fail(void *p, enum cxmq_status status, cxmq_u64 cookie)
{
	struct bio *bio = p;

	if (cookie & CXMQ_ACCT_COOKIE) {
		const int sgrp = op_stat_group(bio_op(bio));

		part_stat_lock();
		part_stat_dec(bio->bi_bdev, ios[sgrp]);
		part_stat_sub(bio->bi_bdev, sectors[sgrp], bio_sectors(bio));
		part_stat_local_dec(bio->bi_bdev, in_flight[op_is_write(bio_op(bio))]);
		part_stat_unlock();
	}
	cxmq_os_bio_end(bio, status, cookie & ~CXMQ_ACCT_COOKIE);
}

int cxmq_os_bio_for_each_piece(void *p, int to_bio,
			       int (*fn)(void *ctx, cxmq_u64 off, void *data, cxmq_u32 len),
			       void *ctx)
{
	struct bio *bio = p;
	struct bio_vec bv;
	struct bvec_iter iter;
	u64 off = 0;
	int ret;

	bio_for_each_segment(bv, bio, iter) {
		void *kaddr = kmap_local_page(bv.bv_page);

		ret = fn(ctx, off, kaddr + bv.bv_offset, bv.bv_len);
		if (to_bio)
			flush_dcache_page(bv.bv_page);
		kunmap_local(kaddr);
		if (ret)
			return ret;
		off += bv.bv_len;
	}
	return 0;
}

/* ---- bios in requests, limits, plugging ---- */

void *cxmq_os_bio_next(void *bio)
{
	return ((struct bio *)bio)->bi_next;
}

CXMQ_HOT void cxmq_os_bio_set_next(void *bio, void *next)
{
	((struct bio *)bio)->bi_next = next;
}

cxmq_u64 cxmq_os_bio_sector(void *bio)
{
	return ((struct bio *)bio)->bi_iter.bi_sector;
}

cxmq_u32 cxmq_os_bio_sectors(void *bio)
{
	return bio_sectors((struct bio *)bio);
}

/*
 * Physical segments of a bio as a request counts them against queue/max_segments: each
 * multi-page bvec, in pieces of at most max_segment_size (bvec_split_segs, less the segment
 * boundary, which cxmq's disks leave at the default 4 GiB).
 */
cxmq_u32 cxmq_os_bio_nr_segs(void *p)
{
	struct bio *bio = p;
	unsigned int seg_size = queue_max_segment_size(bdev_get_queue(bio->bi_bdev));
	struct bvec_iter iter;
	struct bio_vec bv;
	u32 segs = 0;

	if (!bio_has_data(bio))
		return 1;
	bio_for_each_bvec(bv, bio, iter)
		segs += DIV_ROUND_UP(bv.bv_len, seg_size);
	return segs ? segs : 1;
}

/* blk_account_io_merge_bio: a merged bio counts in the merge columns of /proc/diskstats. */
/* bio_poll() hands bi_cookie to ->poll_bio only when it is not BLK_QC_T_NONE (-1). */
void cxmq_os_bio_set_poll_queue(void *bio, cxmq_u32 hctx)
{
	WRITE_ONCE(((struct bio *)bio)->bi_cookie, hctx);
}

void cxmq_os_bio_merged(void *p, cxmq_u64 cookie, cxmq_u64 rq_cookie)
{
	struct bio *bio = p;

	if (!(cookie & CXMQ_ACCT_COOKIE))
		return;
	part_stat_lock();
	part_stat_inc(bio->bi_bdev, merges[op_stat_group(bio_op(bio))]);
	part_stat_unlock();
}

void cxmq_os_queue_limits(void *host, struct cxmq_limits *lim)
{
	struct request_queue *q = host;

	lim->max_sectors = READ_ONCE(q->limits.max_sectors);
	lim->max_segments = READ_ONCE(q->limits.max_segments);
	lim->max_discard_sectors = READ_ONCE(q->limits.max_discard_sectors);
	lim->max_discard_segments = READ_ONCE(q->limits.max_discard_segments);
	lim->max_write_zeroes_sectors = READ_ONCE(q->limits.max_write_zeroes_sectors);
	/* queue/nomerges: QUEUE_FLAG_NOMERGES is 2, QUEUE_FLAG_NOXMERGES 1 (blk-sysfs.c) */
	lim->nomerges = blk_queue_nomerges(q) ? 2 : blk_queue_noxmerges(q) ? 1 : 0;
}

/* The core's plug storage rides on the task's blk_plug as a plug callback (as md does). */
struct cxmq_plug_cb {
	struct blk_plug_cb cb;
	void (*unplug)(void *storage, int from_schedule);
	unsigned long storage[] __aligned(sizeof(u64));
};

static void cxmq_plug_unplug(struct blk_plug_cb *cb, bool from_schedule)
{
	struct cxmq_plug_cb *p = container_of(cb, struct cxmq_plug_cb, cb);

	p->unplug(p->storage, from_schedule);
	kfree(p);
}

CXMQ_HOT void *cxmq_os_plug(void *owner, cxmq_size_t size, void (*unplug)(void *storage, int from_schedule))
{
	struct blk_plug_cb *cb = blk_check_plugged(cxmq_plug_unplug, owner,
						   sizeof(struct cxmq_plug_cb) + size);
	struct cxmq_plug_cb *p;

	if (!cb)
		return NULL;
	p = container_of(cb, struct cxmq_plug_cb, cb);
	p->unplug = unplug;
	return p->storage;
}

int cxmq_os_queue_rq_affinity(void *host)
{
	struct request_queue *q = host;

	if (!test_bit(QUEUE_FLAG_SAME_COMP, &q->queue_flags))
		return 0;
	return test_bit(QUEUE_FLAG_SAME_FORCE, &q->queue_flags) ? 2 : 1;
}
