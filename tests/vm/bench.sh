# Guest job of scripts/bench.sh: rounds of the same fio job against cxmq and its reference
# drivers, round-robin (round 1: every target, round 2: every target, ...). Each target's module
# is loaded just before its round and unloaded after it. Everything goes to $CXMQ_OUT:
#   raw/<target>.r<N>.json      fio's JSON of round N (the timed job only)
#   raw/<target>.r<N>.prefill.json   the untimed sequential fill of memory-backed targets
#   rounds.tsv                  target, round, status, load/prefill/fio seconds, notes
#   unavailable/<target>        why a target's module could not be loaded (it is then skipped)
#   targets/<target>            what a loaded target looked like (command, sysfs, dmesg)
#   guest.txt                   kernel, vCPUs, fio version
# The host turns the JSON into a table (scripts/bench.sh); nothing heavy runs here between rounds.
set -u
KO=${CXMQ_KO_DIR:?CXMQ_KO_DIR not set}/cxmq.ko
ROUNDS=${CXMQ_BENCH_ROUNDS:-3}
RUNTIME=${CXMQ_BENCH_RUNTIME:-10}
TARGETS=${CXMQ_BENCH_TARGETS:-cxmq nullb-mq nullb-bio cxmq-mem brd}
N=$(nproc)
OUT=$CXMQ_OUT
mkdir -p "$OUT/raw" "$OUT/unavailable" "$OUT/targets"
printf 'target\tround\tstatus\tload_s\tprefill_s\tfio_s\tiou_wrk\tnote\n' > "$OUT/rounds.tsv"

# target -> loader (insmod FILE | modprobe NAME), module name, parameters, device, prefill?
spec() {
	case $1 in
	cxmq)      L=ko   M=cxmq     P="irqmode=0 submit_queues=$N hw_queue_depth=64 gb=16" D=cxmq0  F=0 ;;
	nullb-mq)  L=mod  M=null_blk P="queue_mode=2 irqmode=0 submit_queues=$N hw_queue_depth=64 gb=16 nr_devices=1" D=nullb0 F=0 ;;
	nullb-bio) L=mod  M=null_blk P="queue_mode=0 irqmode=0 gb=16 nr_devices=1" D=nullb0 F=0 ;;
	cxmq-mem)  L=ko   M=cxmq     P="irqmode=0 memory_backed=1 submit_queues=$N gb=1" D=cxmq0 F=1 ;;
	brd)       L=mod  M=brd      P="rd_nr=1 rd_size=1048576" D=ram0 F=1 ;;
	*) return 1 ;;
	esac
}
for t in $TARGETS; do spec "$t" || { echo "bench: unknown target $t"; exit 2; }; done

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
} > "$OUT/guest.txt"
echo "== bench: $(uname -r), $N vCPUs, $ROUNDS rounds x ${RUNTIME}s of 4k randread on: $TARGETS"

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
	if [ $L = ko ]; then
		insmod "$KO" $P > /tmp/load.err 2>&1
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
	for _ in $(seq 100); do [ -b "/dev/$D" ] && break; sleep 0.1; done
	if [ ! -b "/dev/$D" ]; then
		echo "loaded, but /dev/$D did not appear" > /tmp/load.err
		rmmod "$M" 2>/dev/null
		return 1
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
		if [ $L = ko ]; then echo "load: insmod cxmq.ko $P"
		else echo "load: modprobe -d $CXMQ_MODROOT -S $CXMQ_KABI $M $P"; fi
		echo "device: /dev/$D"
		echo "size_bytes: $(( $(cat /sys/block/$D/size) * 512 ))"
		echo "scheduler: $(cat $q/scheduler 2>/dev/null || echo -)"
		echo "nr_requests: $(cat $q/nr_requests 2>/dev/null || echo -)"
		if [ -d /sys/block/$D/mq ]; then
			echo "hw_queues: $(ls -d /sys/block/$D/mq/[0-9]* | wc -l)"
		else
			echo "hw_queues: - (bio-based)"
		fi
		echo "logical_block_size: $(cat $q/logical_block_size)"
		echo "max_sectors_kb: $(cat $q/max_sectors_kb)"
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

# fio's first start reads its binary and libraries over 9p: do that once here, untimed, so the
# first target's first round does not pay for it
fio --name=warmup --filename=/tmp/bench.warmup --size=1M --rw=randread --bs=4k \
	--ioengine=io_uring --iodepth=4 --output-format=json > /dev/null 2>&1
rm -f /tmp/bench.warmup

declare -A gone
okrounds=0
for r in $(seq "$ROUNDS"); do
	for t in $TARGETS; do
		[ -n "${gone[$t]:-}" ] && continue
		spec "$t"
		t0=$(now)
		if ! load "$t"; then
			gone[$t]=1
			cp /tmp/load.err "$OUT/unavailable/$t"
			printf '%s\t%s\tunavailable\t-\t-\t-\t-\t%s\n' "$t" "$r" \
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
		sync
		json=/tmp/$t.r$r.json
		t0=$(now)
		fio --name=randread --filename="/dev/$D" --rw=randread --bs=4k --ioengine=io_uring \
			--direct=1 --iodepth=32 --numjobs="$N" --norandommap --randrepeat=0 \
			--time_based --runtime="$RUNTIME" --group_reporting --output-format=json \
			--output="$json" > /tmp/fio.err 2>&1 &
		fpid=$!
		# One look, half way through, at how many io_uring async workers exist (a device
		# without NOWAIT support makes io_uring punt every IO to them). fio takes seconds to
		# start under TCG: wait for its job processes first. Shell builtins only, no processes.
		for _ in $(seq 300); do
			[ "$(comm_count '^fio$')" -gt "$N" ] && break
			kill -0 $fpid 2>/dev/null || break
			sleep 0.2
		done
		sleep "$(awk -v r="$RUNTIME" 'BEGIN { print r / 2 }')"
		iou=$(comm_count '^iou-wrk')
		wait "$fpid"; frc=$?
		fio_s=$(since "$t0")
		cp "$json" "$OUT/raw/" 2>/dev/null
		if [ $frc = 0 ]; then status=ok; okrounds=$((okrounds + 1)); note=
		else status=fio-failed; note=$(tail -n 2 /tmp/fio.err | tr '\t\n' '  ')
		fi
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$r" "$status" "$load_s" "$prefill_s" \
			"$fio_s" "$iou" "$note" >> "$OUT/rounds.tsv"
		iops=$(sed -n 's/^ *"iops" : \([0-9.]*\),$/\1/p' "$json" 2>/dev/null | head -n1)
		echo "-- round $r $t: $status, IOPS ${iops:-?} (load ${load_s}s, prefill ${prefill_s}s, fio ${fio_s}s, iou-wrk $iou)"
		unload "$M" || { gone[$t]=1; echo "$M could not be unloaded after round $r" > "$OUT/unavailable/$t"; }
	done
done
dmesg > "$OUT/dmesg.txt"
echo "== bench: $okrounds rounds ran"
[ $okrounds -gt 0 ]
