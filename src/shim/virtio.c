// SPDX-License-Identifier: GPL-2.0
/*
 * cxmq's virtio driver: virtio-blk devices (VIRTIO_ID_BLOCK) bound to it (/sys/bus/virtio/
 * drivers/cxmq/) become /dev/cxmqN disks whose requests go through cxmq's multi-queue layer to
 * the virtio backend (src/core/virtio_backend.cpp), one hardware queue per virtqueue. What is
 * here is what only C can do, after drivers/block/virtio_blk.c: the driver's registration and
 * feature table, reading the device's configuration into the disk's limits, finding the
 * virtqueues (their interrupts call the core), the serial attribute (a GET_ID request), and
 * stopping the device on removal. The virtqueue calls and scatter-gather lists: os_vq.c.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/interrupt.h> /* struct irq_affinity */
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "cxmq/core.h"
#include "cxmq_shim.h"

struct cxmq_vblk {
	struct cxmq_hw hw;
	struct virtio_device *vdev;
	struct cxmq_dev *dev;
	struct cxmq_queue *q;          /* what the interrupts reach, set before any IO */
	struct virtqueue **vqs;
	u32 nr_vqs, nr_poll;
	u32 sg_elems, blk_size, max_discard_segs;
	struct work_struct config_work;
	char names[][16];
};

static bool cxmq_virtio_registered;

/* ---- the device ---- */

static void cxmq_vq_done(struct virtqueue *vq)
{
	struct cxmq_vblk *vb = vq->vdev->priv;
	struct cxmq_queue *q = READ_ONCE(vb->q);

	if (q)
		cxmq_queue_vq_done(q, vq->index);
}

/* virtblk_get_id: the device's id string through the queue, as a request of its own. */
static void cxmq_get_id_end(struct bio *bio)
{
	complete(bio->bi_private);
}

static int cxmq_virtio_get_id(struct cxmq_dev *dev, char *id)
{
	DECLARE_COMPLETION_ONSTACK(done);
	struct cxmq_bio b = { };
	struct bio *bio;
	void *buf;
	int err;

	buf = kzalloc(VIRTIO_BLK_ID_BYTES, GFP_KERNEL);
	bio = bio_kmalloc(1, GFP_KERNEL);
	if (!buf || !bio) {
		kfree(buf);
		kfree(bio);
		return -ENOMEM;
	}
	bio_init(bio, dev->disk->part0, bio->bi_inline_vecs, 1, REQ_OP_READ);
	bio_add_page(bio, virt_to_page(buf), VIRTIO_BLK_ID_BYTES, offset_in_page(buf));
	bio->bi_private = &done;
	bio->bi_end_io = cxmq_get_id_end;
	b.bio = bio;
	b.op = CXMQ_OP_GET_ID;
	b.flags = CXMQ_BIO_NOMERGE | CXMQ_BIO_SYNC;
	b.nr_segs = 1;
	cxmq_queue_submit(dev->q, &b);
	wait_for_completion_io(&done);
	err = blk_status_to_errno(bio->bi_status);
	if (!err)
		memcpy(id, buf, VIRTIO_BLK_ID_BYTES);
	bio_uninit(bio);
	kfree(bio);
	kfree(buf);
	return err;
}

static ssize_t serial_show(struct device *ddev, struct device_attribute *attr, char *buf)
{
	struct gendisk *disk = dev_to_disk(ddev);
	int err;

	buf[VIRTIO_BLK_ID_BYTES] = '\0';
	err = cxmq_virtio_get_id(disk->private_data, buf);
	if (!err)
		return strlen(buf);
	return err == -EIO ? 0 : err; /* unsupported: empty, as virtio_blk shows it */
}
static DEVICE_ATTR_RO(serial);

/* The virtio disk behind a cxmq disk's sysfs device (its attributes'). */
static struct cxmq_vblk *cxmq_vblk_of(struct device *ddev)
{
	struct cxmq_dev *dev = dev_to_disk(ddev)->private_data;

