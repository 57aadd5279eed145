/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the cxmq core (C++) offers its host: devices' queues, built from a configuration, fed with
 * bios. Plain C types and opaque handles only (see os.h).
 */
#ifndef CXMQ_CORE_H
#define CXMQ_CORE_H

#include "cxmq/os.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A fault injection point of the null backend, as null_blk's timeout= and requeue= take it
 * (lib/fault-inject.c's should_fail, without CONFIG_FAULT_INJECTION): text
 * "<interval>,<probability>,<space>,<times>"; the empty text disarms it.
 */
struct cxmq_fault_config {
	cxmq_u64 interval;    /* every interval-th request that gets this far may fail (<= 1: each) */
	cxmq_u32 probability; /* percent, 0..100 */
	cxmq_s32 space;       /* requests let through before any can fail */
	cxmq_s32 times;       /* failures left, -1 no limit */
	cxmq_u32 armed;       /* set from non-empty text */
};

/* A device's configuration, with null_blk's names and meanings. */
struct cxmq_dev_config {
	cxmq_u64 size_mb;         /* capacity in MiB (module parameter gb is GiB) */
	cxmq_u32 bs;              /* logical block size: power of two, 512..4096 */
	cxmq_u32 submit_queues;   /* hardware queues: 1..possible CPUs (more is capped) */
	cxmq_u32 hw_queue_depth;  /* tags per hardware queue: 1..4096 */
	cxmq_u32 irqmode;         /* 0: complete in the submitter's context, 1: softirq, 2: timer */
	cxmq_u64 completion_nsec; /* irqmode 2: completion delay */
	cxmq_s32 home_node;       /* NUMA node for the device's memory, -1: any */
	cxmq_u32 memory_backed;   /* 0: no data, 1: data kept in memory */
	cxmq_u32 max_sectors;     /* largest request in 512-byte sectors (max_hw_sectors); 0: the
				   * kernel's default request size (BLK_DEF_MAX_SECTORS, 2560) */
	cxmq_u32 sched;           /* first IO scheduler: 0 none, else 1 + its index (cxmq_sched_name) */
	cxmq_u32 poll_queues;     /* hardware queues of the poll type: 0..possible CPUs (more is
				   * capped); polled bios (REQ_POLLED) go there and complete only
				   * when polled (cxmq_queue_poll) */
	cxmq_u32 shared_tags;     /* 1: one tag map per hardware queue index for every device
				   * made with it (cxmq_queue_create_shared) */
	struct cxmq_fault_config timeout; /* a chosen request is never completed by the backend */
	struct cxmq_fault_config requeue; /* a chosen request is answered busy (and requeued) */
};

#define CXMQ_MAX_BS 4096u
#define CXMQ_MIN_BS 512u
#define CXMQ_MAX_QUEUE_DEPTH 4096u
#define CXMQ_MAX_GB (1024u * 1024u) /* 1 PiB: far beyond any test, well inside sector_t */
#define CXMQ_MAX_DEVICES 1024u      /* nr_devices; also the disk numbers, cxmq0..cxmq1023 */

/* The defaults of every parameter, as null_blk has them. */
void cxmq_config_defaults(struct cxmq_dev_config *cfg);

/*
 * Checks a configuration against the settings table (below): each field, then the checks
 * across settings (size a multiple of bs, completion_nsec only with irqmode=2). Out-of-range
 * values are refused with -CXMQ_EINVAL and an error that names the setting, leaving *cfg
 * unchanged; submit_queues above the number of possible CPUs is capped with a warning, as
 * null_blk does. Returns 0 or a negative errno.
 */
int cxmq_config_check(struct cxmq_dev_config *cfg);

/*
 * Settings: every module parameter and every device attribute (configfs, and per-disk settings
 * files), by null_blk's names, in one table (src/core/settings.cpp) that holds each one's type,
 * default, accepted values, unit, whether it may change while the device is powered, and error
 * texts. The host declares the names the kernel needs (module_param, configfs attributes) and
 * reads and writes every value through these functions; text in is what a sysfs/configfs store
 * or a module parameter gets (NUL-terminated, one trailing newline allowed), text out what a
 * show returns ("value\n"). Numbers are parsed as kstrtoull/kstrtoint with base 0 do: decimal,
 * 0x hex, 0 octal.
 */
#define CXMQ_SETTING_PARAM 0x1u /* a module parameter */
#define CXMQ_SETTING_ATTR 0x2u  /* a device attribute: cxmq_setting_parse/_format on its config */
#define CXMQ_SETTING_LIVE 0x4u  /* an attribute that may change while the device is powered */

/* What the module parameters set: the configuration of the devices made at load (configfs
 * devices start from it too), and the module's own settings. */
struct cxmq_params {
	struct cxmq_dev_config dev;
	cxmq_u32 nr_devices;   /* devices made at load */
	cxmq_u32 busy_every;   /* test hook for every device: cxmq_queue_set_busy_every */
};

unsigned int cxmq_setting_count(void);
/* The i-th setting's name, flags (CXMQ_SETTING_*) and unit ("GiB", "ns", ..., or ""); NULL, 0
 * and NULL past the end. */
const char *cxmq_setting_name(unsigned int i);
unsigned int cxmq_setting_flags(unsigned int i);
const char *cxmq_setting_unit(unsigned int i);
/* The index of the setting called `name`, or -CXMQ_EINVAL. */
int cxmq_setting_find(const char *name);

/*
 * A device attribute (CXMQ_SETTING_ATTR): parses text into *cfg. `who` (the device's name, or
 * NULL) prefixes the messages; `powered`: the device exists, and only CXMQ_SETTING_LIVE
 * settings may change (the host then applies them). Returns 0, or -CXMQ_EINVAL (not a number,
 * out of range: logged, naming the setting) or -CXMQ_EBUSY (logged), and then *cfg is
 * unchanged. Combinations (size and bs, ...) are checked by cxmq_config_check at power on.
 */
int cxmq_setting_parse(unsigned int i, const char *text, struct cxmq_dev_config *cfg,
		       const char *who, int powered);
/* Shows a device attribute of cfg into buf (size bytes with the NUL): returns the length, or
 * -CXMQ_EINVAL if setting i is no device attribute. */
int cxmq_setting_format(unsigned int i, const struct cxmq_dev_config *cfg, char *buf,
			cxmq_size_t size);

/* The module parameters' defaults. */
void cxmq_params_defaults(struct cxmq_params *p);
/*
 * A module parameter (CXMQ_SETTING_PARAM): parses text into *p. Text that is no number, or
 * one too large to store, gives -CXMQ_EINVAL without a message (the kernel's own names the
 * parameter). check: check its range now, with a message naming it (a parameter written at
 * runtime); otherwise cxmq_params_check does at init. *p is unchanged on failure.
 */
int cxmq_param_parse(unsigned int i, const char *text, struct cxmq_params *p, int check);
/* At module init: the ranges of the parameters, then their device configuration as
 * cxmq_config_check does (submit_queues capped). 0 or -CXMQ_EINVAL (logged). */
int cxmq_params_check(struct cxmq_params *p);
/* Shows a module parameter of p into buf, as cxmq_setting_format. */
int cxmq_param_format(unsigned int i, const struct cxmq_params *p, char *buf, cxmq_size_t size);

struct cxmq_queue;

/* Builds a queue for cfg (already checked). Returns NULL and sets *err on failure. */
struct cxmq_queue *cxmq_queue_create(const struct cxmq_dev_config *cfg, int *err);
/*
 * Shared tag sets (null_blk's shared_tags=1): the queues made in one set have the same hardware
 * queue counts and depth (the first member's: a later one takes them, cfg is not changed; see
 * cxmq_queue_hw_queue_depth and cxmq_queue_nr_hw_queues), and their hardware queues of one
 * index share one tag map, each active one within its fair share, max((depth + N - 1) / N, 4)
 * for N active (blk-mq's hctx_may_queue). The host serialises the creation and destruction of
 * a set's queues and changes of its counts.
 */
struct cxmq_tag_set;
struct cxmq_tag_set *cxmq_tag_set_create(void);
void cxmq_tag_set_destroy(struct cxmq_tag_set *set); /* once no queue of it is left */
struct cxmq_queue *cxmq_queue_create_shared(const struct cxmq_dev_config *cfg,
					    struct cxmq_tag_set *set, int *err);
/*
 * The virtio backend: a virtio-blk device's virtqueues behind a queue, one hardware queue each
 * (the last nr_poll of them poll queues, without interrupts). cfg gives submit_queues (nr_vqs -
 * nr_poll), poll_queues (nr_poll), hw_queue_depth, bs and the scheduler; the rest of it is the
 * null backend's and unused. Requests become virtio-blk requests (header, data, status byte):
 * reads, writes, flushes (a PREFLUSH write is a flush then the write, a FUA write the write
 * then a flush, when the device has a write-back cache), discards and write-zeroes (one range
 * per bio, up to max_discard_segments), GET_ID. Headers are little-endian: virtio 1.0's, and
 * a legacy device's on x86.
 */
#define CXMQ_VIRTIO_FLUSH 0x1u        /* VIRTIO_BLK_F_FLUSH: the device has a write-back cache */
#define CXMQ_VIRTIO_DISCARD 0x2u      /* VIRTIO_BLK_F_DISCARD */
#define CXMQ_VIRTIO_WRITE_ZEROES 0x4u /* VIRTIO_BLK_F_WRITE_ZEROES */
#define CXMQ_VIRTIO_INLINE_SEGS 4u    /* data segments a request's own scatterlist holds */
struct cxmq_virtio_config {
	struct cxmq_os_vq **vqs;
	cxmq_u32 nr_vqs;
	cxmq_u32 nr_poll;
	cxmq_u32 features;              /* CXMQ_VIRTIO_* */
	cxmq_u32 max_discard_segments;  /* ranges in one discard / write-zeroes request, >= 1 */
};
struct cxmq_queue *cxmq_queue_create_virtio(const struct cxmq_dev_config *cfg,
					    const struct cxmq_virtio_config *vc, int *err);
/*
 * virtio_blk's cache_type attribute, for a device whose write-cache mode the driver may set
 * (VIRTIO_BLK_F_CONFIG_WCE): "write through" (0) or "write back" (1), a trailing newline
 * allowed. Returns the mode, or -CXMQ_EINVAL, logged naming the disk and the attribute.
 */
#define CXMQ_CACHE_TYPE_WRITE_THROUGH "write through"
#define CXMQ_CACHE_TYPE_WRITE_BACK "write back"
int cxmq_virtio_cache_type_parse(const char *disk, const char *text);
/* Virtqueue `index`'s interrupt (its callback, hard IRQ context): completes what it used. */
void cxmq_queue_vq_done(struct cxmq_queue *q, cxmq_u32 index);

/* The depth in use (a shared set's, or the configuration's). */
cxmq_u32 cxmq_queue_hw_queue_depth(const struct cxmq_queue *q);
/*
 * Changing the hardware queue counts of a set (blk_mq_update_nr_hw_queues on a tag set): every
 * queue of the set is frozen; prepare caps *nr and *nr_poll (and lowers them when memory runs
 * short); then each queue takes them (cxmq_queue_update_nr_hw_queues, with its map readers kept
 * out), and any that got more than another is brought down to the least (it may lose memory
 * meanwhile); finish makes those the set's.
 */
void cxmq_tag_set_prepare_update(struct cxmq_tag_set *set, cxmq_u32 *nr, cxmq_u32 *nr_poll);
void cxmq_tag_set_finish_update(struct cxmq_tag_set *set);

/* The queue has been registered (add_disk): switch the usage counter to per-CPU mode. */
void cxmq_queue_set_live(struct cxmq_queue *q);
/* Refuses new IO, waits for every request in flight to complete, then frees everything. */
void cxmq_queue_destroy(struct cxmq_queue *q);
/* Its first half alone (again in cxmq_queue_destroy): a host whose device must stop between
 * the two (the virtio backend: no interrupt may reach a freed queue) calls it first. */
void cxmq_queue_shutdown(struct cxmq_queue *q);
/* CPU hotplug, from the CPU's own hotplug callbacks, with update_nr_hw_queues and the
 * scheduler switch kept out: before `cpu` goes offline (it and its interrupts still work), the
 * hardware queues whose last online CPU it is stop taking requests and this sleeps until the
 * requests they hold completed (blk_mq_hctx_notify_offline); once it is online, they take
 * requests again. */
void cxmq_queue_cpu_offline(struct cxmq_queue *q, cxmq_u32 cpu);
void cxmq_queue_cpu_online(struct cxmq_queue *q, cxmq_u32 cpu);

/* A bio as the core sees it (after splitting to the queue's limits). */
struct cxmq_bio {
	void *bio;            /* the host's */
	cxmq_u64 sector;
	cxmq_u64 cookie;      /* the host's, handed back when the bio ends (IO accounting) */
	cxmq_u32 nr_sectors;
	cxmq_u32 flags;       /* enum cxmq_bio_flags */
	cxmq_u32 nr_segs;     /* physical segments (pieces of at most max_segment_size); 1 for
			       * a bio without data; 0: not counted, the core asks
			       * cxmq_os_bio_nr_segs when it tries a merge (a bvec walk saved
			       * on every bio that never merges) */
	cxmq_u16 op;          /* enum cxmq_op */
	cxmq_u16 ioprio;      /* bios merge only with requests of the same priority */
};

/* The host's handle for cxmq_os_queue_limits (the disk's request_queue); until it is set the
 * queue uses its configuration's default limits. */
void cxmq_queue_set_host(struct cxmq_queue *q, void *host);
/* The limits a device of this configuration starts with (the host sets its disk's from them). */
void cxmq_queue_default_limits(const struct cxmq_dev_config *cfg, struct cxmq_limits *lim);

/* Feeds one bio: merged into a request (plugged or staged) or made a request of its own. Ends
 * it, now or later, through cxmq_os_bio_end(bio, status, cookie): a bio merged into a request
 * ends with the request's status and the request's cookie (its first bio's). */
void cxmq_queue_submit(struct cxmq_queue *q, const struct cxmq_bio *b);

/* Feeds one bio (after splitting to the queue's limits): cxmq_queue_submit with one segment
 * and priority 0. Ends it, now or later, through
 * cxmq_os_bio_end(bio, status, cookie): the cookie is the host's (IO accounting). */
void cxmq_queue_submit_bio(struct cxmq_queue *q, void *bio, enum cxmq_op op, cxmq_u64 sector,
			   cxmq_u32 nr_sectors, cxmq_u32 flags, cxmq_u64 cookie);

/* Queue freezing: new IO waits (or fails with AGAIN under NOWAIT), IO in flight drains. */
void cxmq_queue_freeze(struct cxmq_queue *q);
void cxmq_queue_unfreeze(struct cxmq_queue *q);

/* Hardware queues in use: all of them (default, then poll: the mq/ tree's numbering), and of
 * the poll type (the last cxmq_queue_nr_poll_queues of them). */
cxmq_u32 cxmq_queue_nr_hw_queues(const struct cxmq_queue *q);
cxmq_u32 cxmq_queue_nr_poll_queues(const struct cxmq_queue *q);

/*
 * Polling (block_device_operations.poll_bio): reaps the completions of the poll queue `cookie`
 * names (what the core wrote with cxmq_os_bio_set_poll_queue; a stale or foreign value finds
 * nothing). Never sleeps; callable under rcu_read_lock. Polls once when oneshot, else until
 * something completes or cxmq_os_poll_next says stop. Returns the number of requests completed,
 * or 1 when cxmq_os_poll_next reported the task woken (as blk_mq_poll does).
 */
int cxmq_queue_poll(struct cxmq_queue *q, cxmq_u32 cookie, int oneshot);
/* mq/<n>/io_poll written: its counters start again from 0. */
void cxmq_queue_reset_io_poll(struct cxmq_queue *q, cxmq_u32 hctx);

/* Test hook of the null backend: refuse every n-th request as busy (0: never). */
void cxmq_queue_set_busy_every(struct cxmq_queue *q, cxmq_u32 n);
/* The null backend's fault injection points, from cfg's timeout and requeue (live: the counts
 * start again). */
void cxmq_queue_set_faults(struct cxmq_queue *q, const struct cxmq_dev_config *cfg);

/*
 * Request timeouts: /sys/block/cxmqN/cxmq/io_timeout, milliseconds as the kernel's
 * queue/io_timeout (1..4294967295, base 10; default 30000). A request the backend holds past
 * it is ended with CXMQ_STS_TIMEOUT (or given more time, as the backend answers).
 */
cxmq_u32 cxmq_queue_io_timeout(const struct cxmq_queue *q);
/* Parses NUL-terminated text: 0, or -CXMQ_EINVAL logged ("io_timeout=... is invalid"). */
int cxmq_queue_set_io_timeout(struct cxmq_queue *q, const char *text);

/*
 * Runtime hardware queue count: the caller has frozen the queue (cxmq_queue_freeze) and keeps
 * readers of the map (the show functions below) out. nr default queues (capped to 1..possible
 * CPUs) and nr_poll poll queues (0..possible CPUs). Returns the number of default hardware
 * queues in use afterwards (cxmq_queue_nr_poll_queues tells the poll ones): fewer than asked
 * only when memory ran short, and never fewer than before.
 */
cxmq_u32 cxmq_queue_update_nr_hw_queues(struct cxmq_queue *q, cxmq_u32 nr, cxmq_u32 nr_poll);

/* The map, for the mq/ tree: how many CPUs feed hardware queue `hctx`, and the i-th of them
 * (ascending). Stable while the caller keeps cxmq_queue_update_nr_hw_queues out. */
cxmq_u32 cxmq_queue_hctx_nr_cpus(struct cxmq_queue *q, cxmq_u32 hctx);
cxmq_u32 cxmq_queue_hctx_cpu(struct cxmq_queue *q, cxmq_u32 hctx, cxmq_u32 i);

/* The files of /sys/block/<disk>/mq/<hctx>/ and of its cpu<M>/ directories. */
enum cxmq_hctx_attr {
	CXMQ_HCTX_PENDING,          /* "HCTX pending:" then the dispatch list, bounded */
	CXMQ_HCTX_ACTIVE,           /* requests holding a tag */
	CXMQ_HCTX_TAGS,             /* tag map summary */
	CXMQ_HCTX_NR_TAGS,
	CXMQ_HCTX_NR_RESERVED_TAGS,
	CXMQ_HCTX_QUEUED,
	CXMQ_HCTX_RUN,
	CXMQ_HCTX_DISPATCHED,       /* histogram of requests dispatched per run */
	CXMQ_HCTX_IO_POLL,          /* "considered=N, invoked=N, success=N" (4.x blk-mq) */
	CXMQ_HCTX_TYPE,             /* "default" or "poll" (blk-mq's debugfs type) */
};
enum cxmq_ctx_attr {
	CXMQ_CTX_DISPATCHED,        /* "reads writes" */
	CXMQ_CTX_MERGED,
	CXMQ_CTX_COMPLETED,         /* "reads writes" */
	CXMQ_CTX_RQ_LIST,           /* "CTX pending:" then the staged requests, bounded */
};
/* Format one file into buf (size bytes with the NUL; the lists end with a "\t...\n" line when
 * the rest would not fit). Return the length, or -CXMQ_EINVAL for an unknown queue/file. */
int cxmq_queue_show_hctx(struct cxmq_queue *q, cxmq_u32 hctx, enum cxmq_hctx_attr attr, char *buf,
			 cxmq_size_t size);
/* A software queue is per CPU and per hardware queue type: the one of `cpu` under `hctx`. */
int cxmq_queue_show_ctx(struct cxmq_queue *q, cxmq_u32 hctx, cxmq_u32 cpu,
			enum cxmq_ctx_attr attr, char *buf, cxmq_size_t size);

/* Formats the queue's counters (per hardware queue, per software queue, backend) into buf as
 * text, never more than size bytes including the NUL; returns the length. */
int cxmq_queue_format_stats(struct cxmq_queue *q, char *buf, cxmq_size_t size);

/*
 * ---- IO schedulers: /sys/block/cxmqN/cxmq/ (scheduler, nr_requests, iosched/) ----
 * The schedulers there are besides none (by index), each with its tunables.
 */
#define CXMQ_SCHED_NONE (-1)
cxmq_u32 cxmq_sched_count(void);
const char *cxmq_sched_name(cxmq_u32 i);
cxmq_u32 cxmq_sched_nr_attrs(cxmq_u32 i);
const char *cxmq_sched_attr_name(cxmq_u32 i, cxmq_u32 attr);
/* The scheduler user text names ("none": CXMQ_SCHED_NONE; a trailing newline is ignored), or
 * -CXMQ_EINVAL, logged: "cxmq: scheduler=<text> is invalid: must be none, mq-deadline". */
int cxmq_sched_lookup(const char *text, cxmq_size_t len);
/* The queue's scheduler (an index or CXMQ_SCHED_NONE), and `scheduler` as the kernel shows
 * it: "[none] mq-deadline\n", the active one in brackets. */
int cxmq_queue_sched(const struct cxmq_queue *q);
int cxmq_queue_show_sched(const struct cxmq_queue *q, char *buf, cxmq_size_t size);
/* Switching schedulers and changing nr_requests rebuild every hardware queue's request pool:
 * the caller has frozen the queue and keeps readers of the hardware queues out (as for
 * cxmq_queue_update_nr_hw_queues). 0, -CXMQ_ENOMEM, or for nr_requests out of range
 * (4..hw_queue_depth without a scheduler, 4..2048 with one) -CXMQ_EINVAL, logged; nothing
 * changes on failure. A switch sets nr_requests to the scheduler's default (twice the smaller
 * of hw_queue_depth and 128; none: hw_queue_depth). */
int cxmq_queue_set_sched(struct cxmq_queue *q, int sched);
cxmq_u32 cxmq_queue_nr_requests(const struct cxmq_queue *q);
int cxmq_queue_set_nr_requests(struct cxmq_queue *q, cxmq_u32 nr);
/* iosched/<attr> of scheduler `sched`, if it is still the active one (else -CXMQ_EINVAL):
 * show returns the length; store parses NUL-terminated text: 0, or -CXMQ_EINVAL logged with
 * the tunable's name and range, nothing changed. */
int cxmq_queue_sched_show(struct cxmq_queue *q, int sched, cxmq_u32 attr, char *buf,
			  cxmq_size_t size);
int cxmq_queue_sched_store(struct cxmq_queue *q, int sched, cxmq_u32 attr, const char *text);

#ifdef __cplusplus
}
#endif
#endif /* CXMQ_CORE_H */
