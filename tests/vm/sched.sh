# Guest job: IO schedulers (tests/vm/mq.sh runs it after merge.sh, in the same boot).
#   files:  /sys/block/cxmqN/cxmq/scheduler shows "[none] mq-deadline kyber"; an unknown name
#           is refused (EINVAL, a pr_err naming it) and nothing changes; switching shows the new
#           one in brackets, iosched/ with the scheduler's tunables and the kernel's defaults, a
#           bad tunable or nr_requests is refused and changes nothing; back to none: no
#           iosched/, nr_requests is hw_queue_depth again. The first scheduler from the module
#           parameter (cxmq0) and from the configfs attribute (a bad name refused there too).
#   verify: mq-deadline and kyber under fio --verify=crc32c in each irqmode (one fio run, a
#           device each), random 4k-64k writes and reads; the stats say which scheduler ran it.
#   switch: none, mq-deadline and kyber in turn every 0.2 s under fio verify on a device with a
#           hardware queue per CPU (blktests block/005's "switch schedulers while doing IO"): no
#           error, no report, every switch took.
#   latency: one sync 4k random reader (psync, QD1) beside two 64k random writers (libaio QD32,
#           verified) on an irqmode=2 device with a 100 us completion delay, under none,
#           mq-deadline and kyber: the reader's p50/p99 are printed side by side; the test asserts
#           only that every run completes and verifies.
# Environment: CXMQ_SCHED_SECONDS (switching, default 10), CXMQ_SCHED_SIZE (fio region, 4m),
# CXMQ_SCHED_LAT_SECONDS (each latency run, default 4).
. "$CXMQ_ROOT/tests/vm/lib.sh"
MKDEV_SIZE=512
CPUS=$CXMQ_CPUS
SECS=${CXMQ_SCHED_SECONDS:-10}
SIZE=${CXMQ_SCHED_SIZE:-4m}
T=/tmp/sched
mkdir -p $T
[ -p $T/never ] || mkfifo $T/never
exec 9<>$T/never # `read -t S -u 9` sleeps S seconds without a fork
dmesg_mark
SECONDS=0

S() { echo /sys/block/${DISK[$1]}/cxmq; }

check "insmod scheduler=kyber (one device, then configfs ones)" insmod "$CXMQ_KO" nr_devices=1 gb=1 scheduler=kyber
check "cxmq0's first scheduler is the parameter's: none mq-deadline [kyber]" \
	test "$(cat /sys/block/cxmq0/cxmq/scheduler)" = "none mq-deadline [kyber]"
check "the parameter reads back kyber" test "$(cat /sys/module/cxmq/parameters/scheduler)" = kyber

# ---- files ----
mkdir $CFS/c
refused "configfs scheduler=bfq is refused" $CFS/c/scheduler bfq "scheduler=bfq is invalid"
check "configfs scheduler starts from the parameter (kyber)" test "$(cat $CFS/c/scheduler)" = kyber
check "configfs scheduler=deadline reads back mq-deadline" sh -c "echo deadline > $CFS/c/scheduler && test \$(cat $CFS/c/scheduler) = mq-deadline"
rmdir $CFS/c
mkdev f hw_queue_depth=64 scheduler=none || fail "configfs device f"
check "scheduler shows [none] mq-deadline kyber" test "$(cat $(S f)/scheduler)" = "[none] mq-deadline kyber"
check "nr_requests is hw_queue_depth (64) with none" test "$(cat $(S f)/nr_requests)" = 64
check "no iosched/ with none" test ! -e $(S f)/iosched
refused "an unknown scheduler (bfq) is refused with EINVAL and a message" $(S f)/scheduler bfq "scheduler=bfq is invalid"
refused "nr_requests=65 above hw_queue_depth is refused with none" $(S f)/nr_requests 65 "nr_requests=65 is invalid"
check "switch to mq-deadline" sh -c "echo mq-deadline > $(S f)/scheduler"
check "scheduler shows none [mq-deadline] kyber" test "$(cat $(S f)/scheduler)" = "none [mq-deadline] kyber"
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
check "the alias 'deadline' is mq-deadline (no change)" sh -c "echo deadline > $(S f)/scheduler && test \"\$(cat $(S f)/scheduler)\" = 'none [mq-deadline] kyber'"
check "switch to kyber: nr_requests 128 again" sh -c "echo kyber > $(S f)/scheduler && test \$(cat $(S f)/nr_requests) = 128"
got=$(cd $(S f)/iosched 2>/dev/null && for t in *; do printf '%s=%s ' "$t" "$(cat $t)"; done)
check "iosched/ has kyber's tunables and defaults (${got% })" test "${got% }" = "read_lat_nsec=2000000 write_lat_nsec=10000000"
refused "read_lat_nsec=0x10 (base 10 only) is refused" $(S f)/iosched/read_lat_nsec 0x10 "read_lat_nsec=0x10 is invalid"
check "write_lat_nsec=5000000 is taken" sh -c "echo 5000000 > $(S f)/iosched/write_lat_nsec && test \$(cat $(S f)/iosched/write_lat_nsec) = 5000000"
check "back to none: no iosched/, nr_requests 64" sh -c "echo none > $(S f)/scheduler && test ! -e $(S f)/iosched && test \$(cat $(S f)/nr_requests) = 64"