	return container_of(dev->hw, struct cxmq_vblk, hw);
}

/* virtblk_get_cache_mode: the device's wce where the driver may set it, else whether it flushes. */
static bool cxmq_virtio_write_back(struct virtio_device *vdev)
{
	u8 wce;

	if (virtio_cread_feature(vdev, VIRTIO_BLK_F_CONFIG_WCE, struct virtio_blk_config, wce, &wce))
		return virtio_has_feature(vdev, VIRTIO_BLK_F_FLUSH);
	return wce;
}

/* The kernel's write-cache flag (queue/write_cache): PREFLUSH and FUA reach the core when set. */
static void cxmq_virtio_update_cache_mode(struct cxmq_vblk *vb, struct request_queue *q)
{
	blk_queue_write_cache(q, cxmq_virtio_write_back(vb->vdev), false);
}

static ssize_t cache_type_show(struct device *ddev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", cxmq_virtio_write_back(cxmq_vblk_of(ddev)->vdev) ?
			  CXMQ_CACHE_TYPE_WRITE_BACK : CXMQ_CACHE_TYPE_WRITE_THROUGH);
}

/* Writable only with VIRTIO_BLK_F_CONFIG_WCE (cxmq_virtio_attr_visible). */
static ssize_t cache_type_store(struct device *ddev, struct device_attribute *attr,
				const char *buf, size_t count)
{
	struct gendisk *disk = dev_to_disk(ddev);
	struct cxmq_vblk *vb = cxmq_vblk_of(ddev);
	int wb = cxmq_virtio_cache_type_parse(disk->disk_name, buf);

	if (wb < 0)
		return -EINVAL;
	virtio_cwrite8(vb->vdev, offsetof(struct virtio_blk_config, wce), wb);
	cxmq_virtio_update_cache_mode(vb, disk->queue);
	return count;
}
static DEVICE_ATTR_RW(cache_type);

static struct attribute *cxmq_virtio_attrs[] = {
	&dev_attr_serial.attr,
	&dev_attr_cache_type.attr,
	NULL,
};

static umode_t cxmq_virtio_attr_visible(struct kobject *kobj, struct attribute *a, int n)
{
	if (a == &dev_attr_cache_type.attr &&
	    !virtio_has_feature(cxmq_vblk_of(kobj_to_dev(kobj))->vdev, VIRTIO_BLK_F_CONFIG_WCE))
		return 0444;
	return a->mode;
}

static const struct attribute_group cxmq_virtio_attr_group = {
	.attrs = cxmq_virtio_attrs,
	.is_visible = cxmq_virtio_attr_visible,
};
static const struct attribute_group *cxmq_virtio_groups[] = {
	&cxmq_virtio_attr_group,
	NULL,
};

static struct cxmq_queue *cxmq_virtio_create_queue(struct cxmq_hw *hw,
						   const struct cxmq_dev_config *cfg, int *err)
{
	struct cxmq_vblk *vb = container_of(hw, struct cxmq_vblk, hw);
	struct virtio_device *vdev = vb->vdev;
	struct cxmq_virtio_config vc = {
		.vqs = (struct cxmq_os_vq **)vb->vqs,
		.nr_vqs = vb->nr_vqs,
		.nr_poll = vb->nr_poll,
		.max_discard_segments = vb->max_discard_segs,
	};

	if (virtio_has_feature(vdev, VIRTIO_BLK_F_FLUSH))
		vc.features |= CXMQ_VIRTIO_FLUSH;
	if (virtio_has_feature(vdev, VIRTIO_BLK_F_DISCARD))
		vc.features |= CXMQ_VIRTIO_DISCARD;
	if (virtio_has_feature(vdev, VIRTIO_BLK_F_WRITE_ZEROES))
		vc.features |= CXMQ_VIRTIO_WRITE_ZEROES;
	WRITE_ONCE(vb->q, cxmq_queue_create_virtio(cfg, &vc, err));
	return vb->q;
}

