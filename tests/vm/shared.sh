# Guest job: shared tag sets (tests/vm/mq.sh runs it after timeout.sh, in the same boot).
#   files:  configfs shared_tags reads 0, takes 1, refuses 2; active_queues drops to 0 after
#           the partition scans (idle found by the timeout work); a later device of the set takes the
#           set's hw_queue_depth (its attribute and mq/0/tags say 64, not the 128 asked).
#   share:  two devices with shared_tags=1 hw_queue_depth=64 submit_queues=1 (one map of 64)
#           under fio at once (libaio QD64 each, completions after 100 ms: both want more than
#           the map, and 640 IOPS fill it: the debug kernel under TCG, slowed by a long boot's
#           kmemleak objects, did 1000-2000 in all, too few to fill it at 20 ms): mq/0/tags and
#           mq/0/active sampled all along; every sample's active is at most
#           max((64 + N - 1) / N, 4) for the active_queues=N it read once N held 300 ms (tags
#           taken before a sharer came drain as they complete, as in blk-mq), and the share
#           binds (a device reaches 24+ tags while both are active).
#           B stops first: B goes idle (active_queues=1) and A then holds more than 32.
#   live:   submit_queues=2 on A changes B too (both frozen: B's mq/ has two queues, its
#           attribute reads 2); fio verify on both afterwards.
. "$CXMQ_ROOT/tests/vm/lib.sh"
dmesg_mark
SECONDS=0

Q() { echo /sys/block/${DISK[$1]}/mq/0; }
aq_of() { sed -nE 's/^active_queues=([0-9]+)/\1/p' "$(Q "$1")/tags"; }
# get_aq NAME: AQ=its active_queues, without a fork (the sampling loop runs many times)
get_aq() { local l; AQ=; while read -r l; do [ "${l#active_queues=}" != "$l" ] && AQ=${l#active_queues=}; done < "$(Q "$1")/tags"; }

check "insmod nr_devices=0" insmod "$CXMQ_KO" nr_devices=0
check "the parameter reads 0" test "$(cat /sys/module/cxmq/parameters/shared_tags)" = 0
mkdir $CFS/x
check "configfs shared_tags starts from the parameter (0)" test "$(cat $CFS/x/shared_tags)" = 0
refused "shared_tags=2 is refused" $CFS/x/shared_tags 2 "shared_tags=2 is invalid"
rmdir $CFS/x

# completions after 100 ms: even the debug kernel keeps 64 of each in flight
SH="shared_tags=1 hw_queue_depth=64 submit_queues=1 irqmode=2 completion_nsec=100000000"
mkdev a $SH || fail "configfs device a"
mkdev b $SH || fail "configfs device b"
check "a and b: configfs shared_tags reads 1" test "$(cat $CFS/a/shared_tags)$(cat $CFS/b/shared_tags)" = 11
# wait_idle NAME: its set's active_queues reads 0 and its active 0 within 5 s (the partition scan
# made the devices active; the timeout work, every second at io_timeout=30000, finds them idle)
wait_idle() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ "$(aq_of "$1")$(cat "$(Q "$1")/active")" = 00 ] && return 0
		sleep 0.1
	done
	return 1
}
check "after the partition scans both go idle: active_queues=0, active 0" wait_idle a

# ---- both at once, then b stops ----
out=/tmp/shared.json
fio --output-format=json --output=$out --ioengine=libaio --direct=1 --rw=randread --bs=4k \
	--iodepth=64 --norandommap --randrepeat=0 --time_based \
	--name=a --filename=/dev/${DISK[a]} --runtime=11 \
	--name=b --filename=/dev/${DISK[b]} --runtime=6 >/tmp/shared.err 2>&1 &
