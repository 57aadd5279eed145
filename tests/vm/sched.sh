# Guest job: IO schedulers (tests/vm/mq.sh runs it after merge.sh, in the same boot).
#   files:  /sys/block/cxmqN/cxmq/scheduler shows "[none] mq-deadline"; an unknown name is
#           refused (EINVAL, a pr_err naming it) and nothing changes; switching shows the new one
#           in brackets, iosched/ with mq-deadline's tunables and the kernel's defaults, a bad
#           tunable or nr_requests is refused and changes nothing; back to none: no iosched/,
#           nr_requests is hw_queue_depth again.
#   verify: mq-deadline under fio --verify=crc32c in each irqmode (one fio run, a device each),
#           random 4k-64k writes and reads; its merges show in the stats' merge: line.
#   switch: schedulers switched every 0.2 s under fio verify on a device with a hardware queue
#           per CPU (blktests block/005's "switch schedulers while doing IO"): no error, no
#           report, every switch took.
# Environment: CXMQ_SCHED_SECONDS (switching, default 10), CXMQ_SCHED_SIZE (fio region, 4m).
. "$CXMQ_ROOT/tests/vm/lib.sh"
CPUS=$CXMQ_CPUS
SECS=${CXMQ_SCHED_SECONDS:-10}
SIZE=${CXMQ_SCHED_SIZE:-4m}
CFS=/sys/kernel/config/cxmq
T=/tmp/sched
mkdir -p $T
[ -p $T/never ] || mkfifo $T/never
exec 9<>$T/never # `read -t S -u 9` sleeps S seconds without a fork
dmesg_mark
SECONDS=0

declare -A DISK
DEVS=()
mkdev() { # NAME ATTR=VALUE...: a powered memory-backed configfs device; its disk in DISK[NAME]
	local name=$1 a idx; shift
	mkdir $CFS/$name || return 1
	DEVS+=("$name")
	for a in size=512 memory_backed=1 submit_queues="$CPUS" "$@"; do
		echo "${a#*=}" > $CFS/$name/${a%%=*} || { echo "#   $name: $a refused"; return 1; }
	done
	echo 1 > $CFS/$name/power || return 1
	read -r idx < $CFS/$name/index
	DISK[$name]=cxmq$idx
}
S() { echo /sys/block/${DISK[$1]}/cxmq; }
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

check "insmod (configfs devices only)" insmod "$CXMQ_KO" nr_devices=0

# ---- files ----
mkdev f hw_queue_depth=64 || fail "configfs device f"
check "scheduler shows [none] mq-deadline" test "$(cat $(S f)/scheduler)" = "[none] mq-deadline"
check "nr_requests is hw_queue_depth (64) with none" test "$(cat $(S f)/nr_requests)" = 64
check "no iosched/ with none" test ! -e $(S f)/iosched
refused "an unknown scheduler (bfq) is refused with EINVAL and a message" $(S f)/scheduler bfq "scheduler=bfq is invalid"
refused "nr_requests=65 above hw_queue_depth is refused with none" $(S f)/nr_requests 65 "nr_requests=65 is invalid"
check "switch to mq-deadline" sh -c "echo mq-deadline > $(S f)/scheduler"
check "scheduler shows none [mq-deadline]" test "$(cat $(S f)/scheduler)" = "none [mq-deadline]"
check "nr_requests is 128 with mq-deadline (2 x min(64, 128))" test "$(cat $(S f)/nr_requests)" = 128
want="async_depth=128 fifo_batch=16 front_merges=1 prio_aging_expire=10000 read_expire=500 write_expire=5000 writes_starved=2"
got=$(cd $(S f)/iosched 2>/dev/null && for t in *; do printf '%s=%s ' "$t" "$(cat $t)"; done)
check "iosched/ has mq-deadline's tunables and defaults (${got% })" test "${got% }" = "$want"
refused "read_expire=abc is refused" $(S f)/iosched/read_expire abc "read_expire=abc is invalid"
refused "front_merges=2 is refused" $(S f)/iosched/front_merges 2 "front_merges=2 is invalid"
refused "nr_requests=2049 is refused" $(S f)/nr_requests 2049 "nr_requests=2049 is invalid"
check "fifo_batch=8 is taken" sh -c "echo 8 > $(S f)/iosched/fifo_batch && test \$(cat $(S f)/iosched/fifo_batch) = 8"
check "nr_requests=256 is taken; async_depth follows" sh -c "echo 256 > $(S f)/nr_requests && test \$(cat $(S f)/nr_requests) = 256 && test \$(cat $(S f)/iosched/async_depth) = 256"
check "mq/0/nr_tags shows the pool (256)" test "$(cat /sys/block/${DISK[f]}/mq/0/nr_tags)" = 256
check "the alias 'deadline' is mq-deadline (no change)" sh -c "echo deadline > $(S f)/scheduler && test \"\$(cat $(S f)/scheduler)\" = 'none [mq-deadline]'"
check "back to none: no iosched/, nr_requests 64" sh -c "echo none > $(S f)/scheduler && test ! -e $(S f)/iosched && test \$(cat $(S f)/nr_requests) = 64"

