// SPDX-License-Identifier: GPL-2.0
// The settings table: every module parameter and device attribute of cxmq, the one place that
// knows their types, defaults, accepted values, units, whether they may change while a device
// is powered, and their error texts. The C entry points (include/cxmq/core.h, settings.cpp)
// read and write through it; so does cxmq_config_check.
#pragma once

#include "cxmq/core.h"
#include "kstrtox.h"
#include "util.h"

namespace cxmq {
namespace settings {

// The C type of the field a setting is stored in.
enum class Type : u8 { U32, U64, S32, Fault /* struct cxmq_fault_config */ };

// How values are checked.
enum class Kind : u8 {
	Range,    // min..max
	PowerOf2, // a power of two in min..max
	Node,     // -1, or an online NUMA node (min, max unused)
	Elevator, // an IO scheduler by name (elevator.h): 0 none, else 1 + its index (min, max unused)
	Fault,    // a fault injection point (fault_inject.h): null_blk's text, or empty (min, max,
		  // def unused: the default is disarmed)
};

enum Flags : u32 {
	kParam = CXMQ_SETTING_PARAM, // a module parameter
	kAttr = CXMQ_SETTING_ATTR,   // a device attribute (configfs, per-disk settings files)
	kLive = CXMQ_SETTING_LIVE,   // an attribute that may change while the device is powered
	// The setting that stands for its field of struct cxmq_dev_config in cxmq_config_check
	// (its name in the messages) and in cxmq_config_defaults: one per field.
	kConfig = 1u << 8,
	// 0 is accepted too ("0 or min..max").
	kZeroOk = 1u << 9,
	// max is the number of possible CPUs. A device attribute refuses more; a module parameter
	// and cxmq_config_check take "at least min" and cap it, with a warning, as null_blk does.
	kPossibleCpus = 1u << 10,
	// Only irqmode=2 uses it: cxmq_config_check checks it only then, and so a module
	// parameter is checked only there (a device attribute is checked when written).
	kTimerOnly = 1u << 11,
	// cxmq_config_check shows the value with its unit ("size=0 MiB").
	kUnitInConfig = 1u << 12,
	// Device attribute messages do not name the device (as the node check always printed).
	kNoWho = 1u << 13,
};

// One setting. Values are in the setting's unit: the field holds value * scale.
struct Setting {
	const char *name;  // null_blk's
	u32 flags;         // Flags
	Type type;         // of the field
	u16 offset;        // of the field in struct cxmq_params (dev comes first)
	u32 scale;
	s64 def;           // default
	Kind kind;
	s64 min, max;      // accepted (Range, PowerOf2)
	const char *unit;  // "" when the value has none
	// The accepted values as module parameter and cxmq_config_check messages say them (null:
	// as device attribute messages do, from kind, min and max).
	const char *words;
};

// The table, in the order cxmq_config_check and cxmq_params_check report errors.
const Setting *table(u32 *count);
const Setting *get(u32 i); // nullptr past the end

// Where a setting is parsed or checked: what is checked and how messages read.
enum class Where : u8 {
	Device, // a device attribute: "cxmq: <who>: <name>=<v> is invalid: must be <min>..<max>"
	Param,  // a module parameter: "cxmq: <name>=<v> is invalid: must be <words>"
	Config, // cxmq_config_check: as Param
};

// cxmq_config_defaults: every field from its kConfig setting's default.
void config_defaults(cxmq_dev_config *cfg);
// cxmq_config_check: each field by its kConfig setting (Where::Config), then the checks across
// settings (size a multiple of bs; completion_nsec only with irqmode=2), then the caps.
int config_check(cxmq_dev_config *cfg);

} // namespace settings
} // namespace cxmq
