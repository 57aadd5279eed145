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
//
// A timeout that ends the bios of a request the backend still holds (kTimedOut) owns the
// request while it does (kEndingTimedOut): the backend's answer meanwhile (its completion, or
// busy) only says so (kReturned), and the scan frees the request once its bios have ended. Only
// then can the request be used again: blk-mq's timeout work holds a request reference for the
// same reason (req_ref_inc_not_zero in blk_mq_check_expired).
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
	kEndingTimedOut = 4, // the timeout scan is ending its bios; the backend still holds it
	kReturned = 5,       // the backend gave it back while the scan ended its bios: the scan
			     // frees it
};

constexpr u32 kUnitShift = 20; // deadline units: 2^20 ns
constexpr u32 kStateBits = 3;
constexpr u32 kStateMask = (1u << kStateBits) - 1;
constexpr u64 make(u32 deadline, u32 gen, u32 st)
{
	return (u64(deadline) << 32) | u32(gen << kStateBits) | st;
}
constexpr u32 state(u64 w) { return u32(w) & kStateMask; }
constexpr u32 gen(u64 w) { return u32(w) >> kStateBits; }
constexpr u32 deadline(u64 w) { return u32(w >> 32); }
constexpr u64 with_state(u64 w, u32 st) { return (w & ~u64(kStateMask)) | st; }
constexpr u64 with_deadline(u64 w, u32 d) { return (w & 0xffffffffull) | (u64(d) << 32); }
// time_after_eq(now, deadline), on 32 bits
constexpr bool expired(u32 now, u32 deadline) { return s32(now - deadline) >= 0; }
inline u32 now_units() { return u32(cxmq_os_now_coarse_ns() >> kUnitShift); }
inline u32 ms_to_units(u32 ms) { return u32(max((u64(ms) * 1000000) >> kUnitShift, u64(1))); }

} // namespace rq_timeout
} // namespace cxmq
