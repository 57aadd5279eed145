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
};

#define CXMQ_MAX_BS 4096u
#define CXMQ_MIN_BS 512u
#define CXMQ_MAX_QUEUE_DEPTH 4096u
#define CXMQ_MAX_GB (1024u * 1024u) /* 1 PiB: far beyond any test, well inside sector_t */

/* The defaults of every parameter, as null_blk has them. */
void cxmq_config_defaults(struct cxmq_dev_config *cfg);

/*
 * Checks a configuration. Out-of-range values are refused with -CXMQ_EINVAL and an error that
 * names the parameter (`what` prefixes the message: the module parameter or configfs attribute
 * style), leaving *cfg unchanged; submit_queues above the number of possible CPUs is capped with
 * a warning, as null_blk does. Returns 0 or a negative errno.
 */
int cxmq_config_check(struct cxmq_dev_config *cfg);

struct cxmq_queue;

/* Builds a queue for cfg (already checked). Returns NULL and sets *err on failure. */
struct cxmq_queue *cxmq_queue_create(const struct cxmq_dev_config *cfg, int *err);
/* The queue has been registered (add_disk): switch the usage counter to per-CPU mode. */
void cxmq_queue_set_live(struct cxmq_queue *q);
/* Refuses new IO, waits for every request in flight to complete, then frees everything. */
void cxmq_queue_destroy(struct cxmq_queue *q);

/* Feeds one bio (after splitting to the queue's limits). Ends it, now or later, through
 * cxmq_os_bio_end(bio, status, cookie): the cookie is the host's (IO accounting). */
void cxmq_queue_submit_bio(struct cxmq_queue *q, void *bio, enum cxmq_op op, cxmq_u64 sector,
			   cxmq_u32 nr_sectors, cxmq_u32 flags, cxmq_u64 cookie);

/* Queue freezing: new IO waits (or fails with AGAIN under NOWAIT), IO in flight drains. */
void cxmq_queue_freeze(struct cxmq_queue *q);
void cxmq_queue_unfreeze(struct cxmq_queue *q);

cxmq_u32 cxmq_queue_nr_hw_queues(const struct cxmq_queue *q);

/* Test hook of the null backend: refuse every n-th request as busy (0: never). */
void cxmq_queue_set_busy_every(struct cxmq_queue *q, cxmq_u32 n);

/*
 * Runtime hardware queue count: the caller has frozen the queue (cxmq_queue_freeze) and keeps
 * readers of the map (the show functions below) out. Returns the number of hardware queues in
 * use afterwards: nr capped to 1..possible CPUs, or fewer when memory ran short.
 */
cxmq_u32 cxmq_queue_update_nr_hw_queues(struct cxmq_queue *q, cxmq_u32 nr);

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
int cxmq_queue_show_ctx(struct cxmq_queue *q, cxmq_u32 cpu, enum cxmq_ctx_attr attr, char *buf,
			cxmq_size_t size);

/* Formats the queue's counters (per hardware queue, per software queue, backend) into buf as
 * text, never more than size bytes including the NUL; returns the length. */
int cxmq_queue_format_stats(struct cxmq_queue *q, char *buf, cxmq_size_t size);

#ifdef __cplusplus
}
#endif
#endif /* CXMQ_CORE_H */
