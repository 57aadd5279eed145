/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The services the cxmq core (C++) takes from its host: the kernel (src/shim/os_linux.c) or user
 * space (tests/host/os_user.cpp). Plain C types and opaque handles only: this header is included
 * by C++ code that never sees a kernel header, and by C code that does.
 */
#ifndef CXMQ_OS_H
#define CXMQ_OS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef __UINT8_TYPE__ cxmq_u8;
typedef __UINT16_TYPE__ cxmq_u16;
typedef __UINT32_TYPE__ cxmq_u32;
typedef __UINT64_TYPE__ cxmq_u64;
typedef __INT32_TYPE__ cxmq_s32;
typedef __INT64_TYPE__ cxmq_s64;
typedef __SIZE_TYPE__ cxmq_size_t;

/*
 * On the path every bio takes (submission, direct issue, the null backend, completion), in the
 * core and in the shim: one section, so those functions sit together on two pages of the
 * module's text instead of one or more pages per object file (measured under QEMU TCG, whose
 * cost per IO grows with the code pages it touches: README, Benchmark).
 */
#define CXMQ_HOT __attribute__((__section__(".text.cxmq_hot")))

/* Status of a request, as the core and backends see it; mapped to blk_status_t by the shim. */
enum cxmq_status {
	CXMQ_STS_OK = 0,
	CXMQ_STS_IOERR = 1,     /* BLK_STS_IOERR */
	CXMQ_STS_AGAIN = 2,     /* BLK_STS_AGAIN: REQ_NOWAIT and no resource now */
	CXMQ_STS_NOTSUPP = 3,   /* BLK_STS_NOTSUPP */
	CXMQ_STS_RESOURCE = 4,  /* BLK_STS_RESOURCE: backend busy (never reaches a bio) */
	CXMQ_STS_NOSPC = 5,     /* BLK_STS_NOSPC */
	CXMQ_STS_TIMEOUT = 6,   /* BLK_STS_TIMEOUT: the request timed out (an IO error to the caller) */
};

/* Operations, as the core sees a bio. */
enum cxmq_op {
	CXMQ_OP_READ = 0,
	CXMQ_OP_WRITE = 1,
	CXMQ_OP_FLUSH = 2,
	CXMQ_OP_DISCARD = 3,
	CXMQ_OP_WRITE_ZEROES = 4,
	CXMQ_OP_GET_ID = 5,     /* the virtio backend's device id (serial): a read of a kernel buffer */
};

/* Bio flags the core cares about. */
enum cxmq_bio_flags {
	CXMQ_BIO_NOWAIT = 1u << 0,  /* REQ_NOWAIT: never sleep, fail with CXMQ_STS_AGAIN */
	CXMQ_BIO_FUA = 1u << 1,
	CXMQ_BIO_PREFLUSH = 1u << 2,
	CXMQ_BIO_POLLED = 1u << 3,
	CXMQ_BIO_NOMERGE = 1u << 4, /* REQ_NOMERGE: never merged with another bio */
	CXMQ_BIO_SYNC = 1u << 5,    /* REQ_SYNC: someone waits for it (op_is_sync: kyber) */
	CXMQ_BIO_NOUNMAP = 1u << 6, /* REQ_NOUNMAP: a write-zeroes that must keep the blocks allocated */
};

/* ---- errors: negative errno values, as the kernel has them ---- */
#define CXMQ_ENOMEM 12
#define CXMQ_EBUSY 16
#define CXMQ_ENODEV 19
#define CXMQ_EINVAL 22
#define CXMQ_EAGAIN 11
#define CXMQ_EIO 5
#define CXMQ_E2BIG 7
#define CXMQ_ENOSPC 28

