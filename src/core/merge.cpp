// SPDX-License-Identifier: GPL-2.0
// The merge rules (merge.h), and the queue's side of them: its limits, and merges into the
// requests staged on its software queues.
#include "merge.h"
#include "queue.h"

namespace cxmq {

namespace {
constexpr u32 kNoMergeFlags = CXMQ_BIO_FUA | CXMQ_BIO_PREFLUSH | CXMQ_BIO_NOMERGE;

bool discard_mergeable(const Request &rq, const cxmq_limits &lim)
{
	return rq.op == CXMQ_OP_DISCARD && lim.max_discard_segments > 1;
}

// Segments are counted only for bios that meet a merge (cxmq_bio.nr_segs 0: not yet).
u32 bio_segs(const Bio &b)
{
	return b.nr_segs ? b.nr_segs : max(cxmq_os_bio_nr_segs(b.bio), 1u);
}

// A request's segments (discard: ranges); 0 only while it holds the one bio it was made for,
// uncounted.
u32 rq_segs(Request &rq)
{
	if (!rq.nr_segs)
		rq.nr_segs = max(cxmq_os_bio_nr_segs(rq.bio), 1u);
	return rq.nr_segs;
}

// A bio joined the request: one more bio, and the request's bios are NOWAIT only while all of
// them are (a bio that may wait never sees the AGAIN a NOWAIT request can end with).
void bio_joined(Request &rq, const Bio &b)
{
	if (!(b.flags & CXMQ_BIO_NOWAIT))
		rq.flags &= ~u32(CXMQ_BIO_NOWAIT);
	rq.nr_bios++;
	if ((b.flags & CXMQ_BIO_POLLED) && rq.hctx && rq.hctx->type == kHctxPoll)
		cxmq_os_bio_set_poll_queue(b.bio, rq.hctx->index);
}

// ll_back_merge_fn / ll_front_merge_fn: the merged request must fit the disk's limits.
// segs: the bio's.
bool fits(Request &rq, const Bio &b, u32 segs, const cxmq_limits &lim)
{
	const u64 sectors = u64(rq.nr_sectors) + b.nr_sectors;
	const u32 max_segs = rq.op == CXMQ_OP_DISCARD ? lim.max_discard_segments : lim.max_segments;
	if (sectors > max_rq_sectors(lim, rq.op) || u64(rq_segs(rq)) + segs > max_segs) {
		rq.rq_flags |= Request::kNoMerge; // req_set_nomerge
		return false;
	}
	return true;
}

// Links b in after the request's last bio.
void link_back(Request &rq, const Bio &b)
{
	cxmq_os_bio_set_next(b.bio, nullptr);
	cxmq_os_bio_set_next(rq.biotail, b.bio);
	rq.biotail = b.bio;
	rq.nr_sectors += b.nr_sectors;
	bio_joined(rq, b);
}

// A contiguous discard merge (a device of one range) adds no segment (ll_new_hw_segment).
u32 merge_segs(const Request &rq, const Bio &b)
{
	return rq.op == CXMQ_OP_DISCARD ? 0 : bio_segs(b);
}

MergeResult back_merge(Request &rq, const Bio &b, const cxmq_limits &lim)
{
	const u32 segs = merge_segs(rq, b);
	if (!fits(rq, b, segs, lim))
		return MergeResult::kFailed;
	link_back(rq, b);
	rq.nr_segs += segs;
	return MergeResult::kMerged;
}

MergeResult front_merge(Request &rq, const Bio &b, const cxmq_limits &lim)
{
	const u32 segs = merge_segs(rq, b);
	if (!fits(rq, b, segs, lim))
		return MergeResult::kFailed;
	cxmq_os_bio_set_next(b.bio, rq.bio);
	rq.bio = b.bio;
	rq.sector = b.sector;
	rq.nr_sectors += b.nr_sectors;
	rq.nr_segs += segs;
	bio_joined(rq, b);
	return MergeResult::kMerged;
}

// bio_attempt_discard_merge: one more range, up to max_discard_segments ranges and
// max_discard_sectors in all. The request's sector stays its first range's.
MergeResult discard_merge(Request &rq, const Bio &b, const cxmq_limits &lim)
{
	if (rq_segs(rq) >= lim.max_discard_segments ||
	    u64(rq.nr_sectors) + b.nr_sectors > lim.max_discard_sectors) {
		rq.rq_flags |= Request::kNoMerge;
		return MergeResult::kFailed;
	}
	link_back(rq, b);
	rq.nr_segs++;
	return MergeResult::kMerged;
}
} // namespace

u32 max_rq_sectors(const cxmq_limits &lim, u16 op)
{
	switch (op) {
	case CXMQ_OP_DISCARD:
		return lim.max_discard_sectors;
	case CXMQ_OP_WRITE_ZEROES:
		return lim.max_write_zeroes_sectors;
	default:
		return lim.max_sectors;
	}
}

bool bio_mergeable(const Bio &b)
{
	return b.op != CXMQ_OP_FLUSH && !(b.flags & kNoMergeFlags);
}

bool rq_mergeable(const Request &rq)
{
	return rq.op != CXMQ_OP_FLUSH && rq.op != CXMQ_OP_WRITE_ZEROES &&
	       !(rq.flags & kNoMergeFlags) && !(rq.rq_flags & Request::kNoMerge);
}

bool merge_ok(const Request &rq, const Bio &b)
{
	if (!rq_mergeable(rq) || !bio_mergeable(b))
		return false;
	if (rq.op != b.op || rq.ioprio != b.ioprio)
		return false;
	// Polled bios are reaped by polling: never mixed with bios that complete otherwise.
	if ((rq.flags ^ b.flags) & CXMQ_BIO_POLLED)
		return false;
	// Every bio of a request ends with the request's cookie: accounted bios only with
	// accounted ones (io_stat may change between two bios).
	if ((rq.cookie ^ b.cookie) & CXMQ_ACCT_COOKIE)
		return false;
	return true;
}

MergeKind merge_kind(const Request &rq, const Bio &b, const cxmq_limits &lim)
{
	if (discard_mergeable(rq, lim))
		return MergeKind::kDiscard;
	if (rq.end_sector() == b.sector)
		return MergeKind::kBack;
	if (rq.sector == b.sector + b.nr_sectors)
		return MergeKind::kFront;
	return MergeKind::kNone;
}

MergeResult attempt_merge(Request &rq, const Bio &b, const cxmq_limits &lim, MergeSite site)
{
	if (!merge_ok(rq, b))
		return MergeResult::kNone;
	MergeResult r;
	u32 kind;
	switch (merge_kind(rq, b, lim)) {
	case MergeKind::kBack:
		r = back_merge(rq, b, lim);
		kind = CXMQ_TRACE_MERGE_BACK;
		break;
	case MergeKind::kFront:
		r = front_merge(rq, b, lim);
		kind = CXMQ_TRACE_MERGE_FRONT;
		break;
	case MergeKind::kDiscard:
		r = discard_merge(rq, b, lim);
		kind = CXMQ_TRACE_MERGE_DISCARD;
		break;
	default:
		return MergeResult::kNone;
	}
	if (r == MergeResult::kMerged)
		trace_rq(CXMQ_TRACE_MERGE, rq, CXMQ_TRACE_MERGE_ARG(u32(site), kind));
	return r;
}

Request *list_merge(const List &l, const Bio &b, const cxmq_limits &lim, MergeSite site)
{
	Request *merged = nullptr;
	u32 tries = kListMergeTries;
	l.for_each_reverse([&](ListNode *n) {
		Request &rq = *Request::from_node(n);
		MergeResult r = attempt_merge(rq, b, lim, site);
		if (r == MergeResult::kMerged)
			merged = &rq;
		return r == MergeResult::kNone && --tries;
	});
	return merged;
}

// ---- the queue's limits, and merging into its software queues ----

namespace {
// The kernel's defaults: BLK_DEF_MAX_SECTORS, BLK_MAX_SEGMENTS; and the discard ranges a
// memory-backed device takes in one request.
constexpr u32 kDefMaxSectors = 2560;
constexpr u32 kMaxSegments = 128;
constexpr u32 kMaxDiscardSegments = 256;
} // namespace

void Queue::default_limits(const cxmq_dev_config &cfg, cxmq_limits *lim)
{
	*lim = cxmq_limits{};
	// The kernel's defaults (blk_set_default_limits, blk_queue_max_hw_sectors): requests up
	// to BLK_DEF_MAX_SECTORS unless the device's max_sectors is lower, BLK_MAX_SEGMENTS.
	lim->max_sectors = cfg.max_sectors ? min(cfg.max_sectors, kDefMaxSectors) : kDefMaxSectors;
	lim->max_segments = kMaxSegments;
	if (cfg.memory_backed) {
		lim->max_discard_sectors = ~0u >> 9;
		lim->max_write_zeroes_sectors = ~0u >> 9;
		lim->max_discard_segments = kMaxDiscardSegments;
	} else {
		lim->max_discard_segments = 1;
	}
}

void Queue::limits(cxmq_limits *lim) const
{
	if (host_)
		cxmq_os_queue_limits(host_, lim);
	else
		default_limits(cfg_, lim);
}

// blk_bio_list_merge over the requests staged on the software queue (list_merge);
// queue/nomerges 1 tries only the one-hit cache, 2 nothing.
bool Queue::ctx_merge(SwQueue &c, const Bio &b)
{
	cxmq_limits lim;
	limits(&lim);
	if (lim.nomerges >= 2)
		return false;
	LockGuard g(c.lock);
	Request *merged = nullptr;
	if (lim.nomerges == 1) {
		if (c.last_merge &&
		    attempt_merge(*c.last_merge, b, lim, MergeSite::kCtx) == MergeResult::kMerged)
			merged = c.last_merge;
	} else {
		merged = list_merge(c.rq_list, b, lim, MergeSite::kCtx);
	}
	if (c.last_merge && (c.last_merge->rq_flags & Request::kNoMerge))
		c.last_merge = nullptr; // req_set_nomerge
	if (!merged)
		return false;
	c.last_merge = merged;
	add_relaxed(c.merged, u64(1));
	cxmq_os_bio_merged(b.bio, b.cookie, merged->cookie);
	return true;
}

} // namespace cxmq
