// SPDX-License-Identifier: GPL-2.0
// A user-space implementation of include/cxmq/os.h for the host tests: pthreads and the C++
// standard library, with the semantics of the kernel shim (src/shim/os_linux.c) and a few of the
// kernel's debugging checks (sleeping while holding a spinlock or in a softirq or timer callback,
// unbalanced unlocks, a wait queue destroyed with waiters, percpu_ref misuse, a bio ended twice,
// a write walk scribbling on its bio's data), which fail the running test.
// The controls tests use are in host.h.
#include "host.h"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include <gtest/gtest.h>

namespace host {
namespace {

using Clock = std::chrono::steady_clock;

// ---- failure reporting ----
std::atomic<unsigned> g_warns{0};
std::atomic<bool> g_expect_warns{false};

void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void report(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	g_warns.fetch_add(1);
	if (!g_expect_warns.load()) {
		fprintf(stderr, "host: %s\n", buf);
		ADD_FAILURE() << buf;
	} else if (getenv("CXMQ_HOST_LOG")) {
		fprintf(stderr, "host: (expected) %s\n", buf);
	}
}

[[noreturn]] void fatal(const char *what)
{
	fprintf(stderr, "host: fatal: %s\n", what);
	fflush(stderr);
	abort();
}

// A full barrier (smp_mb). ThreadSanitizer does not model fences (and g++ refuses them under
// -fsanitize=thread): a locked read-modify-write, a full barrier on x86, stands in for it there.
#ifdef __SANITIZE_THREAD__
std::atomic<unsigned> g_fence_word{0};
inline void full_fence() { g_fence_word.fetch_add(1, std::memory_order_seq_cst); }
#else
inline void full_fence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
#endif

// ---- atomic context (spinlocks held by this thread, or a softirq / timer callback) ----
thread_local int t_atomic = 0;
thread_local int t_context = kProcess;

void might_sleep(const char *what)
{
	if (t_atomic > 0)
		report("%s may sleep but is called with %d spinlock(s) held", what, t_atomic);
}

void unplug_thread(int from_schedule); // the thread's plug, before it sleeps

// ---- CPUs ----
std::mutex g_topo_m;
std::vector<std::unique_ptr<Topology>> g_topos; // every topology stays alive: readers race
std::atomic<const Topology *> g_topo{nullptr};
thread_local uint32_t t_cpu = 0;
// set_sleep_cpu: where the scheduler moves this thread when it next sleeps (kNoMove: stays)
constexpr uint32_t kNoMove = ~0u;
thread_local uint32_t t_sleep_cpu = kNoMove;

const Topology &topo()
{
	const Topology *t = g_topo.load(std::memory_order_acquire);
	if (!t)
		fatal("no topology");
	return *t;
}

// ---- allocations and objects ----
std::atomic<long> g_live_allocs{0};
std::atomic<long> g_live_objects{0};
std::atomic<long> g_alloc_attempts{0};
std::atomic<long> g_fail_at{-1};
std::atomic<long> g_alloc_since{0};
std::atomic<bool> g_kmalloc_align{false};
std::atomic<bool> g_quarantine{false};
std::mutex g_quarantine_m;
std::vector<std::function<void()>> g_quarantined; // release actions

bool allocation_fails()
{
	g_alloc_attempts.fetch_add(1);
	long n = g_alloc_since.fetch_add(1);
	long at = g_fail_at.load();
	return at >= 0 && n == at;
}

constexpr uint32_t kMemMagic = 0x6d656d21;
struct MemHeader { // just below the pointer handed out
	void *raw;
	uint32_t magic;
	uint32_t pad;
};
static_assert(sizeof(MemHeader) == 16, "header");

void *alloc_zeroed(size_t size)
{
	if (allocation_fails())
		return nullptr;
	// Default: every allocation starts on a cache line. kmalloc mode: only what kmalloc
	// guarantees, natural alignment for power-of-two sizes (up to a page), 8 bytes otherwise;
	// the pointer is then placed 8 bytes past a cache line, aligned to 8 and to nothing more.
	size_t align = 64, off = 64;
	if (g_kmalloc_align.load()) {
		// kmalloc's guarantee: power-of-two sizes naturally aligned, others only to 8 bytes
		// (below a page); a page or more comes page-aligned. Applied after the rounding
		// src/shim/os_linux.c does (below a page: a power of two of at least 64 bytes).
		size_t rounded = size;
		if (size < 4096) {
			rounded = 64;
			while (rounded < size)
				rounded <<= 1;
		}
		if (!(rounded & (rounded - 1))) {
			align = std::max<size_t>(64, std::min<size_t>(rounded, 4096));
			off = align;
		} else if (rounded >= 4096) {
			align = 4096;
			off = 4096;
		} else {
			off = 64 + 8;
		}
	}
	const size_t bytes = off + (size ? size : 1);
	void *raw = nullptr;
	if (posix_memalign(&raw, align, bytes))
		return nullptr;
	memset(raw, 0, bytes);
	char *p = static_cast<char *>(raw) + off;
	auto *h = reinterpret_cast<MemHeader *>(p - sizeof(MemHeader));
	h->raw = raw;
	h->magic = kMemMagic;
	g_live_allocs.fetch_add(1);
	return p;
}

void free_mem(const void *p)
{
	if (!p)
		return;
	auto *h = reinterpret_cast<MemHeader *>(const_cast<char *>(static_cast<const char *>(p)) -
						sizeof(MemHeader));
	if (h->magic != kMemMagic) {
		report("cxmq_os_free(%p): not a live allocation (double free?)", p);
		return;
	}
	h->magic = ~kMemMagic;
	g_live_allocs.fetch_sub(1);
	void *raw = h->raw;
	if (g_quarantine.load()) {
		std::lock_guard<std::mutex> g(g_quarantine_m);
		g_quarantined.push_back([raw] { free(raw); });
		return;
	}
	free(raw);
}

// Every OS object starts with this header: a live magic per kind, its complement once destroyed
// (the object is then only still readable in quarantine mode).
struct Obj {
	uint32_t magic;
	const char *kind;
};

void check_obj(const Obj *o, uint32_t magic, const char *kind, const char *op)
{
	if (!o)
		fatal("null OS object");
	if (o->magic == magic)
		return;
	if (o->magic == ~magic) {
		report("%s: %s used after it was destroyed", op, kind);
		return;
	}
	fprintf(stderr, "host: %s: %p is not a %s\n", op, static_cast<const void *>(o), kind);
	fatal("bad OS object");
}

template <class T> void retire(T *obj, uint32_t magic)
{
	obj->hdr.magic = ~magic;
	g_live_objects.fetch_sub(1);
	if (g_quarantine.load()) {
		std::lock_guard<std::mutex> g(g_quarantine_m);
		g_quarantined.push_back([obj] { delete obj; });
		return;
	}
	delete obj;
}

// ---- logs ----
std::mutex g_log_m;
std::vector<LogLine> g_logs;

// ---- bios ----
std::atomic<uint64_t> g_bio_seq{0};
std::atomic<uint64_t> g_bio_ends{0};

// ---- sleeping ----
std::atomic<int> g_sleepers{0};
std::atomic<bool> g_shim_pass_on{false};

// ---- hooks ----
std::mutex g_hooks_m;
Hooks g_hooks;
std::atomic<bool> g_have_hooks{false};

Hooks hooks()
{
	if (!g_have_hooks.load())
		return Hooks{};
	std::lock_guard<std::mutex> g(g_hooks_m);
	return g_hooks;
}

// ---- work ----
std::atomic<bool> g_work_manual{false};
std::atomic<uint64_t> g_work_runs{0};
std::mutex g_works_m; // held while running work in manual mode
std::set<cxmq_os_work *> g_works;

// ---- softirqs and timers ----
std::atomic<bool> g_softirq_manual{false};
std::atomic<uint64_t> g_softirq_runs{0};
std::mutex g_softirqs_m; // held while running softirqs in manual mode
std::set<cxmq_os_softirq *> g_softirqs;
std::atomic<bool> g_timer_manual{false};
std::atomic<uint64_t> g_timer_runs{0};

#ifdef __SANITIZE_THREAD__
std::atomic<unsigned> g_tsan_reports{0};
#endif

// Runs a softirq or timer callback as the kernel would: on `cpu`, in an atomic context.
class InContext {
public:
	InContext(int ctx, uint32_t cpu) : ctx_(t_context), cpu_(t_cpu)
	{
		t_context = ctx;
		t_cpu = cpu;
		t_atomic++;
	}
	~InContext()
	{
		t_atomic--;
		t_context = ctx_;
		t_cpu = cpu_;
	}
	InContext(const InContext &) = delete;
	InContext &operator=(const InContext &) = delete;

private:
	int ctx_;
	uint32_t cpu_;
};

} // namespace
} // namespace host

