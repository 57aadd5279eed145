// SPDX-License-Identifier: GPL-2.0
#include "virtio_backend.h"
#include "text.h"

namespace cxmq {

namespace {
inline u32 to_le32(u32 v)
{
	return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? v : __builtin_bswap32(v);
}
inline u64 to_le64(u64 v)
{
	return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? v : __builtin_bswap64(v);
}

// The steps of one request (blk-flush.c's REQ_FSEQ_PREFLUSH, DATA, POSTFLUSH), in order.
enum Step : u8 { kPreflush = 1, kData = 2, kPostflush = 4 };

inline u8 first_step(u8 steps)
{
	return steps & kPreflush ? kPreflush : steps & kData ? kData : kPostflush;
}
} // namespace

// A virtqueue and what the backend keeps of it; the lock serialises every call on it.
struct alignas(kCacheLine) VirtioBackend::Vq {
	SpinLock lock;
	cxmq_os_vq *vq = nullptr;
	List resubmit;      // under lock: requests whose next step found the ring full
	bool poll = false;  // a poll queue's: no interrupts
	u64 notifies = 0;   // doorbells rung
	u64 ring_full = 0;  // requests answered busy on a full ring
	u64 flushes = 0;    // flush steps of PREFLUSH and FUA writes
	u64 irq_done = 0;   // requests completed from the interrupt
	u64 poll_done = 0;  // from polls
};

// The request's payload: what the device reads and writes besides the data.
struct VirtioBackend::VirtioReq {
	OutHdr hdr;
	u8 status;
	u8 steps;         // the steps left, the one on the ring included
	u8 step;          // the one on the ring
	Range *ranges;    // discard / write-zeroes: &range, or allocated
	u32 nr_ranges;
	void *sg;         // the inline scatterlist, or an allocated one
	u32 sg_nents;
	Range range;

