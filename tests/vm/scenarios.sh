# Guest job: the mq/ sysfs tree, configfs devices, runtime queue count, CPU hotplug and object
# lifetimes (issue 4's scenarios; the history of blk-mq's sysfs code as tests). Every scenario
# ends with a check for kernel reports (WARNING, BUG, KASAN, lockdep, RCU stalls, hung tasks);
# the leak scenario and the end of the job scan kmemleak.
#   CXMQ_SCEN_SECONDS  duration of scenarios 1 and 2 (default 8; the test command 30 and 20; full: 60)
#   CXMQ_SCEN_CYCLES   create/remove cycles of scenario 5 (quick default 40; full: 200)
#   CXMQ_SCEN_ONLY     run only these scenario numbers (e.g. "1 3")
. "$CXMQ_ROOT/tests/vm/lib.sh"
CPUS=$CXMQ_CPUS
SECONDS_EACH=${CXMQ_SCEN_SECONDS:-8}
CYCLES=${CXMQ_SCEN_CYCLES:-40}
ONLY=${CXMQ_SCEN_ONLY:-}
CFS=/sys/kernel/config/cxmq
T=/tmp/scen
mkdir -p $T
mkfifo $T/never && exec 9<>$T/never # `read -t S -u 9` sleeps S seconds without a fork
nap() { read -r -t "$1" -u 9 || true; }
dmesg_mark
SCEN_T0=$(date +%s)
want() { # N: run scenario N? (and report how long the previous one took)
	echo "# ($(( $(date +%s) - SCEN_T0 )) s so far)"
	[ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]
}

