// SPDX-License-Identifier: GPL-2.0
// Bounded text output for the files the core formats (mq/ attributes, debugfs statistics).
#pragma once

#include "util.h"

namespace cxmq {

// How much of user text a message quotes: its first line, at most max characters (none of NULL).
inline int first_line_len(const char *text, u32 max)
{
	u32 n = 0;
	while (text && n < max && text[n] && text[n] != '\n')
		n++;
	return static_cast<int>(n);
}

// Appends to a buffer of `size` bytes (NUL included); once full, further output is dropped, so
// it never overflows.
struct TextOut {
	char *buf;
	size_t size;
	size_t len = 0;

	TextOut(char *b, size_t s) : buf(b), size(s)
	{
		if (size)
			buf[0] = 0;
	}
	template <class... A> void put(const char *fmt, A... a)
	{
		if (len + 1 >= size)
			return;
		int n = cxmq_os_snprintf(buf + len, size - len, fmt, a...);
		if (n > 0)
			len = min(len + static_cast<size_t>(n), size - 1);
	}
	// Appends a line only if it fits whole while leaving `reserve` bytes free; false if not.
	template <class... A> bool put_line_reserving(size_t reserve, const char *fmt, A... a)
	{
		char line[96];
		int n = cxmq_os_snprintf(line, sizeof(line), fmt, a...);
		if (n <= 0 || static_cast<size_t>(n) >= sizeof(line))
			return false;
		if (len + static_cast<size_t>(n) + reserve + 1 > size)
			return false;
		put("%s", line);
		return true;
	}
	int result() const { return static_cast<int>(len); }
};

inline unsigned long long ull(u64 v) { return static_cast<unsigned long long>(v); }

} // namespace cxmq
