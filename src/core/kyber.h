// SPDX-License-Identifier: GPL-2.0
// Kyber, with the semantics of Linux 6.1's block/kyber-iosched.c: requests are sorted into
// four domains (read, write, discard, other) by operation, and each domain has a token pool
// that bounds how many of its requests are out at the backend (256, 128, 64 and 16 tokens).
// A hardware queue serves the domains round-robin, a batch of up to 16, 8, 1 and 1 requests
// of each in turn; a domain out of tokens waits (its hardware queue runs again when one is
// freed). Completion latencies of reads, writes and discards go into histograms, total (from
// the request's making) and IO (from its dispatch), in buckets of a quarter of the domain's
// target; every window (100 ms after the first completion since the last) the histograms are
// read: if some domain's IO p90 is over its target the device is congested, and the domains
// whose total p99 is within target are throttled to p99/target of their tokens; a domain whose
// p99 is over target gets up to twice its tokens, up to its maximum. Asynchronous requests
// may use 75% of the request pool. Tunables read_lat_nsec (2 ms) and write_lat_nsec (10 ms).
//
// As the kernel has it, the token pools and the latency statistics are per queue; the request
// lists are per hardware queue (one lock each; the kernel adds per-CPU staging lists in front
// of them, which cxmq's hardware queues do not need: a request goes from its submitter
// straight to its hardware queue's domain list, where bios merge, newest first, up to 8
// tries). The window is evaluated by the first completion after it ends, not by a timer:
// without completions there is nothing new to evaluate.
#pragma once

#include "elevator.h"

namespace cxmq {

extern const ElevatorType kKyberType;

} // namespace cxmq
