// SPDX-License-Identifier: GPL-2.0
// The virtio backend, after virtio_blk: one hardware queue per virtqueue of a virtio-blk
// device. A request becomes a virtio-blk request (out header, data scatter-gather list, status
// byte) on its hardware queue's virtqueue; a full ring is a busy answer; the doorbell rings once
// per batch; the virtqueue's interrupt (or, on a poll queue, a poll) completes what the device
// used. A device with a write-back cache gets a PREFLUSH write as a flush, then the write, and
// a FUA write as the write, then a flush (blk-mq's flush sequence, blk-flush.c): the next step
// goes on the ring when the previous one completes.
#pragma once

#include "queue.h"

namespace cxmq {

class VirtioBackend final : public Backend {
public:
	static VirtioBackend *create(const cxmq_virtio_config &vc, int node, int *err);

	void attach(Queue *q) { queue_ = q; }
	Kind kind() const override { return Kind::kVirtio; }
	u32 pdu_size() const override;
	int init_hctx(HwQueue &hctx) override;
	void exit_hctx(HwQueue &hctx) override;
	cxmq_status queue_rq(HwQueue &hctx, Request &rq, bool last) override;
	void commit_rqs(HwQueue &hctx) override;
	bool map_queues(u32 *map, u32 nr_cpus, u32 offset, u32 nr) override;
	int poll(HwQueue &hctx) override;
	void show_stats(TextOut &o) const override;
	void release() override;

	// Virtqueue `index`'s interrupt: completes what the device used.
	void vq_done(u32 index);

	VirtioBackend() = default;
	~VirtioBackend();

	// The virtio-blk request types and status values (include/uapi/linux/virtio_blk.h).
	enum : u32 {
		kTypeIn = 0,
		kTypeOut = 1,
		kTypeFlush = 4,
		kTypeGetId = 8,
		kTypeDiscard = 11,
		kTypeWriteZeroes = 13,
	};
	enum : u8 { kStatusOk = 0, kStatusIoErr = 1, kStatusUnsupp = 2 };
	enum : u32 { kWriteZeroesUnmap = 1 }; // VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
	struct OutHdr { // struct virtio_blk_outhdr, little-endian
		u32 type;
		u32 ioprio;
		u64 sector;
	};
	struct Range { // struct virtio_blk_discard_write_zeroes, little-endian
		u64 sector;
		u32 num_sectors;
		u32 flags;
	};

private:
	struct Vq;
	struct VirtioReq;
	int init(const cxmq_virtio_config &vc, int node);
	VirtioReq &vr(Request &rq) { return *static_cast<VirtioReq *>(rq.pdu()); }
	bool prepare(Request &rq);
	cxmq_status setup_ranges(Request &rq, int node);
	int add_stage(Vq &v, Request &rq);
	void unprepare(Request &rq);
	u32 reap(Vq &v, List &done, bool *idle);
	void end_list(List &done);
	u32 complete_used(Vq &v, u64 Vq::*count);

	Queue *queue_ = nullptr;
	Vq *vqs_ = nullptr;
	u32 nr_vqs_ = 0;
	u32 features_ = 0;
	u32 max_ranges_ = 1;
	u32 sg_inline_bytes_ = 0;
};

} // namespace cxmq