# ---- verify: mq-deadline and kyber in each irqmode, one fio run ----
args=() vdevs=()
for sched in mq-deadline kyber; do
	for irq in 0 1 2; do
		v=${sched%%-*}$irq
		mkdev $v irqmode=$irq completion_nsec=20000 scheduler=$sched || fail "configfs device $v"
		vdevs+=("$v:$sched:$irq")
		args+=(--name=$v --filename=/dev/${DISK[$v]} --numjobs="$CPUS" --offset_increment="$SIZE")
	done
done
fio_ok "mq-deadline and kyber, irqmode 0/1/2: fio verify crc32c, random 4k-64k, $CPUS jobs each" \
	--rw=randwrite --bsrange=4k-64k --ioengine=libaio --direct=1 --iodepth=16 --size="$SIZE" \
	--iodepth_batch_submit=8 --iodepth_batch_complete_min=8 \
	--verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=0 --verify_state_save=0 "${args[@]}"
for e in "${vdevs[@]}"; do
	IFS=: read -r v sched irq <<<"$e"
	l=$(grep -o 'sched: [a-z-]* nr_requests=[0-9]*' /sys/kernel/debug/cxmq/${DISK[$v]}/stats)
	m=$(grep -o 'merge: bios=[0-9]* requests=[0-9]*' /sys/kernel/debug/cxmq/${DISK[$v]}/stats)
	echo "#   $v: $l; $m"
	check "$sched, irqmode=$irq: the stats say $sched ran it" test "$l" = "sched: $sched nr_requests=128"
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
	case $s in none) s=mq-deadline ;; mq-deadline) s=kyber ;; *) s=none ;; esac
	read -r -t 0.2 -u 9 || true
done
wait $fpid; frc=$?
echo "#   $n switches in ${SECS} s of fio, $bad failed; fio: $(grep -Eo 'err= *[0-9]+' $T/switch.out | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"
check "switching every 0.2 s under fio verify: $n switches, none failed" test $n -ge 5 -a $bad = 0
check "fio verify through the switches: no error" sh -c "[ $frc = 0 ] && ! grep -q 'verify: bad' $T/switch.out"

# ---- latency: a sync reader beside heavy writers, under each scheduler ----
LSECS=${CXMQ_SCHED_LAT_SECONDS:-4}
mkdev lat irqmode=2 completion_nsec=100000 hw_queue_depth=64 || fail "configfs device lat"
lat_ok=0
for sched in none mq-deadline kyber; do
	echo $sched > $(S lat)/scheduler
	if fio --output-format=json --output=$T/lat-$sched.json --filename=/dev/${DISK[lat]} \
		--direct=1 --time_based --runtime="$LSECS" --randrepeat=0 --norandommap \
		--name=reader --rw=randread --bs=4k --ioengine=psync --size=256m \
		--name=writers --rw=randwrite --bs=64k --ioengine=libaio --iodepth=32 --numjobs=2 \
		--offset=256m --size=32m --offset_increment=32m --verify=crc32c --verify_fatal=1 \
		--do_verify=1 --verify_backlog=64 --verify_state_save=0 >$T/lat-$sched.err 2>&1; then
		lat_ok=$((lat_ok + 1))
	else
		echo "#   $sched: fio failed: $(tail -n 3 $T/lat-$sched.err)"
	fi
done
python3 - $T <<'PY'
import json, os, sys
def load(name):
    p = os.path.join(sys.argv[1], "lat-%s.json" % name)
    try:
        t = open(p).read()
        return json.loads(t[t.index("{"):])
    except Exception:
        return None
print("#   reader latency (4k sync randread, QD1) beside 2 x 64k randwrite QD32, irqmode=2 100 us:")
print("#   %-12s %10s %10s %10s %12s" % ("scheduler", "p50 us", "p99 us", "read IOPS", "write MiB/s"))
for s in ("none", "mq-deadline", "kyber"):
    d = load(s)
    if not d:
        print("#   %-12s (no result)" % s); continue
    r = [j for j in d["jobs"] if j["jobname"] == "reader"][0]["read"]
    w = sum(j["write"]["bw"] for j in d["jobs"] if j["jobname"] == "writers") / 1024.0
    pc = r["clat_ns"].get("percentile", {})
    print("#   %-12s %10.0f %10.0f %10.0f %12.1f" % (s, pc.get("50.000000", 0) / 1e3,
          pc.get("99.000000", 0) / 1e3, r["iops"], w))
PY
check "latency runs (none, mq-deadline, kyber) complete and verify" test $lat_ok = 3

for d in "${DEVS[@]}"; do echo 0 > $CFS/$d/power; done
rmdir "${DEVS[@]/#/$CFS/}"
check "rmmod" rmmod cxmq
dmesg_clean "sched: no kernel reports"
kmemleak_clean "sched: no kmemleak reports"
echo "# sched: $SECONDS s"
summary
