// SPDX-License-Identifier: GPL-2.0
// IO schedulers (the kernel's elevators, block/elevator.h's elevator_mq_ops): the interface
// every scheduler implements, and the list of those there are. With a scheduler attached to a
// queue, its requests go through it: a new request is inserted into the scheduler (no direct
// issue, no software-queue merge: the scheduler does its own), and a hardware queue's run asks
// the scheduler for requests while the backend takes them and fewer than hw_queue_depth are
// out (the driver's depth); the request pool of each hardware queue is nr_requests deep. `none`
// is no scheduler at all: the path of queue.cpp, unchanged.
//
// Calls come without any of the queue's locks held; a scheduler guards its own state.
#pragma once

#include "merge.h"

namespace cxmq {

class Queue;
struct HwQueue;
struct TextOut;

// A tunable, as iosched/<name> shows it: the kernel's name; show/store by index.
struct ElvAttr {
	const char *name;
};

class Elevator {
public:
	// Each hardware queue as it is set up and before it is freed (they come and go with the
	// queue count and with nr_requests); nothing is queued in it at exit.
	virtual int init_hctx(HwQueue &h) = 0;
	virtual void exit_hctx(HwQueue &h) = 0;
	// The depth a new request of this kind may use of its hardware queue's pool, as a number
	// of tags per bitmap word (limit_depth); 0: all of it.
	virtual u32 shallow_depth(HwQueue &h, const Bio &b) = 0;
	// A bio the queue may merge (bio_mergeable, nomerges < 2) into a request the scheduler
	// holds for hardware queue h (bio_merge). True: merged, and accounted (cxmq_os_bio_merged)
	// before the lock that keeps the request from being dispatched is dropped: once it is, the
	// request may complete and the bio end at any moment.
	virtual bool bio_merge(HwQueue &h, const Bio &b, const cxmq_limits &lim) = 0;
	// A new request, before it is inserted (prepare_request).
	virtual void prepare_request(Request &rq) = 0;
	// Requests of hardware queue h, in submission order (insert_requests).
	virtual void insert_requests(HwQueue &h, Request **rqs, u32 n) = 0;
	// The next request to send to the backend, or nullptr (dispatch_request).
	virtual Request *dispatch_request(HwQueue &h) = 0;
	virtual bool has_work(HwQueue &h) = 0;
	// A request the scheduler gave out completed (completed_request, then finish_request).
	virtual void completed_request(Request &rq, u64 now_ns) = 0;
	virtual void finish_request(Request &rq) = 0;
	// nr_requests changed: the new pool depth of every hardware queue (depth_updated).
	virtual void depth_updated(u32 nr_requests) = 0;

	// iosched/: the tunables (ElevatorType::attrs, by index), each shown as the kernel formats
	// it, stored from user text (NUL-terminated). show: the length written. store: 0, or
	// -CXMQ_EINVAL with a message naming the tunable (nothing changed).
	virtual int show(u32 attr, char *buf, size_t size) const = 0;
	virtual int store(u32 attr, const char *buf) = 0;

	// Its state for the stats file's `sched:` line (appended, " name=value" each).
	virtual void show_stats(TextOut &) const {}

	// Frees the scheduler (every hardware queue exited first).
	virtual void release() = 0;

protected:
	Elevator() = default;
	~Elevator() = default;
};

struct ElevatorType {
	const char *name;
	const char *alias; // another name it answers to (the kernel's elevator_alias), or nullptr
	Elevator *(*create)(Queue &q, int *err);
	const ElvAttr *attrs; // iosched/
	u32 nr_attrs;
	bool wants_latency; // completed_request needs the time (else it is given 0)
};

// The schedulers there are, in the order `scheduler` lists them after none.
extern const ElevatorType *const kElevatorTypes[];
extern const u32 kNrElevatorTypes;
// By name (user text: a trailing newline is ignored). Returns false for an unknown name;
// *type is nullptr for none.
bool elevator_lookup(const char *name, size_t len, const ElevatorType **type);
// Its place in kElevatorTypes; -1 for none (nullptr).
int elevator_index(const ElevatorType *type);

// A scheduler's per-hardware-queue state T (with a SpinLock `lock`), made on the hardware
// queue's node and hung on *slot (its sched_data). 0, or -CXMQ_ENOMEM and nothing made.
template <class T> int elv_make_hctx_data(int node, void **slot)
{
	T *d = make<T>(node);
	if (!d)
		return -CXMQ_ENOMEM;
	if (!d->lock.init(node)) {
		destroy(d);
		return -CXMQ_ENOMEM;
	}
	*slot = d;
	return 0;
}

// "none, mq-deadline, kyber": the names `scheduler` takes, for messages.
void elevator_names(char *buf, size_t size);

// Parses an int tunable from user text (kstrtoint base 0, one trailing newline allowed;
// NUL-terminated) within [lo, hi]; on anything else logs "cxmq: <sched>: <name>=<text> is
// invalid: must be lo..hi" and returns -CXMQ_EINVAL.
int elv_parse_int(const char *sched, const char *name, const char *buf, s32 lo, s32 hi, s32 *out);
// Parses a u64 tunable as kstrtoull base 10 does (an optional '+', digits, one trailing newline
// allowed); on anything else logs "cxmq: <sched>: <name>=<text> is invalid: must be <what>" and
// returns -CXMQ_EINVAL.
int elv_parse_u64(const char *sched, const char *name, const char *buf, const char *what,
		  u64 *out);

} // namespace cxmq
