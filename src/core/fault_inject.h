// SPDX-License-Identifier: GPL-2.0
// Fault injection points with the kernel's semantics (lib/fault-inject.c's should_fail) set from
// null_blk's text ("<interval>,<probability>,<space>,<times>", setup_fault_attr): the core's own,
// since Debian's kernel has no CONFIG_FAULT_INJECTION.
#pragma once

#include "cxmq/core.h"
#include "text.h"
#include "util.h"

namespace cxmq {

// null_blk's text into *fc: four decimal numbers separated by commas (one trailing newline
// allowed), probability 0..100, space 0..2147483647, times -1..2147483647; the empty text (or
// a lone newline) disarms. False on anything else, *fc unchanged.
bool fault_parse(const char *text, cxmq_fault_config *fc);
// "<interval>,<probability>,<space>,<times>\n", or "\n" when disarmed.
void fault_format(const cxmq_fault_config &fc, TextOut &o);

// One point's state; any CPU may ask should_fail() while another sets it.
class FaultAttr {
public:
	void set(const cxmq_fault_config &fc);
	// should_fail(attr, 1): nothing when disarmed or out of times; the first space - 1
	// requests pass; then every interval-th of those that get this far, with the probability;
	// each failure spends one of times (unless -1).
	bool should_fail();

private:
	u64 interval_ = 0;
	u32 probability_ = 0; // 0: never (disarmed)
	s32 space_ = 0;
	s32 times_ = 0;
	u64 count_ = 0;
};

} // namespace cxmq
