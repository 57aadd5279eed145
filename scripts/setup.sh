#!/bin/bash
# Install every Debian package cxmq needs (as root, Debian bookworm). Idempotent and quiet when
# everything is present already.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PKGS=(build-essential g++ make bc bison flex libelf-dev libssl-dev cpio kmod xz-utils python3
      linux-headers-amd64 linux-source-6.1 qemu-system-x86 fio busybox-static
      googletest libgtest-dev jq dmsetup e2fsprogs dkms trace-cmd linux-perf python3-matplotlib)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
# linux-headers-amd64 is a metapackage: make sure the headers it points at are there too
if [ ${#missing[@]} -eq 0 ]; then
	abi=$(debian_kernel_abi || true)
	[ -n "$abi" ] && [ -d "/usr/src/linux-headers-$abi" ] || missing+=(linux-headers-amd64)
fi
if [ ${#missing[@]} -gt 0 ]; then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