/* ---- logging and fatal errors ---- */
enum cxmq_log_level { CXMQ_LOG_ERR = 3, CXMQ_LOG_WARN = 4, CXMQ_LOG_INFO = 6, CXMQ_LOG_DEBUG = 7 };
void cxmq_os_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Formats into buf like snprintf (the kernel's format rules); returns the length written. */
int cxmq_os_snprintf(char *buf, cxmq_size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Reports a broken invariant with its place; the caller then stops (the core traps inline). */
void cxmq_os_bug_report(const char *file, int line, const char *what);
/* Reports a broken invariant and goes on: WARN() in the kernel. */
void cxmq_os_warn(const char *file, int line, const char *what);

/* ---- memory ---- */
/* Zeroed memory on NUMA node `node` (-1: any), aligned to at least 64 bytes (a cache line).
 * May sleep. NULL when out of memory. */
void *cxmq_os_zalloc(cxmq_size_t size, int node);
/* Zeroed memory, never sleeps (GFP_NOWAIT); aligned as cxmq_os_zalloc. */
void *cxmq_os_zalloc_nowait(cxmq_size_t size, int node);
void cxmq_os_free(const void *p);
/* Sleeps for about ms milliseconds (process context). */
void cxmq_os_msleep(cxmq_u32 ms);
/* Monotonic time in nanoseconds (ktime_get_ns): kyber's latencies. */
cxmq_u64 cxmq_os_now_ns(void);
/* The same clock as of the last tick (ktime_get_coarse_ns): no clocksource read, jiffy
 * resolution, for deadlines the kernel keeps in jiffies (mq-deadline's). */
cxmq_u64 cxmq_os_now_coarse_ns(void);
/* A random number below n (n >= 1; prandom_u32_max): fault injection's probability. */
cxmq_u32 cxmq_os_random_below(cxmq_u32 n);

/* ---- CPUs ---- */
cxmq_u32 cxmq_os_nr_cpu_ids(void);          /* one past the highest possible CPU number */
cxmq_u32 cxmq_os_this_cpu(void);            /* the CPU this runs on now (may change at once) */
int cxmq_os_cpu_possible(cxmq_u32 cpu);
int cxmq_os_cpu_online(cxmq_u32 cpu);
int cxmq_os_cpu_present(cxmq_u32 cpu);
int cxmq_os_cpu_to_node(cxmq_u32 cpu);
cxmq_u32 cxmq_os_cpu_first_sibling(cxmq_u32 cpu); /* lowest-numbered SMT sibling of cpu */

/* CPUs a and b share a last-level cache (cpus_share_cache): rq_affinity 1 completes locally. */
int cxmq_os_cpus_share_cache(cxmq_u32 a, cxmq_u32 b);

/* ---- completions moved to another CPU (rq_affinity: smp_call_function_single_async) ---- */
struct cxmq_os_ipi;
/* fn(arg, cpu) runs in hard IRQ context on `cpu` after cxmq_os_ipi_send(ipi, cpu); a send while
 * one for that CPU is pending may be merged with it (fn then runs once for both). */
struct cxmq_os_ipi *cxmq_os_ipi_create(void (*fn)(void *arg, cxmq_u32 cpu), void *arg);
void cxmq_os_ipi_destroy(struct cxmq_os_ipi *ipi); /* waits for callbacks sent or running */
void cxmq_os_ipi_send(struct cxmq_os_ipi *ipi, cxmq_u32 cpu);

/* ---- NUMA nodes ---- */
cxmq_u32 cxmq_os_nr_node_ids(void);         /* one past the highest possible node number */
int cxmq_os_node_online(int node);          /* 0 for any number that is not an online node */

/* ---- spinlocks (IRQ-safe) ---- */
struct cxmq_os_lock;
struct cxmq_os_lock *cxmq_os_lock_create(int node);
void cxmq_os_lock_destroy(struct cxmq_os_lock *lock);
unsigned long cxmq_os_lock_irqsave(struct cxmq_os_lock *lock);
void cxmq_os_unlock_irqrestore(struct cxmq_os_lock *lock, unsigned long flags);

/* ---- sleeping mutexes (control plane) ---- */
struct cxmq_os_mutex;
struct cxmq_os_mutex *cxmq_os_mutex_create(void);
void cxmq_os_mutex_destroy(struct cxmq_os_mutex *m);
void cxmq_os_mutex_lock(struct cxmq_os_mutex *m);
void cxmq_os_mutex_unlock(struct cxmq_os_mutex *m);

/* ---- wait queues ---- */
struct cxmq_os_waitq;
struct cxmq_os_waitq *cxmq_os_waitq_create(int node);
void cxmq_os_waitq_destroy(struct cxmq_os_waitq *wq);
/* Sleeps (uninterruptibly, as an exclusive FIFO waiter) until try_fn(arg) returns non-zero;
 * try_fn is called after the waiter is queued, so a wake-up between a failed try and the
 * sleep is never lost. */
void cxmq_os_wait_exclusive(struct cxmq_os_waitq *wq, int (*try_fn)(void *arg), void *arg);
/* Sleeps until cond_fn(arg) returns non-zero (every waiter is woken by wake_all). */
void cxmq_os_wait_event(struct cxmq_os_waitq *wq, int (*cond_fn)(void *arg), void *arg);
void cxmq_os_wake_one(struct cxmq_os_waitq *wq);
void cxmq_os_wake_all(struct cxmq_os_waitq *wq);
int cxmq_os_waitq_active(struct cxmq_os_waitq *wq); /* with a full barrier before the check */

/* Fault injection point of the null backend's hardware queue setup (null_blk's init_hctx):
 * non-zero means fail it. Only kernels with CONFIG_FAULT_INJECTION ever fail; there it is set up
 * in /sys/kernel/debug/cxmq/fail_init_hctx/ (probability, interval, times, ...). */
int cxmq_os_should_fail_init_hctx(void);

/* ---- queue usage counter (percpu_ref in the kernel) ---- */
struct cxmq_os_usage;
/* Starts in atomic mode (cheap to kill while unregistered); switched to per-CPU when live. */
struct cxmq_os_usage *cxmq_os_usage_create(void (*on_zero)(void *arg), void *arg);
void cxmq_os_usage_destroy(struct cxmq_os_usage *u);
int cxmq_os_usage_tryget_live(struct cxmq_os_usage *u);
/* A reference unless the count is zero, live or not (percpu_ref_tryget): a poller's, which must
 * not wait for a freeze that waits for the requests it reaps. */
int cxmq_os_usage_tryget(struct cxmq_os_usage *u);
/* Another reference, taken by a holder of one (dead or not): never fails. */
void cxmq_os_usage_get(struct cxmq_os_usage *u);
void cxmq_os_usage_put(struct cxmq_os_usage *u);
void cxmq_os_usage_kill(struct cxmq_os_usage *u);      /* no new live gets; on_zero at zero */
int cxmq_os_usage_is_zero(struct cxmq_os_usage *u);
void cxmq_os_usage_resurrect(struct cxmq_os_usage *u); /* live again after kill reached zero */
void cxmq_os_usage_switch_to_percpu(struct cxmq_os_usage *u);

/* ---- deferred work (delayed hardware queue runs) ---- */
struct cxmq_os_work;
struct cxmq_os_work *cxmq_os_work_create(void (*fn)(void *arg), void *arg, int node);
/* A work for housekeeping no caller waits for (the timeout scan): an ordinary work in the kernel;
 * the host tests' controls of works (manual mode, pending and idle counts) leave it out. */
struct cxmq_os_work *cxmq_os_work_create_background(void (*fn)(void *arg), void *arg, int node);
void cxmq_os_work_destroy(struct cxmq_os_work *w);     /* cancels and waits first */
void cxmq_os_work_schedule(struct cxmq_os_work *w, cxmq_u32 delay_us, cxmq_u32 cpu);
void cxmq_os_work_cancel_sync(struct cxmq_os_work *w);

/* ---- deferred completions in softirq context (null backend irqmode 1) ---- */
struct cxmq_os_softirq;
/* nr contexts; fn(arg, i) runs in softirq context after cxmq_os_softirq_raise(s, i), on the
 * CPU that raised it. A raise while fn(arg, i) runs makes it run again. */
struct cxmq_os_softirq *cxmq_os_softirq_create(cxmq_u32 nr, void (*fn)(void *arg, cxmq_u32 i),
					       void *arg);
void cxmq_os_softirq_destroy(struct cxmq_os_softirq *s); /* waits for running callbacks */
void cxmq_os_softirq_raise(struct cxmq_os_softirq *s, cxmq_u32 i);

/* ---- high-resolution one-shot timers (null backend irqmode 2); fn runs in hard IRQ context */
struct cxmq_os_timer;
struct cxmq_os_timer *cxmq_os_timer_create(void (*fn)(void *arg), void *arg, int node);
void cxmq_os_timer_destroy(struct cxmq_os_timer *t); /* cancels, waits for a running fn */
void cxmq_os_timer_start(struct cxmq_os_timer *t, cxmq_u64 nsec);

/* ---- pages (memory-backed storage) ---- */
#define CXMQ_PAGE_SIZE 4096u
/* A zeroed page (CXMQ_PAGE_SIZE bytes, page-aligned, directly addressable). may_sleep: 0 for
 * GFP_NOWAIT, 1 for GFP_NOIO (never recurses into IO). NULL when out of memory. */
void *cxmq_os_page_alloc(int may_sleep, int node);
void cxmq_os_page_free(void *page);
/* Zeroed memory for the IO path: GFP_NOIO when may_sleep, else GFP_NOWAIT; cache-line aligned. */
void *cxmq_os_zalloc_io(cxmq_size_t size, int may_sleep, int node);

/* ---- bios ---- */
/* Ends the bio with a status; cookie is what the host passed with it to
 * cxmq_queue_submit_bio() (IO accounting). */
void cxmq_os_bio_end(void *bio, enum cxmq_status status, cxmq_u64 cookie);
/* Ends a bio that never became part of a request (no request under NOWAIT, the queue frozen
 * under NOWAIT or dying): as blk-mq, which accounts a bio once it is in a request, it leaves no
 * trace in the IO statistics (what the host counted when it started it is taken back). */
void cxmq_os_bio_fail(void *bio, enum cxmq_status status, cxmq_u64 cookie);
/* The Linux shim's cookies: this bit set, the rest bio_start_io_acct()'s start time. */
#define CXMQ_ACCT_COOKIE (1ull << 63)
/* Calls fn for each piece of the bio's data in order: `off` is the byte offset from the bio's
 * start, data/len a directly addressable piece (never crossing a page of the bio). to_bio: fn
 * writes into the bio (a read). Stops at and returns the first non-zero fn result. */
int cxmq_os_bio_for_each_piece(void *bio, int to_bio,
			       int (*fn)(void *ctx, cxmq_u64 off, void *data, cxmq_u32 len),
			       void *ctx);

/* A bio's place in a request: requests chain their bios through the bio itself (bi_next), as
 * blk-mq's rq->bio ... rq->biotail. The range is the bio's own (bi_iter). */
void *cxmq_os_bio_next(void *bio);
void cxmq_os_bio_set_next(void *bio, void *next);
cxmq_u64 cxmq_os_bio_sector(void *bio);
cxmq_u32 cxmq_os_bio_sectors(void *bio);
/* Physical segments of a bio, as a request counts them against queue/max_segments (1 for a bio
 * without data). The core asks only for a bio it tries to merge (cxmq_bio.nr_segs 0). */
cxmq_u32 cxmq_os_bio_nr_segs(void *bio);
/* A bio submitted with `cookie` was merged into a request made for a bio submitted with
 * rq_cookie: it counts in /proc/diskstats' merge columns when accounted (CXMQ_ACCT_COOKIE), and
 * it will end with rq_cookie: the time it spends is counted from its request's start, which
 * is never later than its own (in jiffies, almost always the same). */
void cxmq_os_bio_merged(void *bio, cxmq_u64 cookie, cxmq_u64 rq_cookie);
/* A polled bio (CXMQ_BIO_POLLED) is in a request of poll queue `hctx`: the bio's poll cookie
 * (bi_cookie), handed to cxmq_queue_poll when the submitter polls. Written before the request
 * can complete. */
void cxmq_os_bio_set_poll_queue(void *bio, cxmq_u32 hctx);

/* ---- polling ---- */
/* Between two empty polls of a poller that is not oneshot (blk_mq_poll's loop): */
enum cxmq_poll_next {
	CXMQ_POLL_AGAIN, /* poll again (after cpu_relax) */
	CXMQ_POLL_STOP,  /* stop: the CPU is wanted elsewhere (need_resched) */
	CXMQ_POLL_WOKEN, /* stop: the task was woken (or a signal is pending for it) */
};
enum cxmq_poll_next cxmq_os_poll_next(void);

/* ---- the disk's queue limits, as the kernel's queue/ files show them now ---- */
struct cxmq_limits {
	cxmq_u32 max_sectors;          /* queue/max_sectors_kb * 2 */
	cxmq_u32 max_segments;         /* queue/max_segments */
	cxmq_u32 max_discard_sectors;  /* queue/discard_max_bytes / 512 */
	cxmq_u32 max_discard_segments; /* queue/max_discard_segments */
	cxmq_u32 max_write_zeroes_sectors;
	cxmq_u32 nomerges;             /* queue/nomerges: 0 all, 1 the one-hit cache only, 2 none */
	cxmq_u32 rq_affinity;          /* (the host tests' handle: what cxmq_os_queue_rq_affinity says) */
};
/* Reads the limits of `host` (the handle given to cxmq_queue_set_host) at this moment: the user
 * may change them while IO runs. */
void cxmq_os_queue_limits(void *host, struct cxmq_limits *lim);
/* queue/rq_affinity of `host` now: 0 complete where the interrupt lands, 1 on the submitting
 * CPU unless the two share a cache (QUEUE_FLAG_SAME_COMP), 2 always there (SAME_FORCE). */
int cxmq_os_queue_rq_affinity(void *host);

/* ---- plugging (the submitting task's blk_plug) ---- */
/* The current task's plug storage for `owner`: `size` bytes, zeroed when new, or NULL when the
 * task holds no plug (or the storage cannot be allocated without sleeping). When the task
 * unplugs (blk_finish_plug, or it is about to sleep: from_schedule, then unplug must not
 * block), unplug(storage, from_schedule) runs once, then the storage is freed. A sleep can
 * unplug at any time: storage returned before a sleep must not be used after it. */
void *cxmq_os_plug(void *owner, cxmq_size_t size,
		   void (*unplug)(void *storage, int from_schedule));

/* ---- tracepoints (the kernel's TRACE_EVENT, tracefs events/cxmq/: src/shim/trace.c) ---- */
enum cxmq_trace_event {
	CXMQ_TRACE_INSERT,   /* a request went onto a software queue or into the scheduler */
	CXMQ_TRACE_MERGE,    /* a bio merged into a request: arg CXMQ_TRACE_MERGE_ARG(site, kind) */
	CXMQ_TRACE_ISSUE,    /* handed to the backend (its queue_rq) */
	CXMQ_TRACE_REQUEUE,  /* the backend answered busy: back on the dispatch list */
	CXMQ_TRACE_COMPLETE, /* ended: arg its status (enum cxmq_status), ns since its issue */
	CXMQ_TRACE_PLUG,     /* the first request of a task's plug */
	CXMQ_TRACE_UNPLUG,   /* the plug flushed: arg its requests, ns 1 when from schedule */
	CXMQ_TRACE_RUN,      /* a hardware queue run: arg the requests it dispatched */
	CXMQ_TRACE_NR_EVENTS,
};
/* A merge: where the request was (the task's plug, a software queue, the scheduler) and how the
 * bio joined it (at its end, before its start, as another discard range). */
enum cxmq_trace_merge_site { CXMQ_TRACE_MERGE_PLUG, CXMQ_TRACE_MERGE_CTX, CXMQ_TRACE_MERGE_SCHED };
enum cxmq_trace_merge_kind { CXMQ_TRACE_MERGE_BACK, CXMQ_TRACE_MERGE_FRONT, CXMQ_TRACE_MERGE_DISCARD };
#define CXMQ_TRACE_MERGE_ARG(site, kind) (((site) << 4) | (kind))
/* Bit e set: event e is enabled (its tracepoint's register callback sets it, unregister clears
 * it), so a disabled event costs the core a load and a branch. The core reads it relaxed. */
extern cxmq_u32 cxmq_os_trace_mask;
/* What an event says of a request (RUN and UNPLUG: sector, nr_sectors, tag and op unused). */
struct cxmq_trace_rq {
	void *host;          /* the queue's host handle (cxmq_queue_set_host): the disk */
	cxmq_u64 sector;
	cxmq_u32 nr_sectors;
	cxmq_u32 tag;
	cxmq_u32 hctx;       /* hardware queue number */
	cxmq_u32 cpu;        /* the software queue's CPU (RUN: the CPU running it) */
	cxmq_u32 flags;      /* cxmq_bio_flags */
	cxmq_u16 op;         /* enum cxmq_op */
	cxmq_u16 nr_bios;
};
void cxmq_os_trace(enum cxmq_trace_event e, const struct cxmq_trace_rq *t, cxmq_u32 arg,
		   cxmq_u64 ns);

/* ---- virtqueues (the virtio backend; the caller serialises the calls on one virtqueue) ---- */
struct cxmq_os_vq;
/* One virtio-blk request as a virtqueue takes it: device-readable, the header then the data of
 * the bios head..tail (a write) or the payload (discard and write-zeroes ranges); then
 * device-writable, the data of the bios (a read, GET_ID), then the status byte. */
struct cxmq_vq_req {
	const void *hdr;
	cxmq_u32 hdr_len;
	int data_in;               /* the bios' data is written by the device */
	void *bio_head, *bio_tail; /* NULL: no bio data */
	const void *payload;       /* NULL: none */
	cxmq_u32 payload_len;
	void *status;              /* one byte */
};
/* Bytes of scatter-gather storage for nents entries. */
cxmq_size_t cxmq_os_vq_sg_size(cxmq_u32 nents);
/* Puts r on vq, `token` handed back by cxmq_os_vq_get_buf when the device is done with it.
 * sg: storage for nents entries; the bios' data takes one entry per piece of at most the
 * disk's max_segment_size of each of their multi-page bvecs (as cxmq_os_bio_nr_segs counts),
 * plus 3 entries. 0; -CXMQ_E2BIG with *need set when nents is too few (nothing added);
 * -CXMQ_ENOSPC the ring is full; -CXMQ_ENOMEM; -CXMQ_EIO the virtqueue is broken. */
int cxmq_os_vq_add(struct cxmq_os_vq *vq, const struct cxmq_vq_req *r, void *sg, cxmq_u32 nents,
		   cxmq_u32 *need, void *token);
/* A token the device is done with, or NULL. */
void *cxmq_os_vq_get_buf(struct cxmq_os_vq *vq);
/* The doorbell: prepare under the caller's serialisation (non-zero: notify), notify outside it. */
int cxmq_os_vq_kick_prepare(struct cxmq_os_vq *vq);
void cxmq_os_vq_notify(struct cxmq_os_vq *vq);
/* Interrupts of vq off; on again: 0 when buffers were used meanwhile (get them, then again). */
void cxmq_os_vq_disable_cb(struct cxmq_os_vq *vq);
int cxmq_os_vq_enable_cb(struct cxmq_os_vq *vq);
int cxmq_os_vq_is_broken(struct cxmq_os_vq *vq);
/* Whether cpu is in the affinity mask of vq's interrupt: 1 or 0; -1 when the transport gives
 * no mask (the queue then maps CPUs by the default map). */
int cxmq_os_vq_affinity(struct cxmq_os_vq *vq, cxmq_u32 cpu);

#ifdef __cplusplus
}
#endif
#endif /* CXMQ_OS_H */
