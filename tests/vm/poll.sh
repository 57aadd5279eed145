# Guest job: IO polling (tests/vm/mq.sh runs it after sched.sh, in the same boot).
#   files:  poll_queues from the module parameter and from configfs; queue/io_poll is 1 exactly
#           when the disk has poll queues; mq/<n>/type (default, then poll) and io_poll
#           ("considered=N, invoked=N, success=N", a write resets it); poll_queues above the
#           possible CPUs refused on a live device.
#   io:     fio io_uring --hipri (IORING_SETUP_IOPOLL) randread, and randwrite --verify=crc32c,
#           on memory-backed devices with poll_queues=1 (irqmode 1) and 2 (irqmode 2): the poll
#           queues' io_poll counters and the backend's poll completions moved, its softirq and
#           timer completions did not (every polled IO completed by polling, none otherwise),
#           and /proc/diskstats counted every IO fio did.
#   live:   poll_queues 1 -> 2 -> 0 -> 1 on a powered device: the mq/ tree and queue/io_poll
#           follow; polled IO verifies after the changes.
# Environment: CXMQ_POLL_SECONDS (each randread run, default 3), CXMQ_POLL_SIZE (each writer's
# region, default 8m).
. "$CXMQ_ROOT/tests/vm/lib.sh"
CPUS=$CXMQ_CPUS
JOBS=$(( CPUS < 2 ? CPUS : 2 )) # fio jobs per device: two submitters share a poll queue or not
SECS=${CXMQ_POLL_SECONDS:-3}
SIZE=${CXMQ_POLL_SIZE:-8m}
dmesg_mark
SECONDS=0