using namespace host;

// ===================================================================================== os.h ==

extern "C" {

void cxmq_os_log(int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (getenv("CXMQ_HOST_LOG"))
		fprintf(stderr, "<%d>%s", level, buf);
	std::lock_guard<std::mutex> g(g_log_m);
	g_logs.push_back(LogLine{level, buf});
}

int cxmq_os_snprintf(char *buf, cxmq_size_t size, const char *fmt, ...)
{
	// vscnprintf: the length actually written, without the NUL.
	if (size == 0)
		return 0;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0)
		return 0;
	return static_cast<size_t>(n) >= size ? static_cast<int>(size - 1) : n;
}

void cxmq_os_bug_report(const char *file, int line, const char *what)
{
	fprintf(stderr, "cxmq: BUG at %s:%d: %s\n", file, line, what);
	fflush(stderr);
}

void cxmq_os_warn(const char *file, int line, const char *what)
{
	report("cxmq_os_warn: WARNING at %s:%d: %s", file, line, what);
}

void *cxmq_os_zalloc(cxmq_size_t size, int)
{
	might_sleep("cxmq_os_zalloc");
	return alloc_zeroed(size);
}

void *cxmq_os_zalloc_nowait(cxmq_size_t size, int)
{
	return alloc_zeroed(size);
}

void cxmq_os_free(const void *p)
{
	free_mem(p);
}

void cxmq_os_msleep(cxmq_u32 ms)
{
	might_sleep("cxmq_os_msleep");
	unplug_thread(1);
	std::this_thread::sleep_for(std::chrono::milliseconds(ms));
	if (t_sleep_cpu != kNoMove) {
		t_cpu = t_sleep_cpu;
		t_sleep_cpu = kNoMove;
	}
}

namespace {
std::atomic<bool> g_clock_manual{false};
std::atomic<int64_t> g_clock_ns{0};
} // namespace

cxmq_u64 cxmq_os_now_ns(void)
{
	return static_cast<cxmq_u64>(g_clock_manual.load() ? g_clock_ns.load() : host::now_ns());
}

cxmq_u64 cxmq_os_now_coarse_ns(void)
{
	return cxmq_os_now_ns();
}

cxmq_u32 cxmq_os_random_below(cxmq_u32 n)
{
	static std::atomic<uint64_t> state{0x9e3779b97f4a7c15ull};
	uint64_t x = state.fetch_add(0x9e3779b97f4a7c15ull) + 0x9e3779b97f4a7c15ull; // splitmix64
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return n ? static_cast<cxmq_u32>(x % n) : 0;
}

// ---- CPUs ----

cxmq_u32 cxmq_os_nr_cpu_ids(void)
{
	return topo().nr_cpu_ids;
}

cxmq_u32 cxmq_os_this_cpu(void)
{
	const Topology &t = topo();
	if (t_cpu >= t.nr_cpu_ids || !t.online[t_cpu])
		report("cxmq_os_this_cpu: the test runs this thread on CPU %u, which is not online",
		       t_cpu);
	return t_cpu;
}

int cxmq_os_cpu_possible(cxmq_u32 cpu)
{
	const Topology &t = topo();
	return cpu < t.nr_cpu_ids && t.possible[cpu];
}

int cxmq_os_cpu_online(cxmq_u32 cpu)
{
	const Topology &t = topo();
	return cpu < t.nr_cpu_ids && t.online[cpu];
}

int cxmq_os_cpu_present(cxmq_u32 cpu)
{
	const Topology &t = topo();
	return cpu < t.nr_cpu_ids && t.present[cpu];
}

int cxmq_os_cpu_to_node(cxmq_u32 cpu)
{
	const Topology &t = topo();
	return cpu < t.nr_cpu_ids ? t.node[cpu] : 0;
}

cxmq_u32 cxmq_os_cpu_first_sibling(cxmq_u32 cpu)
{
	const Topology &t = topo();
	if (cpu >= t.nr_cpu_ids)
		return cpu;
	uint32_t first = t.first_sibling[cpu];
	return first < t.nr_cpu_ids ? first : cpu;
}

// Nodes are those of the topology's CPUs: node ids up to the highest a possible CPU has; a
// node is online when a possible CPU is on it (so a topology with CPUs on nodes 0 and 2 has
// node 1 offline).
cxmq_u32 cxmq_os_nr_node_ids(void)
{
	const Topology &t = topo();
	int top = 0;
	for (uint32_t c = 0; c < t.nr_cpu_ids; c++)
		if (t.possible[c] && t.node[c] > top)
			top = t.node[c];
	return static_cast<cxmq_u32>(top) + 1;
}

int cxmq_os_node_online(int node)
{
	const Topology &t = topo();
	if (node == 0)
		return 1;
	for (uint32_t c = 0; c < t.nr_cpu_ids; c++)
		if (t.possible[c] && t.node[c] == node)
			return 1;
	return 0;
}

// ---- spinlocks and mutexes: error-checking pthread mutexes ----

namespace {
constexpr uint32_t kLockMagic = 0x6c6f636b;
constexpr uint32_t kMutexMagic = 0x6d757478;
constexpr unsigned long kFlagsMagic = 0x2460000ul; // "IF set" and the nesting depth
} // namespace

struct cxmq_os_lock {
	Obj hdr;
	pthread_mutex_t m;
};

struct cxmq_os_mutex {
	Obj hdr;
	pthread_mutex_t m;
};

namespace {
void init_checking_mutex(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}
} // namespace

struct cxmq_os_lock *cxmq_os_lock_create(int)
{
	might_sleep("cxmq_os_lock_create");
	if (allocation_fails())
		return nullptr;
	auto *l = new cxmq_os_lock;
	l->hdr = Obj{kLockMagic, "spinlock"};
	init_checking_mutex(&l->m);
	g_live_objects.fetch_add(1);
	return l;
}

void cxmq_os_lock_destroy(struct cxmq_os_lock *l)
{
	if (!l)
		return;
	check_obj(&l->hdr, kLockMagic, "spinlock", "cxmq_os_lock_destroy");
	if (pthread_mutex_destroy(&l->m) == EBUSY)
		report("cxmq_os_lock_destroy: the spinlock is held");
	retire(l, kLockMagic);
}

unsigned long cxmq_os_lock_irqsave(struct cxmq_os_lock *l)
{
	check_obj(&l->hdr, kLockMagic, "spinlock", "cxmq_os_lock_irqsave");
	if (pthread_mutex_lock(&l->m) == EDEADLK) {
		report("cxmq_os_lock_irqsave: spinlock recursion (a deadlock in the kernel)");
		fatal("spinlock recursion");
	}
	return kFlagsMagic | static_cast<unsigned long>(t_atomic++);
}

void cxmq_os_unlock_irqrestore(struct cxmq_os_lock *l, unsigned long flags)
{
	check_obj(&l->hdr, kLockMagic, "spinlock", "cxmq_os_unlock_irqrestore");
	--t_atomic;
	if (flags != (kFlagsMagic | static_cast<unsigned long>(t_atomic)))
		report("cxmq_os_unlock_irqrestore: flags %#lx are not those of the matching "
		       "irqsave (nesting %d)", flags, t_atomic);
	if (pthread_mutex_unlock(&l->m) == EPERM)
		report("cxmq_os_unlock_irqrestore: the spinlock is not held by this thread");
}

struct cxmq_os_mutex *cxmq_os_mutex_create(void)
{
	might_sleep("cxmq_os_mutex_create");
	if (allocation_fails())
		return nullptr;
	auto *m = new cxmq_os_mutex;
	m->hdr = Obj{kMutexMagic, "mutex"};
	init_checking_mutex(&m->m);
	g_live_objects.fetch_add(1);
	return m;
}

void cxmq_os_mutex_destroy(struct cxmq_os_mutex *m)
{
	if (!m)
		return;
	check_obj(&m->hdr, kMutexMagic, "mutex", "cxmq_os_mutex_destroy");
	if (pthread_mutex_destroy(&m->m) == EBUSY)
		report("cxmq_os_mutex_destroy: the mutex is held");
	retire(m, kMutexMagic);
}

