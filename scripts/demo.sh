#!/bin/bash
# The main job: install what is needed, build cxmq.ko against Debian's 6.1 headers, boot
# Debian's 6.1 kernel in QEMU (TCG), load the module, run fio on /dev/cxmq0 and show the device's
# sysfs. Options go to the guest as module parameters, e.g.  scripts/demo.sh submit_queues=2
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CXMQ_ROOT"
scripts/setup.sh
kdir=$(scripts/fetch-debian-kernel.sh)
ko=$(scripts/build-module.sh "$kdir")
cpus=${CXMQ_CPUS:-2}
exec scripts/vm-run.sh --kernel "$kdir" --cpus "$cpus" --timeout 900 \
	--env CXMQ_KO_DIR="$ko" --env CXMQ_PARAMS="${*:-submit_queues=$cpus}" tests/vm/demo.sh
