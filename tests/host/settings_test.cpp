// SPDX-License-Identifier: GPL-2.0
// The settings table (src/core/settings.cpp) through its C API: every setting's bounds, as a
// device attribute and as a module parameter; malformed text; nothing changes on a failure;
// only live settings change while powered; the messages word for word as the module and
// configfs printed them before the table; the parser against kstrtoull/kstrtoint; and the
// shim's declarations and the README against the table.
#include "test_util.h"

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "settings.h"

using namespace host;
namespace cs = cxmq::settings;

namespace {

class Settings : public HostTest {};

int idx(const char *name)
{
	int i = cxmq_setting_find(name);
	EXPECT_GE(i, 0) << name;
	return i;
}

std::vector<std::string> errors()
{
	std::vector<std::string> out;
	for (const LogLine &l : logs())
		if (l.level == CXMQ_LOG_ERR)
			out.push_back(l.text);
	return out;
}

// The one error logged since the last clear_logs (empty if none, "<n errors>" if more).
std::string the_error()
{
	std::vector<std::string> e = errors();
	if (e.size() == 1)
		return e[0];
	return e.empty() ? "" : "<" + std::to_string(e.size()) + " errors>";
}

cxmq_dev_config defaults()
{
	cxmq_dev_config cfg;
	cxmq_config_defaults(&cfg);
	return cfg;
}

cxmq_params param_defaults()
{
	cxmq_params p;
	memset(&p, 0x5a, sizeof(p));
	cxmq_params_defaults(&p);
	return p;
}

std::string show(int i, const cxmq_dev_config &cfg)
{
	char buf[64];
	int n = cxmq_setting_format(i, &cfg, buf, sizeof(buf));
	EXPECT_GE(n, 0);
	EXPECT_EQ(size_t(n), strlen(buf));
	return buf;
}

std::string show_param(int i, const cxmq_params &p)
{
	char buf[64];
	int n = cxmq_param_format(i, &p, buf, sizeof(buf));
	EXPECT_GE(n, 0);
	EXPECT_EQ(size_t(n), strlen(buf));
	return buf;
}

// Writes text to attribute `name` of cfg as device "d"; on failure checks cfg is unchanged.
int store(const char *name, const std::string &text, cxmq_dev_config *cfg, int powered = 0,
	  const char *who = "d")
{
	cxmq_dev_config before = *cfg;
	int ret = cxmq_setting_parse(idx(name), text.c_str(), cfg, who, powered);
	if (ret) {
		EXPECT_EQ(memcmp(&before, cfg, sizeof(*cfg)), 0)
			<< name << "=" << text << ": a refused write changed the configuration";
	}
	return ret;
}

int store_param(const char *name, const std::string &text, cxmq_params *p, int check)
{
	cxmq_params before = *p;
	int ret = cxmq_param_parse(idx(name), text.c_str(), p, check);
	if (ret) {
		EXPECT_EQ(memcmp(&before, p, sizeof(*p)), 0)
			<< name << "=" << text << ": a refused parameter changed the parameters";
	}
	return ret;
}

uint32_t possible_cpus()
{
	uint32_t n = 0;
	for (uint32_t c = 0; c < topology().nr_cpu_ids; c++)
		n += topology().possible[c] ? 1 : 0;
	return n;
}

// What a setting accepts where it is given, for walking the table.
struct Bounds {
	int64_t min, max;
};
Bounds bounds(const cs::Setting &s, cs::Where w)
{
	if (s.kind == cs::Kind::Node)
		return {-1, int64_t(cxmq_os_nr_node_ids()) - 1};
	if (s.flags & cs::kPossibleCpus)
		return {s.min, w == cs::Where::Device ? int64_t(possible_cpus()) : int64_t(~0u)};
	return {s.min, s.max};
}

const char *const kGarbage[] = {
	"", "\n", " 1", "1 ", "1\n\n", "abc", "12abc", "0x", "0xg", "08", "1.5", "1e3", "--1", "+-1",
	"+", "-", "none", "timer", "yes", "on", "true", "0b1", "18446744073709551616",
	"99999999999999999999999",
};

// ---------------------------------------------------------------------------------- table ---

TEST_F(Settings, CApiShowsTheTable)
{
	uint32_t n = 0;
	const cs::Setting *t = cs::table(&n);
	ASSERT_EQ(cxmq_setting_count(), n);
	ASSERT_GT(n, 0u);
	for (uint32_t i = 0; i < n; i++) {
		SCOPED_TRACE(t[i].name);
		EXPECT_STREQ(cxmq_setting_name(i), t[i].name);
		EXPECT_EQ(cxmq_setting_find(t[i].name), int(i));
		EXPECT_STREQ(cxmq_setting_unit(i), t[i].unit);
		EXPECT_EQ(cxmq_setting_flags(i),
			  t[i].flags & (CXMQ_SETTING_PARAM | CXMQ_SETTING_ATTR | CXMQ_SETTING_LIVE));
		EXPECT_NE(cxmq_setting_flags(i) & (CXMQ_SETTING_PARAM | CXMQ_SETTING_ATTR), 0u);
	}
	EXPECT_EQ(cxmq_setting_name(n), nullptr);
	EXPECT_EQ(cxmq_setting_unit(n), nullptr);
	EXPECT_EQ(cxmq_setting_flags(n), 0u);
	EXPECT_EQ(cs::get(n), nullptr);
	EXPECT_EQ(cxmq_setting_find("nope"), -CXMQ_EINVAL);
	EXPECT_EQ(cxmq_setting_find("GB"), -CXMQ_EINVAL);
	EXPECT_EQ(cxmq_setting_find("g"), -CXMQ_EINVAL);
	EXPECT_EQ(cxmq_setting_find("gbx"), -CXMQ_EINVAL);
	EXPECT_EQ(cxmq_setting_find(""), -CXMQ_EINVAL);
	EXPECT_EQ(cxmq_setting_find(nullptr), -CXMQ_EINVAL);
}

TEST_F(Settings, NullBlksNamesWhereNullBlkHasThem)
{
	std::set<std::string> params, attrs, live;
	for (uint32_t i = 0; i < cxmq_setting_count(); i++) {
		unsigned f = cxmq_setting_flags(i);
		if (f & CXMQ_SETTING_PARAM)
			params.insert(cxmq_setting_name(i));
		if (f & CXMQ_SETTING_ATTR)
			attrs.insert(cxmq_setting_name(i));
		if (f & CXMQ_SETTING_LIVE)
			live.insert(cxmq_setting_name(i));
	}
	EXPECT_EQ(params, (std::set<std::string>{"gb", "bs", "nr_devices", "submit_queues",
						 "hw_queue_depth", "irqmode", "completion_nsec",
						 "memory_backed", "home_node", "busy_every",
						 "max_sectors", "scheduler", "poll_queues", "timeout",
						 "requeue", "shared_tags"}));
	EXPECT_EQ(attrs, (std::set<std::string>{"size", "blocksize", "submit_queues",
						"hw_queue_depth", "irqmode", "completion_nsec",
						"memory_backed", "home_node", "max_sectors",
						"scheduler", "poll_queues", "timeout", "requeue",
						"shared_tags"}));
	EXPECT_EQ(live, (std::set<std::string>{"submit_queues", "poll_queues", "timeout",
					       "requeue"}));
	EXPECT_STREQ(cxmq_setting_unit(idx("gb")), "GiB");
	EXPECT_STREQ(cxmq_setting_unit(idx("size")), "MiB");
	EXPECT_STREQ(cxmq_setting_unit(idx("completion_nsec")), "ns");
	EXPECT_STREQ(cxmq_setting_unit(idx("max_sectors")), "sectors");
}

TEST_F(Settings, DefaultsAreNullBlksAndShared)
{
	cxmq_params p = param_defaults();
	cxmq_dev_config cfg;
	memset(&cfg, 0xa5, sizeof(cfg));
	cxmq_config_defaults(&cfg);
	EXPECT_EQ(memcmp(&p.dev, &cfg, sizeof(cfg)), 0) << "the parameters' device defaults";
	EXPECT_EQ(p.nr_devices, 1u);
	EXPECT_EQ(p.busy_every, 0u);
	EXPECT_EQ(cfg.max_sectors, 0u);
	const std::pair<const char *, const char *> want[] = {
		{"gb", "250\n"},         {"bs", "512\n"},           {"nr_devices", "1\n"},
		{"submit_queues", "1\n"}, {"hw_queue_depth", "64\n"}, {"irqmode", "0\n"},
		{"completion_nsec", "10000\n"}, {"memory_backed", "0\n"}, {"home_node", "-1\n"},
		{"busy_every", "0\n"},   {"max_sectors", "0\n"},
	};
	for (auto &w : want)
		EXPECT_EQ(show_param(idx(w.first), p), w.second) << w.first;
	EXPECT_EQ(show(idx("size"), cfg), "256000\n");
	EXPECT_EQ(show(idx("blocksize"), cfg), "512\n");
	EXPECT_EQ(show(idx("home_node"), cfg), "-1\n");
	// Every setting's default is accepted where it is given.
	for (uint32_t i = 0; i < cxmq_setting_count(); i++) {
		SCOPED_TRACE(cxmq_setting_name(i));
		if (cxmq_setting_flags(i) & CXMQ_SETTING_ATTR) {
			cxmq_dev_config c = cfg;
			EXPECT_EQ(store(cxmq_setting_name(i), show(i, cfg), &c), 0);
			EXPECT_EQ(memcmp(&c, &cfg, sizeof(c)), 0);
		}
		if (cxmq_setting_flags(i) & CXMQ_SETTING_PARAM) {
			cxmq_params q = p;
			EXPECT_EQ(store_param(cxmq_setting_name(i), show_param(i, p), &q, 1), 0);
			EXPECT_EQ(memcmp(&q, &p, sizeof(q)), 0);
		}
	}
	EXPECT_EQ(cxmq_params_check(&p), 0);
	EXPECT_TRUE(logs().empty());
}

// ---------------------------------------------------------------------------------- parser --

TEST_F(Settings, ParsesAsKstrtoullBase0)
{
	struct Case {
		const char *text;
		bool ok;
		uint64_t v;
	} cases[] = {
		{"0", true, 0},
		{"1", true, 1},
		{"+7", true, 7},
		{"42\n", true, 42},
		{"0x10", true, 16},
		{"0X1f", true, 31},
		{"0xABCdef", true, 0xabcdef},
		{"010", true, 8},
		{"0777\n", true, 511},
		{"00", true, 0},
		{"18446744073709551615", true, ~0ull},
		{"0xffffffffffffffff", true, ~0ull},
		{"01777777777777777777777", true, ~0ull},
		{"18446744073709551616", false, 0},
		{"0x10000000000000000", false, 0},
		{"02000000000000000000000", false, 0},
		{"", false, 0},
		{"\n", false, 0},
		{"+", false, 0},
		{"++1", false, 0},
		{"-1", false, 0},
		{"-0", false, 0},
		{" 1", false, 0},
		{"1 ", false, 0},
		{"1\n\n", false, 0},
		{"1\n2", false, 0},
		{"0x", false, 0},
		{"0xg", false, 0},
		{"0x\n", false, 0},
		{"08", false, 0},
		{"09", false, 0},
		{"1a", false, 0},
		{"a", false, 0},
		{"12abc", false, 0},
		{"1.0", false, 0},
		{"0b1", false, 0},
		{"\t1", false, 0},
	};
	for (const Case &c : cases) {
		SCOPED_TRACE(std::string("\"") + c.text + "\"");
		uint64_t v = 12345;
		EXPECT_EQ(cxmq::parse_u64(c.text, &v), c.ok);
		EXPECT_EQ(v, c.ok ? c.v : 12345u) << "the result is written only on success";
	}
}

TEST_F(Settings, ParsesAsKstrtointBase0)
{
	struct Case {
		const char *text;
		bool ok;
		int32_t v;
	} cases[] = {
		{"0", true, 0},
		{"-1", true, -1},
		{"-0", true, 0},
		{"+3", true, 3},
		{"-0x10\n", true, -16},
		{"-010", true, -8},
		{"2147483647", true, 2147483647},
		{"-2147483648", true, INT32_MIN},
		{"0x7fffffff", true, 2147483647},
		{"2147483648", false, 0},
		{"-2147483649", false, 0},
		{"4294967295", false, 0},
		{"-18446744073709551616", false, 0},
		{"--1", false, 0},
		{"-+1", false, 0},
		{"+-1", false, 0},
		{"-", false, 0},
		{"- 1", false, 0},
		{"1-", false, 0},
		{"", false, 0},
	};
	for (const Case &c : cases) {
		SCOPED_TRACE(std::string("\"") + c.text + "\"");
		int32_t v = 12345;
		EXPECT_EQ(cxmq::parse_s32(c.text, &v), c.ok);
		EXPECT_EQ(v, c.ok ? c.v : 12345);
	}
}

// ------------------------------------------------------------------ walking every setting ---

// Every device attribute: min and max accepted (and shown back), min-1 and max+1 refused with a
// message naming it, garbage refused as "not a number"; nothing changes on a failure.
TEST_F(Settings, EveryAttributeBounds)
{
	uint32_t n = 0;
	const cs::Setting *t = cs::table(&n);
	for (uint32_t i = 0; i < n; i++) {
		const cs::Setting &s = t[i];
		if (!(s.flags & cs::kAttr))
			continue;
		if (s.kind == cs::Kind::Elevator || s.kind == cs::Kind::Fault)
			continue; // a name or a text, not a number: SchedulerIsAName, FaultsTakeNullBlksText
		SCOPED_TRACE(s.name);
		const Bounds b = bounds(s, cs::Where::Device);
		const std::string named = (s.flags & cs::kNoWho) ? "cxmq: " : "cxmq: d: ";
		auto refused = [&](const std::string &text, const std::string &shown) {
			SCOPED_TRACE("refused: " + text);
			cxmq_dev_config cfg = defaults();
			clear_logs();
			EXPECT_EQ(store(s.name, text, &cfg), -CXMQ_EINVAL);
			EXPECT_EQ(the_error().rfind(named + s.name + "=" + shown + " is invalid: must be ",
						    0),
				  0u)
				<< the_error();
		};
		auto accepted = [&](int64_t v) {
			SCOPED_TRACE("accepted: " + std::to_string(v));
			cxmq_dev_config cfg = defaults();
			clear_logs();
			EXPECT_EQ(store(s.name, std::to_string(v), &cfg), 0);
			EXPECT_EQ(show(int(i), cfg), std::to_string(v) + "\n");
			EXPECT_TRUE(errors().empty());
		};
		accepted(b.min);
		accepted(b.max);
		if (s.flags & cs::kZeroOk) {
			accepted(0);
			refused("1", "1");
		}
		if (b.min > 0 || s.type == cs::Type::S32)
			refused(std::to_string(b.min - 1), std::to_string(b.min - 1));
		refused(std::to_string(b.max + 1), std::to_string(b.max + 1));
		if (s.type != cs::Type::S32) { // (beyond s32: not a number, below)
			refused("9223372036854775807", "9223372036854775807");
			refused("18446744073709551615", "9223372036854775807"); // shown saturated
		}
		if (s.kind == cs::Kind::PowerOf2)
			refused(std::to_string(b.min + 1), std::to_string(b.min + 1));
		for (const char *g : kGarbage) {
			SCOPED_TRACE(std::string("garbage: \"") + g + "\"");
			cxmq_dev_config cfg = defaults();
			clear_logs();
			EXPECT_EQ(store(s.name, g, &cfg), -CXMQ_EINVAL);
			EXPECT_EQ(the_error(), std::string("cxmq: d: ") + s.name + ": not a number\n");
		}
		// the same in hex and octal, with a newline, as echo writes it
		cxmq_dev_config cfg = defaults();
		std::ostringstream hex;
		hex << "0x" << std::hex << b.max << "\n";
		if (b.max >= 0) {
			EXPECT_EQ(store(s.name, hex.str(), &cfg), 0) << hex.str();
			EXPECT_EQ(show(int(i), cfg), std::to_string(b.max) + "\n");
		}
		if (b.max > 0) {
			std::ostringstream oct;
			oct << "0" << std::oct << b.max;
			cfg = defaults();
			EXPECT_EQ(store(s.name, oct.str(), &cfg), 0) << oct.str();
			EXPECT_EQ(show(int(i), cfg), std::to_string(b.max) + "\n");
		}
	}
}

// Every module parameter: min and max accepted and shown back; min-1 and max+1 refused at
// once when checked now (a write at runtime), else stored and refused by cxmq_params_check;
// garbage refused without a message (the kernel prints its own).
TEST_F(Settings, EveryParameterBounds)
{
	uint32_t n = 0;
	const cs::Setting *t = cs::table(&n);
	for (uint32_t i = 0; i < n; i++) {
		const cs::Setting &s = t[i];
		if (!(s.flags & cs::kParam))
			continue;
		if (s.kind == cs::Kind::Elevator || s.kind == cs::Kind::Fault)
			continue; // a name or a text, not a number: SchedulerIsAName, FaultsTakeNullBlksText
		SCOPED_TRACE(s.name);
		const Bounds b = bounds(s, cs::Where::Param);
		const bool timer_only = s.flags & cs::kTimerOnly;
		auto accepted = [&](int64_t v) {
			SCOPED_TRACE("accepted: " + std::to_string(v));
			for (int check : {0, 1}) {
				cxmq_params p = param_defaults();
				clear_logs();
				EXPECT_EQ(store_param(s.name, std::to_string(v), &p, check), 0);
				EXPECT_EQ(show_param(int(i), p), std::to_string(v) + "\n");
				EXPECT_TRUE(errors().empty());
			}
		};
		auto refused = [&](int64_t v) {
			SCOPED_TRACE("refused: " + std::to_string(v));
			const std::string msg = "cxmq: " + std::string(s.name) + "=" + std::to_string(v) +
						" is invalid: must be ";
			cxmq_params p = param_defaults();
			clear_logs();
			EXPECT_EQ(store_param(s.name, std::to_string(v), &p, 1), -CXMQ_EINVAL);
			EXPECT_EQ(the_error().rfind(msg, 0), 0u) << the_error();
			// at load: stored, then refused at init, which changes nothing
			p = param_defaults();
			clear_logs();
			ASSERT_EQ(store_param(s.name, std::to_string(v), &p, 0), 0);
			EXPECT_TRUE(errors().empty());
			cxmq_params before = p;
			EXPECT_EQ(cxmq_params_check(&p), -CXMQ_EINVAL);
			EXPECT_EQ(the_error().rfind(msg, 0), 0u) << the_error();
			EXPECT_EQ(memcmp(&before, &p, sizeof(p)), 0);
		};
		accepted(b.min);
		accepted(b.max);
		if (timer_only) {
			accepted(0); // with irqmode=0 (see CompletionNsecMattersOnlyWithTimers)
			accepted(b.max + 1);
		} else {
			if (b.min > 0 || s.type == cs::Type::S32)
				refused(b.min - 1);
			if (!(s.flags & cs::kPossibleCpus) && uint64_t(b.max) < 0xffffffffull)
				refused(b.max + 1);
		}
		if (s.flags & cs::kZeroOk) {
			accepted(0);
			refused(1);
		}
		for (const char *g : kGarbage) {
			SCOPED_TRACE(std::string("garbage: \"") + g + "\"");
			for (int check : {0, 1}) {
				cxmq_params p = param_defaults();
				clear_logs();
				EXPECT_EQ(store_param(s.name, g, &p, check), -CXMQ_EINVAL);
				EXPECT_TRUE(logs().empty()) << "the kernel names the parameter";
			}
		}
		cxmq_params p = param_defaults();
		EXPECT_EQ(cxmq_param_parse(i, nullptr, &p, 0), -CXMQ_EINVAL);
	}
}

// Values too large for their field are refused at once, even at load.
TEST_F(Settings, ParametersTooLargeToStore)
{
	cxmq_params p = param_defaults();
	clear_logs();
	EXPECT_EQ(store_param("gb", "1152921504606846976", &p, 0), -CXMQ_EINVAL); // 2^60 GiB
	EXPECT_EQ(the_error(), "cxmq: gb=1152921504606846976 is invalid: must be 1..1048576\n");
	clear_logs();
	EXPECT_EQ(store_param("bs", "4294971392", &p, 0), -CXMQ_EINVAL); // 2^32 + 4096
	EXPECT_EQ(the_error(), "cxmq: bs=4294971392 is invalid: must be a power of two in 512..4096\n");
	clear_logs();
	EXPECT_EQ(store_param("busy_every", "4294967296", &p, 0), -CXMQ_EINVAL);
	EXPECT_EQ(the_error(), "cxmq: busy_every=4294967296 is invalid: must be 0..4294967295\n");
	// accepted as "at least 1" (capped later) but too large for the field: refused, the kernel
	// names it
	clear_logs();
	EXPECT_EQ(store_param("submit_queues", "4294967296", &p, 0), -CXMQ_EINVAL);
	EXPECT_TRUE(logs().empty());
	EXPECT_EQ(store_param("submit_queues", "4294967295", &p, 0), 0);
	EXPECT_EQ(p.dev.submit_queues, 4294967295u);
}

TEST_F(Settings, GbIsSizeInGiB)
{
	cxmq_params p = param_defaults();
	ASSERT_EQ(store_param("gb", "16", &p, 0), 0);
	EXPECT_EQ(p.dev.size_mb, 16u * 1024);
	EXPECT_EQ(show_param(idx("gb"), p), "16\n");
	EXPECT_EQ(show(idx("size"), p.dev), "16384\n");
	ASSERT_EQ(store_param("gb", "1048576", &p, 1), 0);
	EXPECT_EQ(p.dev.size_mb, 1048576ull * 1024);
	ASSERT_EQ(cxmq_params_check(&p), 0);
	// size is MiB, of the same field
	cxmq_dev_config cfg = p.dev;
	ASSERT_EQ(store("size", "1", &cfg), 0);
	EXPECT_EQ(cfg.size_mb, 1u);
	ASSERT_EQ(store("blocksize", "4096", &cfg), 0);
	EXPECT_EQ(cfg.bs, 4096u);
	EXPECT_EQ(cxmq_config_check(&cfg), 0);
}

TEST_F(Settings, ParamsCheckUsesConfigCheck)
{
	set_topology(simple_topology(3));
	cxmq_params p = param_defaults();
	ASSERT_EQ(store_param("submit_queues", "64", &p, 0), 0);
	ASSERT_EQ(store_param("nr_devices", "0", &p, 0), 0);
	clear_logs();
	EXPECT_EQ(cxmq_params_check(&p), 0);
	EXPECT_EQ(p.dev.submit_queues, 3u) << "capped";
	EXPECT_EQ(show_param(idx("submit_queues"), p), "3\n");
	EXPECT_TRUE(logged(CXMQ_LOG_WARN,
			   "cxmq: submit_queues=64 is more than the 3 possible CPUs: using 3\n"));
	EXPECT_TRUE(errors().empty());
}

TEST_F(Settings, CompletionNsecMattersOnlyWithTimers)
{
	for (const char *v : {"0", "10000000001"}) {
		SCOPED_TRACE(v);
		cxmq_params p = param_defaults();
		ASSERT_EQ(store_param("completion_nsec", v, &p, 0), 0);
		EXPECT_EQ(cxmq_params_check(&p), 0) << "irqmode=0 does not use it";
		ASSERT_EQ(store_param("irqmode", "1", &p, 0), 0);
		EXPECT_EQ(cxmq_params_check(&p), 0) << "irqmode=1 does not use it";
		ASSERT_EQ(store_param("irqmode", "2", &p, 0), 0);
		clear_logs();
		EXPECT_EQ(cxmq_params_check(&p), -CXMQ_EINVAL);
		EXPECT_EQ(the_error(), std::string("cxmq: completion_nsec=") + v +
					       " is invalid: must be 1..10000000000 (10 s)\n");
	}
	// the attribute is checked when written, whatever irqmode is
	cxmq_dev_config cfg = defaults();
	clear_logs();
	EXPECT_EQ(store("completion_nsec", "0", &cfg), -CXMQ_EINVAL);
	EXPECT_EQ(the_error(), "cxmq: d: completion_nsec=0 is invalid: must be 1..10000000000\n");
}

// What tests/vm/integration.sh gives insmod: refused (at init) with a message naming it.
TEST_F(Settings, BadModuleParametersAsInsmodGetsThem)
{
	const char *bad[] = {"gb=0", "gb=2000000", "bs=3000", "bs=256", "bs=8192",
			     "hw_queue_depth=0", "hw_queue_depth=4097", "irqmode=7",
			     "submit_queues=0", "nr_devices=5000", "home_node=77",
			     "max_sectors=7", "max_sectors=8388608"};
	for (const char *arg : bad) {
		SCOPED_TRACE(arg);
		std::string name(arg, strchr(arg, '=')), val(strchr(arg, '=') + 1);
		cxmq_params p = param_defaults();
		clear_logs();
		ASSERT_EQ(store_param(name.c_str(), val, &p, 0), 0) << "checked at init";
		EXPECT_EQ(cxmq_params_check(&p), -CXMQ_EINVAL);
		// as the VM test greps: "cxmq: <name>=.* is invalid: must be"
		const std::string e = the_error();
		EXPECT_EQ(e.rfind("cxmq: " + name + "=", 0), 0u) << e;
		EXPECT_NE(e.find(" is invalid: must be"), std::string::npos) << e;
	}
}

// ----------------------------------------------------------------------------- powered ---

TEST_F(Settings, PoweredOnlyLiveSettingsChange)
{
	uint32_t n = 0;
	const cs::Setting *t = cs::table(&n);
	for (uint32_t i = 0; i < n; i++) {
		const cs::Setting &s = t[i];
		if (!(s.flags & cs::kAttr))
			continue;
		if (s.kind == cs::Kind::Elevator || s.kind == cs::Kind::Fault)
			continue; // a name or a text, not a number: SchedulerIsAName, FaultsTakeNullBlksText
		SCOPED_TRACE(s.name);
		const Bounds b = bounds(s, cs::Where::Device);
		const cxmq_dev_config cfg0 = defaults();
		// a valid value other than the current one
		int64_t v = b.max;
		if (show(int(i), cfg0) == std::to_string(v) + "\n")
			v = b.min;
		cxmq_dev_config cfg = cfg0;
		clear_logs();
		int ret = store(s.name, std::to_string(v), &cfg, 1);
		if (s.flags & cs::kLive) {
			EXPECT_EQ(ret, 0);
			EXPECT_EQ(show(int(i), cfg), std::to_string(v) + "\n");
		} else {
			EXPECT_EQ(ret, -CXMQ_EBUSY);
			EXPECT_EQ(the_error(), std::string("cxmq: d: ") + s.name +
						       " cannot change while powered on (write 0 "
						       "to power first)\n");
			cfg = cfg0;
			EXPECT_EQ(store(s.name, show(int(i), cfg0), &cfg, 1), -CXMQ_EBUSY)
				<< "even to the value it has";
		}
		// invalid values and garbage are EINVAL, powered or not (checked first)
		cfg = cfg0;
		EXPECT_EQ(store(s.name, std::to_string(b.max + 1), &cfg, 1), -CXMQ_EINVAL);
		EXPECT_EQ(store(s.name, "abc", &cfg, 1), -CXMQ_EINVAL);
		// unpowered: any valid value
		cfg = cfg0;
		EXPECT_EQ(store(s.name, std::to_string(v), &cfg, 0), 0);
	}
}

// scheduler: a name (a trailing newline allowed), shown as the scheduler's name; an unknown one
// is refused with the names there are, and changes nothing; not while powered.
// timeout= and requeue= take null_blk's "<interval>,<probability>,<space>,<times>" (as the
// kernel's setup_fault_attr reads it), shown back in that form; the empty text disarms; they
// may change while powered (test hooks).
TEST_F(Settings, FaultsTakeNullBlksText)
{
	for (const char *name : {"timeout", "requeue"}) {
		SCOPED_TRACE(name);
		const int i = idx(name);
		cxmq_params p = param_defaults();
		EXPECT_EQ(show_param(i, p), "\n") << "disarmed by default";
		EXPECT_EQ(store_param(name, "1,100,0,20", &p, 1), 0);
		EXPECT_EQ(show_param(i, p), "1,100,0,20\n");
		const cxmq_fault_config &fc = std::string(name) == "timeout" ? p.dev.timeout : p.dev.requeue;
		EXPECT_EQ(fc.interval, 1u);
		EXPECT_EQ(fc.probability, 100u);
		EXPECT_EQ(fc.space, 0);
		EXPECT_EQ(fc.times, 20);
		EXPECT_EQ(fc.armed, 1u);
		EXPECT_EQ(cxmq_params_check(&p), 0);
		cxmq_dev_config cfg = defaults();
		for (const char *ok : {"1,10,0,-1", "0,0,0,0", "18446744073709551615,100,2147483647,2147483647\n"}) {
			EXPECT_EQ(store(name, ok, &cfg, 1), 0) << ok;
			std::string want(ok);
			if (want.back() != '\n')
				want += '\n';
			EXPECT_EQ(show(i, cfg), want);
		}
		for (const char *bad : {"1,101,0,1", "1,100,-1,1", "1,100,0,-2", "1,100,0", "1,100,0,1,5",
					"1,100,0,1,", ",1,1,1", "0x1,1,1,1", "+1,1,1,1", "1, 1,1,1", "a,1,1,1",
					"1,100,0,2147483648", "18446744073709551616,1,1,1"}) {
			clear_logs();
			EXPECT_EQ(store(name, bad, &cfg, 1), -CXMQ_EINVAL) << bad;
			EXPECT_EQ(the_error().rfind(std::string("cxmq: d: ") + name + "=" + bad +
							    " is invalid: must be <interval>,<probability>,"
							    "<space>,<times>",
						    0),
				  0u)
				<< the_error();
			clear_logs();
			EXPECT_EQ(store_param(name, bad, &p, 0), -CXMQ_EINVAL) << bad;
			EXPECT_EQ(the_error().rfind(std::string("cxmq: ") + name + "=" + bad + " is invalid", 0), 0u);
		}
		EXPECT_EQ(show(i, cfg), "18446744073709551615,100,2147483647,2147483647\n") << "unchanged";
		EXPECT_EQ(store(name, "", &cfg, 1), 0);
		EXPECT_EQ(show(i, cfg), "\n");
		EXPECT_EQ(store(name, "1,1,1,1", &cfg, 1), 0);
		EXPECT_EQ(store(name, "\n", &cfg, 1), 0);
		EXPECT_EQ(show(i, cfg), "\n");
	}
}

TEST_F(Settings, SchedulerIsAName)
{
	const int i = idx("scheduler");
	cxmq_params p = param_defaults();
	EXPECT_EQ(show_param(i, p), "none\n");
	EXPECT_EQ(store_param("scheduler", "mq-deadline", &p, 1), 0);
	EXPECT_EQ(show_param(i, p), "mq-deadline\n");
	EXPECT_EQ(p.dev.sched, 1u);
	EXPECT_EQ(store_param("scheduler", "deadline", &p, 0), 0); // the kernel's alias
	EXPECT_EQ(show_param(i, p), "mq-deadline\n");
	EXPECT_EQ(store_param("scheduler", "kyber\n", &p, 0), 0);
	EXPECT_EQ(show_param(i, p), "kyber\n");
	clear_logs();
	EXPECT_EQ(store_param("scheduler", "bfq", &p, 0), -CXMQ_EINVAL);
	EXPECT_EQ(the_error(), "cxmq: scheduler=bfq is invalid: must be none, mq-deadline, kyber\n");
	EXPECT_EQ(show_param(i, p), "kyber\n");
	EXPECT_EQ(cxmq_params_check(&p), 0);

	cxmq_dev_config cfg = defaults();
	EXPECT_EQ(cfg.sched, 0u);
	EXPECT_EQ(store("scheduler", "kyber", &cfg), 0);
	EXPECT_EQ(show(i, cfg), "kyber\n");
	for (const char *bad : {"", "Kyber", "kyber ", "none\n\n", "1"}) {
		clear_logs();
		EXPECT_EQ(store("scheduler", bad, &cfg), -CXMQ_EINVAL) << bad;
		const std::string line = std::string(bad).substr(0, std::string(bad).find('\n'));
		EXPECT_EQ(the_error().rfind("cxmq: d: scheduler=" + line + " is invalid", 0), 0u)
			<< the_error();
	}
	EXPECT_EQ(show(i, cfg), "kyber\n");
	EXPECT_EQ(store("scheduler", "none", &cfg, 1), -CXMQ_EBUSY);
	EXPECT_EQ(store("scheduler", "none\n", &cfg), 0);
	EXPECT_EQ(cfg.sched, 0u);
	cfg.sched = 3; // past the list: cxmq_config_check refuses it
	clear_logs();
	EXPECT_EQ(cxmq_config_check(&cfg), -CXMQ_EINVAL);
	EXPECT_EQ(the_error(), "cxmq: scheduler=3 is invalid: must be none, mq-deadline, kyber\n");
}

TEST_F(Settings, OnlyTheirOwnKind)
{
	cxmq_dev_config cfg = defaults();
	cxmq_params p = param_defaults();
	char buf[32];
	for (const char *param_only : {"gb", "bs", "nr_devices", "busy_every"}) {
		SCOPED_TRACE(param_only);
		EXPECT_EQ(store(param_only, "1", &cfg), -CXMQ_EINVAL);
		EXPECT_EQ(cxmq_setting_format(idx(param_only), &cfg, buf, sizeof(buf)), -CXMQ_EINVAL);
	}
	for (const char *attr_only : {"size", "blocksize"}) {
		SCOPED_TRACE(attr_only);
		EXPECT_EQ(store_param(attr_only, "1", &p, 1), -CXMQ_EINVAL);
		EXPECT_EQ(cxmq_param_format(idx(attr_only), &p, buf, sizeof(buf)), -CXMQ_EINVAL);
	}
	EXPECT_EQ(cxmq_setting_parse(cxmq_setting_count(), "1", &cfg, "d", 0), -CXMQ_EINVAL);
	EXPECT_EQ(cxmq_param_parse(cxmq_setting_count(), "1", &p, 0), -CXMQ_EINVAL);
	EXPECT_EQ(cxmq_setting_format(cxmq_setting_count(), &cfg, buf, sizeof(buf)), -CXMQ_EINVAL);
	EXPECT_TRUE(errors().empty());
}

TEST_F(Settings, FormatIsBounded)
{
	cxmq_dev_config cfg = defaults();
	char buf[4];
	memset(buf, 'x', sizeof(buf));
	EXPECT_EQ(cxmq_setting_format(idx("size"), &cfg, buf, sizeof(buf)), 3);
	EXPECT_STREQ(buf, "256");
	EXPECT_EQ(cxmq_setting_format(idx("size"), &cfg, buf, 1), 0);
	EXPECT_STREQ(buf, "");
}

// --------------------------------------------------------- the messages, word for word ---

TEST_F(Settings, DeviceAttributeMessagesAsConfigfsPrintedThem)
{
	set_topology(simple_topology(4));
	struct Case {
		const char *name, *text, *msg;
	} cases[] = {
		{"submit_queues", "0", "cxmq: e: submit_queues=0 is invalid: must be 1..4\n"},
		{"submit_queues", "5", "cxmq: e: submit_queues=5 is invalid: must be 1..4\n"},
		{"submit_queues", "18446744073709551615",
		 "cxmq: e: submit_queues=9223372036854775807 is invalid: must be 1..4\n"},
		{"submit_queues", "abc", "cxmq: e: submit_queues: not a number\n"},
		{"blocksize", "1000",
		 "cxmq: e: blocksize=1000 is invalid: must be a power of two in 512..4096\n"},
		{"blocksize", "8192",
		 "cxmq: e: blocksize=8192 is invalid: must be a power of two in 512..4096\n"},
		{"hw_queue_depth", "0", "cxmq: e: hw_queue_depth=0 is invalid: must be 1..4096\n"},
		{"hw_queue_depth", "4097",
		 "cxmq: e: hw_queue_depth=4097 is invalid: must be 1..4096\n"},
		{"irqmode", "3", "cxmq: e: irqmode=3 is invalid: must be 0..2\n"},
		{"size", "0", "cxmq: e: size=0 is invalid: must be 1..1073741824\n"},
		{"size", "12abc", "cxmq: e: size: not a number\n"},
		{"memory_backed", "2", "cxmq: e: memory_backed=2 is invalid: must be 0..1\n"},
		{"completion_nsec", "0",
		 "cxmq: e: completion_nsec=0 is invalid: must be 1..10000000000\n"},
		// as cxmq_check_home_node printed it: without the device's name
		{"home_node", "77", "cxmq: home_node=77 is invalid: must be -1 or an online node below 1\n"},
		{"home_node", "-2", "cxmq: home_node=-2 is invalid: must be -1 or an online node below 1\n"},
		{"home_node", "2147483648", "cxmq: e: home_node: not a number\n"},
		{"max_sectors", "7", "cxmq: e: max_sectors=7 is invalid: must be 0 or 8..8388607\n"},
		{"max_sectors", "8388608",
		 "cxmq: e: max_sectors=8388608 is invalid: must be 0 or 8..8388607\n"},
	};
	for (const Case &c : cases) {
		SCOPED_TRACE(std::string(c.name) + "=" + c.text);
		cxmq_dev_config cfg = defaults();
		clear_logs();
		EXPECT_EQ(store(c.name, c.text, &cfg, 0, "e"), -CXMQ_EINVAL);
		EXPECT_EQ(the_error(), c.msg);
	}
	cxmq_dev_config cfg = defaults();
	clear_logs();
	EXPECT_EQ(store("size", "16", &cfg, 1, "e"), -CXMQ_EBUSY);
	EXPECT_EQ(the_error(),
		  "cxmq: e: size cannot change while powered on (write 0 to power first)\n");
	// without a device name
	clear_logs();
	EXPECT_EQ(store("size", "0", &cfg, 0, nullptr), -CXMQ_EINVAL);
	EXPECT_EQ(the_error(), "cxmq: size=0 is invalid: must be 1..1073741824\n");
	clear_logs();
	EXPECT_EQ(store("size", "x", &cfg, 0, nullptr), -CXMQ_EINVAL);
	EXPECT_EQ(the_error(), "cxmq: size: not a number\n");
}

TEST_F(Settings, ModuleParameterMessagesAsTheModulePrintedThem)
{
	set_topology(simple_topology(4));
	struct Case {
		const char *arg, *msg;
	} cases[] = {
		{"gb=0", "cxmq: gb=0 is invalid: must be 1..1048576\n"},
		{"gb=2000000", "cxmq: gb=2000000 is invalid: must be 1..1048576\n"},
		{"nr_devices=5000", "cxmq: nr_devices=5000 is invalid: must be 0..1024\n"},
		{"home_node=77", "cxmq: home_node=77 is invalid: must be -1 or an online node below 1\n"},
		{"bs=3000", "cxmq: bs=3000 is invalid: must be a power of two in 512..4096\n"},
		{"hw_queue_depth=4097", "cxmq: hw_queue_depth=4097 is invalid: must be 1..4096\n"},
		{"irqmode=7",
		 "cxmq: irqmode=7 is invalid: must be 0 (none), 1 (softirq) or 2 (timer)\n"},
		{"memory_backed=2", "cxmq: memory_backed=2 is invalid: must be 0 or 1\n"},
		{"submit_queues=0", "cxmq: submit_queues=0 is invalid: must be at least 1\n"},
		{"max_sectors=1", "cxmq: max_sectors=1 is invalid: must be 0 or 8..8388607\n"},
	};
	for (const Case &c : cases) {
		SCOPED_TRACE(c.arg);
		std::string name(c.arg, strchr(c.arg, '=')), val(strchr(c.arg, '=') + 1);
		for (int check : {1, 0}) {
			cxmq_params p = param_defaults();
			clear_logs();
			int ret = store_param(name.c_str(), val, &p, check);
			if (!check) {
				ASSERT_EQ(ret, 0);
				ret = cxmq_params_check(&p);
			}
			EXPECT_EQ(ret, -CXMQ_EINVAL);
			EXPECT_EQ(the_error(), c.msg);
		}
	}
}

// cxmq_config_check's messages (module init and configfs power on).
TEST_F(Settings, ConfigCheckMessagesAsBefore)
{
	set_topology(simple_topology(4));
	struct Case {
		void (*set)(cxmq_dev_config &);
		const char *msg;
	} cases[] = {
		{[](cxmq_dev_config &c) { c.size_mb = 0; },
		 "cxmq: size=0 MiB is invalid: must be 1..1073741824 MiB (gb=1..1048576)\n"},
		{[](cxmq_dev_config &c) { c.size_mb = 1073741825; },
		 "cxmq: size=1073741825 MiB is invalid: must be 1..1073741824 MiB (gb=1..1048576)\n"},
		{[](cxmq_dev_config &c) { c.bs = 3000; },
		 "cxmq: bs=3000 is invalid: must be a power of two in 512..4096\n"},
		{[](cxmq_dev_config &c) { c.hw_queue_depth = 0; },
		 "cxmq: hw_queue_depth=0 is invalid: must be 1..4096\n"},
		{[](cxmq_dev_config &c) { c.irqmode = 3; },
		 "cxmq: irqmode=3 is invalid: must be 0 (none), 1 (softirq) or 2 (timer)\n"},
		{[](cxmq_dev_config &c) { c.irqmode = 2, c.completion_nsec = 0; },
		 "cxmq: completion_nsec=0 is invalid: must be 1..10000000000 (10 s)\n"},
		{[](cxmq_dev_config &c) { c.memory_backed = 2; },
		 "cxmq: memory_backed=2 is invalid: must be 0 or 1\n"},
		{[](cxmq_dev_config &c) { c.submit_queues = 0; },
		 "cxmq: submit_queues=0 is invalid: must be at least 1\n"},
		{[](cxmq_dev_config &c) { c.max_sectors = 4; },
		 "cxmq: max_sectors=4 is invalid: must be 0 or 8..8388607\n"},
		{[](cxmq_dev_config &c) { c.home_node = 1; },
		 "cxmq: home_node=1 is invalid: must be -1 or an online node below 1\n"},
	};
	for (const Case &c : cases) {
		SCOPED_TRACE(c.msg);
		cxmq_dev_config cfg = defaults();
		c.set(cfg);
		cxmq_dev_config before = cfg;
		clear_logs();
		EXPECT_EQ(cxmq_config_check(&cfg), -CXMQ_EINVAL);
		EXPECT_EQ(the_error(), c.msg);
		EXPECT_EQ(memcmp(&before, &cfg, sizeof(cfg)), 0);
	}
	cxmq_dev_config cfg = defaults();
	cfg.submit_queues = 9;
	clear_logs();
	EXPECT_EQ(cxmq_config_check(&cfg), 0);
	EXPECT_EQ(cfg.submit_queues, 4u);
	ASSERT_EQ(logs().size(), 1u);
	EXPECT_EQ(logs()[0].level, CXMQ_LOG_WARN);
	EXPECT_EQ(logs()[0].text, "cxmq: submit_queues=9 is more than the 4 possible CPUs: using 4\n");
	for (uint32_t ms : {0u, 8u, 2560u, 8388607u}) {
		cfg = defaults();
		cfg.max_sectors = ms;
		EXPECT_EQ(cxmq_config_check(&cfg), 0) << ms;
	}
}

// ---------------------------------------------------------------------------- NUMA nodes ---

TEST_F(Settings, HomeNodeIsMinusOneOrAnOnlineNode)
{
	// CPUs on nodes 0 and 2: node 1 exists as a number but is not online
	Topology t = simple_topology(4);
	t.node = {0, 0, 2, 2};
	set_topology(t);
	ASSERT_EQ(cxmq_os_nr_node_ids(), 3u);
	for (const char *ok : {"-1", "0", "2"}) {
		cxmq_dev_config cfg = defaults();
		EXPECT_EQ(store("home_node", ok, &cfg), 0) << ok;
		cxmq_params p = param_defaults();
		EXPECT_EQ(store_param("home_node", ok, &p, 1), 0) << ok;
		EXPECT_EQ(cxmq_params_check(&p), 0) << ok;
	}
	for (const char *bad : {"1", "3", "-2", "2147483647", "-2147483648"}) {
		SCOPED_TRACE(bad);
		cxmq_dev_config cfg = defaults();
		clear_logs();
		EXPECT_EQ(store("home_node", bad, &cfg), -CXMQ_EINVAL);
		EXPECT_EQ(the_error(), std::string("cxmq: home_node=") + bad +
					       " is invalid: must be -1 or an online node below 3\n");
		cfg.home_node = atoi(bad);
		EXPECT_EQ(cxmq_config_check(&cfg), -CXMQ_EINVAL);
	}
}

// ------------------------------------------------- the shim and the README follow the table ---

// The repository's root: from this file's path when it is absolute, else from the test binary
// (tests/host/build/<variant>/), else from the directory run.sh runs in (tests/host).
std::string source_root()
{
	std::vector<std::string> tries;
	const std::string here = __FILE__;
	if (here[0] == '/')
		tries.push_back(here.substr(0, here.rfind("/tests/host/")));
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		std::string e(exe, size_t(n));
		tries.push_back(e.substr(0, e.rfind('/')) + "/../../../..");
	}
	tries.push_back("../..");
	for (const std::string &t : tries)
		if (std::ifstream(t + "/src/shim/params.c").good())
			return t;
	return tries.back();
}

