// SPDX-License-Identifier: GPL-2.0
// mq-deadline, with the semantics of Linux 6.1's block/mq-deadline.c: for each priority class
// (RT, BE, IDLE) reads and writes each wait in a FIFO with a deadline and in a sector-sorted
// tree. Dispatch serves the highest class with work; within it, a batch continues in sector
// order for up to fifo_batch requests; a new batch prefers reads unless writes have been passed
// over writes_starved times; it starts from the oldest request when that one has expired (or
// the sorted walk ran out), else where the last batch of its direction left off. A request of a
// lower class waiting longer than prio_aging_expire goes first. Bios merge into queued
// requests: the one-hit cache, back merges through the sorted tree, front merges too when
// front_merges is 1. Writes may use async_depth of the request pool.
//
// Per hardware queue, not per queue as in the kernel (one lock for the whole disk there): each
// hardware queue has its own FIFOs, trees, batch state and lock, so CPUs mapped to different
// hardware queues never share a scheduler lock. Requests compete where they wait for the same
// hardware queue, as the seed says schedulers do ("only between requests in the same queue");
// with one hardware queue it is the kernel's scheduler exactly. The tunables are per queue.
// Time is the coarse clock (the last tick's): the kernel keeps these deadlines in jiffies, and
// a clocksource read per request is what an emulated HPET makes expensive.
#pragma once

#include "elevator.h"

namespace cxmq {

extern const ElevatorType kDeadlineType;

} // namespace cxmq
