#!/bin/bash
# Issue 4's scenarios at their full durations (the test command runs them shortened): the mq/
# tree, configfs, submit_queues toggled for 60 s and CPUs hotplugged for 60 s under fio verify
# with readers of every mq/ file, files held open across removal, 200 create/remove cycles then
# kmemleak, removal while busy, several devices. On the debug test kernel (KASAN, lockdep,
# kmemleak, DEBUG_KOBJECT_RELEASE), 4 vCPUs. About 15 minutes under TCG (scenarios 1, 2, 5: 9.5).
#   usage: scripts/scenarios.sh [--kernel test|debian] [--seconds N] [--cycles N] [--only "1 2"]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CXMQ_ROOT"
kernel=test seconds=60 cycles=200 only=
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--cycles) cycles=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	*) die "usage: scenarios.sh [--kernel test|debian] [--seconds N] [--cycles N] [--only LIST]" ;;
	esac
done
scripts/setup.sh >&2
case "$kernel" in
test) kdir=$(scripts/build-test-kernel.sh) ;;
debian) kdir=$(scripts/fetch-debian-kernel.sh) ;;
*) die "--kernel test|debian" ;;
esac
ko=$(scripts/build-module.sh "$kdir")
out=$(mktemp -d "${TMPDIR:-/tmp}/cxmq-scenarios.XXXXXX")
scripts/vm-run.sh --kernel "$kdir" --cpus 4 --timeout 5400 --out "$out" \
	--env "CXMQ_KO_DIR=$ko" --env "CXMQ_SCEN_SECONDS=$seconds" --env "CXMQ_SCEN_CYCLES=$cycles" \
	--env "CXMQ_SCEN_ONLY=$only" --env "CXMQ_SCEN_NULLB=$([ "$kernel" = debian ] && echo 1 || echo 0)" \
	tests/vm/scenarios.sh | tee "$out.log" | grep --line-buffered -E '^(ok|not ok|#)'
rc=${PIPESTATUS[0]}
echo "$(grep -c '^ok - ' "$out.log" || true) passed, $(grep -c '^not ok - ' "$out.log" || true) failed"
exit "$rc"