std::string read_source(const std::string &rel)
{
	const std::string path = source_root() + "/" + rel;
	std::ifstream f(path);
	std::stringstream ss;
	ss << f.rdbuf();
	EXPECT_FALSE(ss.str().empty()) << "cannot read " << path;
	return ss.str();
}

std::set<std::string> names_with(unsigned flag)
{
	std::set<std::string> out;
	for (uint32_t i = 0; i < cxmq_setting_count(); i++)
		if (cxmq_setting_flags(i) & flag)
			out.insert(cxmq_setting_name(i));
	return out;
}

// The word after each `marker` in src, up to one of `stops`.
std::vector<std::pair<size_t, std::string>> words_after(const std::string &src,
							const std::string &marker,
							const char *stops = ",)` \n")
{
	std::vector<std::pair<size_t, std::string>> out;
	for (size_t at = src.find(marker); at != std::string::npos; at = src.find(marker, at + 1)) {
		size_t b = at + marker.size(), e = src.find_first_of(stops, b);
		out.emplace_back(e, src.substr(b, e == std::string::npos ? e : e - b));
	}
	return out;
}

const char *type_name(const cs::Setting &s)
{
	if (s.kind == cs::Kind::Elevator || s.kind == cs::Kind::Fault)
		return "charp";
	return s.type == cs::Type::U32 ? "uint" : s.type == cs::Type::U64 ? "ulong" : "int";
}

