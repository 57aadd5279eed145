// SPDX-License-Identifier: GPL-2.0
#include "elevator.h"
#include "deadline.h"
#include "kyber.h"
#include "kstrtox.h"
#include "text.h"

namespace cxmq {

const ElevatorType *const kElevatorTypes[] = {
	&kDeadlineType,
	&kKyberType,
};
const u32 kNrElevatorTypes = sizeof(kElevatorTypes) / sizeof(kElevatorTypes[0]);

namespace {
bool same_name(const char *name, const char *text, size_t len)
{
	size_t i = 0;
	for (; i < len && name[i]; i++)
		if (name[i] != text[i])
			return false;
	return i == len && !name[i];
}
} // namespace

bool elevator_lookup(const char *name, size_t len, const ElevatorType **type)
{
	if (len && name[len - 1] == '\n')
		len--;
	*type = nullptr;
	if (same_name("none", name, len))
		return true;
	for (u32 i = 0; i < kNrElevatorTypes; i++) {
		const ElevatorType *t = kElevatorTypes[i];
		if (same_name(t->name, name, len) || (t->alias && same_name(t->alias, name, len))) {
			*type = kElevatorTypes[i];
			return true;
		}
	}
	return false;
}

namespace {
// Logs that a tunable refused `buf`, quoting at most a line of it (31 bytes).
void refuse(const char *sched, const char *name, const char *buf, const char *must)
{
	int n = 0;
	while (n < 31 && buf[n] && buf[n] != '\n')
		n++;
	cxmq_os_log(CXMQ_LOG_ERR, "cxmq: %s: %s=%.*s is invalid: must be %s\n", sched, name, n, buf,
		    must);
}
} // namespace

int elevator_index(const ElevatorType *type)
{
	for (u32 i = 0; i < kNrElevatorTypes; i++)
		if (kElevatorTypes[i] == type)
			return int(i);
	return -1;
}

void elevator_names(char *buf, size_t size)
{
	TextOut o(buf, size);
	o.put("none");
	for (u32 i = 0; i < kNrElevatorTypes; i++)
		o.put(", %s", kElevatorTypes[i]->name);
}

int elv_parse_int(const char *sched, const char *name, const char *buf, s32 lo, s32 hi, s32 *out)
{
	s32 v;
	if (parse_s32(buf, &v) && v >= lo && v <= hi) {
		*out = v;
		return 0;
	}
	char must[32];
	cxmq_os_snprintf(must, sizeof(must), "%d..%d", lo, hi);
	refuse(sched, name, buf, must);
	return -CXMQ_EINVAL;
}

int elv_parse_u64(const char *sched, const char *name, const char *buf, const char *what,
		  u64 *out)
{
	if (parse_u64_base10(buf, out))
		return 0;
	refuse(sched, name, buf, what);
	return -CXMQ_EINVAL;
}

} // namespace cxmq