/* virtblk_probe's limits, from the device's configuration. */
static void cxmq_virtio_setup_disk(struct cxmq_hw *hw, struct gendisk *disk)
{
	struct cxmq_vblk *vb = container_of(hw, struct cxmq_vblk, hw);
	struct virtio_device *vdev = vb->vdev;
	struct request_queue *q = disk->queue;
	u32 v, max_size, discard_granularity = 0;
	u8 physical_block_exp;

	cxmq_virtio_update_cache_mode(vb, q);
	if (virtio_has_feature(vdev, VIRTIO_BLK_F_RO))
		set_disk_ro(disk, 1);
	blk_queue_max_segments(q, vb->sg_elems);
	blk_queue_max_hw_sectors(q, -1U);
	max_size = min_t(size_t, virtio_max_dma_size(vdev), U32_MAX);
	if (!virtio_cread_feature(vdev, VIRTIO_BLK_F_SIZE_MAX, struct virtio_blk_config, size_max, &v))
		max_size = min(max_size, v);
	blk_queue_max_segment_size(q, max_size);
	blk_queue_logical_block_size(q, vb->blk_size);
	blk_queue_physical_block_size(q, vb->blk_size);
	blk_queue_io_min(q, vb->blk_size);
	if (!virtio_cread_feature(vdev, VIRTIO_BLK_F_TOPOLOGY, struct virtio_blk_config,
				  physical_block_exp, &physical_block_exp) && physical_block_exp)
		blk_queue_physical_block_size(q, vb->blk_size * (1 << physical_block_exp));
	blk_queue_flag_clear(QUEUE_FLAG_NONROT, q); /* as virtio_blk leaves it: rotational */
	if (virtio_has_feature(vdev, VIRTIO_BLK_F_DISCARD)) {
		virtio_cread(vdev, struct virtio_blk_config, discard_sector_alignment,
			     &discard_granularity);
		virtio_cread(vdev, struct virtio_blk_config, max_discard_sectors, &v);
		blk_queue_max_discard_sectors(q, v ? v : UINT_MAX);
		blk_queue_max_discard_segments(q, vb->max_discard_segs);
		q->limits.discard_granularity = discard_granularity ?
			discard_granularity << SECTOR_SHIFT : vb->blk_size;
	}
	if (virtio_has_feature(vdev, VIRTIO_BLK_F_WRITE_ZEROES)) {
		virtio_cread(vdev, struct virtio_blk_config, max_write_zeroes_sectors, &v);
		blk_queue_max_write_zeroes_sectors(q, v ? v : UINT_MAX);
	}
	virtio_device_ready(vdev); /* add_disk reads the partition table */
}

static void cxmq_virtio_stop(struct cxmq_hw *hw)
{
	struct cxmq_vblk *vb = container_of(hw, struct cxmq_vblk, hw);

	/* no interrupt after this (virtio-pci synchronises its vectors) */
	virtio_reset_device(vb->vdev);
	WRITE_ONCE(vb->q, NULL);
}

/* init_vq: a virtqueue per hardware queue, capped at the CPUs; poll ones without callbacks. */
static int cxmq_virtio_find_vqs(struct cxmq_vblk *vb, u32 nr, u32 nr_poll)
{
	struct irq_affinity desc = { 0, };
	vq_callback_t **callbacks;
	const char **names;
	u32 i;
	int err;

	vb->vqs = kcalloc(nr, sizeof(*vb->vqs), GFP_KERNEL);
	names = kcalloc(nr, sizeof(*names), GFP_KERNEL);
	callbacks = kcalloc(nr, sizeof(*callbacks), GFP_KERNEL);
	err = -ENOMEM;
	if (!vb->vqs || !names || !callbacks)
		goto out;
	for (i = 0; i < nr; i++) {
		const bool poll = i >= nr - nr_poll;

		callbacks[i] = poll ? NULL : cxmq_vq_done;
		snprintf(vb->names[i], sizeof(vb->names[i]), poll ? "req_poll.%u" : "req.%u", i);
		names[i] = vb->names[i];
	}
	err = virtio_find_vqs(vb->vdev, nr, vb->vqs, callbacks, names, &desc);
	if (!err) {
		vb->nr_vqs = nr;
		vb->nr_poll = nr_poll;
	}
out:
	kfree(callbacks);
	kfree(names);
	if (err) {
		kfree(vb->vqs);
		vb->vqs = NULL;
	}
	return err;
}

