// SPDX-License-Identifier: GPL-2.0
// The multi-queue layer: per-CPU software staging queues (SwQueue, blk-mq's ctx), hardware
// dispatch queues (HwQueue, blk-mq's hctx) with a dispatch list and tags, the CPU -> hardware
// queue map, and queue usage counting with freeze.
#pragma once

#include "backend.h"
#include "cxmq/core.h"
#include "merge.h"
#include "elevator.h"
#include "tag_set.h"
#include "tags.h"
#include "timeout.h"

namespace cxmq {

// Hardware queue types (blk-mq's HCTX_TYPE_DEFAULT and HCTX_TYPE_POLL; HCTX_TYPE_READ stays
// unused, as null_blk leaves it empty). Each type has its own CPU map and software queues.
enum HctxType : u32 { kHctxDefault = 0, kHctxPoll = 1, kHctxTypes = 2 };

// Buckets of the unplug batch size histogram: 1, 2-3, 4-7, 8-15, 16-31, 32 requests.
constexpr u32 kUnplugBuckets = 6;

// A software staging queue: one per possible CPU and hardware queue type (blk-mq's ctx keeps a
// list per type: ctx->rq_lists[type]). Requests that cannot go straight to the hardware wait
// here, in submission order.
struct alignas(kCacheLine) SwQueue {
	SpinLock lock;
	List rq_list; // under lock
	u32 cpu = 0;
	u32 type = kHctxDefault;
	u32 hctx_idx = 0;
	u32 nr_pending = 0; // on rq_list, under lock
	Request *last_merge = nullptr; // under lock: the one-hit merge cache (q->last_merge)
	// Statistics (mq/<n>/cpu<M>/): [0] reads, [1] writes (requests made here: everything
	// that is not a write counts as a read).
	u64 dispatched[2] = {};
	u64 completed[2] = {};
	u64 merged = 0;       // bios merged into requests staged here
	u64 sched_merged = 0; // bios submitted here merged by the scheduler
	u64 plug_merged = 0;  // bios merged into plugged requests by submitters on this CPU
	u64 unplugs = 0;      // plug batches sent from this CPU
	u64 unplugged = 0;    // requests in those batches
	u64 unplug_sizes[kUnplugBuckets] = {}; // batches of 1, 2-3, 4-7, 8-15, 16-31, 32
};

// A task's plug for one queue (blk_plug's mq_list, per device): the requests it made while
// plugged, in order, sent as a batch when the task unplugs. Lives in storage the host hands
// out zeroed (cxmq_os_plug): all zero is an empty plug.
struct Plug {
	// blk-mq's bounds: BLK_MAX_REQUEST_COUNT requests, and a request of BLK_PLUG_FLUSH_SIZE
	// bytes or more sends the batch before the next joins it (blk_add_rq_to_plug). A plug
	// holds one device's requests: a request of another device joins that device's plug.
	enum : u32 {
		kMaxRequests = 32,
		kFlushSectors = (128 * 1024) >> 9,
	};
	u32 nr;
	Request *rqs[kMaxRequests];
};

// Number of buckets of the per-run dispatch histogram: 0, 1, 2, 4, ..., 2^(N-2)+.
constexpr u32 kDispatchBuckets = 10;
// How long a hardware queue whose backend was busy waits before it is run again, when no
// completion runs it first (blk-mq's BLK_MQ_RESOURCE_DELAY).
constexpr u32 kBusyRetryDelayUs = 3000;

struct alignas(kCacheLine) HwQueue {
	// State bits.
	enum : u32 {
		kRunning = 1u << 0, // a run is in progress
		kRerun = 1u << 1,   // another run was asked for during it
		kRestart = 1u << 2, // the backend was busy: run on next completion
		// Every CPU mapped here is offline or going: no new request (blk-mq's
		// BLK_MQ_S_INACTIVE; hotplug.cpp).
		kInactive = 1u << 3,
	};