void cxmq_os_mutex_lock(struct cxmq_os_mutex *m)
{
	might_sleep("cxmq_os_mutex_lock");
	check_obj(&m->hdr, kMutexMagic, "mutex", "cxmq_os_mutex_lock");
	if (pthread_mutex_lock(&m->m) == EDEADLK) {
		report("cxmq_os_mutex_lock: recursive locking (a deadlock in the kernel)");
		fatal("mutex recursion");
	}
}

void cxmq_os_mutex_unlock(struct cxmq_os_mutex *m)
{
	check_obj(&m->hdr, kMutexMagic, "mutex", "cxmq_os_mutex_unlock");
	if (pthread_mutex_unlock(&m->m) == EPERM)
		report("cxmq_os_mutex_unlock: the mutex is not held by this thread");
}

// ---- wait queues ----
// A mutex, a FIFO list of waiters each with its own condition variable. As in the kernel, a
// wake-up takes the waiter off the list (autoremove_wake_function); wake_one wakes the
// non-exclusive waiters ahead of the first exclusive one, and that one.

namespace {
constexpr uint32_t kWaitqMagic = 0x77616974;
struct Waiter {
	std::condition_variable cv;
	bool exclusive = false;
	bool queued = false;
	bool woken = false;
	std::list<Waiter *>::iterator it;
};
} // namespace

struct cxmq_os_waitq {
	Obj hdr;
	std::mutex m;
	std::list<Waiter *> waiters; // under m
	std::atomic<int> nr{0};      // waiters on the list
};

namespace {
// Under wq->m. nr_exclusive < 0: everybody.
void wake_locked(cxmq_os_waitq *wq, int nr_exclusive)
{
	while (!wq->waiters.empty()) {
		Waiter *w = wq->waiters.front();
		wq->waiters.pop_front();
		w->queued = false;
		wq->nr.fetch_sub(1);
		w->woken = true;
		w->cv.notify_one();
		if (w->exclusive && nr_exclusive > 0 && --nr_exclusive == 0)
			break;
	}
}

void wait_common(cxmq_os_waitq *wq, int (*fn)(void *), void *arg, bool exclusive,
		 const char *op)
{
	might_sleep(op);
	check_obj(&wq->hdr, kWaitqMagic, "wait queue", op);
	std::unique_lock<std::mutex> lk(wq->m);
	Waiter w;
	w.exclusive = exclusive;
	bool was_woken = false;
	for (;;) {
		if (!w.queued) {
			wq->waiters.push_back(&w);
			w.it = std::prev(wq->waiters.end());
			w.queued = true;
			wq->nr.fetch_add(1);
		}
		// Queued before the try (a full barrier, as set_current_state): a waker that
		// made the condition true after our check finds us in the list.
		full_fence();
		if (fn(arg))
			break;
		// schedule(): a task going to sleep unplugs first (not under the queue's lock, as
		// the kernel's sched_submit_work runs before the task is put to sleep).
		lk.unlock();
		unplug_thread(1);
		lk.lock();
		g_sleepers.fetch_add(1);
		while (!w.woken)
			w.cv.wait(lk);
		g_sleepers.fetch_sub(1);
		w.woken = false;
		was_woken = true;
		Hooks h = hooks();
		if (h.after_wake) {
			lk.unlock();
			h.after_wake(wq);
			lk.lock();
		}
		check_obj(&wq->hdr, kWaitqMagic, "wait queue", op);
	}
	if (w.queued) {
		wq->waiters.erase(w.it);
		w.queued = false;
		wq->nr.fetch_sub(1);
	}
	// try_fn runs under the queue's lock, so no wake-up can reach us during a successful try:
	// the one that woke us was ours, and there is nothing to pass on (w.woken is false).
	// The shim-emulation mode applies src/shim/os_linux.c's rule: a wake-up is passed on only
	// when it reached the waiter after a try had already succeeded (not one it used).
	const bool pass_on = g_shim_pass_on.load() ? (w.woken && was_woken) || w.woken : w.woken;
	if (exclusive && pass_on && !wq->waiters.empty())
		wake_locked(wq, 1);
}
} // namespace

struct cxmq_os_waitq *cxmq_os_waitq_create(int)
{
	might_sleep("cxmq_os_waitq_create");
	if (allocation_fails())
		return nullptr;
	auto *wq = new cxmq_os_waitq;
	wq->hdr = Obj{kWaitqMagic, "wait queue"};
	g_live_objects.fetch_add(1);
	return wq;
}

void cxmq_os_waitq_destroy(struct cxmq_os_waitq *wq)
{
	if (!wq)
		return;
	check_obj(&wq->hdr, kWaitqMagic, "wait queue", "cxmq_os_waitq_destroy");
	if (wq->nr.load())
		report("cxmq_os_waitq_destroy: %d waiter(s) still on the wait queue", wq->nr.load());
	retire(wq, kWaitqMagic);
}

void cxmq_os_wait_exclusive(struct cxmq_os_waitq *wq, int (*try_fn)(void *), void *arg)
{
	wait_common(wq, try_fn, arg, true, "cxmq_os_wait_exclusive");
}

void cxmq_os_wait_event(struct cxmq_os_waitq *wq, int (*cond_fn)(void *), void *arg)
{
	wait_common(wq, cond_fn, arg, false, "cxmq_os_wait_event");
}

void cxmq_os_wake_one(struct cxmq_os_waitq *wq)
{
	check_obj(&wq->hdr, kWaitqMagic, "wait queue", "cxmq_os_wake_one");
	std::lock_guard<std::mutex> g(wq->m);
	wake_locked(wq, 1);
}

void cxmq_os_wake_all(struct cxmq_os_waitq *wq)
{
	check_obj(&wq->hdr, kWaitqMagic, "wait queue", "cxmq_os_wake_all");
	std::lock_guard<std::mutex> g(wq->m);
	wake_locked(wq, -1);
}

int cxmq_os_waitq_active(struct cxmq_os_waitq *wq)
{
	check_obj(&wq->hdr, kWaitqMagic, "wait queue", "cxmq_os_waitq_active");
	full_fence();
	return wq->nr.load() > 0;
}

// ---- usage counter: percpu_ref in atomic mode ----
// One word: the count and a dead bit, so that tryget_live and kill are atomic with respect to
// each other. Created live with the initial reference; kill marks it dead and drops the initial
// reference; on_zero runs in the thread whose put (or kill) brings the count to zero.

namespace {
constexpr uint32_t kUsageMagic = 0x75736167;
constexpr uint64_t kDead = 1ull << 63;
} // namespace

struct cxmq_os_usage {
	Obj hdr;
	std::atomic<uint64_t> v{1};
	std::atomic<bool> percpu{false};
	void (*on_zero)(void *);
	void *arg;
};

namespace {
void usage_drop(cxmq_os_usage *u, const char *op)
{
	uint64_t old = u->v.fetch_sub(1);
	if ((old & ~kDead) == 0) {
		u->v.fetch_add(1);
		report("%s: usage counter underflow", op);
		return;
	}
	if ((old & ~kDead) != 1)
		return;
	if (!(old & kDead))
		report("%s: usage counter reached zero while live (a put without its get)", op);
	Hooks h = hooks();
	if (h.before_usage_on_zero)
		h.before_usage_on_zero(u);
	// percpu_ref_put reads ref->data->release here, after the count reached zero.
	check_obj(&u->hdr, kUsageMagic, "usage counter", op);
	u->on_zero(u->arg);
}
} // namespace

struct cxmq_os_usage *cxmq_os_usage_create(void (*on_zero)(void *), void *arg)
{
	might_sleep("cxmq_os_usage_create");
	if (allocation_fails())
		return nullptr;
	auto *u = new cxmq_os_usage;
	u->hdr = Obj{kUsageMagic, "usage counter"};
	u->on_zero = on_zero;
	u->arg = arg;
	g_live_objects.fetch_add(1);
	return u;
}

void cxmq_os_usage_destroy(struct cxmq_os_usage *u)
{
	if (!u)
		return;
	check_obj(&u->hdr, kUsageMagic, "usage counter", "cxmq_os_usage_destroy");
	retire(u, kUsageMagic);
}

int cxmq_os_usage_tryget_live(struct cxmq_os_usage *u)
{
	check_obj(&u->hdr, kUsageMagic, "usage counter", "cxmq_os_usage_tryget_live");
	uint64_t cur = u->v.load();
	do {
		if (cur & kDead)
			return 0;
	} while (!u->v.compare_exchange_weak(cur, cur + 1));
	return 1;
}