static void cxmq_virtio_config_work(struct work_struct *work)
{
	struct cxmq_vblk *vb = container_of(work, struct cxmq_vblk, config_work);
	u64 capacity;

	virtio_cread(vb->vdev, struct virtio_blk_config, capacity, &capacity);
	set_capacity_and_notify(vb->dev->disk, capacity);
}

static void cxmq_virtio_config_changed(struct virtio_device *vdev)
{
	struct cxmq_vblk *vb = vdev->priv;

	if (READ_ONCE(vb->dev))
		schedule_work(&vb->config_work);
}

static int cxmq_virtio_probe(struct virtio_device *vdev)
{
	struct cxmq_dev_config cfg;
	struct cxmq_vblk *vb;
	struct cxmq_dev *dev;
	u16 num_vqs = 1;
	u32 nr, nr_poll, depth, v;
	int err;

	if (!vdev->config->get) {
		dev_err(&vdev->dev, "cxmq: config access disabled\n");
		return -EINVAL;
	}
	if (virtio_cread_feature(vdev, VIRTIO_BLK_F_MQ, struct virtio_blk_config, num_queues,
				 &num_vqs))
		num_vqs = 1;
	if (!num_vqs) {
		dev_err(&vdev->dev, "cxmq: MQ advertised but zero queues reported\n");
		return -EINVAL;
	}
	nr = min_t(u32, num_vqs, nr_cpu_ids);
	cxmq_default_config(&cfg); /* the module parameters: scheduler, poll_queues */
	nr_poll = min(cfg.poll_queues, nr - 1);

	vb = kzalloc(struct_size(vb, names, nr), GFP_KERNEL);
	if (!vb)
		return -ENOMEM;
	vb->vdev = vdev;
	vdev->priv = vb;
	INIT_WORK(&vb->config_work, cxmq_virtio_config_work);
	if (virtio_cread_feature(vdev, VIRTIO_BLK_F_SEG_MAX, struct virtio_blk_config, seg_max,
				 &vb->sg_elems) || !vb->sg_elems)
		vb->sg_elems = 1;
	vb->sg_elems = min_t(u32, vb->sg_elems, 32768 - 2); /* VIRTIO_BLK_MAX_SG_ELEMS */
	vb->blk_size = SECTOR_SIZE;
	if (!virtio_cread_feature(vdev, VIRTIO_BLK_F_BLK_SIZE, struct virtio_blk_config, blk_size,
				  &v)) {
		if (blk_validate_block_size(v)) {
			dev_err(&vdev->dev, "cxmq: invalid block size: 0x%x\n", v);
			err = -EINVAL;
			goto out_free;
		}
		vb->blk_size = v;
	}
	if (virtio_has_feature(vdev, VIRTIO_BLK_F_DISCARD)) {
		virtio_cread(vdev, struct virtio_blk_config, max_discard_seg, &vb->max_discard_segs);
		if (!vb->max_discard_segs)
			vb->max_discard_segs = vb->sg_elems;
		vb->max_discard_segs = min(vb->max_discard_segs, 256u); /* MAX_DISCARD_SEGMENTS */
	}
	err = cxmq_virtio_find_vqs(vb, nr, nr_poll);
	if (err)
		goto out_free;
	/* virtio_blk's default depth: fill the ring (two descriptors a request without indirect) */
	depth = vb->vqs[0]->num_free;
	if (!virtio_has_feature(vdev, VIRTIO_RING_F_INDIRECT_DESC))
		depth /= 2;
	cfg.hw_queue_depth = clamp_t(u32, depth, 1, CXMQ_MAX_QUEUE_DEPTH);
	cfg.submit_queues = nr - nr_poll;
	cfg.poll_queues = nr_poll;
	cfg.bs = vb->blk_size;
	cfg.memory_backed = 0;
	cfg.shared_tags = 0;
	cfg.home_node = NUMA_NO_NODE;
	virtio_cread(vdev, struct virtio_blk_config, capacity, &vb->hw.capacity);
	cfg.size_mb = vb->hw.capacity >> (20 - SECTOR_SHIFT); /* (for show only) */
	vb->hw.parent = &vdev->dev;
	vb->hw.groups = cxmq_virtio_groups;
	vb->hw.create_queue = cxmq_virtio_create_queue;
	vb->hw.setup_disk = cxmq_virtio_setup_disk;
	vb->hw.stop = cxmq_virtio_stop;
	dev = cxmq_dev_create_hw(&cfg, &vb->hw, &err);
	if (!dev)
		goto out_reset;
	WRITE_ONCE(vb->dev, dev);
	dev_info(&vdev->dev, "cxmq: %s: %u/%u default/poll queues of depth %u, %llu sectors\n",
		 dev->disk->disk_name, nr - nr_poll, nr_poll, cfg.hw_queue_depth, vb->hw.capacity);
	return 0;

out_reset:
	virtio_reset_device(vdev);
	vdev->config->del_vqs(vdev);
	kfree(vb->vqs);
out_free:
	vdev->priv = NULL;
	kfree(vb);
	return err;
}

