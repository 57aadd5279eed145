// SPDX-License-Identifier: GPL-2.0
// The little C++ runtime support a freestanding core needs.
#include "util.h"

extern "C" {

// Called through a vtable slot of a pure virtual function: an object used during construction
// or after destruction. Never returns.
void __cxa_pure_virtual()
{
	::cxmq::bug(__FILE__, __LINE__, "pure virtual function called");
}

} // extern "C"