int cxmq_os_usage_tryget(struct cxmq_os_usage *u)
{
	check_obj(&u->hdr, kUsageMagic, "usage counter", "cxmq_os_usage_tryget");
	uint64_t cur = u->v.load();
	do {
		if ((cur & ~kDead) == 0)
			return 0;
	} while (!u->v.compare_exchange_weak(cur, cur + 1));
	return 1;
}

// The host has no fault injection of its own here: allocation failures (fail_allocation_at)
// reach the same paths.
int cxmq_os_should_fail_init_hctx(void)
{
	return 0;
}

void cxmq_os_usage_get(struct cxmq_os_usage *u)
{
	check_obj(&u->hdr, kUsageMagic, "usage counter", "cxmq_os_usage_get");
	uint64_t old = u->v.fetch_add(1);
	if ((old & ~kDead) == 0)
		report("cxmq_os_usage_get: no reference held (the count was zero)");
}

void cxmq_os_usage_put(struct cxmq_os_usage *u)
{
	check_obj(&u->hdr, kUsageMagic, "usage counter", "cxmq_os_usage_put");
	usage_drop(u, "cxmq_os_usage_put");
}

void cxmq_os_usage_kill(struct cxmq_os_usage *u)
{
	check_obj(&u->hdr, kUsageMagic, "usage counter", "cxmq_os_usage_kill");
	uint64_t old = u->v.fetch_or(kDead);
	if (old & kDead) {
		report("cxmq_os_usage_kill: called more than once");
		return;
	}
	u->percpu.store(false); // kill switches to atomic mode
	usage_drop(u, "cxmq_os_usage_kill");
	Hooks h = hooks();
	if (h.after_usage_kill)
		h.after_usage_kill(u);
}

int cxmq_os_usage_is_zero(struct cxmq_os_usage *u)
{
	check_obj(&u->hdr, kUsageMagic, "usage counter", "cxmq_os_usage_is_zero");
	return (u->v.load() & ~kDead) == 0;
}

void cxmq_os_usage_resurrect(struct cxmq_os_usage *u)
{
	check_obj(&u->hdr, kUsageMagic, "usage counter", "cxmq_os_usage_resurrect");
	uint64_t cur = u->v.load();
	if (!(cur & kDead)) {
		report("cxmq_os_usage_resurrect: the counter is not dead");
		return;
	}
	while (!u->v.compare_exchange_weak(cur, (cur & ~kDead) + 1)) {
	}
}

void cxmq_os_usage_switch_to_percpu(struct cxmq_os_usage *u)
{
	check_obj(&u->hdr, kUsageMagic, "usage counter", "cxmq_os_usage_switch_to_percpu");
	u->percpu.store(true);
}

// ---- delayed work: one thread per work item, started on its first schedule ----
// schedule has mod_delayed_work's semantics (a pending item gets the new delay; an item that
// runs now runs again afterwards); cancel_sync drops the pending run, waits for a running
// callback, and ignores schedules made meanwhile, as cancel_delayed_work_sync.

namespace {
constexpr uint32_t kWorkMagic = 0x776f726b;
} // namespace

struct cxmq_os_work {
	Obj hdr;
	void (*fn)(void *);
	void *arg;
	std::mutex m;
	std::condition_variable cv;
	bool pending = false; // under m, and the fields below
	Clock::time_point due;
	uint32_t cpu = 0;
	bool running = false;
	int canceling = 0;
	bool stop = false;
	bool started = false;
	bool background = false; // cxmq_os_work_create_background: outside the test controls
	std::thread thread;
};

namespace {
uint32_t work_cpu(uint32_t cpu)
{
	const Topology &t = topo();
	if (cpu < t.nr_cpu_ids && t.online[cpu])
		return cpu;
	for (uint32_t c = 0; c < t.nr_cpu_ids; c++) // WORK_CPU_UNBOUND: any online CPU
		if (t.online[c])
			return c;
	return 0;
}

// Runs w's callback once, as its own thread or a manual runner would. Called with lk held.
void run_work_locked(cxmq_os_work *w, std::unique_lock<std::mutex> &lk)
{
	w->pending = false;
	w->running = true;
	const uint32_t cpu = w->cpu;
	lk.unlock();
	const uint32_t saved = t_cpu;
	t_cpu = work_cpu(cpu);
	Hooks h = hooks();
	if (h.before_work)
		h.before_work(w);
	w->fn(w->arg);
	t_cpu = saved;
	g_work_runs.fetch_add(1);
	lk.lock();
	w->running = false;
	w->cv.notify_all();
}

void work_thread(cxmq_os_work *w)
{
	std::unique_lock<std::mutex> lk(w->m);
	while (!w->stop) {
		if (!w->pending || (g_work_manual.load() && !w->background)) {
			w->cv.wait(lk);
			continue;
		}
		if (Clock::now() < w->due) {
			w->cv.wait_until(lk, w->due);
			continue;
		}
		run_work_locked(w, lk);
	}
}
} // namespace

struct cxmq_os_work *cxmq_os_work_create_background(void (*fn)(void *), void *arg, int node)
{
	cxmq_os_work *w = cxmq_os_work_create(fn, arg, node);
	if (w)
		w->background = true;
	return w;
}

struct cxmq_os_work *cxmq_os_work_create(void (*fn)(void *), void *arg, int)
{
	might_sleep("cxmq_os_work_create");
	if (allocation_fails())
		return nullptr;
	auto *w = new cxmq_os_work;
	w->hdr = Obj{kWorkMagic, "work item"};
	w->fn = fn;
	w->arg = arg;
	{
		std::lock_guard<std::mutex> g(g_works_m);
		g_works.insert(w);
	}
	g_live_objects.fetch_add(1);
	return w;
}

void cxmq_os_work_cancel_sync(struct cxmq_os_work *w)
{
	might_sleep("cxmq_os_work_cancel_sync");
	check_obj(&w->hdr, kWorkMagic, "work item", "cxmq_os_work_cancel_sync");
	std::unique_lock<std::mutex> lk(w->m);
	w->canceling++;
	w->pending = false;
	while (w->running)
		w->cv.wait(lk);
	w->canceling--;
}

void cxmq_os_work_destroy(struct cxmq_os_work *w)
{
	if (!w)
		return;
	cxmq_os_work_cancel_sync(w);
	{
		std::lock_guard<std::mutex> g(g_works_m);
		g_works.erase(w);
	}
	std::thread t;
	{
		std::lock_guard<std::mutex> g(w->m);
		w->stop = true;
		w->cv.notify_all();
		t = std::move(w->thread);
	}
	if (t.joinable())
		t.join();
	retire(w, kWorkMagic);
}

void cxmq_os_work_schedule(struct cxmq_os_work *w, cxmq_u32 delay_us, cxmq_u32 cpu)
{
	check_obj(&w->hdr, kWorkMagic, "work item", "cxmq_os_work_schedule");
	{
		std::lock_guard<std::mutex> g(w->m);
		if (w->canceling || w->stop)
			return;
		w->pending = true;
		w->due = Clock::now() + std::chrono::microseconds(delay_us);
		w->cpu = cpu;
		if (!w->started && (!g_work_manual.load() || w->background)) {
			w->started = true;
			w->thread = std::thread(work_thread, w);
		}
		w->cv.notify_all();
	}
	Hooks h = hooks();
	if (h.after_work_schedule)
		h.after_work_schedule(w, delay_us);
}

// ---- softirq contexts: tasklets, one thread per context, started on its first raise ----
// A raise marks the context pending (raises before it runs merge into one run) and records the
// CPU it runs on; a run clears pending first, so a raise during it makes it run again. A context
// never runs twice at once. destroy waits, as tasklet_kill, for a pending run to happen (in the
// destroying thread when nothing else would run it) and for a running one to finish.

namespace {
constexpr uint32_t kSoftirqMagic = 0x736f6674;
struct SoftCtx {
	std::mutex m;
	std::condition_variable cv;
	bool pending = false; // under m, and the fields below
	bool running = false;
	bool stop = false;
	bool started = false;
	uint32_t cpu = 0;
	std::thread thread;
};
} // namespace

struct cxmq_os_softirq {
	Obj hdr;
	void (*fn)(void *, cxmq_u32);
	void *arg;
	uint32_t nr;
	std::atomic<bool> dying{false};
	std::unique_ptr<SoftCtx[]> ctx;
};

