// SPDX-License-Identifier: GPL-2.0
#include "fault_inject.h"

#include "kstrtox.h"

namespace cxmq {

namespace {
// The next comma-separated field of *p into buf (NUL-terminated); false if it is empty or too
// long. *p ends past the comma, or at the end.
bool next_field(const char **p, char *buf, u32 size)
{
	u32 n = 0;
	while (**p && **p != ',') {
		if (n + 1 >= size)
			return false;
		buf[n++] = *(*p)++;
	}
	buf[n] = '\0';
	if (**p == ',')
		(*p)++;
	return n > 0;
}
bool decimal(const char *s) // digits only, or '-' then digits (parse_* accept 0x, +)
{
	if (*s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if ((*s < '0' || *s > '9') && !(s[0] == '\n' && !s[1]))
			return false;
	return true;
}
} // namespace

bool fault_parse(const char *text, cxmq_fault_config *fc)
{
	if (!text)
		return false;
	if (!text[0] || (text[0] == '\n' && !text[1])) {
		*fc = cxmq_fault_config{};
		return true;
	}
	const char *p = text;
	char f[4][24];
	for (u32 i = 0; i < 4; i++)
		if (!next_field(&p, f[i], sizeof(f[i])) || !decimal(f[i]))
			return false;
	if (*p || p[-1] == ',')
		return false; // a fifth field, or a comma at the end
	u64 interval, probability;
	s32 space, times;
	if (!parse_u64_base10(f[0], &interval) || !parse_u64_base10(f[1], &probability) ||
	    !parse_s32(f[2], &space) || !parse_s32(f[3], &times))
		return false;
	if (probability > 100 || space < 0 || times < -1)
		return false;
	fc->interval = interval;
	fc->probability = static_cast<u32>(probability);
	fc->space = space;
	fc->times = times;
	fc->armed = 1;
	return true;
}

void fault_format(const cxmq_fault_config &fc, TextOut &o)
{
	if (fc.armed)
		o.put("%llu,%u,%d,%d\n", ull(fc.interval), fc.probability, fc.space, fc.times);
	else
		o.put("\n");
}

void FaultAttr::set(const cxmq_fault_config &fc)
{
	store_relaxed(probability_, 0u); // off while it changes
	store_relaxed(interval_, fc.interval);
	store_relaxed(space_, fc.space);
	store_relaxed(times_, fc.times);
	store_relaxed(count_, u64(0));
	store_release(probability_, fc.armed ? fc.probability : 0u);
}

CXMQ_HOT bool FaultAttr::should_fail()
{
	const u32 probability = load_acquire(probability_);
	if (cxmq_likely(!probability))
		return false;
	s32 times = load_relaxed(times_);
	if (times == 0)
		return false;
	s32 space = load_relaxed(space_);
	while (space > 1) // atomic_read(space) > size: atomic_sub(size, space), pass
		if (__atomic_compare_exchange_n(&space_, &space, space - 1, false, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			return false;
	const u64 interval = load_relaxed(interval_);
	if (interval > 1 && add_relaxed(count_, u64(1)) % interval)
		return false;
	if (probability <= cxmq_os_random_below(100))
		return false;
	while (times > 0 && // atomic_dec_not_zero, unless -1
	       !__atomic_compare_exchange_n(&times_, &times, times - 1, false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
	return times != 0;
}

} // namespace cxmq
