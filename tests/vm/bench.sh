# Guest job of scripts/bench.sh: rounds of fio jobs against cxmq and its reference drivers,
# round-robin (round 1: every target, round 2: every target, ...). Each target's module is
# loaded just before its round and unloaded after it; while loaded it runs, one after the other,
# each selected job that is measured on it (job_on below). Everything goes to $CXMQ_OUT:
#   raw/<target>.r<N>.json      fio's JSON of round N of the randread job (io_uring)
#   raw/<target>.<job>.r<N>.json     the same for the other jobs (randread-libaio, seqwrite,
#                               ..., scaling-qd<D> of bench.sh --scaling)
#   raw/<target>[.<job>].r<N>.counters   the device's /proc/diskstats line and cxmq's debugfs
#                               "merge:" line before and after the job (empty where there is
#                               none), the seconds fio took to start its jobs, the scheduler
#   raw/<target>.r<N>.prefill.json   the untimed sequential fill of memory-backed targets
#   rounds.tsv                  target, job, round, status, load/prefill/fio seconds, notes
#   unavailable/<target>        why a target's module could not be loaded (it is then skipped)
#   targets/<target>            what a loaded target looked like (command, sysfs, dmesg)
#   guest.txt                   kernel, vCPUs, fio version
# The host turns the JSON into a table (scripts/bench.sh); nothing heavy runs here between rounds.
set -u
KO=${CXMQ_KO_DIR:-}/cxmq.ko
FLOOR_KO=${CXMQ_FLOOR_KO_DIR:-}/cxmq_floor.ko
NOTRACE_KO=${CXMQ_NOTRACE_KO_DIR:-}/cxmq.ko
ROUNDS=${CXMQ_BENCH_ROUNDS:-3}
RUNTIME=${CXMQ_BENCH_RUNTIME:-10}
TARGETS=${CXMQ_BENCH_TARGETS:-cxmq nullb-mq nullb-bio cxmq-mem brd floor cxmq-dl nullb-dl cxmq-kyber nullb-kyber cxmq-poll nullb-poll cxmq-shared nullb-shared cxmq-virtio virtio-blk cxmq-notrace}
JOBS=${CXMQ_BENCH_JOBS:-randread randread-libaio seqwrite poll-qd1 poll-qd32 shared}
N=$(nproc)
OUT=$CXMQ_OUT
mkdir -p "$OUT/raw" "$OUT/unavailable" "$OUT/targets"
printf 'target\tjob\tround\tstatus\tload_s\tprefill_s\tfio_s\tiou_wrk\tnote\n' > "$OUT/rounds.tsv"