# ---- helpers ----
# tree_check DISK NR_HW: the tree has one directory per hardware queue that has online CPUs,
# cpu<M>/ directories and cpu_list agree, and together they name each online CPU exactly once.
# Prints the problem and fails. Builtins only (globs, read): forks are slow in a loaded guest.
tree_check() {
	local disk=$1 nr=$2 mq=/sys/block/$1/mq d c r list online n m nh=0 nonline=0
	local -A on=() seen=() inlist=()
	local -a parts=() cl=()
	[ -d $mq ] || { echo "$disk: no $mq"; return 1; }
	read -r online < /sys/devices/system/cpu/online
	IFS=, read -ra parts <<< "$online"
	for r in "${parts[@]}"; do
		for ((c = ${r%-*}; c <= ${r#*-}; c++)); do on[$c]=1; nonline=$((nonline + 1)); done
	done
	for d in $mq/*/; do
		[ -d "$d" ] || continue
		nh=$((nh + 1))
		list=
		read -r list < "${d}cpu_list" || true
		[[ "$list" =~ ^[0-9]+(,\ [0-9]+)*$ ]] || { echo "$disk: ${d#$mq/}: malformed cpu_list '$list'"; return 1; }
		IFS=', ' read -ra cl <<< "$list"
		inlist=(); n=0 m=0
		for c in "${cl[@]}"; do inlist[$c]=1; n=$((n + 1)); done
		for c in "${d}"cpu[0-9]*; do
			[ -d "$c" ] || continue
			c=${c##*/cpu}; m=$((m + 1))
			[ -n "${inlist[$c]:-}" ] || { echo "$disk: ${d#$mq/}cpu$c not in cpu_list '$list'"; return 1; }
			[ -z "${seen[$c]:-}" ] || { echo "$disk: cpu$c appears twice"; return 1; }
			seen[$c]=1
		done
		[ $m -eq $n ] || { echo "$disk: ${d#$mq/}: $m cpu dirs, cpu_list '$list'"; return 1; }
	done
	for c in "${!on[@]}"; do [ -n "${seen[$c]:-}" ] || { echo "$disk: online CPU $c has no directory"; return 1; }; done
	for c in "${!seen[@]}"; do [ -n "${on[$c]:-}" ] || { echo "$disk: offline CPU $c has a directory"; return 1; }; done
	if [ "$nr" -le $nonline ] && [ $nh -ne "$nr" ]; then
		echo "$disk: $nh hardware queue directories, expected $nr"; return 1
	fi
	[ $nh -le "$nr" ] || { echo "$disk: $nh directories for $nr queues"; return 1; }
	return 0
}
cfs_new() { # NAME ATTR=VALUE...: a configfs device, powered on; prints its disk name
	local name=$1 a; shift
	mkdir $CFS/$name || return 1
	for a in "$@"; do echo "${a#*=}" > $CFS/$name/${a%%=*} || return 1; done
	echo 1 > $CFS/$name/power || return 1
	echo cxmq$(cat $CFS/$name/index)
}
cfs_del() { echo 0 > $CFS/$1/power; rmdir $CFS/$1; }
sum_file() { cat "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
# Readers (scenario 3): every file of the tree, read in a loop; a read that fails because its
# directory went away meanwhile is fine, a malformed cpu_list or pending is not.
readers_start() { # DISK N
	local i
	READER_PIDS=""
	for i in $(seq 1 "$2"); do
		# niced: they read all the time, but must not starve the scenario they run against
		nice -n 19 python3 - "$1" "$T/reader.$i" <<'PY' &
import glob, os, re, sys
disk, out = sys.argv[1], sys.argv[2]
reads = errors = bad = 0
cpu_re = re.compile(r"^[0-9]+(, [0-9]+)*\n$")
stop = out + ".stop"
while not os.path.exists(stop):
    for f in glob.glob("/sys/block/%s/mq/*/*" % disk) + glob.glob("/sys/block/%s/mq/*/cpu*/*" % disk):
        try:
            with open(f) as fh:
                s = fh.read()
        except OSError:
            errors += 1
            continue
        reads += 1
        name = os.path.basename(f)
        if name == "cpu_list" and not cpu_re.match(s):
            bad += 1
            print("torn cpu_list %r in %s" % (s, f))
        if name == "pending" and not s.startswith("HCTX pending:\n"):
            bad += 1
            print("malformed pending %r" % s[:80])
        if len(s) > 4096:
            bad += 1
            print("%s longer than a page" % f)
open(out, "w").write("%d %d %d\n" % (reads, errors, bad))
PY
		READER_PIDS="$READER_PIDS $!"
	done
}
readers_stop() { # NAME: stops the readers, checks what they saw
	local i reads=0 errs=0 bad=0 r e b
	for i in 1 2 3; do touch $T/reader.$i.stop; done
	wait $READER_PIDS
	for i in 1 2 3; do
		[ -f $T/reader.$i ] || continue
		read -r r e b < $T/reader.$i; reads=$((reads + r)); errs=$((errs + e)); bad=$((bad + b))
	done
	rm -f $T/reader.*
	echo "# readers: $reads reads, $errs failed with the directory gone, $bad malformed"
	check "$1: 3 readers of every mq/ file: $reads reads, none torn or malformed" \
		test $bad -eq 0 -a $reads -gt 0
}

# ---- 0: the tree, its numbers, configfs ----
if want 0; then
	check "insmod submit_queues=$CPUS" insmod "$CXMQ_KO" submit_queues=$CPUS hw_queue_depth=64
	check "mq/ tree of cxmq0: $CPUS queue directories, cpu<M>/ and cpu_list agree" tree_check cxmq0 $CPUS
	check "nr_tags is hw_queue_depth" test "$(cat /sys/block/cxmq0/mq/0/nr_tags)" = 64
	check "nr_reserved_tags is 0" test "$(cat /sys/block/cxmq0/mq/0/nr_reserved_tags)" = 0
	check "tags format" grep -q '^nr_tags=64, reserved_tags=0, bits_per_word=[0-9]*$' /sys/block/cxmq0/mq/0/tags
	# The numbers: N reads and M writes from one CPU show up on that CPU's software queue and on
	# the hardware queue it maps to, and nowhere else.
	c=$((CPUS - 1))
	h=$(basename "$(dirname "$(ls -d /sys/block/cxmq0/mq/*/cpu$c)")")
	ctx=/sys/block/cxmq0/mq/$h/cpu$c
	r0=$(field $ctx/dispatched 1) w0=$(field $ctx/dispatched 2)
	cr0=$(field $ctx/completed 1) cw0=$(field $ctx/completed 2)
	q0=$(cat /sys/block/cxmq0/mq/$h/queued) all0=$(sum_file /sys/block/cxmq0/mq/*/queued)
	taskset -c $c dd if=/dev/cxmq0 of=/dev/null bs=4k count=300 iflag=direct status=none
	taskset -c $c dd if=/dev/zero of=/dev/cxmq0 bs=4k count=200 oflag=direct status=none
	r1=$(field $ctx/dispatched 1) w1=$(field $ctx/dispatched 2)
	cr1=$(field $ctx/completed 1) cw1=$(field $ctx/completed 2)
	q1=$(cat /sys/block/cxmq0/mq/$h/queued) all1=$(sum_file /sys/block/cxmq0/mq/*/queued)
	check "cpu$c/dispatched counts 300 reads, 200 writes ($((r1 - r0)) $((w1 - w0)))" \
		test $((r1 - r0)) -eq 300 -a $((w1 - w0)) -eq 200
	check "cpu$c/completed counts 300 reads, 200 writes ($((cr1 - cr0)) $((cw1 - cw0)))" \
		test $((cr1 - cr0)) -eq 300 -a $((cw1 - cw0)) -eq 200
	check "mq/$h/queued grew by 500 ($((q1 - q0))), no other queue moved ($((all1 - all0)))" \
		test $((q1 - q0)) -eq 500 -a $((all1 - all0)) -eq 500
	check "nothing in flight when idle: active 0" test "$(sum_file /sys/block/cxmq0/mq/*/active)" = 0
	check "merged is 0 (one dd at a time never stages a request to merge into)" test "$(sum_file /sys/block/cxmq0/mq/*/cpu*/merged)" = 0

	# configfs: errors change nothing
	mkdir $CFS/e
	bad_write() { # ATTR VALUE ERRNO-TEXT
		local before after
		before=$(cat $CFS/e/$1)
		if echo "$2" > $CFS/e/$1 2>$T/err; then echo "write $1=$2 succeeded"; return 1; fi
		after=$(cat $CFS/e/$1)
		grep -q "$3" $T/err || { echo "$1=$2: $(cat $T/err)"; return 1; }
		[ "$before" = "$after" ] || { echo "$1 changed: $before -> $after"; return 1; }
	}
	for w in "submit_queues 0" "submit_queues $((CPUS + 1))" "submit_queues abc" "blocksize 1000" \
		 "blocksize 8192" "hw_queue_depth 0" "hw_queue_depth 4097" "irqmode 3" "size 0" \
		 "memory_backed 2" "completion_nsec 0" "home_node 77" "power maybe" "size 12abc"; do
		set -- $w
		check "configfs $1=$2 is refused with EINVAL, nothing changed" bad_write $1 "$2" "Invalid argument"
	done
	check "configfs: a pr_err names the attribute" sh -c "dmesg | grep -q 'cxmq: e: submit_queues=0 is invalid'"
	echo 8 > $CFS/e/size; echo 1 > $CFS/e/power
	for w in "size 16" "blocksize 4096" "hw_queue_depth 8" "irqmode 1" "memory_backed 1" "completion_nsec 5"; do
		set -- $w
		check "configfs $1 on a powered device is refused with EBUSY" bad_write $1 "$2" "busy"
	done
	check "configfs: writing power=1 again is harmless" sh -c "echo 1 > $CFS/e/power"
	cfs_del e

	# pending and rq_list never exceed a page: 2048 requests wait while the backend answers busy
	# to everything. As in blk-mq, the one it refused waits on the dispatch list (pending) and
	# the rest stay staged in the software queue of the CPU fio runs on (cpu<N>/rq_list), so the
	# long list is an rq_list here; then they go through and the IO must have completed fine.
	d=$(cfs_new deep hw_queue_depth=4096 size=64 submit_queues=1)
	echo 1 > /sys/module/cxmq/parameters/busy_every
	fio --allow_file_create=0 --name=deep --filename=/dev/$d --rw=randread --bs=4k --ioengine=libaio --direct=1 \
		--iodepth=2048 --number_ios=2048 --size=64m > $T/deep.out 2>&1 &
	fpid=$!
	long=
	for i in $(seq 1 120); do
		[ "$(cat /sys/block/$d/mq/0/active)" -ge 2000 ] || { sleep 0.5; continue; }
		for f in /sys/block/$d/mq/0/pending /sys/block/$d/mq/0/cpu*/rq_list; do
			tail -n1 $f | grep -q '\.\.\.' && long=$f
		done
		[ -n "$long" ] && break
		sleep 0.5
	done
	for f in /sys/block/$d/mq/0/pending /sys/block/$d/mq/0/cpu*/rq_list; do
		cat $f > $T/list.$(basename $(dirname $f))$(basename $f)
	done
	echo "# $(cat /sys/block/$d/mq/0/active) requests hold tags; the long list: ${long:-none}; $(for f in $T/list.*; do printf '%s: %s lines, %s bytes; ' ${f#$T/list.} $(wc -l < $f) $(wc -c < $f); done)"
	check "2048 waiting requests: one list holds them, its file stays within a page and ends with '...'" \
		sh -c "[ -n '$long' ] && [ \$(cat $long | wc -c) -le 4096 ] && [ \"\$(tail -n1 $long)\" = \"$(printf '\t...')\" ]"
	check "pending and every rq_list stay within a page, headers intact" sh -c "
		for f in $T/list.*; do [ \$(wc -c < \$f) -le 4096 ] || exit 1; done
		head -n1 $T/list.0pending | grep -qx 'HCTX pending:' || exit 1
		for f in $T/list.cpu*; do head -n1 \$f | grep -qx 'CTX pending:' || exit 1; done"
	echo 0 > /sys/module/cxmq/parameters/busy_every
	check "the 2048 refused requests then complete without errors" wait $fpid
	check "pending and every rq_list are empty again" sh -c "
		[ \"\$(cat /sys/block/$d/mq/0/pending)\" = 'HCTX pending:' ] || exit 1
		for f in /sys/block/$d/mq/0/cpu*/rq_list; do [ \"\$(cat \$f)\" = 'CTX pending:' ] || exit 1; done"
	cfs_del deep
	check "rmmod" rmmod cxmq
	dmesg_clean "scenario 0 (tree, numbers, configfs errors, bounded pending): no kernel reports"
fi

# ---- 1 + 3: runtime queue count under fio verify, readers in a loop ----
if want 1; then
	insmod "$CXMQ_KO" nr_devices=0
	d=$(cfs_new rt memory_backed=1 size=64 submit_queues=$CPUS irqmode=1)
	check "configfs device rt is $d" test -b /dev/$d
	readers_start $d 3
	verify_loop $d $T/v1.log &
	vpid=$!
	tot_ms=0 max_ms=0
	iters=0 mism=0 end=$(( EPOCHSECONDS + SECONDS_EACH ))
	while [ $EPOCHSECONDS -lt $end ]; do
		n=$(( iters % 2 == 0 ? 1 : CPUS ))
		t0=${EPOCHREALTIME/./}
		echo $n > $CFS/rt/submit_queues || { mism=$((mism + 1)); echo "# write $n failed"; }
		wms=$(( (${EPOCHREALTIME/./} - t0) / 1000 )); tot_ms=$((tot_ms + wms)); [ $wms -gt $max_ms ] && max_ms=$wms
		read -r got < $CFS/rt/submit_queues
		if [ "$got" != $n ] || ! tree_check $d $n > $T/tc 2>&1; then
			mism=$((mism + 1)); echo "# after submit_queues=$n (reads $got): $(cat $T/tc)"
		fi
		iters=$((iters + 1))
		nap 0.1
	done
	touch $T/v1.log.stop
	wait $vpid
	read -r runs bad < $T/v1.log.result
	cat $T/v1.log 2>/dev/null | head -n 20 | sed 's/^/#   /'
	echo "# scenario 1: $iters queue count changes ($tot_ms ms in the writes, the longest $max_ms ms), $runs fio verify runs"
	check "scenario 1: submit_queues toggled 1<->$CPUS $iters times under fio verify: $runs runs, $bad failed" \
		test "$bad" = 0 -a "$runs" -gt 0 -a $iters -gt 0
	check "scenario 1: the mq/ tree matched the count after every change" test $mism = 0
	readers_stop "scenario 3 (during 1)"
	cfs_del rt
	rmmod cxmq
	dmesg_clean "scenario 1+3: no kernel reports (lockdep, KASAN, hung tasks)"
fi

# ---- 2 + 3: CPU hotplug under fio verify ----
if want 2 && [ "$CPUS" -ge 2 ] && [ -e /sys/devices/system/cpu/cpu1/online ]; then
	insmod "$CXMQ_KO" nr_devices=0
	last=$((CPUS - 1))
	# a CPU offline when the device is made gets a working software queue when it comes back
	echo 0 > /sys/devices/system/cpu/cpu$last/online
	d=$(cfs_new hp memory_backed=1 size=64 submit_queues=$CPUS irqmode=1)
	check "CPU $last offline at creation: no cpu$last/ directory" sh -c "! ls -d /sys/block/$d/mq/*/cpu$last 2>/dev/null"
	echo 1 > /sys/devices/system/cpu/cpu$last/online
	check "CPU $last online: cpu$last/ appears, the tree matches" tree_check $d $CPUS
	ctx=$(ls -d /sys/block/$d/mq/*/cpu$last)
	r0=$(field $ctx/dispatched 1)
	taskset -c $last dd if=/dev/$d of=/dev/null bs=4k count=100 iflag=direct status=none
	check "its software queue counts the 100 reads made on it" test $(( $(field $ctx/dispatched 1) - r0 )) -eq 100

	readers_start $d 3
	verify_loop $d $T/v2.log &
	vpid=$!
	tot_ms=0 max_ms=0
	iters=0 mism=0 end=$(( EPOCHSECONDS + SECONDS_EACH ))
	while [ $EPOCHSECONDS -lt $end ]; do
		c=$(( (RANDOM % (CPUS - 1)) + 1 ))
		f=/sys/devices/system/cpu/cpu$c/online
		t0=${EPOCHREALTIME/./}
		read -r on < $f
		if [ "$on" = 1 ]; then echo 0 > $f; else echo 1 > $f; fi
		wms=$(( (${EPOCHREALTIME/./} - t0) / 1000 )); tot_ms=$((tot_ms + wms)); [ $wms -gt $max_ms ] && max_ms=$wms
		if ! tree_check $d $CPUS > $T/tc 2>&1; then
			mism=$((mism + 1)); echo "# after cpu$c change: $(cat $T/tc)"
		fi
		iters=$((iters + 1))
		nap 0.2
	done
	touch $T/v2.log.stop
	wait $vpid
	read -r runs bad < $T/v2.log.result
	head -n 20 $T/v2.log 2>/dev/null | sed 's/^/#   /'
	for c in $(seq 1 $((CPUS - 1))); do echo 1 > /sys/devices/system/cpu/cpu$c/online; done
	echo "# scenario 2: $iters CPU hotplug events ($tot_ms ms in the writes, the longest $max_ms ms), $runs fio verify runs"
	check "scenario 2: random CPUs offlined/onlined $iters times under fio verify: $runs runs, $bad failed" \
		test "$bad" = 0 -a "$runs" -gt 0 -a $iters -gt 0
	check "scenario 2: the cpu<M>/ directories followed the online CPUs after every change" test $mism = 0
	check "scenario 2: all CPUs back: the tree is whole again" tree_check $d $CPUS
	readers_stop "scenario 3 (during 2)"
	cfs_del hp
	rmmod cxmq
	dmesg_clean "scenario 2+3: no kernel reports (lockdep, KASAN, hung tasks)"
fi

# ---- 4: a file of the tree held open across removal ----
if want 4; then
	insmod "$CXMQ_KO" submit_queues=$CPUS
	d=$(cfs_new life submit_queues=$CPUS)
	exec 5< /sys/block/$d/mq/0/cpu_list 6< /sys/block/$d/mq/0/cpu0/dispatched
	exec 7< /sys/block/cxmq0/mq/0/queued 8< /sys/block/cxmq0/mq/0/cpu0/rq_list
	cfs_del life
	check "scenario 4: cpu_list held open across power=0/rmdir reads an error" sh -c '! cat <&5'
	check "scenario 4: cpu0/dispatched held open across removal reads an error" sh -c '! cat <&6'
	rmmod cxmq
	check "scenario 4: queued held open across rmmod reads an error" sh -c '! cat <&7'
	check "scenario 4: cpu0/rq_list held open across rmmod reads an error" sh -c '! cat <&8'
	exec 5<&- 6<&- 7<&- 8<&-
	dmesg_clean "scenario 4: no use-after-free (KASAN) or other report"
fi

# ---- 5 + 6: create/remove cycles, leaks, rate ----
if want 5; then
	insmod "$CXMQ_KO" nr_devices=0
	[ -e /sys/kernel/debug/kmemleak ] && { echo scan > /sys/kernel/debug/kmemleak; echo clear > /sys/kernel/debug/kmemleak; }
	ok=0
	t0=$(date +%s%N)
	for i in $(seq 1 "$CYCLES"); do
		mkdir $CFS/c && echo $CPUS > $CFS/c/submit_queues && echo 1 > $CFS/c/power &&
			test -d /sys/block/cxmq$(cat $CFS/c/index)/mq/0 && echo 0 > $CFS/c/power &&
			rmdir $CFS/c && ok=$((ok + 1))
	done
	t1=$(date +%s%N)
	ms=$(( (t1 - t0) / 1000000 ))
	echo "# scenario 6: $ok create/remove cycles in $ms ms: $(awk -v n=$ok -v ms=$ms 'BEGIN {printf "%.1f", n * 1000 / ms}') devices created and removed per second"
	check "scenario 5: $CYCLES configfs create/power on/power off/remove cycles ($ok completed)" test $ok = "$CYCLES"
	rmmod cxmq
	# the same cycles with null_blk's configfs, for comparison (not on the debug kernel, where
	# null_blk's unload trips DEBUG_KOBJECT_RELEASE)
	if [ "${CXMQ_SCEN_NULLB:-0}" = 1 ] &&
	   modprobe -d "$CXMQ_MODROOT" -S "$CXMQ_KABI" null_blk nr_devices=0 2>/dev/null; then
		NB=/sys/kernel/config/nullb nok=0
		t0=$(date +%s%N)
		for i in $(seq 1 "$CYCLES"); do
			mkdir $NB/c && echo $CPUS > $NB/c/submit_queues && echo 1 > $NB/c/power &&
				{ test -d /sys/block/c/mq/0 || test -d /sys/block/nullb$(cat $NB/c/index)/mq/0; } &&
				echo 0 > $NB/c/power &&
				rmdir $NB/c && nok=$((nok + 1))
		done
		t1=$(date +%s%N)
		nms=$(( (t1 - t0) / 1000000 ))
		echo "# scenario 6: null_blk, same VM: $nok cycles in $nms ms: $(awk -v n=$nok -v ms=$nms 'BEGIN {printf "%.1f", n * 1000 / ms}') per second; cxmq/null_blk rate: $(awk -v a=$ok -v am=$ms -v b=$nok -v bm=$nms 'BEGIN {if (b && am) printf "%.2f", (a / am) / (b / bm); else print "-"}')"
		check "scenario 6: null_blk's $CYCLES configfs cycles for comparison ($nok completed)" test $nok = "$CYCLES"
		modprobe -r -d "$CXMQ_MODROOT" -S "$CXMQ_KABI" null_blk
	fi
	kmemleak_clean "scenario 5: kmemleak finds nothing after $CYCLES cycles"
	dmesg_clean "scenario 5: no kernel reports"
fi

# ---- 7: removal while busy ----
if want 7; then
	insmod "$CXMQ_KO" submit_queues=$CPUS
	d=$(cfs_new busy submit_queues=$CPUS irqmode=2 completion_nsec=2000000 hw_queue_depth=32)
	fio --allow_file_create=0 --name=b --filename=/dev/$d --rw=randrw --bs=4k --ioengine=libaio --direct=1 --iodepth=32 \
		--numjobs=$CPUS --time_based --runtime=60 --size=64m > $T/busy.out 2>&1 &
	fpid=$!
	fio --allow_file_create=0 --name=m --filename=/dev/cxmq0 --rw=randread --bs=4k --ioengine=io_uring --direct=1 \
		--iodepth=32 --numjobs=$CPUS --time_based --runtime=6 > $T/mod.out 2>&1 &
	mpid=$!
	sleep 3
	check "scenario 7: rmmod while fio has a disk open is refused (module in use)" sh -c '! rmmod cxmq 2>/dev/null'
	t0=$(date +%s)
	echo 0 > $CFS/busy/power
	check "scenario 7: power=0 under fio returned ($(( $(date +%s) - t0 )) s)" test $? = 0
	wait $fpid; rc=$?
	check "scenario 7: fio on the removed disk ended and saw errors (exit $rc)" test $rc -ne 0
	rmdir $CFS/busy
	wait $mpid
	check "scenario 7: fio on the other device finished without errors" test $? = 0
	check "scenario 7: rmmod once the disks are closed" rmmod cxmq
	dmesg_clean "scenario 7: no kernel reports"
	kmemleak_clean "scenario 7: kmemleak finds nothing"
fi

# ---- 8: several devices, each its own tree, IO independent ----
if want 8; then
	insmod "$CXMQ_KO" submit_queues=1
	d1=$(cfs_new m1 submit_queues=$CPUS memory_backed=1 size=64)
	d2=$(cfs_new m2 submit_queues=$(( CPUS > 1 ? 2 : 1 )) memory_backed=1 size=64 irqmode=1)
	check "scenario 8: cxmq0 tree: 1 queue" tree_check cxmq0 1
	check "scenario 8: $d1 tree: $CPUS queues" tree_check $d1 $CPUS
	check "scenario 8: $d2 tree: $(( CPUS > 1 ? 2 : 1 )) queues" tree_check $d2 $(( CPUS > 1 ? 2 : 1 ))
	a0=$(sum_file /sys/block/cxmq0/mq/*/queued) b0=$(sum_file /sys/block/$d1/mq/*/queued)
	c0=$(sum_file /sys/block/$d2/mq/*/queued)
	dd if=/dev/$d1 of=/dev/null bs=4k count=250 iflag=direct status=none
	check "scenario 8: 250 reads on $d1 count there only" test \
		"$(( $(sum_file /sys/block/$d1/mq/*/queued) - b0 )) $(( $(sum_file /sys/block/cxmq0/mq/*/queued) - a0 )) $(( $(sum_file /sys/block/$d2/mq/*/queued) - c0 ))" = "250 0 0"
	for x in $d1 $d2; do
		fio --allow_file_create=0 --name=$x --filename=/dev/$x --rw=randwrite --bs=4k --ioengine=libaio --direct=1 \
			--iodepth=16 --numjobs=2 --size=4m --offset_increment=4m --verify=crc32c \
			--verify_fatal=1 --do_verify=1 --randrepeat=0 > $T/$x.out 2>&1 &
		eval "pid_$x=\$!"
	done
	eval "wait \$pid_$d1"; r1=$?
	eval "wait \$pid_$d2"; r2=$?
	check "scenario 8: fio verify on $d1 and $d2 at once: both clean" test $r1 = 0 -a $r2 = 0
	cfs_del m1; cfs_del m2
	check "scenario 8: their trees are gone, cxmq0's stays" sh -c "[ ! -e /sys/block/$d1 ] && [ ! -e /sys/block/$d2 ] && [ -d /sys/block/cxmq0/mq/0 ]"
	rmmod cxmq
	dmesg_clean "scenario 8: no kernel reports"
fi

# ---- 9: memory runs short while hardware queues are added ----
# Fault injection of the null backend's hardware queue setup (null_blk's init_hctx), on kernels
# with CONFIG_FAULT_INJECTION: the second setup of a change fails; the device keeps the queues
# it got, its tree matches them, and IO verifies.
FI=/sys/kernel/debug/cxmq/fail_init_hctx
if want 9 && [ "$CPUS" -ge 3 ] && insmod "$CXMQ_KO" nr_devices=0 && [ -d $FI ]; then
	d=$(cfs_new short memory_backed=1 size=64 submit_queues=1)
	echo 0 > $FI/verbose; echo 100 > $FI/probability; echo 2 > $FI/interval; echo 1 > $FI/times
	dmesg_mark
	check "scenario 9: submit_queues=$CPUS with the second queue setup failing: the write succeeds" \
		sh -c "echo $CPUS > $CFS/short/submit_queues"
	echo 0 > $FI/probability
	got=$(cat $CFS/short/submit_queues)
	check "scenario 9: the device kept the queues it could set up: 2 of $CPUS ($got)" test "$got" = 2
	check "scenario 9: a warning says so" sh -c "dmesg | grep -q 'out of memory for hardware queues: using 2 of $CPUS'"
	check "scenario 9: the tree shows 2 queues" tree_check $d 2
	fio_ok "scenario 9: fio verify on the device with fewer queues" --allow_file_create=0 --name=s \
		--filename=/dev/$d --rw=randwrite --bs=4k --ioengine=libaio --direct=1 --iodepth=16 \
		--numjobs=$CPUS --size=1m --offset_increment=1m --verify=crc32c --verify_fatal=1 \
		--do_verify=1 --randrepeat=0
	echo $CPUS > $CFS/short/submit_queues
	check "scenario 9: once memory is back, $CPUS queues" sh -c "[ \$(cat $CFS/short/submit_queues) = $CPUS ] && true" 
	check "scenario 9: and the tree shows $CPUS" tree_check $d $CPUS
	cfs_del short
	rmmod cxmq
	dmesg_clean "scenario 9: no kernel reports"
elif [ -e /sys/module/cxmq ]; then
	rmmod cxmq
fi

kmemleak_clean "kmemleak finds nothing at the end"
summary
