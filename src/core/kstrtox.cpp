// SPDX-License-Identifier: GPL-2.0
#include "kstrtox.h"

namespace cxmq {

namespace {

// A digit's value (hex digits of either case), 16 for anything else.
u32 digit(char ch)
{
	const u32 c = static_cast<u8>(ch), lc = c | 0x20;
	if (c >= '0' && c <= '9')
		return c - '0';
	if (lc >= 'a' && lc <= 'f')
		return lc - 'a' + 10;
	return 16;
}

// _kstrtoull(s, base): base 0 is found from the text as _parse_integer_fixup_radix does.
bool parse_digits(const char *s, u32 base, u64 *out)
{
	if (base == 0) {
		// s[2] is read only after an x
		base = 10;
		if (s[0] == '0') {
			base = (s[1] | 0x20) == 'x' && digit(s[2]) < 16 ? 16 : 8;
			if (base == 16)
				s += 2;
		}
	}
	u64 res = 0;
	u32 n = 0;
	bool overflow = false;
	for (u32 d; (d = digit(*s)) < base; s++, n++) {
		if (res > (~0ull - d) / base)
			overflow = true;
		res = res * base + d;
	}
	if (overflow || n == 0)
		return false;
	if (*s == '\n')
		s++;
	if (*s)
		return false;
	*out = res;
	return true;
}

} // namespace

bool parse_u64(const char *s, u64 *out)
{
	if (s[0] == '+')
		s++;
	return parse_digits(s, 0, out);
}

bool parse_u64_base10(const char *s, u64 *out)
{
	if (s[0] == '+')
		s++;
	return parse_digits(s, 10, out);
}

bool parse_s32(const char *s, s32 *out)
{
	u64 m;
	if (s[0] == '-') {
		if (!parse_digits(s + 1, 0, &m) || m > 0x80000000ull)
			return false;
		*out = static_cast<s32>(-s64(m));
		return true;
	}
	if (!parse_u64(s, &m) || m > 0x7fffffffull)
		return false;
	*out = static_cast<s32>(m);
	return true;
}

} // namespace cxmq
