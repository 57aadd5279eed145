#!/bin/bash
# Boot a kernel in QEMU (TCG), run a job script inside the guest with the host's root mounted
# read-only over virtio-9p, and return the job's exit status. The job's output is streamed to
# stdout; the guest console is kept in OUT/console.log.
#
# usage: vm-run.sh [--kernel debian|test|DIR] [--cpus N] [--mem MB] [--timeout S] [--out DIR]
#                  [--env NAME=VALUE]... [--disk SPEC]... JOB [ARGS...]
# --disk attaches a virtio-blk-pci disk: SPEC is null[=MB] (QEMU's null-co driver: no data,
# reads return zeroes; 1024 MB) or file=PATH (a raw image), then any of ,queues=N (num-queues,
# default 1), ,serial=S, ,id=ID (the QEMU device id; vd0, vd1, ... in order by default). With
# disks, the guest can hot-unplug one: tests/vm/lib.sh's vm_unplug ID asks the host, which sends
# QMP device_del and waits for QEMU's DEVICE_DELETED; and slow one down: vm_throttle ID IOPS
# (QMP block_set_io_throttle; 0 lifts it).
# Exit status: the job's; 124 if the guest timed out (killed), 125 if it died without finishing
# (panic, triple fault, init failure). In both cases the tail of the console is printed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kernel=debian cpus=2 mem=2048 timeout=600 out= envs=() disks=()
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--cpus) cpus=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--env) envs+=("$2"); shift 2 ;;
	--disk) disks+=("$2"); shift 2 ;;
	--) shift; break ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || die "usage: vm-run.sh [options] JOB [ARGS...]"
job=$(realpath "$1"); shift
case "$kernel" in
debian) kdir=$("$CXMQ_ROOT/scripts/fetch-debian-kernel.sh") ;;
test) kdir=$("$CXMQ_ROOT/scripts/build-test-kernel.sh") ;;
*) kdir=$kernel ;;
esac
[ -f "$kdir/bzImage" ] || die "no bzImage in $kdir"
initrd=$("$CXMQ_ROOT/scripts/mkinitramfs.sh" "$kdir")
abi=$(ls "$kdir/mods/lib/modules" | head -n1)

[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/cxmq-vm.XXXXXX")
# The repository and the cache must stay visible in the guest even where they live under /tmp
# (covered by a tmpfs there); spaces or colons in them are not supported.
keep="$CXMQ_ROOT:$(realpath "$CXMQ_CACHE")"
case "$keep" in *" "*) die "paths with spaces are not supported: $keep" ;; esac
mkdir -p "$out"; out=$(realpath "$out")
rm -f "$out/rc" "$out/guest.log" "$out/console.log"
: > "$out/guest.log"
{
	printf 'export CXMQ_ROOT=%q CXMQ_OUT=%q CXMQ_MODROOT=%q CXMQ_KABI=%q CXMQ_CPUS=%q\n' \
		"$CXMQ_ROOT" "$out" "$kdir/mods" "$abi" "$cpus"
	for e in "${envs[@]+"${envs[@]}"}"; do printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"; done
} > "$out/env.sh"
cp "$job" "$out/job-script.sh"
{ printf '#!/bin/bash\nexec /bin/bash ./job-script.sh'; printf ' %q' "$@"; echo; } > "$out/job.sh"

# The debug test kernel routes PCI interrupts without ACPI: its debug options made each PCI
# device's _PRT evaluation run QEMU's AML loop past ACPI's 30 s loop timeout (minutes of boot,
# soft lockups, with the virtio disks); the devices use MSI-X anyway.
append="console=ttyS0 panic=-1 loglevel=4 watchdog_thresh=30 rcupdate.rcu_cpu_stall_timeout=60 cxmq.out=$out cxmq.keep=$keep"
grep -qs '^CONFIG_KASAN=y' "$kdir/build/.config" && append+=" acpi=noirq"
append+="${CXMQ_VM_APPEND:+ $CXMQ_VM_APPEND}"

qemu=(qemu-system-x86_64 -machine pc -accel tcg,thread=multi -cpu max -smp "$cpus" -m "$mem"
	-no-reboot -display none -monitor none -serial "file:$out/console.log"
	-kernel "$kdir/bzImage" -initrd "$initrd"
	-append "$append"
	-fsdev "local,id=hostroot,path=/,readonly=on,security_model=none,multidevs=remap"
	-device "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot"
	-fsdev "local,id=out,path=$out,security_model=none"
	-device "virtio-9p-pci,fsdev=out,mount_tag=out")