namespace {
// Runs context i once. Called with its lock held; returns with it held.
void run_softirq_locked(cxmq_os_softirq *s, uint32_t i, std::unique_lock<std::mutex> &lk)
{
	SoftCtx &c = s->ctx[i];
	c.pending = false;
	c.running = true;
	const uint32_t cpu = c.cpu;
	lk.unlock();
	{
		InContext ic(kSoftirq, work_cpu(cpu));
		Hooks h = hooks();
		if (h.before_softirq)
			h.before_softirq(s, i);
		s->fn(s->arg, i);
	}
	g_softirq_runs.fetch_add(1);
	lk.lock();
	c.running = false;
	c.cv.notify_all();
}

void softirq_thread(cxmq_os_softirq *s, uint32_t i)
{
	SoftCtx &c = s->ctx[i];
	std::unique_lock<std::mutex> lk(c.m);
	while (!c.stop) {
		if (!c.pending || g_softirq_manual.load()) {
			c.cv.wait(lk);
			continue;
		}
		run_softirq_locked(s, i, lk);
	}
}

// Under c.m.
void start_softirq_thread(cxmq_os_softirq *s, uint32_t i)
{
	SoftCtx &c = s->ctx[i];
	if (c.started || c.stop || g_softirq_manual.load())
		return;
	c.started = true;
	c.thread = std::thread(softirq_thread, s, i);
}
} // namespace

struct cxmq_os_softirq *cxmq_os_softirq_create(cxmq_u32 nr, void (*fn)(void *arg, cxmq_u32 i),
					       void *arg)
{
	might_sleep("cxmq_os_softirq_create");
	if (allocation_fails())
		return nullptr;
	auto *s = new cxmq_os_softirq;
	s->hdr = Obj{kSoftirqMagic, "softirq"};
	s->fn = fn;
	s->arg = arg;
	s->nr = nr;
	s->ctx.reset(new SoftCtx[nr ? nr : 1]);
	{
		std::lock_guard<std::mutex> g(g_softirqs_m);
		g_softirqs.insert(s);
	}
	g_live_objects.fetch_add(1);
	return s;
}

void cxmq_os_softirq_destroy(struct cxmq_os_softirq *s)
{
	if (!s)
		return;
	might_sleep("cxmq_os_softirq_destroy"); // tasklet_kill sleeps
	check_obj(&s->hdr, kSoftirqMagic, "softirq", "cxmq_os_softirq_destroy");
	s->dying.store(true);
	{
		// Waits for a manual run in progress.
		std::lock_guard<std::mutex> g(g_softirqs_m);
		g_softirqs.erase(s);
	}
	for (uint32_t i = 0; i < s->nr; i++) {
		SoftCtx &c = s->ctx[i];
		std::thread t;
		{
			std::unique_lock<std::mutex> lk(c.m);
			for (;;) {
				if (c.running) {
					c.cv.wait(lk);
				} else if (c.pending) {
					if (c.started && !g_softirq_manual.load())
						c.cv.wait(lk); // its thread runs it
					else
						run_softirq_locked(s, i, lk);
				} else {
					break;
				}
			}
			c.stop = true;
			c.cv.notify_all();
			t = std::move(c.thread);
		}
		if (t.joinable())
			t.join();
	}
	retire(s, kSoftirqMagic);
}

void cxmq_os_softirq_raise(struct cxmq_os_softirq *s, cxmq_u32 i)
{
	check_obj(&s->hdr, kSoftirqMagic, "softirq", "cxmq_os_softirq_raise");
	if (i >= s->nr) {
		report("cxmq_os_softirq_raise: context %u of %u", i, s->nr);
		return;
	}
	if (s->dying.load())
		report("cxmq_os_softirq_raise: context %u raised while the softirq is destroyed", i);
	SoftCtx &c = s->ctx[i];
	std::lock_guard<std::mutex> g(c.m);
	if (c.stop)
		return;
	if (!c.pending)
		c.cpu = t_cpu; // a tasklet runs where it was scheduled
	c.pending = true;
	start_softirq_thread(s, i);
	c.cv.notify_all();
}

// ---- one-shot timers: hrtimers, on per-CPU timer threads started on demand ----
// One lock for every timer. start has hrtimer_start's semantics: a pending timer gets the new
// expiry; a timer whose callback runs now is queued again (on the base it runs on: a callback
// never runs twice at once). destroy cancels the pending expiry and waits for a running callback,
// as hrtimer_cancel; destroying a timer from its own callback (a deadlock) is fatal.

namespace {
constexpr uint32_t kTimerMagic = 0x74696d72;
constexpr uint32_t kTimerBases = 64; // base of CPU c: c % kTimerBases

using TimerKey = std::tuple<Clock::time_point, uint64_t, cxmq_os_timer *>; // expiry, order
struct TimerBase {
	std::condition_variable cv;
	std::set<TimerKey> queue;
	bool started = false;
	bool stop = false;
	std::thread thread;
};
struct TimerSys {
	std::mutex m;
	std::condition_variable done; // a callback finished
	TimerBase bases[kTimerBases];
	uint64_t seq = 0;
	unsigned running = 0;
};
// Never destroyed: its threads may outlive the tests' last reset() at exit.
TimerSys &timer_sys()
{
	static TimerSys *ts = new TimerSys;
	return *ts;
}
} // namespace

struct cxmq_os_timer {
	Obj hdr;
	void (*fn)(void *);
	void *arg;
	// Under timer_sys().m.
	bool queued = false;
	TimerKey key;
	uint32_t base = 0;
	bool running = false;
	bool dying = false;
	std::thread::id runner;
};

namespace {
// Fires a queued timer of base b. Called with the lock held; returns with it held.
void fire_timer_locked(TimerSys &ts, uint32_t b, std::set<TimerKey>::iterator it,
		       std::unique_lock<std::mutex> &lk)
{
	cxmq_os_timer *t = std::get<2>(*it);
	ts.bases[b].queue.erase(it);
	t->queued = false;
	t->running = true;
	t->base = b;
	t->runner = std::this_thread::get_id();
	ts.running++;
	lk.unlock();
	{
		InContext ic(kHardirq, work_cpu(b));
		Hooks h = hooks();
		if (h.before_timer)
			h.before_timer(t);
		t->fn(t->arg);
	}
	g_timer_runs.fetch_add(1);
	lk.lock();
	t->running = false;
	t->runner = std::thread::id();
	ts.running--;
	ts.done.notify_all();
}

void timer_thread(uint32_t b)
{
	TimerSys &ts = timer_sys();
	TimerBase &base = ts.bases[b];
	std::unique_lock<std::mutex> lk(ts.m);
	while (!base.stop) {
		if (g_timer_manual.load() || base.queue.empty()) {
			base.cv.wait(lk);
			continue;
		}
		auto it = base.queue.begin();
		const Clock::time_point due = std::get<0>(*it);
		if (Clock::now() < due) {
			base.cv.wait_until(lk, due);
			continue;
		}
		fire_timer_locked(ts, b, it, lk);
	}
}

// Under ts.m.
void start_timer_thread(TimerSys &ts, uint32_t b)
{
	TimerBase &base = ts.bases[b];
	if (base.started || g_timer_manual.load())
		return;
	base.started = true;
	base.stop = false;
	base.thread = std::thread(timer_thread, b);
}

void stop_timer_threads()
{
	TimerSys &ts = timer_sys();
	std::vector<std::thread> threads;
	{
		std::lock_guard<std::mutex> g(ts.m);
		for (TimerBase &base : ts.bases) {
			if (!base.started)
				continue;
			base.stop = true;
			base.cv.notify_all();
			threads.push_back(std::move(base.thread));
		}
	}
	for (auto &t : threads)
		t.join();
	std::lock_guard<std::mutex> g(ts.m);
	for (TimerBase &base : ts.bases) {
		base.started = false;
		base.stop = false;
	}
}
} // namespace

struct cxmq_os_timer *cxmq_os_timer_create(void (*fn)(void *arg), void *arg, int)
{
	might_sleep("cxmq_os_timer_create");
	if (allocation_fails())
		return nullptr;
	auto *t = new cxmq_os_timer;
	t->hdr = Obj{kTimerMagic, "timer"};
	t->fn = fn;
	t->arg = arg;
	g_live_objects.fetch_add(1);
	return t;
}

