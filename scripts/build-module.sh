#!/bin/bash
# Build cxmq.ko (and cxmq_kunit.ko where the kernel has KUnit) for a kernel directory from
# fetch-debian-kernel.sh / build-test-kernel.sh, in a build tree of its own under the cache, so
# that builds for different kernels do not overwrite each other's objects.
# Prints the directory holding the .ko files.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kdir=${1:?usage: build-module.sh KERNEL_DIR}
if [ -d "$kdir/build" ]; then kbuild="$kdir/build"     # our test kernel: its O= tree
else kbuild="/usr/src/linux-headers-$(cat "$kdir/abi")"  # Debian's kernel: its headers package
fi
[ -d "$kbuild" ] || die "no kernel build tree at $kbuild (run scripts/setup.sh)"
# CXMQ_TRACE=0: without tracepoints (make CXMQ_TRACE=0), in a build tree of its own
trace=${CXMQ_TRACE:-1}
out="$CXMQ_CACHE/modbuild/$(cache_key "$kbuild" "$CXMQ_ROOT")"
if [ "$trace" = 0 ]; then out+=-notrace; fi
mkdir -p "$out"
# copy the sources, keeping timestamps, so Kbuild rebuilds only what changed
(cd "$CXMQ_ROOT" && tar cf - Kbuild Makefile dkms.conf include src kunit scripts/check-ko.sh scripts/lib.sh) |
	(cd "$out" && tar xpf -)
# sources deleted from the repository must not linger in the copy
(cd "$out" && find src kunit include -type f \( -name '*.c' -o -name '*.cpp' -o -name '*.h' \) | while read -r f; do
	[ -e "$CXMQ_ROOT/$f" ] || rm -f "$f"; done)
make -s -C "$out" KDIR="$kbuild" CXMQ_TRACE="$trace" all >&2
echo "$out"