	void *inline_sg() { return reinterpret_cast<char *>(this) + inline_sg_offset(); }
	static constexpr size_t inline_sg_offset() { return round_up(sizeof(VirtioReq), 16); }
};

VirtioBackend *VirtioBackend::create(const cxmq_virtio_config &vc, int node, int *err)
{
	VirtioBackend *b = make<VirtioBackend>(node);
	if (!b) {
		*err = -CXMQ_ENOMEM;
		return nullptr;
	}
	*err = b->init(vc, node);
	if (*err) {
		destroy(b);
		return nullptr;
	}
	return b;
}

int VirtioBackend::init(const cxmq_virtio_config &vc, int node)
{
	if (!vc.nr_vqs || vc.nr_poll >= vc.nr_vqs || !vc.vqs) {
		cxmq_os_log(CXMQ_LOG_ERR, "cxmq: virtio: %u virtqueues with %u for polling\n",
			    vc.nr_vqs, vc.nr_poll);
		return -CXMQ_EINVAL;
	}
	features_ = vc.features;
	max_ranges_ = max(vc.max_discard_segments, 1u);
	sg_inline_bytes_ = u32(cxmq_os_vq_sg_size(CXMQ_VIRTIO_INLINE_SEGS + 3));
	vqs_ = static_cast<Vq *>(cxmq_os_zalloc(sizeof(Vq) * vc.nr_vqs, node));
	if (!vqs_)
		return -CXMQ_ENOMEM;
	for (u32 i = 0; i < vc.nr_vqs; i++) {
		Vq *v = new (&vqs_[i]) Vq();
		nr_vqs_ = i + 1;
		v->vq = vc.vqs[i];
		v->poll = i >= vc.nr_vqs - vc.nr_poll;
		if (!v->lock.init(node))
			return -CXMQ_ENOMEM;
	}
	return 0;
}

VirtioBackend::~VirtioBackend()
{
	for (u32 i = 0; i < nr_vqs_; i++)
		vqs_[i].~Vq();
	cxmq_os_free(vqs_);
}

void VirtioBackend::release()
{
	destroy(this);
}

u32 VirtioBackend::pdu_size() const
{
	return u32(VirtioReq::inline_sg_offset()) + sg_inline_bytes_;
}

int VirtioBackend::init_hctx(HwQueue &h)
{
	if (h.index >= nr_vqs_) {
		CXMQ_WARN_ON(true);
		return -CXMQ_EINVAL;
	}
	h.driver_data = &vqs_[h.index];
	return 0;
}

void VirtioBackend::exit_hctx(HwQueue &h)
{
	h.driver_data = nullptr;
}

// blk_mq_virtio_map_queues: each queue gets the CPUs of its interrupt's affinity mask; with no
// mask from the transport, the default map.
bool VirtioBackend::map_queues(u32 *map, u32 nr_cpus, u32 offset, u32 nr)
{
	for (u32 cpu = 0; cpu < nr_cpus; cpu++)
		map[cpu] = offset;
	for (u32 q = 0; q < nr && q < nr_vqs_; q++) {
		for (u32 cpu = 0; cpu < nr_cpus; cpu++) {
			int in = cxmq_os_vq_affinity(vqs_[q].vq, cpu);
			if (in < 0)
				return false;
			if (in)
				map[cpu] = offset + q;
		}
	}
	return true;
}

// The steps of a new request (0: nothing for the device to do). Without a write-back cache
// the kernel strips PREFLUSH and FUA (submit_bio_noacct) and ends empty flushes itself.
bool VirtioBackend::prepare(Request &rq)
{
	VirtioReq &r = vr(rq);
	const bool wc = features_ & CXMQ_VIRTIO_FLUSH;
	u8 steps = 0;
	switch (rq.op) {
	case CXMQ_OP_FLUSH:
		steps = wc ? kPreflush : 0;
		break;
	case CXMQ_OP_WRITE:
		if (rq.nr_sectors)
			steps |= kData;
		if (wc && (rq.flags & CXMQ_BIO_PREFLUSH))
			steps |= kPreflush;
		if (wc && (rq.flags & CXMQ_BIO_FUA))
			steps |= rq.nr_sectors ? kPostflush : kPreflush;
		break;
	default:
		steps = kData;
		break;
	}
	r.steps = steps;
	r.step = 0;
	r.sg = r.inline_sg();
	r.sg_nents = CXMQ_VIRTIO_INLINE_SEGS + 3;
	r.ranges = nullptr;
	r.nr_ranges = 0;
	return steps != 0;
}

// Discard and write-zeroes ranges: one per bio, or the whole request when the device takes
// one range (it then merges only contiguously), as virtblk_setup_discard_write_zeroes_erase.
cxmq_status VirtioBackend::setup_ranges(Request &rq, int node)
{
	VirtioReq &r = vr(rq);
	const u32 flags = rq.op == CXMQ_OP_WRITE_ZEROES && !(rq.flags & CXMQ_BIO_NOUNMAP)
				  ? to_le32(kWriteZeroesUnmap) : 0;
	const u32 n = max_ranges_ == 1 ? 1 : rq.nr_bios;
	if (n > max_ranges_) {
		CXMQ_WARN_ON(true);
		return CXMQ_STS_IOERR;
	}
	r.ranges = &r.range;
	if (n > 1) {
		r.ranges = static_cast<Range *>(cxmq_os_zalloc_io(sizeof(Range) * n, 0, node));
		if (!r.ranges)
			return CXMQ_STS_RESOURCE;
	}
	r.nr_ranges = n;
	if (n == 1) {
		r.ranges[0] = {to_le64(rq.sector), to_le32(rq.nr_sectors), flags};
		return CXMQ_STS_OK;
	}
	u32 i = 0;
	rq.for_each_bio([&](void *b) {
		r.ranges[i++] = {to_le64(cxmq_os_bio_sector(b)), to_le32(cxmq_os_bio_sectors(b)),
				 flags};
	});
	return CXMQ_STS_OK;
}

// What prepare and setup_ranges allocated.
void VirtioBackend::unprepare(Request &rq)
{
	VirtioReq &r = vr(rq);
	if (r.ranges && r.ranges != &r.range)
		cxmq_os_free(r.ranges);
	r.ranges = nullptr;
	if (r.sg != r.inline_sg())
		cxmq_os_free(r.sg);
	r.sg = r.inline_sg();
}

// Puts the request's first step left on the ring, under v.lock. 0, or -CXMQ_ENOSPC (ring
// full), -CXMQ_ENOMEM, -CXMQ_EIO.
int VirtioBackend::add_stage(Vq &v, Request &rq)
{
	VirtioReq &r = vr(rq);
	cxmq_vq_req d = {};
	r.step = first_step(r.steps);
	r.status = 0xff; // the device's answer overwrites it
	r.hdr.ioprio = to_le32(rq.ioprio);
	r.hdr.sector = 0;
	if (r.step != kData) {
		r.hdr.type = to_le32(kTypeFlush);
		add_relaxed(v.flushes, u64(1));
	} else {
		switch (rq.op) {
		case CXMQ_OP_READ:
			r.hdr.type = to_le32(kTypeIn);
			r.hdr.sector = to_le64(rq.sector);
			break;
		case CXMQ_OP_WRITE:
			r.hdr.type = to_le32(kTypeOut);
			r.hdr.sector = to_le64(rq.sector);
			break;
		case CXMQ_OP_GET_ID:
			r.hdr.type = to_le32(kTypeGetId);
			break;
		case CXMQ_OP_DISCARD:
			r.hdr.type = to_le32(kTypeDiscard);
			break;
		default: // CXMQ_OP_WRITE_ZEROES (queue_rq let nothing else through)
			r.hdr.type = to_le32(kTypeWriteZeroes);
			break;
		}
		if (r.ranges) {
			d.payload = r.ranges;
			d.payload_len = u32(sizeof(Range) * r.nr_ranges);
		} else {
			d.bio_head = rq.bio;
			d.bio_tail = rq.biotail;
			d.data_in = rq.op != CXMQ_OP_WRITE;
		}
	}
	d.hdr = &r.hdr;
	d.hdr_len = sizeof(r.hdr);
	d.status = &r.status;
	u32 need = 0;
	int err = cxmq_os_vq_add(v.vq, &d, r.sg, r.sg_nents, &need, &r);
	if (err == -CXMQ_E2BIG && r.sg == r.inline_sg()) {
		void *sg = cxmq_os_zalloc_io(cxmq_os_vq_sg_size(need), 0, rq.hctx->node);
		if (!sg)
			return -CXMQ_ENOMEM;
		r.sg = sg;
		r.sg_nents = need;
		err = cxmq_os_vq_add(v.vq, &d, r.sg, r.sg_nents, &need, &r);
	}
	CXMQ_WARN_ON(err == -CXMQ_E2BIG);
	return err == -CXMQ_E2BIG ? -CXMQ_EIO : err;
}

cxmq_status VirtioBackend::queue_rq(HwQueue &h, Request &rq, bool last)
{
	Vq &v = *static_cast<Vq *>(h.driver_data);
	switch (rq.op) {
	case CXMQ_OP_DISCARD:
		if (!(features_ & CXMQ_VIRTIO_DISCARD))
			return CXMQ_STS_NOTSUPP;
		break;
	case CXMQ_OP_WRITE_ZEROES:
		if (!(features_ & CXMQ_VIRTIO_WRITE_ZEROES))
			return CXMQ_STS_NOTSUPP;
		break;
	case CXMQ_OP_READ:
	case CXMQ_OP_WRITE:
	case CXMQ_OP_FLUSH:
	case CXMQ_OP_GET_ID:
		break;
	default:
		return CXMQ_STS_NOTSUPP;
	}
	if (!prepare(rq)) {
		queue_->end_request(rq, CXMQ_STS_OK);
		return CXMQ_STS_OK;
	}
	if (rq.op == CXMQ_OP_DISCARD || rq.op == CXMQ_OP_WRITE_ZEROES) {
		cxmq_status st = setup_ranges(rq, h.node);
		if (st != CXMQ_STS_OK) {
			unprepare(rq);
			return st;
		}
	}
	bool notify = false;
	unsigned long flags = v.lock.lock();
	int err = add_stage(v, rq);
	if (cxmq_unlikely(err)) {
		// What this run sent before goes to the device now (virtio_queue_rq's kick).
		notify = cxmq_os_vq_kick_prepare(v.vq);
		if (err == -CXMQ_ENOSPC)
			add_relaxed(v.ring_full, u64(1));
	} else if (last) {
		notify = cxmq_os_vq_kick_prepare(v.vq);
	}
	if (notify)
		add_relaxed(v.notifies, u64(1));
	v.lock.unlock(flags);
	if (notify)
		cxmq_os_vq_notify(v.vq);
	if (cxmq_likely(!err))
		return CXMQ_STS_OK;
	unprepare(rq);
	return err == -CXMQ_EIO ? CXMQ_STS_IOERR : CXMQ_STS_RESOURCE;
}

void VirtioBackend::commit_rqs(HwQueue &h)
{
	Vq &v = *static_cast<Vq *>(h.driver_data);
	unsigned long flags = v.lock.lock();
	bool notify = cxmq_os_vq_kick_prepare(v.vq);
	if (notify)
		add_relaxed(v.notifies, u64(1));
	v.lock.unlock(flags);
	if (notify)
		cxmq_os_vq_notify(v.vq);
}

// Under v.lock: takes what the device used. A request with a step left puts it on the ring (or
// on resubmit, when the ring is full); the rest go on `done`. Returns the requests taken. The
// device's callbacks stay off while what was taken is ended (outside the lock): *idle says that
// nothing was left and they are on again (always, for a poll queue, which has none).
u32 VirtioBackend::reap(Vq &v, List &done, bool *idle)
{
	u32 n = 0;
	auto next_step = [&](Request &rq) {
		VirtioReq &r = vr(rq);
		int err = add_stage(v, rq);
		if (err == -CXMQ_ENOSPC) {
			v.resubmit.push_back(&rq.backend_node);
		} else if (err) {
			r.status = kStatusIoErr;
			r.steps = 0;
			done.push_back(&rq.backend_node);
		}
	};
	if (!v.poll)
		cxmq_os_vq_disable_cb(v.vq);
	while (void *token = cxmq_os_vq_get_buf(v.vq)) {
		Request &rq = *Request::from_pdu(token);
		VirtioReq &r = vr(rq);
		n++;
		r.steps &= u8(~r.step);
		if (r.status == kStatusOk && r.steps)
			next_step(rq);
		else
			done.push_back(&rq.backend_node);
	}
	// enable_cb false: more came since the last get_buf
	*idle = v.poll || cxmq_unlikely(cxmq_os_vq_is_broken(v.vq)) ||
		(!n && cxmq_os_vq_enable_cb(v.vq));
	while (!v.resubmit.empty()) { // the ring has room again
		ListNode *node = v.resubmit.pop_front();
		Request &rq = *CXMQ_CONTAINER_OF(node, Request, backend_node);
		if (add_stage(v, rq) == -CXMQ_ENOSPC) {
			v.resubmit.push_front(node);
			break;
		}
	}
	return n;
}

// Ends what reap took, outside the virtqueue's lock (a completion may run the queue).
void VirtioBackend::end_list(List &done)
{
	while (ListNode *node = done.pop_front()) {
		Request &rq = *CXMQ_CONTAINER_OF(node, Request, backend_node);
		VirtioReq &r = vr(rq);
		cxmq_status st = r.status == kStatusOk       ? CXMQ_STS_OK
				 : r.status == kStatusUnsupp ? CXMQ_STS_NOTSUPP
							     : CXMQ_STS_IOERR;
		unprepare(rq);
		queue_->complete_irq(rq, st); // (polled requests complete where they are)
	}
}

// The interrupt's and a poll's work: what the device used, taken under the virtqueue's lock
// (next steps rung for), ended outside it; `count` is irq_done or poll_done. An interrupt
// takes again until the device has nothing more, its callbacks off meanwhile, as virtblk_done
// (which ends requests inside its loop): what the device finishes while earlier requests are
// being ended is taken by the same interrupt instead of raising another.
u32 VirtioBackend::complete_used(Vq &v, u64 Vq::*count)
{
	u32 total = 0;
	bool idle;
	do {
		List done;
		unsigned long flags = v.lock.lock();
		u32 n = reap(v, done, &idle);
		add_relaxed(v.*count, u64(n));
		bool notify = n && cxmq_os_vq_kick_prepare(v.vq); // the next steps put on the ring
		if (notify)
			add_relaxed(v.notifies, u64(1));
		v.lock.unlock(flags);
		if (notify)
			cxmq_os_vq_notify(v.vq);
		end_list(done);
		total += n;
	} while (!idle);
	return total;
}

void VirtioBackend::vq_done(u32 index)
{
	if (cxmq_likely(index < nr_vqs_))
		complete_used(vqs_[index], &Vq::irq_done);
}

int VirtioBackend::poll(HwQueue &h)
{
	return int(complete_used(*static_cast<Vq *>(h.driver_data), &Vq::poll_done));
}

void VirtioBackend::show_stats(TextOut &o) const
{
	u64 notifies = 0, full = 0, flushes = 0, irq = 0, poll = 0;
	for (u32 i = 0; i < nr_vqs_; i++) {
		notifies += load_relaxed(vqs_[i].notifies);
		full += load_relaxed(vqs_[i].ring_full);
		flushes += load_relaxed(vqs_[i].flushes);
		irq += load_relaxed(vqs_[i].irq_done);
		poll += load_relaxed(vqs_[i].poll_done);
	}
	o.put("backend: virtio vqs=%u notifies=%llu ring_full=%llu flushes=%llu irq_done=%llu "
	      "poll_done=%llu\n",
	      nr_vqs_, ull(notifies), ull(full), ull(flushes), ull(irq), ull(poll));
}

} // namespace cxmq

extern "C" {

int cxmq_virtio_cache_type_parse(const char *disk, const char *text)
{
	static const char *const kTypes[] = {CXMQ_CACHE_TYPE_WRITE_THROUGH,
					     CXMQ_CACHE_TYPE_WRITE_BACK};
	const int n = cxmq::first_line_len(text, 64);
	const char *end = text ? text + n : nullptr;
	if (text && (!*end || (end[0] == '\n' && !end[1]))) {
		for (int i = 0; i < 2; i++) {
			const int len = int(__builtin_strlen(kTypes[i]));
			if (n == len && !__builtin_memcmp(text, kTypes[i], cxmq_size_t(len)))
				return i;
		}
	}
	cxmq_os_log(CXMQ_LOG_ERR, "cxmq: %s: cache_type=%.*s is invalid: must be \"%s\" or \"%s\"\n",
		    disk, n, text ? text : "", kTypes[0], kTypes[1]);
	return -CXMQ_EINVAL;
}

} // extern "C"
