#!/bin/bash
# Build cxmq.ko with DKMS (dkms.conf: dkms add, dkms build) for a Debian kernel directory from
# fetch-debian-kernel.sh, against that kernel's headers package, and install the module DKMS
# built into the kernel's unpacked module tree (KDIR/mods/lib/modules/ABI/updates/dkms/, then
# depmod -b), where the VM's `modprobe -d KDIR/mods cxmq` finds it and loads what it needs
# (configfs) first. DKMS works in trees of its own under the cache (--dkmstree, --sourcetree):
# nothing in this machine's /usr/src or /lib/modules changes (DKMS makes its module signing key,
# /var/lib/dkms/mok.*, once, and signs with it; the VM's kernel enforces no signatures).
# Prints the installed module's path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kdir=${1:?usage: dkms-build.sh DEBIAN_KERNEL_DIR}
abi=$(cat "$kdir/abi")
command -v dkms >/dev/null || "$CXMQ_ROOT/scripts/setup.sh"
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$CXMQ_ROOT/dkms.conf")
work="$CXMQ_CACHE/dkms"
rm -rf "$work"
mkdir -p "$work/tree" "$work/src/cxmq-$ver"
# the tree `dkms add .` would copy to /usr/src/cxmq-<version>
(cd "$CXMQ_ROOT" && tar cf - dkms.conf Kbuild Makefile include src kunit scripts) |
	(cd "$work/src/cxmq-$ver" && tar xf -)
opts=(--dkmstree "$work/tree" --sourcetree "$work/src")
dkms "${opts[@]}" add -m cxmq -v "$ver" >&2
if ! dkms "${opts[@]}" build -m cxmq -v "$ver" -k "$abi" \
	--kernelsourcedir "/usr/src/linux-headers-$abi" >&2; then
	cat "$work/tree/cxmq/$ver/build/make.log" >&2 2>/dev/null
	die "dkms build failed"
fi
ko=$(find "$work/tree/cxmq/$ver/$abi" -name 'cxmq.ko*' | head -n1)
[ -n "$ko" ] || die "dkms built no cxmq.ko"
dest="$kdir/mods/lib/modules/$abi/updates/dkms"
mkdir -p "$dest"
rm -f "$dest"/cxmq.ko*
cp "$ko" "$dest/"
depmod -b "$kdir/mods" "$abi"
echo "$dest/$(basename "$ko")"
