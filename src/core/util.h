// SPDX-License-Identifier: GPL-2.0
// Freestanding building blocks of the cxmq core: integer types, invariant checks, atomics,
// intrusive lists, RAII lock guards and explicit, non-throwing allocation.
#pragma once

#include "cxmq/os.h"

#ifdef CXMQ_HOSTED
#include <new>
#else
// Placement new only: there is no global operator new in cxmq, so an accidental plain `new`
// fails to link instead of calling an allocator that cannot take the allocation context.
inline void *operator new(cxmq_size_t, void *p) noexcept { return p; }
#endif

namespace cxmq {

using u8 = cxmq_u8;
using u16 = cxmq_u16;
using u32 = cxmq_u32;
using u64 = cxmq_u64;
using s32 = cxmq_s32;
using s64 = cxmq_s64;
using size_t = cxmq_size_t;

constexpr size_t kCacheLine = 64;

// Reports a broken invariant, then stops with an invalid-opcode trap (an oops in the kernel,
// SIGILL in user space). The trap is inline so that objtool sees the dead end.
[[noreturn]] inline void bug(const char *file, int line, const char *what)
{
	cxmq_os_bug_report(file, line, what);
	__builtin_trap();
}

#define CXMQ_BUG_ON(cond)                                                                  \
	do {                                                                               \
		if (__builtin_expect(!!(cond), 0))                                         \
			::cxmq::bug(__FILE__, __LINE__, #cond);                            \
	} while (0)

#define CXMQ_WARN_ON(cond)                                                                 \
	({                                                                                 \
		bool __c = !!(cond);                                                       \
		if (__builtin_expect(__c, 0))                                              \
			cxmq_os_warn(__FILE__, __LINE__, #cond);                           \
		__c;                                                                       \
	})

#define cxmq_likely(x) __builtin_expect(!!(x), 1)
#define cxmq_unlikely(x) __builtin_expect(!!(x), 0)

template <class T> struct RemoveRef { using type = T; };
template <class T> struct RemoveRef<T &> { using type = T; };
template <class T> struct RemoveRef<T &&> { using type = T; };
template <class T> constexpr T &&forward(typename RemoveRef<T>::type &t) noexcept
{
	return static_cast<T &&>(t);
}

template <class T> constexpr T min(T a, T b) { return a < b ? a : b; }
template <class T> constexpr T max(T a, T b) { return a > b ? a : b; }
constexpr u64 round_up(u64 v, u64 a) { return (v + a - 1) / a * a; }
constexpr bool is_power_of_2(u64 v) { return v && !(v & (v - 1)); }
// Population count without a libgcc call (the kernel is built without -mpopcnt).
constexpr u32 popcount64(u64 v)
{
	v = v - ((v >> 1) & 0x5555555555555555ull);
	v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
	v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return static_cast<u32>((v * 0x0101010101010101ull) >> 56);
}

// ---- atomics: __atomic builtins on data that only the core touches ----
template <class T> struct Identity { using type = T; };
template <class T> using NoDeduce = typename Identity<T>::type;
template <class T> inline T load_relaxed(const T &v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); }
template <class T> inline T load_acquire(const T &v) { return __atomic_load_n(&v, __ATOMIC_ACQUIRE); }
template <class T> inline void store_relaxed(T &v, NoDeduce<T> x) { __atomic_store_n(&v, x, __ATOMIC_RELAXED); }
template <class T> inline void store_release(T &v, NoDeduce<T> x) { __atomic_store_n(&v, x, __ATOMIC_RELEASE); }
template <class T> inline T add_relaxed(T &v, NoDeduce<T> x) { return __atomic_add_fetch(&v, x, __ATOMIC_RELAXED); }
template <class T> inline T fetch_or(T &v, NoDeduce<T> x) { return __atomic_fetch_or(&v, x, __ATOMIC_SEQ_CST); }
template <class T> inline T fetch_and(T &v, NoDeduce<T> x) { return __atomic_fetch_and(&v, x, __ATOMIC_SEQ_CST); }
inline void full_barrier() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
// smp_mb__after_atomic: a full barrier after an atomic read-modify-write (on x86 the locked
// instruction is one already, so only the compiler is held back).
inline void barrier_after_rmw()
{
#if defined(__x86_64__) || defined(__i386__)
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
#else
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

// ---- allocation ----
// Every object of the core is made with make<T>() and destroyed with destroy(): zeroed memory on
// the requested NUMA node, nullptr on failure (never an exception), destructor then free.
template <class T, class... Args> T *make(int node, Args &&...args) noexcept
{
	void *p = cxmq_os_zalloc(sizeof(T), node);
	if (!p)
		return nullptr;
	return new (p) T(forward<Args>(args)...);
}

template <class T> void destroy(T *obj) noexcept
{
	if (!obj)
		return;
	obj->~T();
	cxmq_os_free(obj);
}

// ---- intrusive doubly-linked list ----
struct ListNode {
	ListNode *next = nullptr;
	ListNode *prev = nullptr;
	bool linked() const { return next != nullptr; }
};

class List {
public:
	List() { head_.next = head_.prev = &head_; }
	List(const List &) = delete;
	List &operator=(const List &) = delete;
	~List() { CXMQ_WARN_ON(!empty()); }

	bool empty() const { return head_.next == &head_; }
	void push_back(ListNode *n) { insert(n, head_.prev, &head_); }
	void push_front(ListNode *n) { insert(n, &head_, head_.next); }
	ListNode *front() const { return empty() ? nullptr : head_.next; }
	ListNode *pop_front()
	{
		if (empty())
			return nullptr;
		ListNode *n = head_.next;
		unlink(n);
		return n;
	}
	static void unlink(ListNode *n)
	{
		n->prev->next = n->next;
		n->next->prev = n->prev;
		n->next = n->prev = nullptr;
	}
	// Moves every node of `other` to the end of this list, leaving `other` empty.
	void splice_tail(List &other)
	{
		if (other.empty())
			return;
		ListNode *first = other.head_.next, *last = other.head_.prev;
		first->prev = head_.prev;
		head_.prev->next = first;
		last->next = &head_;
		head_.prev = last;
		other.head_.next = other.head_.prev = &other.head_;
	}
	// Moves every node of `other` to the front of this list, leaving `other` empty.
	void splice_front(List &other)
	{
		if (other.empty())
			return;
		ListNode *first = other.head_.next, *last = other.head_.prev;
		last->next = head_.next;
		head_.next->prev = last;
		first->prev = &head_;
		head_.next = first;
		other.head_.next = other.head_.prev = &other.head_;
	}
	template <class F> void for_each(F f) const
	{
		for (ListNode *n = head_.next; n != &head_; n = n->next)
			f(n);
	}
	// Newest first, while f(node) returns true.
	template <class F> void for_each_reverse(F f) const
	{
		for (ListNode *n = head_.prev; n != &head_; n = n->prev)
			if (!f(n))
				return;
	}

private:
	static void insert(ListNode *n, ListNode *prev, ListNode *next)
	{
		n->prev = prev;
		n->next = next;
		prev->next = n;
		next->prev = n;
	}
	ListNode head_;
};

// ---- lock-free singly-linked stack (many producers, one consumer taking everything) ----
struct LListNode {
	LListNode *next = nullptr;
};

class LList {
public:
	// Returns true when the list was empty (llist_add: the one who must wake the consumer).
	bool push(LListNode *n)
	{
		LListNode *head = load_relaxed(head_);
		do {
			n->next = head;
		} while (!__atomic_compare_exchange_n(&head_, &head, n, true, __ATOMIC_RELEASE,
						      __ATOMIC_RELAXED));
		return head == nullptr;
	}
	// Takes every node, oldest first.
	LListNode *take_all_fifo()
	{
		LListNode *n = __atomic_exchange_n(&head_, static_cast<LListNode *>(nullptr),
						   __ATOMIC_ACQUIRE);
		LListNode *fifo = nullptr;
		while (n) {
			LListNode *next = n->next;
			n->next = fifo;
			fifo = n;
			n = next;
		}
		return fifo;
	}
	bool empty() const { return load_relaxed(head_) == nullptr; }

private:
	LListNode *head_ = nullptr;
};

// ---- locks ----
class SpinLock {
public:
	SpinLock() = default;
	SpinLock(const SpinLock &) = delete;
	SpinLock &operator=(const SpinLock &) = delete;
	~SpinLock() { cxmq_os_lock_destroy(lock_); }
	bool init(int node)
	{
		lock_ = cxmq_os_lock_create(node);
		return lock_ != nullptr;
	}
	unsigned long lock() { return cxmq_os_lock_irqsave(lock_); }
	void unlock(unsigned long flags) { cxmq_os_unlock_irqrestore(lock_, flags); }

private:
	cxmq_os_lock *lock_ = nullptr;
};

class LockGuard {
public:
	explicit LockGuard(SpinLock &l) : lock_(l), flags_(l.lock()) {}
	~LockGuard() { lock_.unlock(flags_); }
	LockGuard(const LockGuard &) = delete;
	LockGuard &operator=(const LockGuard &) = delete;

private:
	SpinLock &lock_;
	unsigned long flags_;
};

class Mutex {
public:
	Mutex() = default;
	Mutex(const Mutex &) = delete;
	Mutex &operator=(const Mutex &) = delete;
	~Mutex() { cxmq_os_mutex_destroy(m_); }
	bool init()
	{
		m_ = cxmq_os_mutex_create();
		return m_ != nullptr;
	}
	void lock() { cxmq_os_mutex_lock(m_); }
	void unlock() { cxmq_os_mutex_unlock(m_); }

private:
	cxmq_os_mutex *m_ = nullptr;
};

class MutexGuard {
public:
	explicit MutexGuard(Mutex &m) : m_(m) { m_.lock(); }
	~MutexGuard() { m_.unlock(); }
	MutexGuard(const MutexGuard &) = delete;
	MutexGuard &operator=(const MutexGuard &) = delete;

private:
	Mutex &m_;
};

// Recovers the object that holds an intrusive member (standard-layout types only).
#define CXMQ_CONTAINER_OF(ptr, T, member)                                                  \
	reinterpret_cast<T *>(reinterpret_cast<char *>(ptr) - __builtin_offsetof(T, member))

} // namespace cxmq
