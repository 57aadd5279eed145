// SPDX-License-Identifier: GPL-2.0
// Merging a bio into a request, with blk-mq's rules (block/blk-merge.c): which bios and
// requests may merge, where (back, front, or as one more range of a discard), and within which
// of the disk's limits. Callers hold whatever guards the request (a software queue's lock, or
// nothing for a request on the submitter's own plug).
#pragma once

#include "request.h"
#include "trace.h"

namespace cxmq {

enum class MergeResult {
	kNone,   // no merge possible here: try another request (BIO_MERGE_NONE)
	kMerged, // the bio is now part of the request (BIO_MERGE_OK)
	kFailed, // it would have merged but a limit forbids it: stop looking (BIO_MERGE_FAILED)
};

enum class MergeKind { kNone, kBack, kFront, kDiscard };

// Where the request a bio merges into is (the merge tracepoint says it).
enum class MergeSite : u32 {
	kPlug = CXMQ_TRACE_MERGE_PLUG,
	kCtx = CXMQ_TRACE_MERGE_CTX,
	kSched = CXMQ_TRACE_MERGE_SCHED,
};

// A bio that may ever merge: not a flush, not FUA/PREFLUSH/NOMERGE (REQ_NOMERGE_FLAGS).
bool bio_mergeable(const Bio &b);
// A request that may take more bios: not a flush or write-zeroes request, not one whose bios
// forbid it, not one a limit already stopped (rq_mergeable).
bool rq_mergeable(const Request &rq);
// Same operation, priority, polling and accounting (blk_rq_merge_ok).
bool merge_ok(const Request &rq, const Bio &b);
// Where the bio would go (blk_try_merge): a discard request of a disk that takes several
// ranges takes any discard bio; otherwise the bio must start where the request ends (back) or
// end where it starts (front).
MergeKind merge_kind(const Request &rq, const Bio &b, const cxmq_limits &lim);
// Tries to merge b into rq: checks everything above, then the limits (sectors, segments,
// discard ranges), then links the bio in. On kMerged the caller accounts the merge (the merge
// event is traced here).
MergeResult attempt_merge(Request &rq, const Bio &b, const cxmq_limits &lim, MergeSite site);

// blk_bio_list_merge: tries the newest kListMergeTries requests of `l` (Request::node), newest
// first, stopping at the first whose position fits but whose limits do not. Returns the request
// the bio merged into, or nullptr.
constexpr u32 kListMergeTries = 8;
Request *list_merge(const List &l, const Bio &b, const cxmq_limits &lim, MergeSite site);

// The largest request of rq's operation, in sectors (blk_queue_get_max_sectors).
u32 max_rq_sectors(const cxmq_limits &lim, u16 op);

} // namespace cxmq
