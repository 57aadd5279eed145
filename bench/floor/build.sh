#!/bin/bash
# Build cxmq_floor.ko, the benchmark's floor target, for a kernel directory from
# fetch-debian-kernel.sh / build-test-kernel.sh (the build tree is chosen as
# scripts/build-module.sh chooses it for cxmq), in a directory of its own under the cache.
# Prints the directory holding cxmq_floor.ko.
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"

kdir=${1:?usage: bench/floor/build.sh KERNEL_DIR}
if [ -d "$kdir/build" ]; then kbuild="$kdir/build"     # our test kernel: its O= tree
else kbuild="/usr/src/linux-headers-$(cat "$kdir/abi")"  # Debian's kernel: its headers package
fi
[ -d "$kbuild" ] || die "no kernel build tree at $kbuild (run scripts/setup.sh)"
src="$CXMQ_ROOT/bench/floor"
out="$CXMQ_CACHE/modbuild/floor-$(cache_key "$kbuild" "$src")"
mkdir -p "$out"
# copy the sources, keeping timestamps, so Kbuild rebuilds only what changed
(cd "$src" && tar cf - Kbuild Makefile cxmq_floor.c) | (cd "$out" && tar xpf -)
make -s -C "$out" KDIR="$kbuild" all >&2
echo "$out"
