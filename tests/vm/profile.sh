# Guest job: where the time of 4k random reads goes, target by target. For each target named
# on the command line (cxmq, cxmq-dl, cxmq-kyber, floor, nullb-mq, nullb-dl, cxmq-virtio,
# virtio-blk), loads it, runs fio randread (QD32, one job per vCPU; CXMQ_PROFILE_ENGINE, default
# io_uring, or libaio) under `perf record -a` with the cpu-clock event (TCG has no PMU), and
# prints the hottest symbols of the whole guest (kernel and modules) and fio's IOPS.
# The virtio targets bind a virtio disk of their own, by serial: bench-a to cxmq, bench-b to
# virtio_blk (scheduler none), as make bench attaches them.
# usage (host): scripts/vm-run.sh --kernel debian --env CXMQ_KO_DIR=D --env CXMQ_FLOOR_KO_DIR=F \
#                   tests/vm/profile.sh cxmq floor
#   virtio: add --disk null=16384,queues=2,serial=bench-a,id=ba \
#               --disk null=16384,queues=2,serial=bench-b,id=bb
set -u
N=$(nproc)
RUNTIME=${CXMQ_PROFILE_RUNTIME:-10}
ENGINE=${CXMQ_PROFILE_ENGINE:-io_uring}
LIMIT=${CXMQ_PROFILE_LIMIT:-0.4}  # percent of samples below which a symbol is not shown
LINES=${CXMQ_PROFILE_LINES:-45}
modp() { modprobe -d "$CXMQ_MODROOT" -S "$CXMQ_KABI" "$@"; }
echo 0 > /proc/sys/kernel/kptr_restrict 2>/dev/null
# fio's first start reads its binary and libraries over 9p (seconds of D-state sleeps and an
# idle guest): do that once here, so the first target's profile does not carry it
fio --name=warmup --filename=/tmp/profile.warmup --size=1M --rw=randread --bs=4k \
	--ioengine=io_uring --iodepth=4 --output-format=json > /dev/null 2>&1
rm -f /tmp/profile.warmup
echo -1 > /proc/sys/kernel/perf_event_paranoid 2>/dev/null
declare -A VIRTIO_DEV # serial -> virtioN
if [[ " $* " == *" cxmq-virtio "* || " $* " == *" virtio-blk "* ]]; then
	modp virtio_blk 2>/dev/null
	for _ in $(seq 50); do ls /sys/block/vd* >/dev/null 2>&1 && break; sleep 0.1; done
	sleep 0.5
	for b in /sys/block/vd*; do
		[ -e "$b/serial" ] && VIRTIO_DEV[$(cat "$b/serial")]=$(basename "$(readlink -f "$b/device")")
	done
	echo 0 > /sys/bus/virtio/drivers_autoprobe
	for v in "${VIRTIO_DEV[@]}"; do echo "$v" > /sys/bus/virtio/drivers/virtio_blk/unbind; done
	rmmod virtio_blk 2>/dev/null
fi
disk_of() { # serial -> block device name
	local b
	for b in /sys/block/*; do
		[ "$(cat "$b/serial" 2>/dev/null)" = "$1" ] && { echo "${b##*/}"; return 0; }
	done
	return 1
}
bind_virtio() { # driver serial: D is its disk
	echo "${VIRTIO_DEV[$2]:-none}" > "/sys/bus/virtio/drivers/$1/bind" || return 1
	for _ in $(seq 50); do D=$(disk_of "$2") && [ -b /dev/$D ] && break; sleep 0.1; done
	[ -b "/dev/$D" ] && { [ -e /sys/block/$D/queue/scheduler ] && echo none > /sys/block/$D/queue/scheduler; return 0; }
}
for t in "$@"; do
	case $t in
	cxmq) insmod "$CXMQ_KO_DIR/cxmq.ko" irqmode=0 submit_queues="$N" hw_queue_depth=64 gb=16; D=cxmq0 M=cxmq ;;
	cxmq-dl|cxmq-kyber) s=${t#cxmq-}; [ $s = dl ] && s=mq-deadline
		insmod "$CXMQ_KO_DIR/cxmq.ko" irqmode=0 submit_queues="$N" hw_queue_depth=64 gb=16 scheduler=$s; D=cxmq0 M=cxmq ;;
	nullb-dl) modp null_blk queue_mode=2 irqmode=0 submit_queues="$N" hw_queue_depth=64 gb=16 nr_devices=1 &&
		echo mq-deadline > /sys/block/nullb0/queue/scheduler; D=nullb0 M=null_blk ;;
	floor) insmod "$CXMQ_FLOOR_KO_DIR/cxmq_floor.ko" gb=16; D=floor0 M=cxmq_floor ;;
	nullb-mq) modp null_blk queue_mode=2 irqmode=0 submit_queues="$N" hw_queue_depth=64 gb=16 nr_devices=1; D=nullb0 M=null_blk ;;
	cxmq-virtio) insmod "$CXMQ_KO_DIR/cxmq.ko" nr_devices=0 && M=cxmq && bind_virtio cxmq bench-a ;;
	virtio-blk) modp virtio_blk && M=virtio_blk && bind_virtio virtio_blk bench-b ;;
	*) echo "profile: unknown target $t"; exit 2 ;;
	esac || { echo "profile: $t did not load"; exit 1; }
	perf record -q -e cpu-clock -F 1999 -a -g -o /tmp/perf.$t.data -- \
		fio --name=randread --filename=/dev/$D --rw=randread --bs=4k --direct=1 --iodepth=32 \
		--numjobs="$N" --norandommap --randrepeat=0 --ioengine="$ENGINE" --time_based \
		--runtime="$RUNTIME" --group_reporting --output-format=json --output=/tmp/fio.$t.json \
		> /tmp/perf.$t.err 2>&1 || { echo "profile: $t: perf/fio failed"; tail -n 5 /tmp/perf.$t.err; }
	iops=$(python3 -c "import json,sys; t=open(sys.argv[1]).read(); d=json.loads(t[t.index('{'):]); print('%.0f' % d['jobs'][0]['read']['iops'])" /tmp/fio.$t.json 2>/dev/null)
	echo "== $t: $iops IOPS ($ENGINE) under perf (cpu-clock samples, whole guest, self time)"
	perf report -q -i /tmp/perf.$t.data --stdio --no-children --sort sym -g none --percent-limit "$LIMIT" 2>/dev/null | head -n "$LINES"
	echo "== $t: by module"
	perf report -q -i /tmp/perf.$t.data --stdio --no-children --sort dso -g none --percent-limit 0.5 2>/dev/null | head -n 12
	cp /tmp/perf.$t.data "$CXMQ_OUT/" 2>/dev/null
	rmmod $M
done