declare -A VIRTIO_DEV # serial -> virtioN (the virtio targets' disks)
# target -> loader (insmod FILE K | modprobe NAME), module name, parameters, device, prefill?,
# the kernel's IO scheduler to set in queue/scheduler after loading (blk-mq targets)
spec() {
	local cx="irqmode=0 submit_queues=$N hw_queue_depth=64 gb=16"
	local nb="queue_mode=2 irqmode=0 submit_queues=$N hw_queue_depth=64 gb=16 nr_devices=1"
	S= V=
	case $1 in
	cxmq)      L=ko  K=$KO  M=cxmq     P="$cx" D=cxmq0  F=0 ;;
	nullb-mq)  L=mod K=     M=null_blk P="$nb" D=nullb0 F=0 ;;
	nullb-bio) L=mod K=     M=null_blk P="queue_mode=0 irqmode=0 gb=16 nr_devices=1" D=nullb0 F=0 ;;
	cxmq-mem)  L=ko  K=$KO  M=cxmq     P="irqmode=0 memory_backed=1 submit_queues=$N gb=1" D=cxmq0 F=1 ;;
	brd)       L=mod K=     M=brd      P="rd_nr=1 rd_size=1048576" D=ram0 F=1 ;;
	floor)     L=ko  K=$FLOOR_KO M=cxmq_floor P="gb=16" D=floor0 F=0 ;;
	cxmq-dl)   L=ko  K=$KO  M=cxmq     P="$cx scheduler=mq-deadline" D=cxmq0 F=0 ;;
	cxmq-kyber) L=ko K=$KO  M=cxmq     P="$cx scheduler=kyber" D=cxmq0 F=0 ;;
	nullb-dl)  L=mod K=     M=null_blk P="$nb" D=nullb0 F=0 S=mq-deadline ;;
	nullb-kyber) L=mod K=   M=null_blk P="$nb" D=nullb0 F=0 S=kyber ;;
	cxmq-poll) L=ko  K=$KO  M=cxmq     P="$cx poll_queues=1" D=cxmq0 F=0 ;;
	nullb-poll) L=mod K=    M=null_blk P="$nb poll_queues=1" D=nullb0 F=0 ;;
	# two devices sharing one tag set (the shared job drives both)
	cxmq-shared) L=ko K=$KO M=cxmq     P="$cx nr_devices=2 shared_tags=1" D=cxmq0 F=0 ;;
	nullb-shared) L=mod K=  M=null_blk P="${nb% nr_devices=1} nr_devices=2 shared_tags=1" D=nullb0 F=0 ;;
	# two identical virtio disks, one for each driver (V: the one bound after loading)
	cxmq-virtio) L=ko K=$KO M=cxmq     P="nr_devices=0" D=cxmq0 F=0 V=${VIRTIO_DEV[bench-a]:-} ;;
	# A built without tracepoints (make CXMQ_TRACE=0): what they cost while off
	cxmq-notrace) L=ko K=$NOTRACE_KO M=cxmq P="$cx" D=cxmq0 F=0 ;;
	virtio-blk) L=mod K=    M=virtio_blk P= D=vda F=0 V=${VIRTIO_DEV[bench-b]:-} ;;
	*) return 1 ;;
	esac
}
for t in $TARGETS; do spec "$t" || { echo "bench: unknown target $t"; exit 2; }; done

# job_on JOB TARGET: whether JOB is measured on TARGET
job_on() {
	case $1 in
	randread) [[ " cxmq-poll nullb-poll cxmq-shared nullb-shared " != *" $2 "* ]] ;;
	randread-libaio) [[ " cxmq floor cxmq-dl nullb-dl cxmq-kyber nullb-kyber cxmq-virtio virtio-blk cxmq-notrace " == *" $2 "* ]] ;;
	seqwrite) [[ " cxmq nullb-mq " == *" $2 "* ]] ;;
	poll-qd1|poll-qd32) [[ " cxmq-poll nullb-poll " == *" $2 "* ]] ;;
	shared) [[ " cxmq-shared nullb-shared " == *" $2 "* ]] ;;
	randread-qd1) [[ " cxmq-virtio virtio-blk " == *" $2 "* ]] ;;
	scaling-qd1|scaling-qd8|scaling-qd32|scaling-qd128) [[ " cxmq nullb-mq nullb-bio " == *" $2 "* ]] ;;
	*) return 1 ;;
	esac
}
for j in $JOBS; do job_on "$j" cxmq || job_on "$j" cxmq-poll || job_on "$j" cxmq-shared ||
	job_on "$j" cxmq-virtio ||
	{ echo "bench: unknown job $j"; exit 2; }; done

# fio_args JOB: the job's fio options (less the file, runtime and output): its job file in
# fio/, which users rerun by hand (fio fio/<job>.fio --filename=/dev/...)
fio_args() {
	local f=$CXMQ_ROOT/fio
	case $1 in
	randread|randread-libaio|randread-qd1|seqwrite) echo "$f/$1.fio" ;;
	poll-qd1) echo "$f/poll.fio" ;;
	poll-qd32) echo --iodepth=32 "$f/poll.fio" ;; # poll.fio leaves iodepth open
	shared) # both devices of the set (each job round-robin over the two): this --filename wins
		echo --filename="/dev/$D:/dev/${D%0}1" "$f/randread.fio" ;;
	scaling-qd*) # bench.sh --scaling: the file leaves iodepth open
		echo --iodepth="${1#scaling-qd}" "$f/randread-scaling.fio" ;;
	esac
}

