# Guest job: where the time of 4k random reads goes, target by target. For each target named
# on the command line (cxmq, cxmq-dl, cxmq-kyber, floor, nullb-mq, nullb-dl), loads it, runs fio randread (io_uring, QD32, one
# job per vCPU) under `perf record -a` with the cpu-clock event (TCG has no PMU), and prints
# the hottest symbols of the whole guest (kernel and modules) and fio's IOPS.
# usage (host): scripts/vm-run.sh --kernel debian --env CXMQ_KO_DIR=D --env CXMQ_FLOOR_KO_DIR=F \
#                   tests/vm/profile.sh cxmq floor
set -u
N=$(nproc)
RUNTIME=${CXMQ_PROFILE_RUNTIME:-10}
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
for t in "$@"; do
	case $t in
	cxmq) insmod "$CXMQ_KO_DIR/cxmq.ko" irqmode=0 submit_queues="$N" hw_queue_depth=64 gb=16; D=cxmq0 M=cxmq ;;
	cxmq-dl|cxmq-kyber) s=${t#cxmq-}; [ $s = dl ] && s=mq-deadline
		insmod "$CXMQ_KO_DIR/cxmq.ko" irqmode=0 submit_queues="$N" hw_queue_depth=64 gb=16 scheduler=$s; D=cxmq0 M=cxmq ;;
	nullb-dl) modp null_blk queue_mode=2 irqmode=0 submit_queues="$N" hw_queue_depth=64 gb=16 nr_devices=1 &&
		echo mq-deadline > /sys/block/nullb0/queue/scheduler; D=nullb0 M=null_blk ;;
	floor) insmod "$CXMQ_FLOOR_KO_DIR/cxmq_floor.ko" gb=16; D=floor0 M=cxmq_floor ;;
	nullb-mq) modp null_blk queue_mode=2 irqmode=0 submit_queues="$N" hw_queue_depth=64 gb=16 nr_devices=1; D=nullb0 M=null_blk ;;
	*) echo "profile: unknown target $t"; exit 2 ;;
	esac || { echo "profile: $t did not load"; exit 1; }
	perf record -q -e cpu-clock -F 1999 -a -g -o /tmp/perf.$t.data -- \
		fio --name=randread --filename=/dev/$D --rw=randread --bs=4k --direct=1 --iodepth=32 \
		--numjobs="$N" --norandommap --randrepeat=0 --ioengine=io_uring --time_based \
		--runtime="$RUNTIME" --group_reporting --output-format=json --output=/tmp/fio.$t.json \
		> /tmp/perf.$t.err 2>&1 || { echo "profile: $t: perf/fio failed"; tail -n 5 /tmp/perf.$t.err; }
	iops=$(python3 -c "import json,sys; t=open(sys.argv[1]).read(); d=json.loads(t[t.index('{'):]); print('%.0f' % d['jobs'][0]['read']['iops'])" /tmp/fio.$t.json 2>/dev/null)
	echo "== $t: $iops IOPS under perf (cpu-clock samples, whole guest, self time)"
	perf report -q -i /tmp/perf.$t.data --stdio --no-children --sort sym -g none --percent-limit "$LIMIT" 2>/dev/null | head -n "$LINES"
	echo "== $t: by module"
	perf report -q -i /tmp/perf.$t.data --stdio --no-children --sort dso -g none --percent-limit 0.5 2>/dev/null | head -n 12
	cp /tmp/perf.$t.data "$CXMQ_OUT/" 2>/dev/null
	rmmod $M
done