void cxmq_os_timer_destroy(struct cxmq_os_timer *t)
{
	if (!t)
		return;
	check_obj(&t->hdr, kTimerMagic, "timer", "cxmq_os_timer_destroy");
	TimerSys &ts = timer_sys();
	{
		std::unique_lock<std::mutex> lk(ts.m);
		if (t->running && t->runner == std::this_thread::get_id()) {
			report("cxmq_os_timer_destroy: called from the timer's own callback "
			       "(hrtimer_cancel deadlocks there)");
			fatal("timer destroyed from its callback");
		}
		t->dying = true;
		for (;;) {
			if (t->queued) {
				ts.bases[t->base].queue.erase(t->key);
				t->queued = false;
			}
			if (!t->running)
				break;
			ts.done.wait(lk);
		}
	}
	retire(t, kTimerMagic);
}

void cxmq_os_timer_start(struct cxmq_os_timer *t, cxmq_u64 nsec)
{
	check_obj(&t->hdr, kTimerMagic, "timer", "cxmq_os_timer_start");
	TimerSys &ts = timer_sys();
	std::lock_guard<std::mutex> g(ts.m);
	if (t->dying) {
		report("cxmq_os_timer_start: the timer is being destroyed");
		return;
	}
	if (t->queued)
		ts.bases[t->base].queue.erase(t->key);
	const uint32_t b = t->running ? t->base : t_cpu % kTimerBases;
	t->key = TimerKey(Clock::now() + std::chrono::nanoseconds(static_cast<int64_t>(nsec)),
			  ++ts.seq, t);
	t->base = b;
	t->queued = true;
	ts.bases[b].queue.insert(t->key);
	start_timer_thread(ts, b);
	ts.bases[b].cv.notify_all();
}

// ---- pages ----
// A page is the second half of an 8 KiB page-aligned block: the header (as other allocations
// have) sits at the end of the first half, and ASan's redzone right after the page.

namespace {
constexpr uint32_t kPageMagic = 0x70616765;
} // namespace

void *cxmq_os_page_alloc(int may_sleep, int)
{
	if (may_sleep)
		might_sleep("cxmq_os_page_alloc(GFP_NOIO)");
	if (allocation_fails())
		return nullptr;
	void *raw = nullptr;
	if (posix_memalign(&raw, CXMQ_PAGE_SIZE, 2 * CXMQ_PAGE_SIZE))
		return nullptr;
	memset(raw, 0, 2 * CXMQ_PAGE_SIZE);
	char *p = static_cast<char *>(raw) + CXMQ_PAGE_SIZE;
	auto *h = reinterpret_cast<MemHeader *>(p - sizeof(MemHeader));
	h->raw = raw;
	h->magic = kPageMagic;
	g_live_allocs.fetch_add(1);
	return p;
}

void cxmq_os_page_free(void *page)
{
	if (!page)
		return;
	if (reinterpret_cast<uintptr_t>(page) % CXMQ_PAGE_SIZE) {
		report("cxmq_os_page_free(%p): not a page", page);
		return;
	}
	auto *h = reinterpret_cast<MemHeader *>(static_cast<char *>(page) - sizeof(MemHeader));
	if (h->magic != kPageMagic) {
		report("cxmq_os_page_free(%p): not a live page (double free?)", page);
		return;
	}
	h->magic = ~kPageMagic;
	g_live_allocs.fetch_sub(1);
	void *raw = h->raw;
	if (g_quarantine.load()) {
		std::lock_guard<std::mutex> g(g_quarantine_m);
		g_quarantined.push_back([raw] { free(raw); });
		return;
	}
	free(raw);
}

void *cxmq_os_zalloc_io(cxmq_size_t size, int may_sleep, int)
{
	if (may_sleep)
		might_sleep("cxmq_os_zalloc_io(GFP_NOIO)");
	return alloc_zeroed(size);
}

// ---- bios ----

void cxmq_os_bio_end(void *bio, enum cxmq_status status, cxmq_u64 cookie)
{
	auto *b = static_cast<FakeBio *>(bio);
	if (!b || b->magic != FakeBio::kMagic) {
		report("cxmq_os_bio_end(%p, %d): not a bio", bio, static_cast<int>(status));
		return;
	}
	if (g_have_hooks.load()) {
		Hooks h = hooks();
		if (h.before_bio_end)
			h.before_bio_end(bio);
	}
	if (static_cast<unsigned>(status) > CXMQ_STS_TIMEOUT)
		report("cxmq_os_bio_end: bio %llu: status %d out of range",
		       static_cast<unsigned long long>(b->id), static_cast<int>(status));
	if (status == CXMQ_STS_RESOURCE)
		report("cxmq_os_bio_end: bio %llu ended with CXMQ_STS_RESOURCE, which never "
		       "reaches a bio", static_cast<unsigned long long>(b->id));
	if (b->check_cookie && cookie != b->expect_cookie)
		report("cxmq_os_bio_end: bio %llu ended with cookie %#llx, submitted with %#llx",
		       static_cast<unsigned long long>(b->id), static_cast<unsigned long long>(cookie),
		       static_cast<unsigned long long>(b->expect_cookie));
	b->status.store(status);
	b->cookie.store(cookie);
	b->end_cpu.store(t_cpu);
	b->end_context.store(t_context);
	b->end_ns.store(now_ns());
	b->end_seq.store(g_bio_seq.fetch_add(1) + 1);
	if (b->ends.fetch_add(1) != 0)
		report("cxmq_os_bio_end: bio %llu ended more than once",
		       static_cast<unsigned long long>(b->id));
	g_bio_ends.fetch_add(1);
}

void cxmq_os_bio_fail(void *bio, enum cxmq_status status, cxmq_u64 cookie)
{
	auto *b = static_cast<FakeBio *>(bio);
	if (b && b->magic == FakeBio::kMagic)
		b->failed.fetch_add(1);
	cxmq_os_bio_end(bio, status, cookie);
}

namespace {
uint64_t fnv1a(const void *p, size_t n)
{
	const auto *c = static_cast<const unsigned char *>(p);
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}
} // namespace

int cxmq_os_bio_for_each_piece(void *bio, int to_bio,
			       int (*fn)(void *ctx, cxmq_u64 off, void *data, cxmq_u32 len),
			       void *ctx)
{
	auto *b = static_cast<FakeBio *>(bio);
	if (!b || b->magic != FakeBio::kMagic) {
		report("cxmq_os_bio_for_each_piece(%p): not a bio", bio);
		return 0;
	}
	if (b->ends.load())
		report("cxmq_os_bio_for_each_piece: bio %llu has already ended",
		       static_cast<unsigned long long>(b->id));
	b->walks.fetch_add(1);
	if (!b->data && b->len)
		report("cxmq_os_bio_for_each_piece: bio %llu has %u bytes but no buffer",
		       static_cast<unsigned long long>(b->id), b->len);
	if (!b->data)
		return 0;
	const uint64_t page = b->page && !(b->page & (b->page - 1)) ? b->page : CXMQ_PAGE_SIZE;
	char *base = static_cast<char *>(b->data);
	size_t k = 0;
	for (uint32_t off = 0; off < b->len;) {
		const uintptr_t addr = reinterpret_cast<uintptr_t>(base + off);
		uint32_t n = static_cast<uint32_t>(
			std::min<uint64_t>(b->len - off, page - (addr & (page - 1))));
		if (!b->piece_lens.empty()) {
			const uint32_t cap = b->piece_lens[k++ % b->piece_lens.size()];
			if (cap)
				n = std::min(n, cap);
		}
		const uint64_t before = to_bio ? 0 : fnv1a(base + off, n);
		const int ret = fn(ctx, off, base + off, n);
		if (!to_bio && fnv1a(base + off, n) != before)
			report("cxmq_os_bio_for_each_piece: bio %llu: the callback wrote into the "
			       "data of a write (bytes %u..%u)",
			       static_cast<unsigned long long>(b->id), off, off + n - 1);
		if (ret)
			return ret;
		off += n;
	}
	return 0;
}

#ifdef __SANITIZE_THREAD__
// Called by ThreadSanitizer after each report: counted, and checked by every test's TearDown
// (doing more here, inside the runtime's report, is not safe).
void __tsan_on_report(void *)
{
	host::g_tsan_reports.fetch_add(1);
}
#endif

} // extern "C"

// ============================================================================ host controls ==

