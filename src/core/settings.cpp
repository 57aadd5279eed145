// SPDX-License-Identifier: GPL-2.0
// The settings table (settings.h) and the C entry points that read and write through it
// (include/cxmq/core.h): module parameters, device attributes, cxmq_config_check.
#include "settings.h"
#include "text.h"
#include "elevator.h"
#include "fault_inject.h"

namespace cxmq {
namespace settings {
namespace {

constexpr s64 kDefaultGb = 250;          // null_blk's
constexpr s64 kMaxMb = s64(CXMQ_MAX_GB) * 1024;
constexpr s64 kMaxCompletionNsec = 10000000000ll; // 10 s

template <class T> constexpr Type type_of();
template <> constexpr Type type_of<cxmq_u32>() { return Type::U32; }
template <> constexpr Type type_of<cxmq_u64>() { return Type::U64; }
template <> constexpr Type type_of<cxmq_s32>() { return Type::S32; }
template <> constexpr Type type_of<cxmq_fault_config>() { return Type::Fault; }

// A field of struct cxmq_params: its type, and where it is.
#define FIELD(m)                                                                           \
	type_of<decltype(static_cast<cxmq_params *>(nullptr)->m)>(),                       \
		static_cast<u16>(__builtin_offsetof(cxmq_params, m))

// clang-format off
constexpr Setting kTable[] = {
// name           flags                                             field                 scale
//	default           kind            min         max                     unit       words
{"gb",            kParam,                                           FIELD(dev.size_mb),   1024,
	kDefaultGb,       Kind::Range,    1,          CXMQ_MAX_GB,            "GiB",     nullptr},
{"nr_devices",    kParam,                                           FIELD(nr_devices),    1,
	1,                Kind::Range,    0,          CXMQ_MAX_DEVICES,       "devices", nullptr},
{"home_node",     kParam | kAttr | kConfig | kNoWho,                FIELD(dev.home_node), 1,
	-1,               Kind::Node,     0,          0,                      "",        nullptr},
{"size",          kAttr | kConfig | kUnitInConfig,                  FIELD(dev.size_mb),   1,
	kDefaultGb * 1024, Kind::Range,   1,          kMaxMb,                 "MiB",
	"1..1073741824 MiB (gb=1..1048576)"},
{"bs",            kParam | kConfig,                                 FIELD(dev.bs),        1,
	512,              Kind::PowerOf2, CXMQ_MIN_BS, CXMQ_MAX_BS,           "bytes",   nullptr},
{"blocksize",     kAttr,                                            FIELD(dev.bs),        1,
	512,              Kind::PowerOf2, CXMQ_MIN_BS, CXMQ_MAX_BS,           "bytes",   nullptr},
{"hw_queue_depth", kParam | kAttr | kConfig,                        FIELD(dev.hw_queue_depth), 1,
	64,               Kind::Range,    1,          CXMQ_MAX_QUEUE_DEPTH,   "tags",    nullptr},
{"irqmode",       kParam | kAttr | kConfig,                         FIELD(dev.irqmode),   1,
	0,                Kind::Range,    0,          2,                      "",
	"0 (none), 1 (softirq) or 2 (timer)"},
{"completion_nsec", kParam | kAttr | kConfig | kTimerOnly,          FIELD(dev.completion_nsec), 1,
	10000,            Kind::Range,    1,          kMaxCompletionNsec,     "ns",
	"1..10000000000 (10 s)"},
{"memory_backed", kParam | kAttr | kConfig,                         FIELD(dev.memory_backed), 1,
	0,                Kind::Range,    0,          1,                      "",        "0 or 1"},
{"submit_queues", kParam | kAttr | kLive | kConfig | kPossibleCpus, FIELD(dev.submit_queues), 1,
	1,                Kind::Range,    1,          0,                      "queues",  nullptr},
{"poll_queues",   kParam | kAttr | kLive | kConfig | kPossibleCpus, FIELD(dev.poll_queues), 1,
	0,                Kind::Range,    0,          0,                      "queues",  nullptr},
{"max_sectors",   kParam | kAttr | kConfig | kZeroOk,               FIELD(dev.max_sectors), 1,
	0,                Kind::Range,    8,          8388607,                "sectors", nullptr},
{"shared_tags",   kParam | kAttr | kConfig,                         FIELD(dev.shared_tags), 1,
	0,                Kind::Range,    0,          1,                      "",        "0 or 1"},
{"scheduler",     kParam | kAttr | kConfig,                         FIELD(dev.sched),     1,
	0,                Kind::Elevator, 0,          0,                      "",        nullptr},
{"timeout",       kParam | kAttr | kLive | kConfig,                 FIELD(dev.timeout),   1,
	0,                Kind::Fault,    0,          0,                      "",        nullptr},
{"requeue",       kParam | kAttr | kLive | kConfig,                 FIELD(dev.requeue),   1,
	0,                Kind::Fault,    0,          0,                      "",        nullptr},
{"busy_every",    kParam,                                           FIELD(busy_every),    1,
	0,                Kind::Range,    0,          0xffffffffll,           "requests", nullptr},
};
// clang-format on
#undef FIELD

constexpr u32 kCount = sizeof(kTable) / sizeof(kTable[0]);

// ---- what the table must hold, checked when it is compiled ----
constexpr bool same(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}
constexpr u64 type_max(Type t)
{
	return t == Type::U32 ? 0xffffffffull : t == Type::U64 ? ~0ull : 0x7fffffffull;
}
constexpr u32 type_size(Type t)
{
	return t == Type::Fault ? sizeof(cxmq_fault_config) : t == Type::U64 ? 8 : 4;
}
constexpr bool in_dev(const Setting &s)
{
	return s.offset + type_size(s.type) <= sizeof(cxmq_dev_config);
}
// Words that give a range start with the table's: "1..10000000000 (10 s)".
constexpr u32 put_dec(char *buf, u32 n, s64 v)
{
	char digits[20] = {};
	u32 k = 0;
	do
		digits[k++] = static_cast<char>('0' + v % 10);
	while (v /= 10);
	while (k)
		buf[n++] = digits[--k];
	return n;
}
constexpr bool words_agree(const Setting &s)
{
	bool range = false;
	for (const char *p = s.words; p && *p; p++)
		range = range || (p[0] == '.' && p[1] == '.');
	if (!range || s.kind != Kind::Range)
		return true;
	char want[48] = {};
	u32 n = put_dec(want, 0, s.min);
	want[n++] = '.';
	want[n++] = '.';
	n = put_dec(want, n, s.max);
	for (u32 i = 0; i < n; i++)
		if (s.words[i] != want[i])
			return false;
	return true;
}

constexpr bool table_ok()
{
	u32 config_rows = 0; // (cxmq_config_defaults sets only the fields that have one)
	for (u32 i = 0; i < kCount; i++) {
		const Setting &s = kTable[i];
		for (u32 j = 0; j < i; j++)
			if (same(s.name, kTable[j].name))
				return false; // names are unique
		if (!(s.flags & (kParam | kAttr)) || s.scale == 0)
			return false;
		if ((s.flags & (kAttr | kConfig)) && !in_dev(s))
			return false; // device settings are fields of cxmq_dev_config
		if ((s.flags & kLive) && !(s.flags & kAttr))
			return false;
		if (s.type == Type::S32 && s.scale != 1)
			return false;
		const bool numeric = s.kind != Kind::Node && s.kind != Kind::Elevator &&
				     s.kind != Kind::Fault;
		if ((s.kind == Kind::Fault) != (s.type == Type::Fault))
			return false;
		if (numeric && (s.min < 0 || (!(s.flags & kPossibleCpus) && s.max < s.min)))
			return false;
		if (numeric && u64(s.max) > type_max(s.type) / s.scale)
			return false; // every accepted value can be stored
		if (!words_agree(s))
			return false;
		if (s.flags & kConfig) {
			config_rows++;
			for (u32 j = 0; j < kCount; j++) // one setting per field in config checks
				if (j != i && (kTable[j].flags & kConfig) &&
				    kTable[j].offset == s.offset)
					return false;
		}
		for (u32 j = 0; j < kCount; j++) // settings of one field share its default
			if (kTable[j].offset == s.offset &&
			    kTable[j].def * s64(kTable[j].scale) != s.def * s64(s.scale))
				return false;
	}
	return config_rows > 0;
}
static_assert(__builtin_offsetof(cxmq_params, dev) == 0, "device settings index cxmq_params");
static_assert(table_ok(), "the settings table is inconsistent");

// ---- values ----

// A value as parsed or stored, in the setting's unit: unsigned settings up to 2^64 - 1,
// signed ones within s64.
struct Value {
	u64 bits;
	bool is_signed;