B() { echo /sys/block/${DISK[$1]}; }
types() { # NAME: the mq/ directories' types in order, "default default poll"
	local d out=()
	for d in $(ls "$(B "$1")/mq" | sort -n); do out+=("$(cat "$(B "$1")/mq/$d/type")"); done
	echo "${out[*]}"
}
want_types() { # DEFAULT POLL
	local i out=()
	for ((i = 0; i < $1; i++)); do out+=(default); done
	for ((i = 0; i < $2; i++)); do out+=(poll); done
	echo "${out[*]}"
}
io_poll_sum() { # NAME FIELD: FIELD summed over the poll directories
	local d s=0 v
	for d in "$(B "$1")"/mq/*; do
		[ "$(cat $d/type)" = poll ] || continue
		v=$(grep -o "$2=[0-9]*" $d/io_poll | cut -d= -f2)
		s=$((s + v))
	done
	echo $s
}
diskstats_ios() { # NAME: reads + writes completed
	awk -v d="${DISK[$1]}" '$3 == d {print $4 + $8}' /proc/diskstats
}

check "insmod poll_queues=1 (one device, then configfs ones)" insmod "$CXMQ_KO" nr_devices=1 gb=1 poll_queues=1
check "cxmq0: queue/io_poll is 1" test "$(cat /sys/block/cxmq0/queue/io_poll)" = 1
DISK[m]=cxmq0
check "cxmq0: mq/ has one default queue (submit_queues=1), then one poll queue" test "$(types m)" = "$(want_types 1 1)"
check "the parameter reads back 1" test "$(cat /sys/module/cxmq/parameters/poll_queues)" = 1

mkdev n poll_queues=0 || fail "configfs device n"
check "poll_queues=0: queue/io_poll is 0" test "$(cat $(B n)/queue/io_poll)" = 0
check "poll_queues=0: no poll directory" test "$(types n)" = "$(want_types "$CPUS" 0)"
mkdev p1 poll_queues=1 irqmode=1 || fail "configfs device p1"
P2=$(( CPUS < 2 ? CPUS : 2 ))
mkdev p2 poll_queues=$P2 irqmode=2 completion_nsec=20000 || fail "configfs device p2"
check "p1: queue/io_poll is 1" test "$(cat $(B p1)/queue/io_poll)" = 1
check "p2: mq/ types are $CPUS default, then $P2 poll" test "$(types p2)" = "$(want_types "$CPUS" $P2)"
last=$(ls $(B p1)/mq | sort -n | tail -1)
check "p1: mq/$last/io_poll starts at zero" \
	test "$(cat $(B p1)/mq/$last/io_poll)" = "considered=0, invoked=0, success=0"
err=$( (echo $((CPUS + 1)) > $CFS/p1/poll_queues) 2>&1 )
check "live poll_queues=$((CPUS + 1)) (above the possible CPUs) is refused" \
	test "$(cat $CFS/p1/poll_queues)" = 1 -a -n "$err"

# ---- io: polled randread and verified randwrite, both devices in one fio run ----
declare -A S0 T0 P0 IO0
wr=() rd=()
for d in p1 p2; do
	S0[$d]=$(stat_of $d softirq_done) T0[$d]=$(stat_of $d timer_done) P0[$d]=$(stat_of $d poll_done)
	IO0[$d]=$(diskstats_ios $d)
	wr+=(--name=wr-$d --filename=/dev/${DISK[$d]} --rw=randwrite --bsrange=4k-64k
	       --numjobs="$JOBS" --offset_increment="$SIZE" --verify=crc32c --verify_fatal=1
	       --do_verify=1 --verify_state_save=0)
done
for d in p1 p2; do
	rd+=(--name=rd-$d --filename=/dev/${DISK[$d]} --rw=randread --bs=4k --numjobs="$JOBS"
	       --time_based --runtime="$SECS")
	[ $d = p1 ] && rd+=(--stonewall) # the reads start after every write job (and verify) ends
done
out=/tmp/poll.json
declare -A FIOS
if fio --output-format=json --output=$out --direct=1 --ioengine=io_uring --hipri --iodepth=16 \
	--iodepth_batch_submit=4 --iodepth_batch_complete_min=1 --randrepeat=0 --norandommap \
	--size="$SIZE" "${wr[@]}" "${rd[@]}" >/tmp/poll.err 2>&1; then
	python3 -c '
import json, sys
t = open(sys.argv[1]).read(); d = json.loads(t[t.index("{"):])
tot = {}
for j in d["jobs"]:
    dev = j["jobname"].split("-", 1)[1]
    n = j["read"]["total_ios"] + j["write"]["total_ios"]
    tot[dev] = -10**9 if j["error"] else tot.get(dev, 0) + n
for k, v in tot.items():
    print(k, v if v >= 0 else -1)
' $out > /tmp/poll.ios # (no process substitution: the guest has no /dev/fd)
	while read -r d n; do FIOS[$d]=$n; done < /tmp/poll.ios
	pass "p1, p2: fio io_uring --hipri randwrite verify crc32c, then randread (${FIOS[p1]}, ${FIOS[p2]} IOs)"
else
	fail "p1, p2: fio io_uring --hipri" "$(tail -n 5 /tmp/poll.err)"
fi
for d in p1 p2; do
	ds=$(( $(stat_of $d softirq_done) - S0[$d] )) dt=$(( $(stat_of $d timer_done) - T0[$d] ))
	dp=$(( $(stat_of $d poll_done) - P0[$d] )) dio=$(( $(diskstats_ios $d) - IO0[$d] ))
	echo "#   $d: poll completions $dp, softirq $ds, timer $dt; diskstats IOs $dio; io_poll: $(cat $(B $d)/mq/*/io_poll | grep -v 'considered=0,' | tr '\n' ' ')"
	check "$d: completions by polling moved ($dp), by softirq ($ds) and timer ($dt) did not" \
		test "$dp" -gt 0 -a "$ds" = 0 -a "$dt" = 0
	check "$d: io_poll success ($(io_poll_sum $d success)) moved, invoked >= considered >= success" \
		test "$(io_poll_sum $d success)" -gt 0 -a "$(io_poll_sum $d invoked)" -ge "$(io_poll_sum $d considered)" \
		-a "$(io_poll_sum $d considered)" -ge "$(io_poll_sum $d success)"
	check "$d: /proc/diskstats counted every IO fio did ($dio = ${FIOS[$d]:-?})" test "$dio" = "${FIOS[$d]:--1}"
done
last=$(ls $(B p1)/mq | sort -n | tail -1)
echo 0 > $(B p1)/mq/$last/io_poll
check "writing io_poll resets it" test "$(cat $(B p1)/mq/$last/io_poll)" = "considered=0, invoked=0, success=0"

# ---- live: poll_queues 1 -> 2 -> 0 -> 1 ----
for n in $P2 0 1; do
	echo $n > $CFS/p1/poll_queues
	check "live poll_queues=$n: mq/ types follow, queue/io_poll $((n > 0))" \
		test "$(types p1)" = "$(want_types "$CPUS" $n)" -a "$(cat $(B p1)/queue/io_poll)" = $((n > 0))
done
p0=$(stat_of p1 poll_done)
fio_ok "p1 after the changes: fio io_uring --hipri randwrite verify crc32c" \
	--name=again --filename=/dev/${DISK[p1]} --direct=1 --ioengine=io_uring --hipri --iodepth=8 \
	--rw=randwrite --bsrange=4k-16k --size=4m --numjobs="$JOBS" --offset_increment=4m \
	--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 --randrepeat=0
check "p1: the new poll queue completed them" test "$(( $(stat_of p1 poll_done) - p0 ))" -gt 0

for d in "${DEVS[@]}"; do echo 0 > $CFS/$d/power; done
rmdir "${DEVS[@]/#/$CFS/}"
check "rmmod" rmmod cxmq
dmesg_clean "poll: no kernel reports"
kmemleak_clean "poll: no kmemleak reports"
echo "# poll: $SECONDS s"
summary