/* Driver unbind, hot-unplug, rmmod: new IO fails, IO in flight completes, then the device
 * stops (cxmq_virtio_stop) and its virtqueues go. */
static void cxmq_virtio_remove(struct virtio_device *vdev)
{
	struct cxmq_vblk *vb = vdev->priv;
	struct cxmq_dev *dev = vb->dev;

	WRITE_ONCE(vb->dev, NULL);
	flush_work(&vb->config_work);
	cxmq_dev_destroy(dev);
	vdev->config->del_vqs(vdev);
	kfree(vb->vqs);
	vdev->priv = NULL;
	kfree(vb);
}

static const struct virtio_device_id cxmq_virtio_ids[] = {
	{ VIRTIO_ID_BLOCK, VIRTIO_DEV_ANY_ID },
	{ 0 },
};

static unsigned int cxmq_virtio_features[] = {
	VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_BLK_SIZE,
	VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_TOPOLOGY, VIRTIO_BLK_F_MQ, VIRTIO_BLK_F_DISCARD,
	VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_BLK_F_CONFIG_WCE,
};

static struct virtio_driver cxmq_virtio_driver = {
	.feature_table = cxmq_virtio_features,
	.feature_table_size = ARRAY_SIZE(cxmq_virtio_features),
	.feature_table_legacy = cxmq_virtio_features,
	.feature_table_size_legacy = ARRAY_SIZE(cxmq_virtio_features),
	.driver.name = "cxmq",
	.driver.owner = THIS_MODULE,
	.id_table = cxmq_virtio_ids,
	.probe = cxmq_virtio_probe,
	.remove = cxmq_virtio_remove,
	.config_changed = cxmq_virtio_config_changed,
};

int cxmq_virtio_init(void)
{
	int ret = register_virtio_driver(&cxmq_virtio_driver);

	cxmq_virtio_registered = !ret;
	return ret;
}

void cxmq_virtio_exit(void)
{
	if (cxmq_virtio_registered)
		unregister_virtio_driver(&cxmq_virtio_driver);
	cxmq_virtio_registered = false;
}
