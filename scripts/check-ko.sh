#!/bin/bash
# Fail if a module has sections that C++ must not bring into a kernel module: global
# constructors (.init_array/.ctors: the loader does not run them on distribution kernels) and
# exception-handling tables.
set -euo pipefail
ko=${1:?usage: check-ko.sh MODULE.ko}
bad=$(objdump -h "$ko" | awk '{print $2}' |
	grep -E '^(\.init_array|\.fini_array|\.ctors|\.dtors|\.gcc_except_table|\.eh_frame|\.eh_frame_hdr)' || true)
if [ -n "$bad" ]; then
	echo "cxmq: $ko has forbidden sections: $bad" >&2
	exit 1
fi