# The disks: a -blockdev and a virtio-blk-pci device each.
n=0
for spec in "${disks[@]+"${disks[@]}"}"; do
	id=vd$n queues=1 serial= src=
	IFS=, read -r -a parts <<<"$spec"
	for p in "${parts[@]}"; do
		case "$p" in
		null) src="driver=null-co,size=$((1024 << 20)),read-zeroes=on" ;;
		null=*) src="driver=null-co,size=$(( ${p#null=} << 20 )),read-zeroes=on" ;;
		file=*) src="driver=raw,discard=unmap,file.driver=file,file.filename=$(realpath "${p#file=}")" ;;
		queues=*) queues=${p#queues=} ;;
		serial=*) serial=${p#serial=} ;;
		id=*) id=${p#id=} ;;
		*) die "--disk $spec: unknown part '$p'" ;;
		esac
	done
	[ -n "$src" ] || die "--disk $spec: null, null=MB or file=PATH"
	qemu+=(-blockdev "node-name=bd$n,$src"
	       -device "virtio-blk-pci,id=$id,drive=bd$n,num-queues=$queues${serial:+,serial=$serial}")
	n=$((n + 1))
done
hotplug_pid=
if [ $n -gt 0 ]; then
	rm -f "$out/qmp.sock" "$out/hotplug.req" "$out/hotplug.done"
	qemu+=(-qmp "unix:$out/qmp.sock,server=on,wait=off")
	# The guest writes a request to OUT/hotplug.req: "ID" (QMP device_del) or "throttle ID
	# IOPS"; the answer in OUT/hotplug.done ("ok", or what went wrong).
	(
		while sleep 0.2; do
			[ -f "$out/hotplug.req" ] || continue
			read -r req < "$out/hotplug.req"; rm -f "$out/hotplug.req"
			python3 - "$out/qmp.sock" $req > "$out/hotplug.done.tmp" 2>&1 <<'PY' || true
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
def send(cmd, **args):
    f.write(json.dumps({"execute": cmd, "arguments": args} if args else {"execute": cmd}) + "\n"); f.flush()
    while True:
        m = json.loads(f.readline())
        if "return" in m or "error" in m:
            return m
json.loads(f.readline())  # greeting
send("qmp_capabilities")
if sys.argv[2] == "throttle":
    # (the block backend is the virtio-blk-pci proxy's child's)
    r = send("block_set_io_throttle", id=sys.argv[3] + "/virtio-backend", iops=int(sys.argv[4]), bps=0, bps_rd=0,
             bps_wr=0, iops_rd=0, iops_wr=0)
    print("ok" if "return" in r else "block_set_io_throttle: %s" % r["error"].get("desc"))
    sys.exit(0)
r = send("device_del", id=sys.argv[2])
if "error" in r:
    print("device_del: %s" % r["error"].get("desc")); sys.exit(0)
s.settimeout(30)
end = time.time() + 30
while time.time() < end:
    m = json.loads(f.readline())
    if m.get("event") == "DEVICE_DELETED" and m.get("data", {}).get("device") == sys.argv[2]:
        print("ok"); sys.exit(0)
print("no DEVICE_DELETED for %s within 30 s" % sys.argv[2])
PY
			mv "$out/hotplug.done.tmp" "$out/hotplug.done"
		done
	) &
	hotplug_pid=$!
fi

tail -n +1 -F "$out/guest.log" 2>/dev/null &
tailpid=$!
start=$(date +%s)
set +e
timeout --kill-after=10 "$timeout" "${qemu[@]}" </dev/null
qrc=$?
set -e
sleep 0.3; kill "$tailpid" 2>/dev/null; wait "$tailpid" 2>/dev/null || true
if [ -n "$hotplug_pid" ]; then kill "$hotplug_pid" 2>/dev/null; wait "$hotplug_pid" 2>/dev/null || true; fi
dur=$(( $(date +%s) - start ))
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	log "guest timed out after ${timeout}s; console tail:"
	tail -n 60 "$out/console.log" >&2
	exit 124
fi
if [ ! -s "$out/rc" ]; then
	log "guest ended without finishing its job (qemu exit $qrc) after ${dur}s; console tail:"
	tail -n 60 "$out/console.log" >&2
	exit 125
fi
rc=$(cat "$out/rc")
log "guest job exited $rc after ${dur}s (log: $out)"
exit "$rc"
