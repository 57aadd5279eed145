#!/bin/bash
# Fetch Debian's stock 6.1 kernel image package (the one linux-image-amd64 points at) and unpack
# it into the cache, without installing it on the host. Prints the directory on stdout:
#   <dir>/bzImage, <dir>/mods/lib/modules/<abi>/..., <dir>/abi
set -euo pipefail
. "$(dirname "$0")/lib.sh"

abi=$(debian_kernel_abi)
[ -n "$abi" ] || { apt-get update -q >/dev/null; abi=$(debian_kernel_abi); }
[ -n "$abi" ] || die "cannot tell which linux-image linux-image-amd64 depends on"
ver=$(apt-cache policy "linux-image-$abi" | sed -n 's/ *Candidate: //p')
dir="$CXMQ_CACHE/debian-kernel/$abi-$ver"
if [ -f "$dir/done" ]; then echo "$dir"; exit 0; fi
rm -rf "$dir"; mkdir -p "$dir/deb"
log "downloading linux-image-$abi $ver"
(cd "$dir/deb" && apt-get download -q "linux-image-$abi=$ver" >/dev/null)
dpkg-deb -x "$dir"/deb/*.deb "$dir/mods"
cp "$dir/mods/boot/vmlinuz-$abi" "$dir/bzImage"
rm -rf "$dir/deb" "$dir/mods/boot" "$dir/mods/usr"
depmod -b "$dir/mods" "$abi"
echo "$abi" > "$dir/abi"
touch "$dir/done"
echo "$dir"