namespace host {

Topology simple_topology(uint32_t n)
{
	Topology t;
	t.nr_cpu_ids = n;
	t.possible.assign(n, true);
	t.present.assign(n, true);
	t.online.assign(n, true);
	t.first_sibling.resize(n);
	for (uint32_t c = 0; c < n; c++)
		t.first_sibling[c] = c;
	t.node.assign(n, 0);
	return t;
}

void set_topology(const Topology &t)
{
	const uint32_t n = t.nr_cpu_ids;
	if (n == 0 || t.possible.size() != n || t.present.size() != n || t.online.size() != n ||
	    t.first_sibling.size() != n || t.node.size() != n)
		fatal("set_topology: inconsistent topology");
	for (uint32_t c = 0; c < n; c++)
		if ((t.present[c] && !t.possible[c]) || (t.online[c] && !t.present[c]))
			fatal("set_topology: online <= present <= possible is required");
	std::lock_guard<std::mutex> g(g_topo_m);
	g_topos.push_back(std::make_unique<Topology>(t));
	g_topo.store(g_topos.back().get(), std::memory_order_release);
}

const Topology &topology()
{
	return topo();
}

void set_this_cpu(uint32_t cpu)
{
	t_cpu = cpu;
}

void set_sleep_cpu(uint32_t cpu)
{
	t_sleep_cpu = cpu;
}

int current_context()
{
	return t_context;
}

int64_t now_ns()
{
	return std::chrono::duration_cast<std::chrono::nanoseconds>(
		       Clock::now().time_since_epoch())
		.count();
}

namespace {
std::mutex g_trace_m;
std::vector<TraceEvent> g_trace;
} // namespace

void set_trace(uint32_t mask)
{
	std::lock_guard<std::mutex> g(g_trace_m);
	g_trace.clear();
	__atomic_store_n(&cxmq_os_trace_mask, mask, __ATOMIC_RELAXED);
}

std::vector<TraceEvent> trace_events()
{
	std::lock_guard<std::mutex> g(g_trace_m);
	return g_trace;
}

std::vector<LogLine> logs()
{
	std::lock_guard<std::mutex> g(g_log_m);
	return g_logs;
}

void clear_logs()
{
	std::lock_guard<std::mutex> g(g_log_m);
	g_logs.clear();
}

bool logged(int level, const std::string &needle)
{
	std::lock_guard<std::mutex> g(g_log_m);
	for (const LogLine &l : g_logs)
		if (l.level == level && l.text.find(needle) != std::string::npos)
			return true;
	return false;
}

unsigned warn_count()
{
	return g_warns.load();
}

void expect_warnings(bool yes)
{
	g_expect_warns.store(yes);
}

uint64_t bio_ends()
{
	return g_bio_ends.load();
}

void set_work_manual(bool manual)
{
	g_work_manual.store(manual);
}

unsigned run_pending_works()
{
	std::lock_guard<std::mutex> g(g_works_m);
	unsigned n = 0;
	for (cxmq_os_work *w : g_works) {
		std::unique_lock<std::mutex> lk(w->m);
		if (!w->pending || w->running || w->canceling || w->stop || w->background)
			continue;
		run_work_locked(w, lk);
		n++;
	}
	return n;
}

unsigned drain_works(unsigned max_rounds)
{
	unsigned total = 0;
	for (unsigned i = 0; i < max_rounds; i++) {
		unsigned n = run_pending_works();
		if (!n)
			break;
		total += n;
	}
	return total;
}

unsigned pending_works()
{
	std::lock_guard<std::mutex> g(g_works_m);
	unsigned n = 0;
	for (cxmq_os_work *w : g_works) {
		std::lock_guard<std::mutex> lk(w->m);
		n += w->pending && !w->background ? 1 : 0;
	}
	return n;
}

bool works_idle()
{
	std::lock_guard<std::mutex> g(g_works_m);
	for (cxmq_os_work *w : g_works) {
		std::lock_guard<std::mutex> lk(w->m);
		if ((w->pending || w->running) && !w->background)
			return false;
	}
	return true;
}

uint64_t work_runs()
{
	return g_work_runs.load();
}

void set_softirq_manual(bool manual)
{
	g_softirq_manual.store(manual);
	if (manual)
		return;
	std::lock_guard<std::mutex> g(g_softirqs_m);
	for (cxmq_os_softirq *s : g_softirqs)
		for (uint32_t i = 0; i < s->nr; i++) {
			SoftCtx &c = s->ctx[i];
			std::lock_guard<std::mutex> lk(c.m);
			if (c.pending)
				start_softirq_thread(s, i);
			c.cv.notify_all();
		}
}

unsigned run_pending_softirqs()
{
	std::lock_guard<std::mutex> g(g_softirqs_m);
	unsigned n = 0;
	for (cxmq_os_softirq *s : g_softirqs)
		for (uint32_t i = 0; i < s->nr; i++) {
			SoftCtx &c = s->ctx[i];
			std::unique_lock<std::mutex> lk(c.m);
			if (!c.pending || c.running || c.stop)
				continue;
			run_softirq_locked(s, i, lk);
			n++;
		}
	return n;
}

unsigned pending_softirqs()
{
	std::lock_guard<std::mutex> g(g_softirqs_m);
	unsigned n = 0;
	for (cxmq_os_softirq *s : g_softirqs)
		for (uint32_t i = 0; i < s->nr; i++) {
			std::lock_guard<std::mutex> lk(s->ctx[i].m);
			n += s->ctx[i].pending ? 1 : 0;
		}
	return n;
}

bool softirqs_idle()
{
	std::lock_guard<std::mutex> g(g_softirqs_m);
	for (cxmq_os_softirq *s : g_softirqs)
		for (uint32_t i = 0; i < s->nr; i++) {
			std::lock_guard<std::mutex> lk(s->ctx[i].m);
			if (s->ctx[i].pending || s->ctx[i].running)
				return false;
		}
	return true;
}

uint64_t softirq_runs()
{
	return g_softirq_runs.load();
}

void set_timer_manual(bool manual)
{
	g_timer_manual.store(manual);
	if (manual)
		return;
	TimerSys &ts = timer_sys();
	std::lock_guard<std::mutex> g(ts.m);
	for (uint32_t b = 0; b < kTimerBases; b++) {
		if (!ts.bases[b].queue.empty())
			start_timer_thread(ts, b);
		ts.bases[b].cv.notify_all();
	}
}

unsigned run_pending_timers(bool only_due)
{
	TimerSys &ts = timer_sys();
	std::unique_lock<std::mutex> lk(ts.m);
	const uint64_t last = ts.seq; // not those started by the callbacks run here
	unsigned n = 0;
	for (;;) {
		const Clock::time_point now = Clock::now();
		uint32_t best_base = kTimerBases;
		std::set<TimerKey>::iterator best;
		for (uint32_t b = 0; b < kTimerBases; b++)
			for (auto it = ts.bases[b].queue.begin(); it != ts.bases[b].queue.end(); ++it) {
				if (std::get<1>(*it) > last || (only_due && std::get<0>(*it) > now))
					continue;
				if (best_base == kTimerBases || *it < *best) {
					best_base = b;
					best = it;
				}
				break; // the earliest of this base that qualifies
			}
		if (best_base == kTimerBases)
			break;
		if (std::get<2>(*best)->running) { // firing in a timer thread: let it finish
			ts.done.wait(lk);
			continue;
		}
		fire_timer_locked(ts, best_base, best, lk);
		n++;
	}
	return n;
}

unsigned pending_timers()
{
	TimerSys &ts = timer_sys();
	std::lock_guard<std::mutex> g(ts.m);
	size_t n = 0;
	for (TimerBase &base : ts.bases)
		n += base.queue.size();
	return static_cast<unsigned>(n);
}

bool timers_idle()
{
	TimerSys &ts = timer_sys();
	std::lock_guard<std::mutex> g(ts.m);
	if (ts.running)
		return false;
	for (TimerBase &base : ts.bases)
		if (!base.queue.empty())
			return false;
	return true;
}

uint64_t timer_runs()
{
	return g_timer_runs.load();
}

int sleepers()
{
	return g_sleepers.load();
}

void emulate_shim_wake_pass_on(bool on)
{
	g_shim_pass_on.store(on);
}

long live_allocs()
{
	return g_live_allocs.load();
}

long live_objects()
{
	return g_live_objects.load();
}

void fail_allocation_at(long n)
{
	g_alloc_since.store(0);
	g_fail_at.store(n);
}

long allocations()
{
	return g_alloc_attempts.load();
}

void set_quarantine(bool on)
{
	g_quarantine.store(on);
}

void flush_quarantine()
{
	std::vector<std::function<void()>> q;
	{
		std::lock_guard<std::mutex> g(g_quarantine_m);
		q.swap(g_quarantined);
	}
	for (auto &f : q)
		f();
}

void set_kmalloc_alignment(bool on)
{
	g_kmalloc_align.store(on);
}

void set_hooks(const Hooks &h)
{
	std::lock_guard<std::mutex> g(g_hooks_m);
	g_hooks = h;
	g_have_hooks.store(true);
}

void clear_hooks()
{
	std::lock_guard<std::mutex> g(g_hooks_m);
	g_hooks = Hooks{};
	g_have_hooks.store(false);
}

unsigned tsan_reports()
{
#ifdef __SANITIZE_THREAD__
	return g_tsan_reports.load();
#else
	return 0;
#endif
}

void set_clock_manual(bool manual, int64_t start_ns)
{
	g_clock_ns.store(start_ns);
	g_clock_manual.store(manual);
}

void advance_clock(int64_t ns)
{
	g_clock_ns.fetch_add(ns);
}

void reset()
{
	set_trace(0);
	set_clock_manual(false, 0);
	set_topology(simple_topology(4));
	t_cpu = 0;
	clear_logs();
	g_expect_warns.store(false);
	g_work_manual.store(false);
	g_softirq_manual.store(false);
	g_timer_manual.store(false);
	stop_timer_threads();
	g_shim_pass_on.store(false);
	g_fail_at.store(-1);
	g_alloc_since.store(0);
	g_kmalloc_align.store(false);
	clear_hooks();
	flush_quarantine();
	g_quarantine.store(false);
}

bool eventually(const std::function<bool()> &pred, std::chrono::milliseconds timeout)
{
	const auto end = Clock::now() + timeout;
	while (!pred()) {
		if (Clock::now() >= end)
			return pred();
		std::this_thread::sleep_for(std::chrono::microseconds(200));
	}
	return true;
}

} // namespace host

