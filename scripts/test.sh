#!/bin/bash
# cxmq's test command: every layer, summed. Installs what it needs (Debian packages), builds the
# test kernel when the cache has none, and prints, alone on its last line,
#   N passed, N failed, N skipped
# exiting non-zero on any failure.
#   host:  the C++ core under GoogleTest with ASan+UBSan and TSan (tests/host)
#   kunit: the KUnit suites (kunit/) in QEMU on the debug test kernel, KTAP parsed by kunit.py
#   vm:    integration jobs (tests/vm/) in QEMU on the debug test kernel and on Debian's kernel
# Environment: CXMQ_CACHE (cache dir), CXMQ_TEST_LAYERS (default "host kunit vm").
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CXMQ_ROOT"

LAYERS=${CXMQ_TEST_LAYERS:-host kunit vm}
P=0 F=0 S=0
results=()
add() { # add LAYER PASSED FAILED [SKIPPED]
	P=$((P + $2)); F=$((F + $3)); S=$((S + ${4:-0}))
	results+=("$(printf '%-28s %4d passed, %d failed, %d skipped' "$1" "$2" "$3" "${4:-0}")")
}
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cxmq-test.XXXXXX")
start=$(date +%s)

scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

# guest_counts LOG: "ok - " and "not ok - " lines of a guest job
guest_counts() { echo "$(grep -c '^ok - ' "$1" || true) $(grep -c '^not ok - ' "$1" || true)"; }

if [[ " $LAYERS " == *" host "* ]]; then
	log "layer host: GoogleTest (ASan+UBSan, TSan)"
	make -C tests/host 2>&1 | tee "$RUN_DIR/host.log"
	line=$(grep -E '^host: [0-9]+ passed, [0-9]+ failed' "$RUN_DIR/host.log" | tail -n1)
	if [ -n "$line" ]; then
		read -r hp hf hs < <(sed -E 's/^host: ([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/' <<<"$line")
		add host "$hp" "$hf" "${hs:-0}"
	else
		add host 0 1
	fi
	# the Python tools' own tests (scripts/cxmq-top, scripts/bench-plot), unittest
	for t in tests/host/*_test.py; do
		tlog=$RUN_DIR/$(basename "$t" .py).log
		python3 "$t" > "$tlog" 2>&1; rc=$?
		tail -n 3 "$tlog"
		n=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' "$tlog")
		sk=$(grep -o 'skipped=[0-9]*' "$tlog" | cut -d= -f2)
		if [ -n "$n" ] && [ $rc = 0 ]; then add "host: $(basename "$t")" $((n - ${sk:-0})) 0 "${sk:-0}"
		else add "host: $(basename "$t")" 0 1; fi
	done
fi

need_vm=0
[[ " $LAYERS " == *" kunit "* || " $LAYERS " == *" vm "* ]] && need_vm=1
if [ $need_vm = 1 ]; then
	log "test kernel (cached after the first build)"
	if ! tkdir=$(scripts/build-test-kernel.sh); then add "build: test kernel" 0 1; need_vm=0; fi
fi
if [ $need_vm = 1 ]; then
	if tko=$(scripts/build-module.sh "$tkdir" 2>"$RUN_DIR/build-test.log"); then
		add "build: cxmq for test kernel" 1 0
	else
		cat "$RUN_DIR/build-test.log"; add "build: cxmq for test kernel" 0 1; need_vm=0
	fi
fi

# Documentation/ABI/testing/*-cxmq parse with the kernel's own scripts/get_abi.pl (from the
# test kernel's linux-source tree): validate prints nothing, and search finds an entry of each
get_abi="$CXMQ_CACHE/kernel/src-$(dpkg-query -W -f='${Version}' linux-source-6.1)/scripts/get_abi.pl"
if [ -f "$get_abi" ]; then
	abi_out=$(perl "$get_abi" validate --dir Documentation/ABI 2>&1)
	if [ -z "$abi_out" ] &&
	   perl "$get_abi" search --dir Documentation/ABI 'mq/<n>/cpu_list' | grep -q 'cxmq<N>' &&
	   perl "$get_abi" search --dir Documentation/ABI 'cxmq/<dev>/power' | grep -q 'config/cxmq'; then
		add "abi: get_abi.pl validate, search" 1 0
	else
		echo "$abi_out"; add "abi: get_abi.pl validate, search" 0 1
	fi
fi

# vm_job NAME KERNEL CPUS JOB [ARG... --] [ENV...]: a guest job; its ok/not ok lines are the
# results; a guest that hangs, panics or exits non-zero without a failing line counts as one failure.
vm_job() {
	local name=$1 kernel=$2 cpus=$3 job=$4; shift 4
	local out="$RUN_DIR/$name" envs=() args=() e opts=("${VM_OPTS[@]+"${VM_OPTS[@]}"}")
	VM_OPTS=() # (for this job only)
	if [[ " $* " == *" -- "* ]]; then
		while [ "$1" != -- ]; do args+=("$1"); shift; done; shift
	fi
	for e in "$@"; do envs+=(--env "$e"); done
	scripts/vm-run.sh --kernel "$kernel" --cpus "$cpus" --timeout "${CXMQ_VM_TIMEOUT:-1800}" \
		--out "$out" "${opts[@]+"${opts[@]}"}" "${envs[@]}" "$job" "${args[@]}" > "$out.log" 2>&1
	local rc=$?
	cat "$out.log"
	read -r gp gf < <(guest_counts "$out.log")
	if [ $rc -ne 0 ] && [ "$gf" = 0 ]; then gf=1; fi
	add "vm: $name" "$gp" "$gf"
	return $rc
}

# kunit_results DIR: the KTAP the KUnit job (tests/vm/kunit.sh) left in DIR, parsed by kunit.py
kunit_results() {
	local kunit_py sum kp kf kc ks ke
	kunit_py="$CXMQ_CACHE/kernel/src-$(dpkg-query -W -f='${Version}' linux-source-6.1)/tools/testing/kunit/kunit.py"
	if [ -s "$1/kunit.log" ] &&
	   python3 "$kunit_py" parse "$1/kunit.log" > "$RUN_DIR/kunit.parsed" 2>&1; then
		cat "$RUN_DIR/kunit.parsed"
	else
		cat "$RUN_DIR/kunit.parsed" 2>/dev/null
	fi
	sum=$(grep -E 'Ran [0-9]+ tests' "$RUN_DIR/kunit.parsed" 2>/dev/null | tail -n1)
	if [ -n "$sum" ]; then
		kp=$(sed -nE 's/.*passed: ([0-9]+).*/\1/p' <<<"$sum"); kp=${kp:-0}
		kf=$(sed -nE 's/.*failed: ([0-9]+).*/\1/p' <<<"$sum"); kf=${kf:-0}
		kc=$(sed -nE 's/.*crashed: ([0-9]+).*/\1/p' <<<"$sum"); kc=${kc:-0}
		ks=$(sed -nE 's/.*skipped: ([0-9]+).*/\1/p' <<<"$sum"); ks=${ks:-0}
		ke=$(sed -nE 's/.*errors: ([0-9]+).*/\1/p' <<<"$sum"); ke=${ke:-0}
		add "kunit (KTAP)" "$kp" $((kf + kc + ke)) "$ks"
	else
		add "kunit (KTAP)" 0 1
	fi
}

