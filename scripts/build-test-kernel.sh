#!/bin/bash
# Build the cxmq test kernel (KUnit, KASAN, lockdep, kmemleak, ...) from Debian's linux-source-6.1
# and the fragment qemu/test-kernel.config, merged onto tinyconfig. Cached by source version,
# fragment and this script. Prints the kernel's cache directory on stdout:
#   <dir>/build    the O= tree (KDIR for `make KDIR=...`), <dir>/bzImage, <dir>/mods/lib/modules/...
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TARBALL=/usr/src/linux-source-6.1.tar.xz
[ -f "$TARBALL" ] || die "$TARBALL missing: run scripts/setup.sh"
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
FRAG="$CXMQ_ROOT/qemu/test-kernel.config"
key=$(cache_key "$srcver" "$FRAG" "$0")
dir="$CXMQ_CACHE/kernel/$key"
if [ -f "$dir/done" ]; then echo "$dir"; exit 0; fi

src="$CXMQ_CACHE/kernel/src-$srcver"
if [ ! -f "$src/.extracted" ]; then
	log "extracting $TARBALL (linux-source $srcver)"
	rm -rf "$src" "$src.tmp"; mkdir -p "$src.tmp"
	tar -C "$src.tmp" --strip-components=1 -xf "$TARBALL"
	touch "$src.tmp/.extracted"; mv "$src.tmp" "$src"
fi

rm -rf "$dir"; mkdir -p "$dir/build"
b="$dir/build"
start=$(date +%s)
log "configuring test kernel in $dir"
make -s -C "$src" O="$b" ARCH=x86_64 tinyconfig >/dev/null
"$src/scripts/kconfig/merge_config.sh" -m -O "$b" "$b/.config" "$FRAG" >/dev/null
make -s -C "$src" O="$b" ARCH=x86_64 olddefconfig >/dev/null
bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*) grep -qxF "$line" "$b/.config" || { log "option did not take: $line"; bad=1; } ;;
	"# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}
		! grep -q "^$opt=" "$b/.config" || { log "option still set: $opt"; bad=1; } ;;
	esac
done < "$FRAG"
[ $bad -eq 0 ] || die "test kernel config incomplete"
log "building test kernel ($(nproc) jobs; a few minutes)"
make -s -C "$src" O="$b" ARCH=x86_64 -j"$(nproc)" bzImage modules >"$dir/build.log" 2>&1 ||
	{ tail -n 40 "$dir/build.log" >&2; die "test kernel build failed"; }
make -s -C "$src" O="$b" ARCH=x86_64 INSTALL_MOD_PATH="$dir/mods" INSTALL_MOD_STRIP=1 \
	modules_install >/dev/null
cp "$b/arch/x86/boot/bzImage" "$dir/bzImage"
log "test kernel built in $(( $(date +%s) - start ))s"
touch "$dir/done"
echo "$dir"