// ---- bios in requests, limits, plugging ----
namespace host {
namespace {
FakeBio *as_bio(void *bio, const char *op)
{
	auto *b = static_cast<FakeBio *>(bio);
	if (!b || b->magic != FakeBio::kMagic) {
		report("%s(%p): not a bio", op, bio);
		return nullptr;
	}
	return b;
}

struct PlugCb {
	void *owner;
	void (*fn)(void *, int);
	void *storage;
};
struct ThreadPlug {
	bool held = false;
	std::vector<PlugCb> cbs;
};
thread_local ThreadPlug t_plug;
std::atomic<uint64_t> g_unplugs_sched{0};

} // namespace
namespace {
// flush_plug_callbacks: callbacks may plug again while they run; loop until none is left.
void unplug_thread(int from_schedule)
{
	if (!t_plug.held)
		return;
	while (!t_plug.cbs.empty()) {
		std::vector<PlugCb> cbs;
		cbs.swap(t_plug.cbs);
		for (PlugCb &cb : cbs) {
			if (from_schedule)
				g_unplugs_sched.fetch_add(1);
			cb.fn(cb.storage, from_schedule);
			free_mem(cb.storage);
		}
	}
}
} // namespace

void plug_start()
{
	if (t_plug.held)
		report("plug_start: this thread holds a plug already");
	t_plug.held = true;
}

void plug_finish()
{
	unplug_thread(0);
	t_plug.held = false;
}

bool plug_held()
{
	return t_plug.held;
}

uint64_t unplugs_from_schedule()
{
	return g_unplugs_sched.load();
}
} // namespace host

extern "C" {

void *cxmq_os_bio_next(void *bio)
{
	FakeBio *b = as_bio(bio, "cxmq_os_bio_next");
	return b ? b->next : nullptr;
}

void cxmq_os_bio_set_next(void *bio, void *next)
{
	if (FakeBio *b = as_bio(bio, "cxmq_os_bio_set_next"))
		b->next = next;
}

cxmq_u64 cxmq_os_bio_sector(void *bio)
{
	FakeBio *b = as_bio(bio, "cxmq_os_bio_sector");
	return b ? b->sector : 0;
}

cxmq_u32 cxmq_os_bio_sectors(void *bio)
{
	FakeBio *b = as_bio(bio, "cxmq_os_bio_sectors");
	return b ? b->nr_sectors : 0;
}

cxmq_u32 cxmq_os_bio_nr_segs(void *bio)
{
	FakeBio *b = as_bio(bio, "cxmq_os_bio_nr_segs");
	if (!b)
		return 1;
	b->seg_counts++;
	return b->nr_segs;
}

void cxmq_os_bio_set_poll_queue(void *bio, cxmq_u32 hctx)
{
	FakeBio *b = as_bio(bio, "cxmq_os_bio_set_poll_queue");
	if (!b)
		return;
	if (b->ends.load())
		report("cxmq_os_bio_set_poll_queue: bio %llu has ended already: its submitter may "
		       "never poll the queue it names", static_cast<unsigned long long>(b->id));
	b->poll_cookie.store(hctx);
	b->poll_cookie_sets.fetch_add(1);
}

// Host pollers are oneshot in effect: an empty poll stops (a test polls again itself).
enum cxmq_poll_next cxmq_os_poll_next(void)
{
	return CXMQ_POLL_STOP;
}

void cxmq_os_bio_merged(void *bio, cxmq_u64 cookie, cxmq_u64 rq_cookie)
{
	FakeBio *b = as_bio(bio, "cxmq_os_bio_merged");
	if (!b)
		return;
	if (b->check_cookie && cookie != b->expect_cookie)
		report("cxmq_os_bio_merged: bio %llu merged with cookie %#llx, submitted with %#llx",
		       static_cast<unsigned long long>(b->id), static_cast<unsigned long long>(cookie),
		       static_cast<unsigned long long>(b->expect_cookie));
	if ((cookie ^ rq_cookie) & CXMQ_ACCT_COOKIE)
		report("cxmq_os_bio_merged: bio %llu (cookie %#llx) merged into a request with "
		       "cookie %#llx: accounted and unaccounted bios mixed",
		       static_cast<unsigned long long>(b->id), static_cast<unsigned long long>(cookie),
		       static_cast<unsigned long long>(rq_cookie));
	b->expect_cookie = rq_cookie; // it ends with its request's
	b->merges.fetch_add(1);
	if (cookie & CXMQ_ACCT_COOKIE)
		b->merges_accounted.fetch_add(1);
}

// The host handle is the test's own struct cxmq_limits, which it may change at any time.
void cxmq_os_queue_limits(void *host, struct cxmq_limits *lim)
{
	const auto *l = static_cast<const cxmq_limits *>(host);
	lim->max_sectors = __atomic_load_n(&l->max_sectors, __ATOMIC_RELAXED);
	lim->max_segments = __atomic_load_n(&l->max_segments, __ATOMIC_RELAXED);
	lim->max_discard_sectors = __atomic_load_n(&l->max_discard_sectors, __ATOMIC_RELAXED);
	lim->max_discard_segments = __atomic_load_n(&l->max_discard_segments, __ATOMIC_RELAXED);
	lim->max_write_zeroes_sectors =
		__atomic_load_n(&l->max_write_zeroes_sectors, __ATOMIC_RELAXED);
	lim->nomerges = __atomic_load_n(&l->nomerges, __ATOMIC_RELAXED);
}

int cxmq_os_queue_rq_affinity(void *host)
{
	return int(__atomic_load_n(&static_cast<const cxmq_limits *>(host)->rq_affinity,
				   __ATOMIC_RELAXED));
}

cxmq_u32 cxmq_os_trace_mask;

void cxmq_os_trace(enum cxmq_trace_event e, const struct cxmq_trace_rq *t, cxmq_u32 arg,
		   cxmq_u64 ns)
{
	if (e >= CXMQ_TRACE_NR_EVENTS || !(__atomic_load_n(&cxmq_os_trace_mask, __ATOMIC_RELAXED) & (1u << e)))
		report("cxmq_os_trace: event %d emitted while disabled", int(e));
	std::lock_guard<std::mutex> g(g_trace_m);
	g_trace.push_back(TraceEvent{e, *t, arg, ns});
}

void *cxmq_os_plug(void *owner, cxmq_size_t size, void (*unplug)(void *storage, int from_schedule))
{
	if (!t_plug.held)
		return nullptr;
	for (PlugCb &cb : t_plug.cbs)
		if (cb.owner == owner && cb.fn == unplug)
			return cb.storage;
	void *storage = alloc_zeroed(size);
	if (!storage)
		return nullptr;
	t_plug.cbs.push_back(PlugCb{owner, unplug, storage});
	return storage;
}

} // extern "C"
