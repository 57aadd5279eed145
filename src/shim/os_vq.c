// SPDX-License-Identifier: GPL-2.0
/*
 * The virtqueue half of include/cxmq/os.h (the virtio backend's): a cxmq_os_vq is a struct
 * virtqueue. Scatter-gather lists are built here from a request's bios, as blk_rq_map_sg does,
 * one entry per piece of at most the disk's max_segment_size of each multi-page bvec.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/mm.h>
#include <linux/scatterlist.h>
#include <linux/vmalloc.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

#include "cxmq/os.h"
#include "cxmq_shim.h"

static struct virtqueue *cxmq_vq(struct cxmq_os_vq *vq)
{
	return (struct virtqueue *)vq;
}

cxmq_size_t cxmq_os_vq_sg_size(cxmq_u32 nents)
{
	return sizeof(struct scatterlist) * nents;
}

/* sg_init_one for memory that may be vmalloc'd (the core's request pools are kvzalloc'd): the
 * pieces given here never cross a page (the core aligns them). */
static void cxmq_sg_one(struct scatterlist *sg, const void *buf, unsigned int len)
{
	struct page *page = is_vmalloc_addr(buf) ? vmalloc_to_page(buf) : virt_to_page(buf);

	sg_init_table(sg, 1);
	sg_set_page(sg, page, len, offset_in_page(buf));
}

/* The data of bios head..tail: one entry per piece of at most seg_size of each multi-page
 * bvec (cxmq_os_bio_nr_segs' count). sg NULL: count only. */
static u32 cxmq_sg_bios(struct scatterlist *sg, void *head, void *tail, u32 seg_size)
{
	struct bio *bio = head;
	u32 n = 0;

	for (;;) {
		struct bvec_iter iter;
		struct bio_vec bv;

		bio_for_each_bvec(bv, bio, iter) {
			u32 done = 0;

			while (done < bv.bv_len) {
				u32 len = min(bv.bv_len - done, seg_size);
				u32 off = bv.bv_offset + done;

				if (sg)
					sg_set_page(&sg[n], bv.bv_page + (off >> PAGE_SHIFT), len,
						    off & ~PAGE_MASK);
				n++;
				done += len;
			}
		}
		if (bio == tail)
			break;
		bio = bio->bi_next;
	}
	return n;
}

int cxmq_os_vq_add(struct cxmq_os_vq *ovq, const struct cxmq_vq_req *r, void *mem, cxmq_u32 nents,
		   cxmq_u32 *need, void *token)
{
	struct virtqueue *vq = cxmq_vq(ovq);
	struct scatterlist *sg = mem, *sgs[3];
	unsigned int out = 0, in = 0;
	u32 data = 0, i = 1, seg_size = 0;
	int err;

	if (r->bio_head) {
		/* as cxmq_os_bio_nr_segs counts them */
		seg_size = queue_max_segment_size(bdev_get_queue(((struct bio *)r->bio_head)->bi_bdev));
		data = cxmq_sg_bios(NULL, r->bio_head, r->bio_tail, seg_size);
		if (data + 3 > nents) {
			*need = data + 3;
			return -E2BIG;
		}
	}
	cxmq_sg_one(&sg[0], r->hdr, r->hdr_len);
	sgs[out++] = &sg[0];
	if (r->payload) {
		cxmq_sg_one(&sg[i], r->payload, r->payload_len);
		sgs[out++] = &sg[i++];
	} else if (data) {
		sg_init_table(&sg[i], data);
		cxmq_sg_bios(&sg[i], r->bio_head, r->bio_tail, seg_size);
		if (r->data_in)
			sgs[out + in++] = &sg[i];
		else
			sgs[out++] = &sg[i];
		i += data;
	}
	cxmq_sg_one(&sg[i], r->status, 1);
	sgs[out + in++] = &sg[i];
	err = virtqueue_add_sgs(vq, sgs, out, in, token, GFP_ATOMIC);
	switch (err) {
	case 0:
		return 0;
	case -ENOSPC:
		return -CXMQ_ENOSPC;
	case -ENOMEM:
		return -CXMQ_ENOMEM;
	default:
		return -CXMQ_EIO;
	}
}

void *cxmq_os_vq_get_buf(struct cxmq_os_vq *vq)
{
	unsigned int len;

	return virtqueue_get_buf(cxmq_vq(vq), &len);
}

int cxmq_os_vq_kick_prepare(struct cxmq_os_vq *vq)
{
	return virtqueue_kick_prepare(cxmq_vq(vq));
}

void cxmq_os_vq_notify(struct cxmq_os_vq *vq)
{
	virtqueue_notify(cxmq_vq(vq));
}

void cxmq_os_vq_disable_cb(struct cxmq_os_vq *vq)
{
	virtqueue_disable_cb(cxmq_vq(vq));
}

int cxmq_os_vq_enable_cb(struct cxmq_os_vq *vq)
{
	return virtqueue_enable_cb(cxmq_vq(vq));
}

int cxmq_os_vq_is_broken(struct cxmq_os_vq *vq)
{
	return virtqueue_is_broken(cxmq_vq(vq));
}

int cxmq_os_vq_affinity(struct cxmq_os_vq *ovq, cxmq_u32 cpu)
{
	struct virtqueue *vq = cxmq_vq(ovq);
	const struct cpumask *mask;

	if (!vq->vdev->config->get_vq_affinity)
		return -1;
	mask = vq->vdev->config->get_vq_affinity(vq->vdev, vq->index);
	if (!mask)
		return -1;
	return cpumask_test_cpu(cpu, mask);
}