fio_pid=$!
both=0 viol=0 max2=0 max1=0 samples=0 vtext= alone=0 aq_prev= aq_since=0
QA=$(Q a) QB=$(Q b)
t0=${EPOCHREALTIME/./}
while kill -0 $fio_pid 2>/dev/null; do
	read -r aa < "$QA/active"; read -r ab < "$QB/active"; get_aq a; aq=$AQ
	t=${EPOCHREALTIME/./}; ms=$(( (t - t0) / 1000 ))
	samples=$((samples + 1))
	# The share limits new tags: those a queue took before another became active drain within
	# a completion time (100 ms), so a sample counts once the count held 300 ms.
	[ "$aq" != "$aq_prev" ] && aq_since=$ms aq_prev=$aq
	settled=$([ $((ms - aq_since)) -ge 300 ] && echo 1)
	if [ "${aq:-0}" -gt 0 ] && [ -n "$settled" ]; then
		share=$(( (64 + aq - 1) / aq )); [ $share -lt 4 ] && share=4
		if [ "$aa" -gt $share ] || [ "$ab" -gt $share ]; then
			viol=$((viol + 1)); vtext="$vtext t=${ms}ms a=$aa b=$ab active_queues=$aq;"
		fi
	fi
	# by what the samples show (fio's start takes seconds under TCG): both active, then b
	# done and idle
	if [ "$aq" = 2 ] && [ -n "$settled" ]; then
		both=$((both + 1))
		[ "$aa" -gt $max2 ] && max2=$aa
		[ "$ab" -gt $max2 ] && max2=$ab
	elif [ "$aq" = 1 ] && [ $both -gt 0 ] && [ "$ab" = 0 ]; then
		alone=$((alone + 1))
		[ "$aa" -gt $max1 ] && max1=$aa
	fi
	sleep 0.05
done
wait $fio_pid
fio_rc=$?
echo "#   $samples samples; both active: $both, most tags one held: $max2; a alone: $alone, most $max1"
# what fio kept in flight: IOPS x mean latency (a load too slow to fill the share shows here)
python3 - $out <<'PY'
import json, sys
t = open(sys.argv[1]).read()
for j in json.loads(t[t.index("{"):])["jobs"]:
    r = j["read"]
    print("#   fio %s: %d IOPS, mean latency %.1f ms: %.0f in flight" % (
        j["jobname"], r["iops"], r["lat_ns"]["mean"] / 1e6, r["iops"] * r["lat_ns"]["mean"] / 1e9))
PY
check "fio ran on both devices without error" test $fio_rc = 0
check "no sample above the fair share${vtext:+: $vtext}" test $viol = 0
check "both active while both ran (active_queues=2 in $both samples)" test $both -ge 5
check "the share binds: a device held 24..32 tags while both were active ($max2)" test $max2 -ge 24 -a $max2 -le 32
check "b idle after it stopped: a alone held more than 32 ($max1)" test $max1 -gt 32
check "both idle again after fio" wait_idle b

# ---- a later member takes the set's depth ----
mkdev c shared_tags=1 hw_queue_depth=128 submit_queues=1 || fail "configfs device c"
check "c: hw_queue_depth reads the set's 64" test "$(cat $CFS/c/hw_queue_depth)" = 64
check "c: mq/0/tags has nr_tags=64" grep -q "^nr_tags=64," "$(Q c)/tags"
echo 0 > $CFS/c/power; rmdir $CFS/c

# ---- submit_queues on one device changes the set ----
check "submit_queues=2 on a" sh -c "echo 2 > $CFS/a/submit_queues"
check "b has two hardware queues now (mq/0 mq/1, attribute 2)" \
	test "$(ls /sys/block/${DISK[b]}/mq | sort -n | tr '\n' ' ')$(cat $CFS/b/submit_queues)" = "0 1 2"
fio_ok "after the change: fio verify crc32c on both" --ioengine=libaio --direct=1 --rw=randwrite \
	--bs=4k --iodepth=32 --size=2m --verify=crc32c --verify_fatal=1 --do_verify=1 \
	--verify_state_save=0 --randrepeat=0 \
	--name=a --filename=/dev/${DISK[a]} --name=b --filename=/dev/${DISK[b]}

for d in a b; do echo 0 > $CFS/$d/power; rmdir $CFS/$d; done
check "rmmod" rmmod cxmq
dmesg_clean "shared: no kernel reports"
kmemleak_clean "shared: no kmemleak reports"
echo "# shared: $SECONDS s"
summary
