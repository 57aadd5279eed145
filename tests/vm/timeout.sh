# Guest job: request timeouts and null_blk's fault injection (tests/vm/mq.sh runs it after
# poll.sh, in the same boot).
#   files:   cxmq/io_timeout reads 30000; 0 and "abc" are refused (EINVAL, a pr_err naming it),
#            nothing changes; timeout= and requeue= take null_blk's text from the parameter and
#            the configfs attribute (on a powered device too), bad text refused.
#   timeout: io_timeout=500, then timeout="1,100,0,20" armed after the partition scan: three
#            reads one by one (dd) each fail after about 500 ms; then fio reads 1024 4k blocks
#            (libaio QD4, going on after errors): exactly the other 17 fail, every other read
#            completes; the stats count 20 timeouts and 20 dropped requests.
#   requeue: requeue="1,10,0,-1" under fio --verify=crc32c (random 4k-64k writes, io_uring):
#            no error, the requeue counter moved.
. "$CXMQ_ROOT/tests/vm/lib.sh"
CPUS=$CXMQ_CPUS
dmesg_mark
SECONDS=0

S() { echo /sys/block/${DISK[$1]}/cxmq; }

check "insmod requeue=1,1,0,0 nr_devices=0" insmod "$CXMQ_KO" nr_devices=0 requeue=1,1,0,0
check "the parameter reads back 1,1,0,0" test "$(cat /sys/module/cxmq/parameters/requeue)" = 1,1,0,0

mkdev t irqmode=1 || fail "configfs device t"
check "configfs requeue starts from the parameter" test "$(cat $CFS/t/requeue)" = 1,1,0,0
check "io_timeout reads 30000 (ms)" test "$(cat $(S t)/io_timeout)" = 30000
refused "io_timeout=0 is refused" $(S t)/io_timeout 0 "io_timeout=0 is invalid"
refused "io_timeout=abc is refused" $(S t)/io_timeout abc "io_timeout=abc is invalid"
refused "timeout=1,101,0,1 (probability over 100) is refused" $CFS/t/timeout 1,101,0,1 "timeout=1,101,0,1 is invalid"
check "io_timeout=500 is taken" sh -c "echo 500 > $(S t)/io_timeout && test \$(cat $(S t)/io_timeout) = 500"

# ---- timeout: 20 dropped reads ----
# What a dd read takes by itself here (its start is most of it under TCG): the less of two.
base=999999
for k in 1 2; do
	t0=$(date +%s%N)
	dd if=/dev/${DISK[t]} of=/dev/null bs=4k count=1 skip=$k iflag=direct 2>/dev/null
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ $ms -lt $base ] && base=$ms
done
echo "#   a dd read by itself: $base ms"
check "timeout=1,100,0,20 armed on the powered device" sh -c "echo 1,100,0,20 > $CFS/t/timeout && test \$(cat $CFS/t/timeout) = 1,100,0,20"
# Three reads one by one (dd, direct): each dropped, each ends after about io_timeout.
for k in 1 2 3; do
	t0=$(date +%s%N)
	if dd if=/dev/${DISK[t]} of=/dev/null bs=4k count=1 skip=$k iflag=direct 2>/tmp/dd.err; then
		fail "dropped read $k failed" "dd succeeded"
	else
		ms=$(( ($(date +%s%N) - t0) / 1000000 - base ))
		check "dropped read $k failed after about io_timeout ($ms ms more than a dd read: 400..1200; $(grep -o 'Connection timed out\|Input/output error' /tmp/dd.err | head -1))" \
			test $ms -ge 400 -a $ms -le 1200
	fi
done
# Then fio reads 1024 4k blocks, 4 at a time, going on after errors: the other 17 fail, in
# rounds of up to 4 (fio's continue_on_error=io ignores EIO and EILSEQ only: BLK_STS_TIMEOUT is
# ETIMEDOUT, 110, which fio knows by number only).
out=/tmp/timeout.json
fio --output-format=json --output=$out --name=lost --filename=/dev/${DISK[t]} --rw=randread \
	--bs=4k --size=4m --ioengine=libaio --direct=1 --iodepth=4 --norandommap --randrepeat=0 \
	--continue_on_error=io --ignore_error=5:110 >/tmp/timeout.err 2>&1 ||
	echo "#   fio: $(tail -n 3 /tmp/timeout.err)"
read -r nios nerr <<<"$(python3 -c '
import json, sys
t = open(sys.argv[1]).read(); d = json.loads(t[t.index("{"):])
j = d["jobs"][0]
print(j["read"]["total_ios"], j.get("total_err", -1))
' $out 2>/dev/null)"
echo "#   fio: $nios reads, $nerr errors; stats: timeouts=$(stat_of t timeouts) lost=$(stat_of t lost)"
check "fio: 17 of its 1024 reads failed, the other 1007 completed" test "${nerr:--1}" = 17 -a "${nios:-0}" -ge 1007
check "the stats count 20 timeouts and 20 dropped requests" test "$(stat_of t timeouts)" = 20 -a "$(stat_of t lost)" = 20
check "nothing left in flight" test "$(stat_of t tags_busy)" = 0

# ---- requeue: under fio verify ----
echo "" > $CFS/t/timeout
echo 30000 > $(S t)/io_timeout
check "requeue=1,10,0,-1 armed" sh -c "echo 1,10,0,-1 > $CFS/t/requeue"
r0=$(stat_of t requeues)
fio_ok "requeue=1,10,0,-1: fio verify crc32c, random 4k-64k writes, io_uring" \
	--name=requeue --filename=/dev/${DISK[t]} --rw=randwrite --bsrange=4k-64k --ioengine=io_uring \
	--direct=1 --iodepth=16 --numjobs=2 --size=4m --offset_increment=4m \
	--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 --randrepeat=0
check "the requeue counter moved ($(( $(stat_of t requeues) - r0 )))" test "$(stat_of t requeues)" -gt "$r0"
echo "" > $CFS/t/requeue

for d in "${DEVS[@]}"; do echo 0 > $CFS/$d/power; done
rmdir "${DEVS[@]/#/$CFS/}"
check "rmmod" rmmod cxmq
dmesg_clean "timeout: no kernel reports"
kmemleak_clean "timeout: no kmemleak reports"
echo "# timeout: $SECONDS s"
summary
