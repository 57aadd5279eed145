// SPDX-License-Identifier: GPL-2.0
// The test-side controls of the user-space host (os_user.cpp): the CPU topology the core sees,
// the "current CPU" of a thread, captured logs and warnings, fake bios (with optional data),
// deferred-work, softirq and timer control, allocation failure injection, use-after-destroy
// detection and a few hooks that let a test stop a thread at a precise point of a race.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "cxmq/os.h"

namespace host {

// ---- CPUs ----
struct Topology {
	uint32_t nr_cpu_ids = 1;
	std::vector<bool> possible, present, online; // nr_cpu_ids entries each
	std::vector<uint32_t> first_sibling;         // lowest SMT sibling of each CPU
	std::vector<int> node;                       // NUMA node of each CPU
};
// n CPUs, all possible, present and online, no SMT (each CPU is its own first sibling), node 0.
Topology simple_topology(uint32_t n);
void set_topology(const Topology &t);
const Topology &topology();
// The CPU cxmq_os_this_cpu() reports in the calling thread (thread-local, default 0).
void set_this_cpu(uint32_t cpu);
// The CPU the calling thread runs on after its next cxmq_os_msleep (as the scheduler moves a
// task off a CPU going offline when it sleeps): once.
void set_sleep_cpu(uint32_t cpu);

// ---- execution contexts ----
// What the calling thread emulates now: process context, or a softirq / timer callback (both
// atomic: a call that may sleep is reported there).
enum Context : int { kProcess = 0, kSoftirq = 1, kHardirq = 2 };
int current_context();
// Monotonic time in nanoseconds (steady clock), as the host's bios record their end.
int64_t now_ns();
// What cxmq_os_now_ns() answers: now_ns(), or in manual mode a simulated clock that starts at
// start_ns and moves only by advance_clock (schedulers' deadlines under test control).
void set_clock_manual(bool manual, int64_t start_ns = 1000000000);
void advance_clock(int64_t ns);

// ---- logs and warnings ----
struct LogLine {
	int level;
	std::string text;
};
std::vector<LogLine> logs();
void clear_logs();
bool logged(int level, const std::string &needle);
// cxmq_os_warn and the host's own checks (sleeping in atomic context, a lock released twice,
// a wait queue destroyed with waiters, an object used after destroy, ...) fail the running test
// through ADD_FAILURE, unless a test said it expects them. They are counted either way.
unsigned warn_count();
void expect_warnings(bool yes);

// ---- tracepoints (cxmq_os_trace) ----
struct TraceEvent {
	cxmq_trace_event e;
	cxmq_trace_rq rq;
	uint32_t arg;
	uint64_t ns;
};
// Enables the events of `mask` (bits of enum cxmq_trace_event; reset() disables all) and
// clears what was recorded; trace_events() is every event since, in the order they came.
void set_trace(uint32_t mask);
std::vector<TraceEvent> trace_events();

// ---- bios ----
struct FakeBio {
	static constexpr uint32_t kMagic = 0xb10b10b1u;
	uint32_t magic = kMagic;
	uint64_t id = 0;
	std::atomic<int> ends{0};
	std::atomic<int> failed{0}; // ended by cxmq_os_bio_fail: never in a request, unaccounted
	std::atomic<int> status{-1};
	std::atomic<uint64_t> end_seq{0}; // global order of the end, from 1
	// What cxmq_os_bio_end was given and where it ran (set before `ends` counts the end).
	std::atomic<uint64_t> cookie{0};
	std::atomic<uint32_t> end_cpu{~0u};
	std::atomic<int> end_context{-1}; // a Context
	std::atomic<int64_t> end_ns{0};    // now_ns() at the end
	// A polled bio's bi_cookie (cxmq_os_bio_set_poll_queue): -1 (BLK_QC_T_NONE) until set; a
	// poll of any other queue after the end is what the kernel's bio_poll could do too.
	std::atomic<uint32_t> poll_cookie{~0u};
	std::atomic<int> poll_cookie_sets{0};
	// Set by the submitter: cxmq_os_bio_end then reports any other cookie.
	bool check_cookie = false;
	uint64_t expect_cookie = 0;

	// Data, optional: `len` bytes at `data` (the test's buffer). cxmq_os_bio_for_each_piece
	// hands them out in order, in pieces that never cross a multiple of `page` in the address
	// (as a bio's segments never cross a page), each further capped by the next entry of
	// piece_lens when it is not empty (cycled: irregular pieces).
	void *data = nullptr;
	uint32_t len = 0;
	uint32_t page = 4096; // a power of two
	std::vector<uint32_t> piece_lens;
	std::atomic<int> walks{0}; // cxmq_os_bio_for_each_piece calls

