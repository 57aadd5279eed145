// SPDX-License-Identifier: GPL-2.0
// Numbers from user text, as the kernel's kstrtox.c reads them (module parameters, configfs
// and sysfs stores): NUL-terminated, one trailing newline allowed, nothing else after the
// digits, false on overflow.
#pragma once

#include "util.h"

namespace cxmq {

// kstrtoull(s, 0): an optional '+', then decimal digits, 0x and hex digits, or 0 and octal
// digits.
bool parse_u64(const char *s, u64 *out);
// kstrtoull(s, 10): an optional '+', then decimal digits.
bool parse_u64_base10(const char *s, u64 *out);
// kstrtoint(s, 0): as parse_u64, with an optional '-' instead of the '+', within s32.
bool parse_s32(const char *s, s32 *out);

} // namespace cxmq
