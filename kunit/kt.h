/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The bridge between cxmq's KUnit suites (C, kunit/cxmq_kunit.c) and their bodies (C++, which
 * may not include kernel headers): checks, kernel threads and real bios through plain C.
 */
#ifndef CXMQ_KT_H
#define CXMQ_KT_H

#include "cxmq/os.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cxmq_kt; /* a struct kunit */

/* Records a failed check in the running test (KUNIT_FAIL) unless ok; returns ok. */
int cxmq_kt_check(struct cxmq_kt *t, int ok, const char *file, int line, const char *expr);
void cxmq_kt_log(struct cxmq_kt *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs fn(arg, i) on nr kernel threads, thread i bound to the i-th online CPU (modulo the
 * number online), and waits for all of them. Returns 0 or a negative errno. */
int cxmq_kt_run_threads(unsigned int nr, void (*fn)(void *arg, unsigned int i), void *arg);
unsigned int cxmq_kt_nr_online_cpus(void);
void cxmq_kt_msleep(unsigned int ms);

/* The calling task's real plug (blk_start_plug / blk_finish_plug); NULL when out of memory. */
void *cxmq_kt_plug_start(void);
void cxmq_kt_plug_finish(void *plug);

/* Real bios, with no device, whose completions are counted. */
struct cxmq_kt_bios;
struct cxmq_kt_bios *cxmq_kt_bios_create(unsigned int nr);
void *cxmq_kt_bio(struct cxmq_kt_bios *b, unsigned int i); /* reset for reuse */
/* Completions so far, and how many ended with a non-zero status / more than once. */
unsigned long cxmq_kt_bios_done(struct cxmq_kt_bios *b);
unsigned long cxmq_kt_bios_errors(struct cxmq_kt_bios *b);
unsigned long cxmq_kt_bios_status_count(struct cxmq_kt_bios *b, enum cxmq_status st);
/* Waits up to ms for `nr` completions; returns whether they all arrived. */
int cxmq_kt_bios_wait(struct cxmq_kt_bios *b, unsigned long nr, unsigned int ms);
void cxmq_kt_bios_destroy(struct cxmq_kt_bios *b);

#ifdef __cplusplus
}

#define KT_EXPECT(t, cond) cxmq_kt_check((t), !!(cond), __FILE__, __LINE__, #cond)
#define KT_ASSERT(t, cond)                                                                   \
	do {                                                                                 \
		if (!cxmq_kt_check((t), !!(cond), __FILE__, __LINE__, #cond))                \
			return;                                                              \
	} while (0)
#endif

#endif /* CXMQ_KT_H */