	Queue *queue = nullptr;
	Backend *backend = nullptr;
	u32 index = 0;
	u32 type = kHctxDefault;      // HctxType
	int node = -1;
	u32 state = 0;                // atomic
	SpinLock lock;
	List dispatch;                // under lock: requests the backend refused, to go first
	u32 nr_dispatch = 0;          // under lock
	TagMap *tags = nullptr;       // the pool's: own_tags, or the shared map (shared, no scheduler)
	TagMap own_tags;
	char *rq_mem = nullptr;       // depth requests, rq_stride bytes each
	u32 rq_stride = 0;
	u32 *ctx_cpus = nullptr;      // CPUs whose software queues feed this hardware queue, in
	u32 nr_ctx = 0;               // order (room for every CPU: a remap never reallocates)
	cxmq_os_work *run_work = nullptr; // deferred runs
	void *driver_data = nullptr;  // the backend's
	void *sched_data = nullptr;   // the scheduler's
	u32 sched_inflight = 0;       // atomic: requests the scheduler gave out, not yet complete
	// A shared tag set's (tag_set.h): this index's tags, and this queue's part in them.
	SharedTags *shared = nullptr;
	ListNode shared_node;         // on shared->members
	u32 tag_active = 0;           // atomic: counts in shared->active_queues
	u32 nr_active = 0;            // atomic: shared tags held (blk-mq's nr_active)
	cxmq_os_waitq *fair_wq = nullptr; // submitters held back by this queue's fair share

	// Statistics (mq/<n>/).
	u64 queued = 0;               // requests that entered this hardware queue
	u64 run = 0;                  // runs
	u64 dispatched[kDispatchBuckets] = {};
	u64 busy_events = 0;          // times the backend answered busy
	u64 direct_issued = 0;        // requests issued without touching a software queue
	u64 timeouts = 0;             // requests ended by a timeout
	u64 offline_drains = 0;       // times its last online CPU went, and it was drained
	u64 offline_drained = 0;      // requests it held then, waited for
	// mq/<n>/io_poll (poll queues): polls asked for, backend polls made, polls that found
	// completions.
	u64 poll_considered = 0;
	u64 poll_invoked = 0;
	u64 poll_success = 0;

	Request *rq(u32 tag) { return reinterpret_cast<Request *>(rq_mem + size_t(tag) * rq_stride); }
	// The request pool: hw_queue_depth without a scheduler (or less: nr_requests), else the
	// scheduler's nr_requests.
	u32 depth() const { return tags->depth(); }
	// Requests of this queue that hold a tag (blk-mq's __blk_mq_active_requests): of a shared
	// map without a scheduler, the ones this queue holds; else its pool's.
	u32 active() const;
};

// A queue's link in its tag set's members.
struct TagSetMember {
	ListNode node;
	Queue *queue = nullptr;
};

// One device's queue.
class Queue {
public:
	Queue() = default;
	Queue(const Queue &) = delete;
	Queue &operator=(const Queue &) = delete;
	~Queue();

	// Builds the queue for a checked configuration, with `backend` behind it (the queue takes
	// ownership, and releases it even on failure). Returns nullptr and sets *err on failure.
	// With a set, the queue joins it (tag_set.h) and shares its tags.
	static Queue *create(const cxmq_dev_config &cfg, Backend *backend, int *err,
			     TagSet *set = nullptr);

	void set_live();
	// Changes the number of default hardware queues to `want` (capped to 1..possible CPUs)
	// and of poll queues to `want_poll` (0..possible CPUs), and remaps the CPUs. The caller
	// has frozen the queue and keeps readers of the map out. When memory runs short the queue
	// keeps as many queues of each type as it could allocate (at least the ones it had).
	// Returns the number of default queues in use (nr_poll_queues(): the poll ones).
	u32 update_nr_hw_queues(u32 want, u32 want_poll = 0);
	// CPU hotplug (hotplug.cpp): `cpu` is going offline (it still runs, and so do the
	// interrupts of its queues): a hardware queue it is the last online CPU of takes no new
	// request, and this sleeps until every request it holds completed. The caller keeps
	// update_nr_hw_queues and the scheduler switch out.
	void cpu_offline(u32 cpu);
	// `cpu` is online: its hardware queues take requests again.
	void cpu_online(u32 cpu);
	// Reaps the completions of the poll queue named by `cookie` (cxmq_queue_poll).
	int poll(u32 cookie, bool oneshot);
	// Refuses new IO and waits for IO in flight; the queue is then only fit for destroy().
	void shutdown();
	void submit_bio(void *bio, cxmq_op op, u64 sector, u32 nr_sectors, u32 flags,
			u64 cookie = 0);
	void submit(const Bio &b);
	// The limits merging respects: the host's, read now (the user may change them), or the
	// configuration's until a host is set.
	void set_host(void *host) { host_ = host; }
	void *host() const { return host_; }
	void limits(cxmq_limits *lim) const;
	static void default_limits(const cxmq_dev_config &cfg, cxmq_limits *lim);
	// Completes a request the backend owns: ends its bios, frees its tag (if a timeout ended
	// its bios already: only frees it).
	void end_request(Request &rq, cxmq_status status);
	// The same from an interrupt, honouring rq_affinity (complete.cpp): on the submitting CPU,
	// moved there by an IPI, when queue/rq_affinity asks. Takes rq.llnode and backend_status.
	void complete_irq(Request &rq, cxmq_status status);
	// Completions complete_irq did where it ran, and moved to the submitter.
	void irq_completions(u64 *local, u64 *moved) const;
	// io_timeout (milliseconds): for requests started from now on.
	u32 io_timeout() const { return load_relaxed(io_timeout_ms_); }
	int set_io_timeout(const char *text);
	// The timeout work is due, if nothing has it scheduled (it also finds idle sharers).
	void arm_timeout();
	// Runs a hardware queue now, in the caller's context.
	void run_hw_queue(HwQueue &hctx);
	// Runs a hardware queue from a worker, after delay_us.
	void run_hw_queue_async(HwQueue &hctx, u32 delay_us);

