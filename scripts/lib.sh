# Shared settings for cxmq scripts. Source it; do not run it.
# Everything built or downloaded lives in the cache, outside the repository.
CXMQ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CXMQ_CACHE=${CXMQ_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/cxmq}
mkdir -p "$CXMQ_CACHE"

log() { printf '[cxmq] %s\n' "$*" >&2; }
die() { printf '[cxmq] error: %s\n' "$*" >&2; exit 1; }

# Hash of the given files plus any extra strings: the cache key of what they produce.
cache_key() {
	{ for f in "$@"; do if [ -f "$f" ]; then cat "$f"; else printf '%s\n' "$f"; fi; done; } |
		sha256sum | cut -c1-16
}

debian_kernel_abi() {
	# e.g. 6.1.0-56-amd64: the image that linux-image-amd64 depends on
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/.*Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n1
}