# With the vm layer the KUnit suites run first in its 2-vCPU boot (a debug-kernel boot costs
# about 1.5 minutes); alone, in a boot of their own.
KUNIT_JOB=
if [ $need_vm = 1 ] && [[ " $LAYERS " == *" kunit "* ]]; then
	if [[ " $LAYERS " == *" vm "* ]]; then
		KUNIT_JOB=kunit.sh
	else
		log "layer kunit: suites in QEMU on the test kernel"
		vm_job kunit "$tkdir" 2 tests/vm/kunit.sh "CXMQ_KO_DIR=$tko"
		kunit_results "$RUN_DIR/kunit"
	fi
fi

# The virtio disks of a job's boot (scripts/vm-run.sh --disk): two raw files of 256 MiB in the
# job's output directory (2 and 4 queues: the virtio backend's data tests, tests/vm/virtio.sh),
# and two null-co ones (the harness's own check, tests/vm/virtio_disks.sh, which hot-unplugs
# the last; the first, of one queue, is virtio.sh's rq_affinity disk). Sets VM_OPTS for the next vm_job, VIRTIO_DISKS and VIRTIO_DATA for its guest.
virtio_disks() {
	local dir="$RUN_DIR/$1"
	mkdir -p "$dir"
	truncate -s 256M "$dir/vf0.img" "$dir/vf1.img"
	VM_OPTS=(--disk "file=$dir/vf0.img,queues=2,serial=cxmq-c,id=vf0"
		--disk "file=$dir/vf1.img,queues=4,serial=cxmq-d,id=vf1"
		--disk null,queues=1,serial=cxmq-a,id=vd0 --disk null=256,queues=4,serial=cxmq-b,id=vd1)
	VIRTIO_DISKS="vf0:2:cxmq-c vf1:4:cxmq-d vd0:1:cxmq-a vd1:4:cxmq-b"
	VIRTIO_DATA="vf0:2:cxmq-c:$dir/vf0.img vf1:4:cxmq-d:$dir/vf1.img"
}

