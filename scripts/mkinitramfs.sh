#!/bin/bash
# Build the guest initramfs for a kernel directory (from fetch-debian-kernel.sh or
# build-test-kernel.sh): busybox, qemu/init, and the modules the kernel needs to mount the host
# over virtio-9p. Cached; prints the image path on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kdir=${1:?usage: mkinitramfs.sh KERNEL_DIR}
abi=$(ls "$kdir/mods/lib/modules" | head -n1)
bb=/bin/busybox
[ -x "$bb" ] && file_is_static=$(ldd "$bb" 2>&1 | grep -c 'not a dynamic' || true)
[ "${file_is_static:-0}" = 1 ] || die "static busybox missing: run scripts/setup.sh (busybox-static)"
key=$(cache_key "$kdir" "$abi" "$CXMQ_ROOT/qemu/init" "$0" "$(dpkg-query -W -f='${Version}' busybox-static)")
img="$CXMQ_CACHE/initramfs/$key.cpio.gz"
if [ -f "$img" ]; then echo "$img"; exit 0; fi
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
mkdir -p "$t"/{bin,dev,proc,sys,host,etc,lib/cxmq-mods}
cp "$bb" "$t/bin/busybox"
install -m 755 "$CXMQ_ROOT/qemu/init" "$t/init"
: > "$t/etc/modules.order"
# modules needed for virtio-pci + 9p (and configfs, for cxmq's devices), in load order; nothing
# for kernels that build them in
for m in virtio_pci 9pnet_virtio 9p configfs; do
	modprobe -d "$kdir/mods" -S "$abi" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
	cp "$ko" "$t/lib/cxmq-mods/"; basename "$ko" >> "$t/etc/modules.order"
done
mkdir -p "$(dirname "$img")"
(cd "$t" && find . | cpio -o -H newc --quiet | gzip -1) > "$img.tmp"
mv "$img.tmp" "$img"
echo "$img"