TEST_F(Settings, ShimDeclaresEveryParameter)
{
	const std::string src = read_source("src/shim/params.c");
	std::set<std::string> declared;
	// CXMQ_PARAM(name, type, "...");
	for (auto &w : words_after(src, "\nCXMQ_PARAM(")) {
		SCOPED_TRACE(w.second);
		declared.insert(w.second);
		int i = cxmq_setting_find(w.second.c_str());
		ASSERT_GE(i, 0) << "params.c declares a parameter the table does not have";
		std::string type = src.substr(w.first + 2, src.find(',', w.first + 2) - w.first - 2);
		EXPECT_EQ(type, type_name(*cs::get(i)));
	}
	// module_param_cb(name, ...); then __MODULE_PARM_TYPE(name, "type");
	for (auto &w : words_after(src, "\nmodule_param_cb(")) {
		SCOPED_TRACE(w.second);
		declared.insert(w.second);
		int i = cxmq_setting_find(w.second.c_str());
		ASSERT_GE(i, 0) << "params.c declares a parameter the table does not have";
		const std::string type_decl = "__MODULE_PARM_TYPE(" + w.second + ", \"" +
					      type_name(*cs::get(i)) + "\");";
		EXPECT_NE(src.find(type_decl), std::string::npos) << type_decl;
	}
	EXPECT_EQ(declared, names_with(CXMQ_SETTING_PARAM));
}