	bool below(s64 x) const { return is_signed ? s64(bits) < x : x > 0 && bits < u64(x); }
	bool above(s64 x) const { return is_signed ? s64(bits) > x : x < 0 || bits > u64(x); }
	bool is(s64 x) const { return !below(x) && !above(x); }
	// As device attribute messages always showed it: an s64, saturated.
	s64 saturated() const
	{
		return is_signed || bits <= 0x7fffffffffffffffull ? s64(bits) : 0x7fffffffffffffffll;
	}
};

Value value_of(const Setting &s, s64 x) { return {u64(x), s.type == Type::S32}; }

long long ll(s64 v) { return static_cast<long long>(v); }

char *field(const Setting &s, void *base) { return static_cast<char *>(base) + s.offset; }
const char *field(const Setting &s, const void *base)
{
	return static_cast<const char *>(base) + s.offset;
}

Value load(const Setting &s, const void *base)
{
	const char *f = field(s, base);
	switch (s.type) {
	case Type::U32:
		return {*reinterpret_cast<const u32 *>(f) / s.scale, false};
	case Type::U64:
		return {*reinterpret_cast<const u64 *>(f) / s.scale, false};
	case Type::S32:
		break;
	case Type::Fault: // no number: fault_parse/fault_format
		return {0, false};
	}
	return {u64(s64(*reinterpret_cast<const s32 *>(f))), true};
}

bool fits(const Setting &s, Value v)
{
	return s.type == Type::S32 || v.bits <= type_max(s.type) / s.scale;
}

void store(const Setting &s, void *base, Value v)
{
	char *f = field(s, base);
	switch (s.type) {
	case Type::U32:
		*reinterpret_cast<u32 *>(f) = static_cast<u32>(v.bits * s.scale);
		break;
	case Type::U64:
		*reinterpret_cast<u64 *>(f) = v.bits * s.scale;
		break;
	case Type::S32:
		*reinterpret_cast<s32 *>(f) = static_cast<s32>(s64(v.bits));
		break;
	case Type::Fault: // only the default comes here: disarmed
		*reinterpret_cast<cxmq_fault_config *>(f) = cxmq_fault_config{};
		break;
	}
}

bool parse(const Setting &s, const char *text, Value *v)
{
	if (!text)
		return false;
	if (s.kind == Kind::Elevator) {
		const ElevatorType *t;
		if (!elevator_lookup(text, __builtin_strlen(text), &t))
			return false;
		*v = {u64(elevator_index(t) + 1), false};
		return true;
	}
	if (s.type == Type::S32) {
		s32 x;
		if (!parse_s32(text, &x))
			return false;
		*v = {u64(s64(x)), true};
		return true;
	}
	u64 x;
	if (!parse_u64(text, &x))
		return false;
	*v = {x, false};
	return true;
}

u32 possible_cpus()
{
	u32 n = 0;
	for (u32 cpu = 0; cpu < cxmq_os_nr_cpu_ids(); cpu++)
		n += cxmq_os_cpu_possible(cpu) ? 1 : 0;
	return n;
}

// Whether v is accepted where it is given (kTimerOnly in configurations: see config_check).
bool accepted(const Setting &s, Value v, Where w)
{
	if ((s.flags & kTimerOnly) && w == Where::Param)
		return true;
	switch (s.kind) {
	case Kind::Node:
		return v.is(-1) || (!v.below(0) && v.below(cxmq_os_nr_node_ids()) &&
				    cxmq_os_node_online(static_cast<int>(s64(v.bits))));
	case Kind::PowerOf2:
		if (v.is_signed && v.below(0))
			return false;
		return is_power_of_2(v.bits) && !v.below(s.min) && !v.above(s.max);
	case Kind::Elevator:
		return !v.above(kNrElevatorTypes);
	case Kind::Fault: // checked by fault_parse
		return true;
	case Kind::Range:
		break;
	}
	if ((s.flags & kZeroOk) && v.is(0))
		return true;
	if (v.below(s.min))
		return false;
	if (s.flags & kPossibleCpus)
		return w != Where::Device || !v.above(possible_cpus()); // else capped later
	return !v.above(s.max);
}

// The "must be ..." text.
void put_accepted(TextOut &o, const Setting &s, Where w)
{
	if (w != Where::Device && s.words) {
		o.put("%s", s.words);
		return;
	}
	switch (s.kind) {
	case Kind::Node:
		o.put("-1 or an online node below %u", cxmq_os_nr_node_ids());
		return;
	case Kind::PowerOf2:
		o.put("a power of two in %lld..%lld", ll(s.min), ll(s.max));
		return;
	case Kind::Elevator: {
		char names[128];
		elevator_names(names, sizeof(names));
		o.put("%s", names);
		return;
	}
	case Kind::Fault:
		o.put("<interval>,<probability>,<space>,<times>");
		return;
	case Kind::Range:
		break;
	}
	if ((s.flags & kPossibleCpus) && w != Where::Device) {
		o.put("at least %lld", ll(s.min));
		return;
	}
	o.put("%s%lld..%lld", (s.flags & kZeroOk) ? "0 or " : "", ll(s.min),
	      ll((s.flags & kPossibleCpus) ? s64(possible_cpus()) : s.max));
}

// Logs that v is refused for s.
void refuse(const Setting &s, Value v, Where w, const char *who)
{
	char value[40], must[96];
	TextOut vo(value, sizeof(value));
	if (w == Where::Device)
		vo.put("%lld", ll(v.saturated()));
	else if (v.is_signed)
		vo.put("%lld", ll(s64(v.bits)));
	else
		vo.put("%llu", ull(v.bits));
	if (w == Where::Config && (s.flags & kUnitInConfig))
		vo.put(" %s", s.unit);
	TextOut mo(must, sizeof(must));
	put_accepted(mo, s, w);
	const bool named = w == Where::Device && who && !(s.flags & kNoWho);
	cxmq_os_log(CXMQ_LOG_ERR, "cxmq: %s%s%s=%s is invalid: must be %s\n", named ? who : "",
		    named ? ": " : "", s.name, value, must);
}

// Parses a fault injection point (Kind::Fault) into its field, or logs the refusal.
bool parse_fault(const Setting &s, const char *text, void *base, Where w, const char *who)
{
	if (fault_parse(text, reinterpret_cast<cxmq_fault_config *>(field(s, base))))
		return true;
	const int n = first_line_len(text, 48);
	const bool named = w == Where::Device && who;
	cxmq_os_log(CXMQ_LOG_ERR,
		    "cxmq: %s%s%s=%.*s is invalid: must be <interval>,<probability>,<space>,<times> "
		    "(probability 0..100, space >= 0, times >= -1) or empty\n",
		    named ? who : "", named ? ": " : "", s.name, n, text ? text : "");
	return false;
}

// Logs that text, which names nothing (Kind::Elevator), is refused for s (a line of it at most).
void refuse_name(const Setting &s, const char *text, Where w, const char *who)
{
	char must[96];
	TextOut mo(must, sizeof(must));
	put_accepted(mo, s, w);
	const int n = first_line_len(text, 32);
	const bool named = w == Where::Device && who && !(s.flags & kNoWho);
	cxmq_os_log(CXMQ_LOG_ERR, "cxmq: %s%s%s=%.*s is invalid: must be %s\n", named ? who : "",
		    named ? ": " : "", s.name, n, text, must);
}

// Checks v, logging a refusal.
bool check(const Setting &s, Value v, Where w, const char *who)
{
	if (accepted(s, v, w))
		return true;
	refuse(s, v, w, who);
	return false;
}

// For messages: "<who>: " or nothing.
const char *prefix(const char *who) { return who ? who : ""; }
const char *colon(const char *who) { return who ? ": " : ""; }

void format(const Setting &s, const void *base, Where w, TextOut &o)
{
	Value v = load(s, base);
	if (s.kind == Kind::Fault)
		fault_format(*reinterpret_cast<const cxmq_fault_config *>(field(s, base)), o);
	else if (s.kind == Kind::Elevator)
		o.put("%s\n", v.bits && v.bits <= kNrElevatorTypes ? kElevatorTypes[v.bits - 1]->name
								 : "none");
	else if (w == Where::Device)
		o.put("%lld\n", ll(v.saturated()));
	else if (v.is_signed)
		o.put("%lld\n", ll(s64(v.bits)));
	else
		o.put("%llu\n", ull(v.bits));
}

} // namespace

const Setting *table(u32 *count)
{
	*count = kCount;
	return kTable;
}

const Setting *get(u32 i) { return i < kCount ? &kTable[i] : nullptr; }

void config_defaults(cxmq_dev_config *cfg)
{
	*cfg = cxmq_dev_config{};
	for (const Setting &s : kTable)
		if (s.flags & kConfig)
			store(s, cfg, value_of(s, s.def));
}

int config_check(cxmq_dev_config *cfg)
{
	for (const Setting &s : kTable) {
		if (!(s.flags & kConfig))
			continue;
		if ((s.flags & kTimerOnly) && cfg->irqmode != 2)
			continue;
		if (s.kind == Kind::Fault) // checked when parsed: nothing else to check
			continue;
		if (!check(s, load(s, cfg), Where::Config, nullptr))
			return -CXMQ_EINVAL;
	}
	// across settings
	if (cfg->size_mb * 1024 * 1024 % cfg->bs) {
		cxmq_os_log(CXMQ_LOG_ERR, "cxmq: size is not a multiple of bs=%u\n", cfg->bs);
		return -CXMQ_EINVAL;
	}
	// valid: now cap what is capped
	for (const Setting &s : kTable) {
		if (!(s.flags & kConfig) || !(s.flags & kPossibleCpus))
			continue;
		const Value v = load(s, cfg);
		const u32 possible = possible_cpus();
		if (v.above(possible)) {
			cxmq_os_log(CXMQ_LOG_WARN,
				    "cxmq: %s=%llu is more than the %u possible CPUs: using %u\n",
				    s.name, ull(v.bits), possible, possible);
			store(s, cfg, value_of(s, possible));
		}
	}
	return 0;
}

} // namespace settings
} // namespace cxmq

