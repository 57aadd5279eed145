#!/bin/bash
# Fail if a module carries what C++ must not bring into a kernel module: C++ dynamic
# initialisation or destruction (global constructors: the loader does not run them on
# distribution kernels) and exception-handling tables. Sanitizer module constructors
# (KASAN's _sub_I_<prio>_<n>, run by the kernel under CONFIG_CONSTRUCTORS) are the kernel's own
# and allowed; any other .init_array/.ctors entry is not.
set -euo pipefail
ko=${1:?usage: check-ko.sh MODULE.ko}
fail=0
sections=$(objdump -h "$ko" | awk '$1 ~ /^[0-9]+$/ {print $2}')
bad=$(grep -E '^(\.ctors|\.dtors|\.gcc_except_table|\.eh_frame|\.eh_frame_hdr)' <<<"$sections" || true)
if [ -n "$bad" ]; then echo "cxmq: $ko has forbidden sections: $(echo $bad)" >&2; fail=1; fi
cxx=$(nm "$ko" | awk '{print $NF}' | grep -E '^_GLOBAL__sub_[ID]_|^__cxa_atexit$|^__cxa_guard_|^__gxx_personality' || true)
if [ -n "$cxx" ]; then echo "cxmq: $ko has C++ runtime initialisation: $(echo $cxx)" >&2; fail=1; fi
if grep -qE '^\.(init|fini)_array' <<<"$sections"; then
	# every function in the constructor sections must be a sanitizer's
	others=$(nm "$ko" | awk '$2 ~ /^[tT]$/ {print $3}' | grep -E '^_sub_[ID]_|module_ctor|module_dtor' |
		grep -vE '^_sub_[ID]_[0-9]+_[0-9]+$' || true)
	if [ -n "$others" ]; then echo "cxmq: $ko has constructors: $(echo $others)" >&2; fail=1; fi
	kasan=$(modinfo -F name "$ko" >/dev/null 2>&1 && nm "$ko" | grep -c '__asan_\|_sub_I_' || true)
	if [ "${kasan:-0}" = 0 ]; then echo "cxmq: $ko has .init_array without a sanitizer" >&2; fail=1; fi
fi
exit $fail