if [ $need_vm = 1 ] && [[ " $LAYERS " == *" vm "* ]]; then
	# Jobs share boots (tests/vm/suite.sh): a debug-kernel boot and its kmemleak scan cost ~2 min.
	log "layer vm: integration, then the multi-queue core under fio verify (each irqmode), discard, tag exhaustion, busy backend, then merging (tests/vm/merge.sh, its parts split over the two boots), schedulers and shared tags (2 vCPUs), polling and timeouts (4 vCPUs); test kernel, 2 and 4 vCPUs"
	# Every bad module parameter is tried on Debian's kernel; the debug kernel tries one of each
	# kind (the failure path is the same; it is there for kmemleak and KASAN).
	vm_job test-kernel-2cpu "$tkdir" 2 tests/vm/suite.sh $KUNIT_JOB integration.sh mq.sh trace.sh -- "CXMQ_KO_DIR=$tko" \
		"CXMQ_PARAM_TESTS=gb=0 bs=3000 hw_queue_depth=4097 irqmode=7 home_node=77 scheduler=bfq" \
		CXMQ_VERIFY_SIZE=8m CXMQ_MERGE_SIZE=4m "CXMQ_MERGE_ONLY=io discard" CXMQ_POLL=0 CXMQ_TIMEOUT=0
	[ -n "$KUNIT_JOB" ] && kunit_results "$RUN_DIR/test-kernel-2cpu"
	# issue 4's scenarios (mq/ tree, configfs, runtime queue count, hotplug, lifetimes, leaks)
	# shortened, last in this boot (full: scripts/scenarios.sh)
	virtio_disks test-kernel-4cpu
	CXMQ_VM_TIMEOUT=${CXMQ_VM_TIMEOUT:-2700} vm_job test-kernel-4cpu "$tkdir" 4 tests/vm/suite.sh virtio_disks.sh virtio.sh integration.sh mq.sh scenarios.sh -- \
		"CXMQ_KO_DIR=$tko" "CXMQ_VIRTIO_DISKS=$VIRTIO_DISKS" "CXMQ_VIRTIO_DATA=$VIRTIO_DATA" CXMQ_VIRTIO_AFFINITY=cxmq-a \
		CXMQ_VIRTIO_SIZE=8M CXMQ_VIRTIO_FILES=50 CXMQ_FIO_RUNTIME=5 CXMQ_SKIP_PARAM_TESTS=1 CXMQ_VERIFY_SIZE=4m CXMQ_MERGE_ONLY=ext4 CXMQ_MERGE_FILES=500 \
		CXMQ_SCHED=0 CXMQ_SHARED=0 CXMQ_POLL_SECONDS=2 CXMQ_POLL_SIZE=4m CXMQ_SCEN_SECONDS=30 CXMQ_SCEN_CYCLES=20
	log "layer vm: integration on Debian's stock kernel, module built against linux-headers-amd64"
	if dkdir=$(scripts/fetch-debian-kernel.sh) && dko=$(scripts/build-module.sh "$dkdir" 2>"$RUN_DIR/build-debian.log"); then
		add "build: cxmq for Debian kernel" 1 0
		# DKMS builds it too, installed into the kernel's unpacked module tree: dkms.sh
		# modprobes it and runs the integration job on it
		dkms_job=
		if scripts/dkms-build.sh "$dkdir" > "$RUN_DIR/dkms.out" 2> "$RUN_DIR/dkms.log"; then
			add "build: cxmq with DKMS for Debian kernel ($(cat "$RUN_DIR/dkms.out"))" 1 0
			dkms_job=dkms.sh
		else
			tail -n 30 "$RUN_DIR/dkms.log"; add "build: cxmq with DKMS for Debian kernel" 0 1
		fi
		virtio_disks debian-kernel-4cpu
		vm_job debian-kernel-4cpu "$dkdir" 4 tests/vm/suite.sh virtio_disks.sh virtio.sh integration.sh mq.sh trace.sh abi.sh top.sh $dkms_job -- \
			"CXMQ_KO_DIR=$dko" "CXMQ_VIRTIO_DISKS=$VIRTIO_DISKS" "CXMQ_VIRTIO_DATA=$VIRTIO_DATA" CXMQ_VIRTIO_AFFINITY=cxmq-a \
			CXMQ_FIO_RUNTIME=5 CXMQ_VERIFY_SIZE=32m CXMQ_MERGE_SIZE=8m CXMQ_POLL_SECONDS=2 CXMQ_POLL_SIZE=4m \
			"CXMQ_DKMS_VERSION=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' dkms.conf)"
		vm_job scenarios-debian-kernel-4cpu "$dkdir" 4 tests/vm/scenarios.sh "CXMQ_KO_DIR=$dko" CXMQ_SCEN_SECONDS=20 CXMQ_SCEN_CYCLES=100 CXMQ_SCEN_NULLB=1
	else
		cat "$RUN_DIR/build-debian.log" 2>/dev/null; add "build: cxmq for Debian kernel" 0 1
	fi
fi

echo
echo "== cxmq test summary ($(( $(date +%s) - start ))s; logs in $RUN_DIR) =="
printf '%s\n' "${results[@]}"
echo "$P passed, $F failed, $S skipped"
[ "$F" -eq 0 ] && [ "$P" -gt 0 ]