	// The bio's own range (bi_iter), set by the submit helpers; the core chains a request's
	// bios through `next` (bi_next).
	uint64_t sector = 0;
	uint32_t nr_sectors = 0;
	void *next = nullptr;
	uint32_t nr_segs = 1;                 // what cxmq_os_bio_nr_segs answers
	std::atomic<int> seg_counts{0};       // ... and how often it was asked
	std::atomic<int> merges{0};           // cxmq_os_bio_merged calls
	std::atomic<int> merges_accounted{0}; // ... with an accounted cookie
};
uint64_t bio_ends(); // every cxmq_os_bio_end call so far (all tests)

// ---- plugging: blk_start_plug / blk_finish_plug of the calling thread ----
// While a thread holds a plug, cxmq_os_plug hands out per-owner storage (an allocation, which
// fail_allocation_at can fail); plug_finish() unplugs each (from_schedule 0) and frees it. A
// thread that is about to sleep in the wait functions or cxmq_os_msleep unplugs first with
// from_schedule 1, as the kernel's schedule() does.
void plug_start();
void plug_finish();
bool plug_held();
uint64_t unplugs_from_schedule(); // all threads, all tests

// ---- deferred work ----
// Manual mode: scheduled work never runs by itself; run_pending_works() runs every pending item
// (whatever its delay) in the calling thread. Set before creating the objects that use work.
void set_work_manual(bool manual);
// Runs the pending work items once each; returns how many ran.
unsigned run_pending_works();
// Runs pending work until none is left (or `max_rounds`); returns how many ran.
unsigned drain_works(unsigned max_rounds = 1000);
unsigned pending_works();
// No work item pending or running (what the work items did happens-before this returning true).
bool works_idle();
uint64_t work_runs(); // callbacks run so far (all tests)

// ---- softirq contexts (cxmq_os_softirq_*, tasklets in the kernel) ----
// Automatic mode: each context has a thread, started on its first raise, that runs the callback
// in softirq context on the CPU that raised it. Manual mode: raised contexts never run by
// themselves; run_pending_softirqs() runs each pending context once, in the calling thread (in
// softirq context). A raise during a run leaves the context pending again, as the kernel's.
void set_softirq_manual(bool manual);
unsigned run_pending_softirqs(); // how many ran
unsigned pending_softirqs();     // contexts raised and not run yet
bool softirqs_idle();            // nothing pending or running (all softirq objects)
uint64_t softirq_runs();         // callbacks run so far (all tests)

// ---- one-shot timers (cxmq_os_timer_*, hrtimers in the kernel) ----
// Automatic mode: a timer fires (its callback runs in hard-IRQ context) on a per-CPU timer
// thread once its delay has passed, on the CPU that started it (or where it runs, when started
// from its own callback). Manual mode: timers never fire by themselves; run_pending_timers()
// fires those started before the call, earliest expiry first, in the calling thread (all of
// them, or only those already due).
void set_timer_manual(bool manual);
unsigned run_pending_timers(bool only_due = false); // how many fired
unsigned pending_timers();  // started and not fired yet
bool timers_idle();         // nothing pending or firing
uint64_t timer_runs();      // callbacks run so far (all tests)

// ---- sleeping ----
// Threads sleeping now in cxmq_os_wait_exclusive / cxmq_os_wait_event (all wait queues).
int sleepers();
// Emulates the wake-up pass-on rule of the kernel shim's cxmq_os_wait_exclusive: a waiter that
// slept and then got what it waited for wakes the next exclusive waiter.
void emulate_shim_wake_pass_on(bool on);

// ---- memory and objects ----
// Allocations and OS objects (locks, mutexes, wait queues, usage counters, work items) alive.
long live_allocs();
long live_objects();
// Makes the n-th allocation from now (0: the next one) fail; -1: none. Any OS object creation
// (softirq and timer objects too), cxmq_os_zalloc / _nowait / _io and cxmq_os_page_alloc count
// as allocations. Pages count in live_allocs() too.
void fail_allocation_at(long n);
long allocations(); // allocation attempts so far (all tests)
// Quarantine: freed memory and destroyed objects are kept (objects marked dead) until
// flush_quarantine(), so that a use after destroy is reported by the host (deterministically,
// in every build) instead of being a real use after free.
void set_quarantine(bool on);
void flush_quarantine();
// Allocations are aligned to a cache line (64) by default. kmalloc mode gives only what the
// kernel's kvzalloc guarantees: natural alignment for power-of-two sizes, 8 bytes otherwise.
void set_kmalloc_alignment(bool on);

// ---- hooks: called in the thread that reaches the point (nullptr: none) ----
struct Hooks {
	// In cxmq_os_usage_kill, after the initial reference was dropped.
	std::function<void(cxmq_os_usage *)> after_usage_kill;
	// In cxmq_os_usage_put, when the count reached zero, before on_zero runs.
	std::function<void(cxmq_os_usage *)> before_usage_on_zero;
	// In the wait functions, after a sleeper was woken, before it takes the queue's lock again.
	std::function<void(cxmq_os_waitq *)> after_wake;
	// In a work item's thread (or manual runner), just before its callback runs.
	std::function<void(cxmq_os_work *)> before_work;
	// In cxmq_os_work_schedule, in the scheduling thread, once the work is scheduled.
	std::function<void(cxmq_os_work *, uint32_t delay_us)> after_work_schedule;
	// In a softirq context / timer callback (thread or manual runner), just before it runs.
	std::function<void(cxmq_os_softirq *, uint32_t)> before_softirq;
	std::function<void(cxmq_os_timer *)> before_timer;
	// In cxmq_os_bio_end, before the bio is marked ended.
	std::function<void(void *bio)> before_bio_end;
};
void set_hooks(const Hooks &h);
void clear_hooks();

// ---- virtqueues (cxmq_os_vq_*): a fake virtio-blk device's queue ----
// What the core put on it: the request as a virtio-blk device reads it. `segs` is the scatter
// list's data entries, `bios` the bios they came from, in order.
struct VqEntry {
	void *token = nullptr;
	uint32_t type = 0, ioprio = 0;
	uint64_t sector = 0;
	bool data_in = false;
	std::vector<FakeBio *> bios;
	uint32_t segs = 0;
	std::vector<uint8_t> payload; // discard / write-zeroes ranges, as the device reads them
	uint8_t *status = nullptr;
};
// A ring of `size` descriptors (each request takes one: indirect descriptors). The core must
// never call two of its functions at once (reported); the device side may run meanwhile (from
// another thread, as real hardware does). complete() plays the device: the oldest
// n requests get `status` and become used; the test then calls the interrupt
// (cxmq_queue_vq_done) itself. Every call checks and counts.
struct FakeVq {
	explicit FakeVq(uint32_t size = 256) : size(size) {}
	uint32_t size;
	std::vector<VqEntry> avail; // put on the ring, not used yet, oldest first
	std::vector<void *> used;   // used, not yet taken by get_buf
	uint64_t adds = 0, kick_prepares = 0;
	std::atomic<uint64_t> full{0};
	std::atomic<uint64_t> notifies{0};
	// Requests added; added by the last kick_prepare that answered "notify"; seen by the device
	// (added before the last notify's prepare): all added are seen once the core has rung.
	std::atomic<uint64_t> added_total{0}, prepared_total{0}, seen_total{0};
	bool cb_enabled = true;
	bool broken = false;
	int affinity_cpu = -2;      // -2: no mask (the transport gives none); else this CPU only
	std::atomic<int> in_call{0}; // the core's calls running now (more than one is reported)
	std::mutex m;                // the ring's own consistency (the device's side runs alone)
	uint32_t in_flight() const { return uint32_t(avail.size() + used.size()); }
	// For a test while the core may run elsewhere (a queue run from a work item).
	size_t avail_count()
	{
		std::lock_guard<std::mutex> g(m);
		return avail.size();
	}
	// Makes the oldest n requests used, writing status into each; returns how many.
	uint32_t complete(uint32_t n = ~0u, uint8_t status = 0);
};
cxmq_os_vq *as_os_vq(FakeVq *vq);

// ThreadSanitizer reports so far (0 in other builds); every test's TearDown checks it.
unsigned tsan_reports();

// Puts the host back to its defaults (4 CPUs, automatic work, softirqs and timers, no hooks,
// ...) for a new test; stops the timer threads (started again on demand).
void reset();

// ---- helpers ----
// Polls pred until it holds or the timeout expires; returns pred's last value.
bool eventually(const std::function<bool()> &pred,
		std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

} // namespace host
