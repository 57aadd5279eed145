// SPDX-License-Identifier: GPL-2.0
// Request timeouts (blk-mq's blk_mq_timeout_work, "timeout handling without per-device lists"):
// a request the backend holds has a deadline; the queue's timeout work scans the requests in
// flight by tag, asks the backend about each one past its deadline (Backend::timeout) and ends
// it with CXMQ_STS_TIMEOUT or gives it more time.
//
// A request's timeout state is one 64-bit word (Request::tstate): the deadline (the coarse
// clock in units of 2^20 ns, about a millisecond, compared with wrap-around as jiffies are), a
// generation that changes each time the request goes to the backend, and where it is. Every
// change after the start is one compare-and-swap, so a backend completion and a timeout never
// both end a request, and a scan never acts on a later use of a request than the one it saw.
#pragma once

#include "util.h"

namespace cxmq {
namespace rq_timeout {

enum State : u32 {
	kIdle = 0,     // not at the backend (free, staged, refused)
	kInFlight = 1, // the backend holds it; the deadline counts
	kComplete = 2, // ended (by the backend's completion, or by a timeout the backend agreed to)
	kTimedOut = 3, // its bios ended with a timeout; the backend still holds it, and its
		       // completion only frees it
};

constexpr u32 kUnitShift = 20; // deadline units: 2^20 ns
constexpr u64 make(u32 deadline, u32 gen, u32 st) { return (u64(deadline) << 32) | (gen << 2) | st; }
constexpr u32 state(u64 w) { return u32(w) & 3; }
constexpr u32 gen(u64 w) { return u32(w) >> 2; }
constexpr u32 deadline(u64 w) { return u32(w >> 32); }
constexpr u64 with_state(u64 w, u32 st) { return (w & ~u64(3)) | st; }
constexpr u64 with_deadline(u64 w, u32 d) { return (w & 0xffffffffull) | (u64(d) << 32); }
// time_after_eq(now, deadline), on 32 bits
constexpr bool expired(u32 now, u32 deadline) { return s32(now - deadline) >= 0; }
inline u32 now_units() { return u32(cxmq_os_now_coarse_ns() >> kUnitShift); }
inline u32 ms_to_units(u32 ms) { return u32(max((u64(ms) * 1000000) >> kUnitShift, u64(1))); }

} // namespace rq_timeout
} // namespace cxmq
