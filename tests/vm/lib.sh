# Helpers for cxmq's guest-side test scripts (sourced inside the VM; see scripts/vm-run.sh).
# Results are printed as `ok - NAME` / `not ok - NAME` lines, which the host counts.

KO_DIR=${CXMQ_KO_DIR:?CXMQ_KO_DIR not set}
CXMQ_KO=$KO_DIR/cxmq.ko
PASSED=0
FAILED=0
# load_cxmq PARAMS...: insmod cxmq.ko; with CXMQ_LOAD=modprobe (tests/vm/dkms.sh) modprobe of the
# DKMS-built module installed in the kernel's module tree
load_cxmq() {
	if [ "${CXMQ_LOAD:-insmod}" = modprobe ]; then
		modprobe -d "$CXMQ_MODROOT" -S "$CXMQ_KABI" cxmq "$@"
	else
		insmod "$CXMQ_KO" "$@"
	fi
}

pass() { echo "ok - $1"; PASSED=$((PASSED + 1)); }
fail() { echo "not ok - $1"; FAILED=$((FAILED + 1)); shift; [ $# -gt 0 ] && printf '#   %s\n' "$@"; }
# check NAME COMMAND...: one test, passing when the command succeeds
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }

# Kernel reports that fail a run: every one is printed.
REPORT_RE='WARNING:|BUG:|KASAN|UBSAN|Oops|general protection|possible recursive locking|possible circular locking|inconsistent lock state|lock held when returning|suspicious RCU usage|INFO: task .* blocked|rcu_sched self-detected stall|rcu: INFO|soft lockup|hard LOCKUP|Kernel panic|kobject: .* is not initialized|refcount_t:'
DMESG_MARK=0
dmesg_mark() { DMESG_MARK=$(dmesg | wc -l); }
# dmesg_clean NAME: no kernel report since the last dmesg_mark
dmesg_clean() {
	local new
	new=$(dmesg | tail -n +"$((DMESG_MARK + 1))")
	if grep -Eq "$REPORT_RE" <<<"$new"; then
		fail "$1" "kernel reports:"
		grep -E -A25 "$REPORT_RE" <<<"$new" | head -n 120 | sed 's/^/#   /'
	else
		pass "$1"
	fi
	dmesg_mark
}

# kmemleak_clean NAME: no unreferenced object since boot (skipped when a suite.sh runs this job:
# it scans once after all of them)
kmemleak_clean() {
	local f=/sys/kernel/debug/kmemleak
	[ -z "${CXMQ_KMEMLEAK_LATER:-}" ] || return 0
	if [ ! -e $f ]; then return 0; fi
	echo scan > $f; sleep 1; echo scan > $f
	local leaks
	leaks=$(cat $f)
	if [ -n "$leaks" ]; then
		fail "$1" "kmemleak:"; head -n 60 <<<"$leaks" | sed 's/^/#   /'
		echo clear > $f
	else
		pass "$1"
	fi
}

# fio_ok NAME FIO-ARGS...: runs fio with JSON output; passes when every job ran IO with no error.
fio_ok() {
	local name=$1; shift
	local out=/tmp/fio.$$.json
	if ! fio --output-format=json --output=$out "$@" >/tmp/fio.err 2>&1; then
		fail "$name" "fio failed:" "$(tail -n 5 /tmp/fio.err)"; return 1
	fi
	if python3 - "$out" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
d = json.loads(text[text.index("{"):])  # fio may print notes before the JSON
bad = [j for j in d["jobs"] if j["error"] != 0 or (j["read"]["total_ios"] + j["write"]["total_ios"]) == 0]
for j in d["jobs"]:
    r, w = j["read"], j["write"]
    print("#   %s: error=%d read: %d IOs %.0f IOPS, write: %d IOs %.0f IOPS" % (
        j["jobname"], j["error"], r["total_ios"], r["iops"], w["total_ios"], w["iops"]))
sys.exit(1 if bad else 0)
PY
	then pass "$name"; else fail "$name"; fi
}

summary() {
	echo "# guest: $PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
}

# vm_host REQUEST: asks the host (scripts/vm-run.sh) and prints its answer; succeeds on "ok"
vm_host() {
	local i ans
	rm -f "$CXMQ_OUT/hotplug.done"
	echo "$*" > "$CXMQ_OUT/hotplug.req.tmp" && mv "$CXMQ_OUT/hotplug.req.tmp" "$CXMQ_OUT/hotplug.req"
	for ((i = 0; i < 400; i++)); do
		[ -f "$CXMQ_OUT/hotplug.done" ] && break
		sleep 0.1
	done
	ans=$(cat "$CXMQ_OUT/hotplug.done" 2>/dev/null)
	rm -f "$CXMQ_OUT/hotplug.done"
	echo "${ans:-no answer from the host}"
	[ "$ans" = ok ]
}
# vm_unplug ID: the host hot-unplugs QEMU device ID (scripts/vm-run.sh --disk): "ok" once QEMU
# reported the device deleted
vm_unplug() { vm_host "$1"; }
# vm_throttle ID IOPS: the host limits disk ID to IOPS requests a second (0: no limit)
vm_throttle() { vm_host throttle "$1" "$2"; }

# ---- configfs devices (the feature jobs: sched.sh, poll.sh, timeout.sh) ----
CFS=/sys/kernel/config/cxmq
declare -A DISK
DEVS=()
# mkdev NAME ATTR=VALUE...: a powered memory-backed configfs device of MKDEV_SIZE MiB (256)
# with a hardware queue per vCPU, then the given attributes; its disk in DISK[NAME], NAME in DEVS
mkdev() {
	local name=$1 a idx; shift
	mkdir $CFS/$name || return 1
	DEVS+=("$name")
	for a in size="${MKDEV_SIZE:-256}" memory_backed=1 submit_queues="$CXMQ_CPUS" "$@"; do
		echo "${a#*=}" > $CFS/$name/${a%%=*} || { echo "#   $name: $a refused"; return 1; }
	done
	echo 1 > $CFS/$name/power || return 1
	read -r idx < $CFS/$name/index
	DISK[$name]=cxmq$idx
}
# refused NAME FILE VALUE NEEDLE: writing VALUE fails with EINVAL, dmesg names NEEDLE, FILE
# reads as before
refused() {
	local before after mark err
	before=$(cat "$2"); mark=$(dmesg | wc -l)
	err=$( (echo "$3" > "$2") 2>&1 )
	after=$(cat "$2")
	if [[ $err != *"Invalid argument"* ]]; then
		fail "$1" "not EINVAL: $err"
	elif ! dmesg | tail -n +"$((mark + 1))" | grep -q -- "$4"; then
		fail "$1" "no pr_err naming '$4'"
	elif [ "$before" != "$after" ]; then
		fail "$1" "changed: $before -> $after"
	else
		pass "$1"
	fi
}
# stat_of NAME KEY: KEY=N summed over the device's debugfs stats
stat_of() {
	grep -o "$2=[0-9]*" /sys/kernel/debug/cxmq/${DISK[$1]}/stats | cut -d= -f2 | awk '{s+=$1} END {print s+0}'
}
# field FILE N: the Nth space-separated field of FILE (mq/ counters: "reads writes")
field() { cut -d' ' -f"$2" "$1"; }
# verify_loop DISK LOG: fio randwrite+verify (crc32c) runs back to back until LOG.stop exists,
# a job of 1 MiB per vCPU each; then "RUNS FAILED" in LOG.result, failed runs' output in LOG
verify_loop() {
	local disk=$1 log=$2 runs=0 bad=0
	rm -f "$log.stop" "$log.result"
	while [ ! -e "$log.stop" ]; do
		if ! fio --allow_file_create=0 --name=v --filename=/dev/$disk --rw=randwrite --bs=4k \
			--ioengine=libaio --direct=1 --iodepth=16 --numjobs="$CXMQ_CPUS" --size=1m \
			--offset_increment=1m --verify=crc32c --verify_fatal=1 --do_verify=1 \
			--randrepeat=0 --group_reporting > "$log.fio" 2>&1; then
			bad=$((bad + 1)); tail -n 20 "$log.fio" >> "$log"
		fi
		runs=$((runs + 1))
	done
	echo "$runs $bad" > "$log.result"
}