TEST_F(Settings, ConfigfsDeclaresEveryAttribute)
{
	const std::string src = read_source("src/shim/configfs.c");
	std::set<std::string> declared, listed;
	for (auto &w : words_after(src, "\nCXMQ_CFS_SETTING("))
		declared.insert(w.second);
	EXPECT_EQ(declared, names_with(CXMQ_SETTING_ATTR));
	for (auto &w : words_after(src, "&cxmq_cfs_attr_"))
		listed.insert(w.second);
	for (const std::string &n : declared)
		EXPECT_TRUE(listed.count(n)) << n << " is not in cxmq_cfs_attrs";
}

TEST_F(Settings, ReadmeListsEveryParameterWithItsDefault)
{
	const std::string readme = read_source("README.md");
	std::set<std::string> listed;
	cxmq_params p = param_defaults();
	// | `name` | default | accepted |
	for (auto &w : words_after(readme, "\n| `")) {
		int i = cxmq_setting_find(w.second.c_str());
		if (i < 0 || !(cxmq_setting_flags(i) & CXMQ_SETTING_PARAM) ||
		    readme.compare(w.first, 4, "` | ") != 0)
			continue;
		listed.insert(w.second);
		size_t b = w.first + 4, e = readme.find(' ', b);
		EXPECT_EQ(show_param(i, p), readme.substr(b, e - b) + "\n") << w.second;
	}
	EXPECT_EQ(listed, names_with(CXMQ_SETTING_PARAM));
}

} // namespace
