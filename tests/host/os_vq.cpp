// SPDX-License-Identifier: GPL-2.0
// The host's virtqueues (os.h's cxmq_os_vq_*): a fake virtio-blk device queue (host.h FakeVq)
// that records each request as the device would read it, and checks that the core serialises
// its calls on one virtqueue and keeps the sizes it was given.
#include <cstring>
#include <mutex>

#include <gtest/gtest.h>

#include "host.h"

namespace host {

namespace {
FakeVq *as_vq(cxmq_os_vq *vq)
{
	return reinterpret_cast<FakeVq *>(vq);
}

// Reports calls on one virtqueue that overlap (the core must hold its lock around each), before
// taking the ring's own lock.
struct OverlapCheck {
	OverlapCheck(FakeVq *vq, const char *what) : vq_(vq)
	{
		if (vq_->in_call.fetch_add(1) != 0)
			ADD_FAILURE() << what << ": another call on the same virtqueue is running";
	}
	~OverlapCheck() { vq_->in_call.fetch_sub(1); }
	FakeVq *vq_;
};
struct CallGuard {
	CallGuard(FakeVq *vq, const char *what) : check_(vq, what), lock_(vq->m) {}
	OverlapCheck check_;
	std::lock_guard<std::mutex> lock_;
};

// The scatterlist entry size the host pretends to have.
constexpr size_t kSgEntry = 32;
} // namespace

cxmq_os_vq *as_os_vq(FakeVq *vq)
{
	return reinterpret_cast<cxmq_os_vq *>(vq);
}

uint32_t FakeVq::complete(uint32_t n, uint8_t st)
{
	std::lock_guard<std::mutex> g(m);
	uint32_t done = 0;
	while (done < n && !avail.empty()) {
		VqEntry &e = avail.front();
		*e.status = st;
		used.push_back(e.token);
		avail.erase(avail.begin());
		done++;
	}
	return done;
}

} // namespace host

using namespace host;

extern "C" {

cxmq_size_t cxmq_os_vq_sg_size(cxmq_u32 nents)
{
	return kSgEntry * nents;
}

int cxmq_os_vq_add(struct cxmq_os_vq *ovq, const struct cxmq_vq_req *r, void *sg, cxmq_u32 nents,
		   cxmq_u32 *need, void *token)
{
	FakeVq *vq = as_vq(ovq);
	CallGuard g(vq, "cxmq_os_vq_add");
	VqEntry e;
	if (r->bio_head) {
		for (void *b = r->bio_head;; b = cxmq_os_bio_next(b)) {
			auto *fb = static_cast<FakeBio *>(b);
			e.bios.push_back(fb);
			e.segs += fb->nr_segs;
			if (b == r->bio_tail)
				break;
			if (!cxmq_os_bio_next(b)) {
				ADD_FAILURE() << "cxmq_os_vq_add: the bio chain ends before its tail";
				return -CXMQ_EIO;
			}
		}
	}
	if (e.segs + 3 > nents) {
		*need = e.segs + 3;
		return -CXMQ_E2BIG;
	}
	// the storage is the core's: every entry is written, as sg_init_table would
	memset(sg, 0xa5, kSgEntry * (e.segs + 3));
	vq->adds++;
	if (vq->broken)
		return -CXMQ_EIO;
	if (vq->in_flight() >= vq->size) {
		vq->full++;
		return -CXMQ_ENOSPC;
	}
	if (r->hdr_len != 16) {
		ADD_FAILURE() << "cxmq_os_vq_add: a header of " << r->hdr_len << " bytes";
		return -CXMQ_EIO;
	}
	uint32_t type, ioprio;
	uint64_t sector;
	memcpy(&type, r->hdr, 4);
	memcpy(&ioprio, static_cast<const char *>(r->hdr) + 4, 4);
	memcpy(&sector, static_cast<const char *>(r->hdr) + 8, 8);
	e.token = token;
	e.type = type;
	e.ioprio = ioprio;
	e.sector = sector;
	e.data_in = r->data_in;
	if (r->payload) {
		const auto *p = static_cast<const uint8_t *>(r->payload);
		e.payload.assign(p, p + r->payload_len);
	}
	e.status = static_cast<uint8_t *>(r->status);
	vq->avail.push_back(e);
	vq->added_total++;
	return 0;
}

void *cxmq_os_vq_get_buf(struct cxmq_os_vq *ovq)
{
	FakeVq *vq = as_vq(ovq);
	CallGuard g(vq, "cxmq_os_vq_get_buf");
	if (vq->used.empty())
		return nullptr;
	void *t = vq->used.front();
	vq->used.erase(vq->used.begin());
	return t;
}

int cxmq_os_vq_kick_prepare(struct cxmq_os_vq *ovq)
{
	FakeVq *vq = as_vq(ovq);
	CallGuard g(vq, "cxmq_os_vq_kick_prepare");
	vq->kick_prepares++;
	if (vq->added_total.load() == vq->prepared_total.load())
		return 0;
	vq->prepared_total.store(vq->added_total.load());
	return 1;
}

void cxmq_os_vq_notify(struct cxmq_os_vq *ovq)
{
	FakeVq *vq = as_vq(ovq);
	vq->notifies++;
	vq->seen_total.store(vq->prepared_total.load());
}

void cxmq_os_vq_disable_cb(struct cxmq_os_vq *ovq)
{
	FakeVq *vq = as_vq(ovq);
	CallGuard g(vq, "cxmq_os_vq_disable_cb");
	vq->cb_enabled = false;
}

int cxmq_os_vq_enable_cb(struct cxmq_os_vq *ovq)
{
	FakeVq *vq = as_vq(ovq);
	CallGuard g(vq, "cxmq_os_vq_enable_cb");
	vq->cb_enabled = true;
	return vq->used.empty();
}

int cxmq_os_vq_is_broken(struct cxmq_os_vq *ovq)
{
	return as_vq(ovq)->broken;
}

int cxmq_os_vq_affinity(struct cxmq_os_vq *ovq, cxmq_u32 cpu)
{
	FakeVq *vq = as_vq(ovq);
	if (vq->affinity_cpu == -2)
		return -1;
	return int(cpu) == vq->affinity_cpu;
}

} // extern "C"