# ---- verify: mq-deadline in each irqmode, one fio run ----
args=()
for irq in 0 1 2; do
	mkdev v$irq irqmode=$irq completion_nsec=20000 || fail "configfs device v$irq"
	echo mq-deadline > $(S v$irq)/scheduler
	args+=(--name=v$irq --filename=/dev/${DISK[v$irq]} --numjobs="$CPUS" --offset_increment="$SIZE")
done
fio_ok "mq-deadline, irqmode 0/1/2: fio verify crc32c, random 4k-64k, $CPUS jobs each" \
	--rw=randwrite --bsrange=4k-64k --ioengine=libaio --direct=1 --iodepth=16 --size="$SIZE" \
	--iodepth_batch_submit=8 --iodepth_batch_complete_min=8 \
	--verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=0 --verify_state_save=0 "${args[@]}"
for irq in 0 1 2; do
	l=$(grep -o 'sched: [a-z-]* nr_requests=[0-9]*' /sys/kernel/debug/cxmq/${DISK[v$irq]}/stats)
	m=$(grep -o 'merge: bios=[0-9]* requests=[0-9]*' /sys/kernel/debug/cxmq/${DISK[v$irq]}/stats)
	echo "#   v$irq: $l; $m"
	check "irqmode=$irq: the stats say mq-deadline ran it" test "$l" = "sched: mq-deadline nr_requests=128"
done

# ---- switch: every 0.2 s under fio verify ----
mkdev w irqmode=1 || fail "configfs device w"
fio --name=switch --filename=/dev/${DISK[w]} --rw=randwrite --bsrange=4k-64k --ioengine=io_uring \
	--direct=1 --iodepth=32 --numjobs="$CPUS" --size="$SIZE" --offset_increment="$SIZE" \
	--time_based --runtime="$SECS" --verify=crc32c --verify_fatal=1 --do_verify=1 \
	--verify_backlog=64 --randrepeat=0 --verify_state_save=0 > $T/switch.out 2>&1 &
fpid=$!
n=0 bad=0 s=mq-deadline
while kill -0 $fpid 2>/dev/null; do
	if echo $s > $(S w)/scheduler 2>/dev/null &&
	   [[ "$(cat $(S w)/scheduler)" == *"[$s]"* ]]; then n=$((n + 1)); else bad=$((bad + 1)); fi
	[ $s = none ] && s=mq-deadline || s=none
	read -r -t 0.2 -u 9 || true
done
wait $fpid; frc=$?
echo "#   $n switches in ${SECS} s of fio, $bad failed; fio: $(grep -Eo 'err= *[0-9]+' $T/switch.out | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"
check "switching every 0.2 s under fio verify: $n switches, none failed" test $n -ge 5 -a $bad = 0
check "fio verify through the switches: no error" sh -c "[ $frc = 0 ] && ! grep -q 'verify: bad' $T/switch.out"

for d in "${DEVS[@]}"; do echo 0 > $CFS/$d/power; done
rmdir "${DEVS[@]/#/$CFS/}"
check "rmmod" rmmod cxmq
dmesg_clean "sched: no kernel reports"
kmemleak_clean "sched: no kmemleak reports"
echo "# sched: $SECONDS s"
summary