using namespace cxmq;
using namespace cxmq::settings;

extern "C" {

unsigned int cxmq_setting_count(void)
{
	return kCount;
}

const char *cxmq_setting_name(unsigned int i)
{
	return i < kCount ? kTable[i].name : nullptr;
}

unsigned int cxmq_setting_flags(unsigned int i)
{
	return i < kCount ? kTable[i].flags & (kParam | kAttr | kLive) : 0;
}

const char *cxmq_setting_unit(unsigned int i)
{
	return i < kCount ? kTable[i].unit : nullptr;
}

int cxmq_setting_find(const char *name)
{
	for (u32 i = 0; name && i < kCount; i++)
		if (same(kTable[i].name, name))
			return static_cast<int>(i);
	return -CXMQ_EINVAL;
}

int cxmq_setting_parse(unsigned int i, const char *text, struct cxmq_dev_config *cfg,
		       const char *who, int powered)
{
	if (i >= kCount || !(kTable[i].flags & kAttr))
		return -CXMQ_EINVAL;
	const Setting &s = kTable[i];
	if (s.kind == Kind::Fault) { // (always kLive: a test hook)
		cxmq_dev_config next = *cfg;
		if (!parse_fault(s, text, &next, Where::Device, who))
			return -CXMQ_EINVAL;
		*cfg = next;
		return 0;
	}
	Value v;
	if (!parse(s, text, &v)) {
		if (s.kind == Kind::Elevator && text)
			refuse_name(s, text, Where::Device, who);
		else
			cxmq_os_log(CXMQ_LOG_ERR, "cxmq: %s%s%s: not a number\n", prefix(who),
				    colon(who), s.name);
		return -CXMQ_EINVAL;
	}
	if (!check(s, v, Where::Device, who))
		return -CXMQ_EINVAL;
	if (powered && !(s.flags & kLive)) {
		cxmq_os_log(CXMQ_LOG_ERR,
			    "cxmq: %s%s%s cannot change while powered on (write 0 to power first)\n",
			    prefix(who), colon(who), s.name);
		return -CXMQ_EBUSY;
	}
	store(s, cfg, v); // accepted values fit (table_ok)
	return 0;
}

int cxmq_setting_format(unsigned int i, const struct cxmq_dev_config *cfg, char *buf,
			cxmq_size_t size)
{
	if (i >= kCount || !(kTable[i].flags & kAttr))
		return -CXMQ_EINVAL;
	TextOut o(buf, size);
	format(kTable[i], cfg, Where::Device, o);
	return o.result();
}

void cxmq_params_defaults(struct cxmq_params *p)
{
	*p = cxmq_params{};
	config_defaults(&p->dev);
	for (const Setting &s : kTable)
		if (!in_dev(s))
			store(s, p, value_of(s, s.def));
}

int cxmq_param_parse(unsigned int i, const char *text, struct cxmq_params *p, int check_now)
{
	if (i >= kCount || !(kTable[i].flags & kParam))
		return -CXMQ_EINVAL;
	const Setting &s = kTable[i];
	if (s.kind == Kind::Fault)
		return parse_fault(s, text, p, Where::Param, nullptr) ? 0 : -CXMQ_EINVAL;
	Value v;
	if (!parse(s, text, &v)) {
		if (s.kind == Kind::Elevator && text)
			refuse_name(s, text, Where::Param, nullptr);
		return -CXMQ_EINVAL;
	}
	// A value too large to store is checked at once: refused, named as its range says.
	const bool fit = fits(s, v);
	if ((check_now || !fit) && !check(s, v, Where::Param, nullptr))
		return -CXMQ_EINVAL;
	if (!fit)
		return -CXMQ_EINVAL; // accepted but not storable: above a capped maximum
	store(s, p, v);
	return 0;
}

int cxmq_params_check(struct cxmq_params *p)
{
	// The parameters cxmq_config_check does not see (by their name, in their unit) first.
	for (const Setting &s : kTable)
		if ((s.flags & kParam) && !(s.flags & kConfig) &&
		    !check(s, load(s, p), Where::Param, nullptr))
			return -CXMQ_EINVAL;
	return config_check(&p->dev);
}

int cxmq_param_format(unsigned int i, const struct cxmq_params *p, char *buf, cxmq_size_t size)
{
	if (i >= kCount || !(kTable[i].flags & kParam))
		return -CXMQ_EINVAL;
	TextOut o(buf, size);
	format(kTable[i], p, Where::Param, o);
	return o.result();
}

} // extern "C"