	// The IO scheduler (elevator.h), nullptr for none. Switching and nr_requests: the caller has
	// frozen the queue and keeps readers of the hardware queues out (as for
	// update_nr_hw_queues). They rebuild every hardware queue's request pool; on failure
	// (-CXMQ_ENOMEM, or -CXMQ_EINVAL for a depth out of range, logged) nothing changed.
	int set_elevator(const ElevatorType *type);
	int set_nr_requests(u32 nr);
	Elevator *elevator() const { return elv_; }
	const ElevatorType *elevator_type() const { return elv_type_; }
	u32 nr_requests() const { return load_relaxed(nr_requests_); }
	// The bounds of nr_requests now: BLKDEV_MIN_RQ .. hw_queue_depth without a scheduler,
	// MAX_SCHED_RQ with one.
	u32 max_nr_requests() const;

	void freeze();
	void unfreeze();
	bool frozen() const { return load_relaxed(freeze_depth_) > 0; }
	bool dying() const { return load_acquire(dying_); }

	// Every hardware queue: the default ones, then the poll ones (blk-mq's queue_offset).
	u32 nr_hw_queues() const { return nr_hw_queues_; }
	u32 nr_poll_queues() const { return nr_poll_; }
	u32 nr_default_queues() const { return nr_hw_queues_ - nr_poll_; }
	HwQueue &hctx(u32 i) { return *hctxs_[i]; }
	HwQueue &hctx_for_cpu(u32 cpu, u32 type = kHctxDefault)
	{
		return *hctxs_[cpu_map_[type * nr_cpu_ids_ + cpu]];
	}
	SwQueue &ctx(u32 cpu, u32 type = kHctxDefault) { return ctxs_[type * nr_cpu_ids_ + cpu]; }
	// The software queue a request was made on.
	SwQueue &rq_ctx(const Request &rq) { return ctx(rq.ctx_cpu, rq.hctx->type); }
	// Where a bio goes: a polled one to the poll queues, while there are any (blk-mq's
	// blk_mq_get_hctx_type; the host clears REQ_POLLED once there are none, a bio already past
	// that check goes to the default queues and completes as they do).
	u32 bio_type(const Bio &b) const
	{
		return (b.flags & CXMQ_BIO_POLLED) && nr_poll_ ? kHctxPoll : kHctxDefault;
	}
	u32 nr_cpus() const { return nr_cpu_ids_; }
	u32 map_cpu(u32 cpu, u32 type = kHctxDefault) const { return cpu_map_[type * nr_cpu_ids_ + cpu]; }
	const cxmq_dev_config &config() const { return cfg_; }
	Backend &backend() { return *backend_; }
	TagSet *tag_set() const { return set_; }
	TagSetMember set_member_;     // the set's (TagSet::join)

private:
	int init(const cxmq_dev_config &cfg);
	void rebind_shared();
	void put_tag(HwQueue &h, u32 tag, u32 cpu);
	HwQueue *alloc_hctx(u32 index, u32 type, u32 depth, Elevator *elv);
	u32 resize_type(u32 old_nr, u32 want, u32 type);
	void free_hctx(HwQueue *h);
	void release_hctx(HwQueue *h, Elevator *elv);
	int rebuild_hctxs(u32 depth, Elevator *elv);
	void map_queues();
	void map_type(u32 *map, u32 offset, u32 nr);
	void assign_ctxs();
	bool enter(bool nowait, bool *dying);
	void exit() { cxmq_os_usage_put(usage_); }
	void submit_rq(const Bio &b, u32 cpu, bool nowait);
	void submit_sched(HwQueue &h, u32 cpu, const Bio &b, bool nowait);
	void insert_sched(HwQueue &h, Request &rq);
	Request *get_request(HwQueue &h, u32 cpu, const Bio &b, bool nowait);
	s32 get_tag(HwQueue &h, u32 cpu, const Bio &b, bool nowait);
	bool ctx_merge(SwQueue &c, const Bio &b);
	void issue(HwQueue &hctx, Request &rq);
	bool claim_idle(HwQueue &hctx, u32 cpu);
	void release_idle(HwQueue &hctx);
	bool issue_direct(HwQueue &hctx, Request &rq);
	void insert_to_ctx(SwQueue &ctx, Request &rq);
	// plug.cpp
	Plug *current_plug();
	bool plug_bio(const Bio &b, u32 cpu, bool nowait);
	bool plug_merge(Plug &p, const Bio &b, const cxmq_limits &lim);
	void flush_plug(Plug &p, bool from_schedule);
	bool issue_plug_direct(Plug &p);
	void flush_plug_sched(Plug &p, bool from_schedule);
	static void unplug_fn(void *storage, int from_schedule);
	// timeout.cpp
	void start_request(Request &rq);
	bool unstart_request(Request &rq);
	void returned_after_timeout(Request &rq);
	void timeout_scan();
	void expire(HwQueue &hctx, Request &rq, u64 w, u32 now, bool *pending);
	static void timeout_work_fn(void *arg);
	void end_timed_out(Request &rq);
	// complete.cpp
	int init_remote();
	void free_remote();
	bool complete_remote(Request &rq, u32 cpu);
	static void remote_fn(void *arg, u32 cpu);
	void complete_request(Request &rq, cxmq_status status);
	void free_request(Request &rq);
	void restart_after_free(HwQueue &hctx);
	bool dispatch_once(HwQueue &hctx);
	bool dispatch_sched(HwQueue &hctx, u32 *n);
	void finish_sched(HwQueue &hctx, Request &rq);
	u32 get_driver_tag(HwQueue &hctx);
	bool bypass_driver_tag(HwQueue &hctx, Request &rq);
	void park_list(HwQueue &hctx, List &list);
	bool send_list(HwQueue &hctx, List &list, u32 *n);
	void account_dispatch_run(HwQueue &hctx, u32 n);
	static void usage_zero(void *arg);
	static void run_work_fn(void *arg);