# Debian's modules live under the kernel's unpacked package, not the host's /lib/modules.
modp() { modprobe -d "$CXMQ_MODROOT" -S "$CXMQ_KABI" "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

{
	echo "kernel: $(uname -r)"
	echo "cmdline: $(cat /proc/cmdline)"
	echo "vcpus: $N"
	echo "fio: $(fio --version)"
	echo "rounds: $ROUNDS"
	echo "runtime: $RUNTIME"
	echo "targets: $TARGETS"
	echo "jobs: $JOBS"
} > "$OUT/guest.txt"
echo "== bench: $(uname -r), $N vCPUs, $ROUNDS rounds x ${RUNTIME}s of $JOBS on: $TARGETS"

# load TARGET: 0 when the device is there with every parameter we passed; otherwise the reason
# is in /tmp/load.err and nothing stays loaded.
load() {
	local t=$1 mark p k
	spec "$t"
	mark=$(dmesg | wc -l)
	if [ -e "/sys/module/$M" ]; then
		echo "$M is still loaded from an earlier round" > /tmp/load.err
		return 1
	fi
	if [ $L = ko ] && [ ! -f "$K" ]; then
		echo "no module file $K (not built for this run)" > /tmp/load.err
		return 1
	fi
	if [ $L = ko ]; then
		insmod "$K" $P > /tmp/load.err 2>&1
	else
		modp "$M" $P > /tmp/load.err 2>&1
	fi || {
		{ echo "dmesg:"; dmesg | tail -n +"$((mark + 1))" | tail -n 5; } >> /tmp/load.err
		return 1
	}
	# The kernel ignores parameters a module does not have (with a warning), so a module that
	# lacks one loads fine and would be measured in the wrong mode: refuse that too.
	for p in $P; do
		k=${p%%=*}
		if [ ! -e "/sys/module/$M/parameters/$k" ]; then
			{ echo "$M has no parameter '$k' (the kernel ignored it):"
			  dmesg | tail -n +"$((mark + 1))" | grep -i "param" | tail -n 3; } > /tmp/load.err
			rmmod "$M" 2>/dev/null
			return 1
		fi
	done
	if [ -n "$V" ] || [[ $t == *virtio* ]]; then # bind the target's own virtio disk
		if [ -z "$V" ] || ! echo "$V" > "/sys/bus/virtio/drivers/$M/bind" 2>/tmp/bind.err; then
			echo "cannot bind virtio disk '${V:-none found}' to $M: $(cat /tmp/bind.err 2>/dev/null)" > /tmp/load.err
			rmmod "$M" 2>/dev/null
			return 1
		fi
	fi
	for _ in $(seq 100); do [ -b "/dev/$D" ] && break; sleep 0.1; done
	if [ ! -b "/dev/$D" ]; then
		echo "loaded, but /dev/$D did not appear" > /tmp/load.err
		rmmod "$M" 2>/dev/null
		return 1
	fi
	if [ -n "$S" ]; then
		# the kernel's request_module would look in the guest's /lib/modules: load it here
		modp "$S-iosched" > /dev/null 2>&1 || modp "$S" > /dev/null 2>&1
		echo "$S" > "/sys/block/$D/queue/scheduler" 2>/dev/null
		if [[ "$(cat /sys/block/$D/queue/scheduler)" != *"[$S]"* ]]; then
			echo "$S could not be set: $(cat /sys/block/$D/queue/scheduler)" > /tmp/load.err
			rmmod "$M" 2>/dev/null
			return 1
		fi
	fi
	return 0
}

unload() {
	local i
	for i in 1 2 3 4 5; do
		rmmod "$1" 2>/tmp/unload.err && return 0
		sleep 1
	done
	echo "bench: rmmod $1 failed: $(cat /tmp/unload.err)"
	return 1
}

# describe TARGET: what the loaded device looks like (first load only)
describe() {
	local t=$1 q=/sys/block/$D/queue p
	spec "$t"
	[ -e "$OUT/targets/$t" ] && return
	{
		if [ $L = ko ]; then echo "load: insmod $(basename "$K") $P"
		else echo "load: modprobe -d $CXMQ_MODROOT -S $CXMQ_KABI $M $P"; fi
		echo "device: /dev/$D"
		echo "size_bytes: $(( $(cat /sys/block/$D/size) * 512 ))"
		echo "scheduler: $(cat $q/scheduler 2>/dev/null || echo -)"
		echo "nr_requests: $(cat $q/nr_requests 2>/dev/null || echo -)"
		if [ -d /sys/block/$D/cxmq ]; then
			echo "cxmq/scheduler: $(cat /sys/block/$D/cxmq/scheduler)"
			echo "cxmq/nr_requests: $(cat /sys/block/$D/cxmq/nr_requests)"
		fi
		if [ -d /sys/block/$D/mq ]; then
			echo "hw_queues: $(ls -d /sys/block/$D/mq/[0-9]* | wc -l)"
		else
			echo "hw_queues: - (bio-based)"
		fi
		echo "logical_block_size: $(cat $q/logical_block_size)"
		echo "max_sectors_kb: $(cat $q/max_sectors_kb)"
		echo "nowait: $(cat $q/nowait 2>/dev/null || echo -)"
		echo "iostats: $(cat $q/iostats 2>/dev/null || echo -)"
		for p in /sys/module/$M/parameters/*; do echo "param $(basename "$p"): $(cat "$p" 2>/dev/null)"; done
		echo "dmesg:"; dmesg | grep -E "$M|null_blk|brd" | tail -n 5
	} > "$OUT/targets/$t"
}

# comm_count REGEX: how many tasks have a matching name
comm_count() {
	local f c n=0
	for f in /proc/[0-9]*/task/*/comm; do
		{ read -r c < "$f"; } 2>/dev/null && [[ $c =~ $1 ]] && n=$((n + 1))
	done
	echo $n
}

# counters WHEN: the device's /proc/diskstats line and, for cxmq, the "merge:" line of its
# debugfs stats (none until cxmq has it); builtins only
counters() {
	local l d= m=
	while read -r l; do
		[[ " $l " == *" $D "* ]] && { d=$l; break; }
	done < /proc/diskstats
	echo "diskstats $1: $d"
	if [ -r "/sys/kernel/debug/cxmq/$D/stats" ]; then
		while read -r l; do
			[[ $l == *"merge: bios="* ]] && { m=$l; break; }
		done < "/sys/kernel/debug/cxmq/$D/stats"
	fi
	echo "merge $1: $m"
}

# The virtio targets' disks, by serial: virtio_blk names them once, then nothing binds by itself
if [[ " $TARGETS " == *" cxmq-virtio "* || " $TARGETS " == *" virtio-blk "* ]]; then
	modp virtio_blk 2>/dev/null
	for _ in $(seq 50); do ls /sys/block/vd* >/dev/null 2>&1 && break; sleep 0.1; done
	sleep 0.5
	for b in /sys/block/vd*; do
		[ -e "$b/serial" ] || continue
		v=$(basename "$(readlink -f "$b/device")")
		VIRTIO_DEV[$(cat "$b/serial")]=$v
		echo "virtio disk $(cat "$b/serial"): $v (${b##*/}, $(ls "$b/mq" | wc -l) queues)" >> "$OUT/guest.txt"
	done
	echo 0 > /sys/bus/virtio/drivers_autoprobe
	for v in "${VIRTIO_DEV[@]}"; do echo "$v" > /sys/bus/virtio/drivers/virtio_blk/unbind; done
	rmmod virtio_blk 2>/dev/null
fi

# fio's first start reads its binary and libraries over 9p: do that once here, untimed, so the
# first target's first round does not pay for it (libaio is linked into fio: loaded here too)
fio --name=warmup --filename=/tmp/bench.warmup --size=1M --rw=randread --bs=4k \
	--ioengine=io_uring --iodepth=4 --output-format=json > /dev/null 2>&1
rm -f /tmp/bench.warmup

declare -A gone
okrounds=0
for r in $(seq "$ROUNDS"); do
	for t in $TARGETS; do
		[ -n "${gone[$t]:-}" ] && continue
		myjobs=
		for j in $JOBS; do job_on "$j" "$t" && myjobs+=" $j"; done
		[ -n "$myjobs" ] || continue
		spec "$t"
		t0=$(now)
		if ! load "$t"; then
			gone[$t]=1
			cp /tmp/load.err "$OUT/unavailable/$t"
			printf '%s\t-\t%s\tunavailable\t-\t-\t-\t-\t%s\n' "$t" "$r" \
				"$(head -n1 /tmp/load.err | tr '\t' ' ')" >> "$OUT/rounds.tsv"
			echo "-- $t: unavailable: $(tr '\n' ' ' < /tmp/load.err)"
			continue
		fi
		load_s=$(since "$t0")
		describe "$t"
		prefill_s=-
		if [ $F = 1 ]; then
			# untimed: write every block once so the timed reads hit real pages
			t0=$(now)
			fio --name=prefill --filename="/dev/$D" --rw=write --bs=1M --ioengine=io_uring \
				--direct=1 --iodepth=8 --output-format=json \
				--output="$OUT/raw/$t.r$r.prefill.json" > /tmp/prefill.err 2>&1 ||
				echo "-- $t: prefill failed: $(tail -n 3 /tmp/prefill.err)"
			prefill_s=$(since "$t0")
		fi
		for j in $myjobs; do
			sched=$(cat "/sys/block/$D/queue/scheduler" 2>/dev/null)
			if [ $j = seqwrite ] && [[ $sched == *"["* && $sched != *"[none]"* ]]; then
				# blk-mq targets: no I/O scheduler, so what merges is the plug alone
				echo none > "/sys/block/$D/queue/scheduler"
			fi
			sync
			if [ $j = randread ]; then base=$t.r$r; else base=$t.$j.r$r; fi
			json=/tmp/$base.json
			counters before > "/tmp/$base.counters"
			t0=$(now)
			fio --filename="/dev/$D" $(fio_args "$j") --time_based --runtime="$RUNTIME" \
				--group_reporting --output-format=json --output="$json" > /tmp/fio.err 2>&1 &
			fpid=$!
			# fio takes seconds to start under TCG: wait for its job processes (the time
			# that took goes to the counters file). Shell builtins only, no processes.
			for _ in $(seq 300); do
				[ "$(comm_count '^fio$')" -gt "$N" ] && break
				kill -0 $fpid 2>/dev/null || break
				sleep 0.2
			done
			up_s=$(since "$t0")
			iou=-
			if [ $j = randread ]; then
				# One look, half way through, at how many io_uring async workers exist (a
				# device without NOWAIT support makes io_uring punt every IO to them).
				sleep "$(awk -v r="$RUNTIME" 'BEGIN { print r / 2 }')"
				iou=$(comm_count '^iou-wrk')
			fi
			wait "$fpid"; frc=$?
			fio_s=$(since "$t0")
			counters after >> "/tmp/$base.counters"
			echo "fio_start_s: $up_s" >> "/tmp/$base.counters"
			echo "scheduler: $(cat /sys/block/$D/queue/scheduler 2>/dev/null || echo -)" >> "/tmp/$base.counters"
			[ -r /sys/block/$D/cxmq/scheduler ] &&
				echo "cxmq/scheduler: $(cat /sys/block/$D/cxmq/scheduler)" >> "/tmp/$base.counters"
			cp "$json" "/tmp/$base.counters" "$OUT/raw/" 2>/dev/null
			if [ $frc = 0 ]; then status=ok; okrounds=$((okrounds + 1)); note=
			else status=fio-failed; note=$(tail -n 2 /tmp/fio.err | tr '\t\n' '  ')
			fi
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$j" "$r" "$status" "$load_s" \
				"$prefill_s" "$fio_s" "$iou" "$note" >> "$OUT/rounds.tsv"
			iops=$(sed -n 's/^ *"iops" : \([0-9.]*\),$/\1/p' "$json" 2>/dev/null |
				awk '$1 > 0 { print; exit }')
			echo "-- round $r $t $j: $status, IOPS ${iops:-?} (load ${load_s}s, prefill ${prefill_s}s, fio ${fio_s}s, iou-wrk $iou)"
			load_s=- prefill_s=-
		done
		unload "$M" || { gone[$t]=1; echo "$M could not be unloaded after round $r" > "$OUT/unavailable/$t"; }
	done
done
dmesg > "$OUT/dmesg.txt"
echo "== bench: $okrounds rounds ran"
[ $okrounds -gt 0 ]