	cxmq_dev_config cfg_{};
	Backend *backend_ = nullptr;
	Elevator *elv_ = nullptr;
	const ElevatorType *elv_type_ = nullptr;
	u32 nr_requests_ = 0;         // every hardware queue's pool depth
	void *host_ = nullptr;        // for cxmq_os_queue_limits
	u32 nr_cpu_ids_ = 0;
	u32 nr_hw_queues_ = 0;        // of every type
	u32 nr_poll_ = 0;             // the last nr_poll_ of them are poll queues
	u32 max_hw_queues_ = 0;       // of one type: possible CPUs (hctxs_ has room for each type)
	HwQueue **hctxs_ = nullptr;
	SwQueue *ctxs_ = nullptr;     // [type * nr_cpu_ids_ + cpu]
	u32 *cpu_map_ = nullptr;      // [type * nr_cpu_ids_ + cpu]: a hardware queue index
	cxmq_os_usage *usage_ = nullptr;
	cxmq_os_waitq *freeze_wq_ = nullptr;
	Mutex freeze_lock_;
	s32 freeze_depth_ = 0;
	bool dying_ = false;
	bool zero_done_ = false;     // usage_zero ran to its end since the last resurrect
	u32 enter_sleepers_ = 0;     // submitters in enter()'s slow path
	u32 nr_ctxs_constructed_ = 0;
	u32 io_timeout_ms_ = 30000;   // io_timeout
	u32 timeout_units_ = 0;       // the same in deadline units (timeout.h)
	u32 timeout_armed_ = 0;       // the timeout work is scheduled, or will look again
	cxmq_os_work *timeout_work_ = nullptr;
	// complete.cpp: per CPU, completions moved there and the counts of complete_irq
	struct alignas(kCacheLine) RemoteDone {
		LList list;
		u64 local = 0;  // completed where complete_irq ran
		u64 moved = 0;  // sent from here to the submitting CPU
	};
	RemoteDone *remote_ = nullptr;
	cxmq_os_ipi *ipi_ = nullptr;
	TagSet *set_ = nullptr;       // shared tags: the set joined
	bool joined_ = false;
};

} // namespace cxmq
