# Guest job: cxmq.ko end to end. Bad parameters are refused and leave nothing behind; the
# device appears, takes fio randread and randwrite without errors, and goes away on rmmod;
# the kernel reports nothing and (on the test kernel) kmemleak finds nothing.
. "$CXMQ_ROOT/tests/vm/lib.sh"
RUNTIME=${CXMQ_FIO_RUNTIME:-10}
dmesg_mark

# refused: insmod fails with EINVAL, a pr_err names the parameter, nothing stays registered
refused() {
	local param=$1 msg
	if load_cxmq $param 2>/tmp/insmod.err; then
		rmmod cxmq; fail "insmod $param is refused" "insmod succeeded"; return
	fi
	msg=$(dmesg | tail -n 5)
	# kmod's insmod reports EINVAL as "Invalid parameters" (any other errno as strerror),
	# modprobe as "Invalid argument"
	if ! grep -qE 'Invalid parameters|Invalid argument' /tmp/insmod.err; then
		fail "insmod $param is refused" "not EINVAL: $(cat /tmp/insmod.err)"
	elif ! grep -q "cxmq: ${param%%=*}=.* is invalid: must be" <<<"$msg"; then
		fail "insmod $param is refused" "no pr_err naming ${param%%=*}: $msg"
	elif [ -e /sys/module/cxmq ] || ls /dev/cxmq* >/dev/null 2>&1 || grep -q cxmq /proc/devices; then
		fail "insmod $param is refused" "something stayed registered"
	else
		pass "insmod $param is refused with EINVAL and a message naming it"
	fi
}
# CXMQ_PARAM_TESTS: which (default all; on the debug kernel each refused load costs ~8 s, most
# of it DEBUG_KOBJECT_RELEASE's delayed module kobject release)
[ -n "${CXMQ_SKIP_PARAM_TESTS:-}" ] ||
for p in ${CXMQ_PARAM_TESTS:-gb=0 gb=2000000 bs=3000 bs=256 bs=8192 hw_queue_depth=0 hw_queue_depth=4097 \
	 irqmode=7 submit_queues=0 nr_devices=5000 home_node=77 scheduler=bfq}; do
	refused "$p"
done

check "insmod cxmq.ko submit_queues=$CXMQ_CPUS" load_cxmq submit_queues="$CXMQ_CPUS" gb=16
check "/dev/cxmq0 is a block device" test -b /dev/cxmq0
check "capacity is gb=16" test "$(cat /sys/block/cxmq0/size)" = $((16 * 1024 * 1024 * 2))
check "logical block size is bs=512" test "$(cat /sys/block/cxmq0/queue/logical_block_size)" = 512

common=(--filename=/dev/cxmq0 --bs=4k --direct=1 --iodepth=32 --numjobs="$CXMQ_CPUS"
	--time_based --runtime="$RUNTIME" --group_reporting=0 --norandommap --randrepeat=0)
fio_ok "fio/randread.fio (4k randread io_uring QD32) ${RUNTIME}s" --filename=/dev/cxmq0 \
	--time_based --runtime="$RUNTIME" "$CXMQ_ROOT/fio/randread.fio"
fio_ok "fio 4k randwrite libaio ${RUNTIME}s" --name=randwrite --rw=randwrite --ioengine=libaio "${common[@]}"
fio_ok "fio 64k mixed rw psync 3s" --name=mixed --rw=randrw --ioengine=psync --filename=/dev/cxmq0 \
	--bs=64k --direct=1 --numjobs=2 --time_based --runtime=3
fio_ok "fio/mixed.fio (70/30 4k-64k io_uring QD16) 3s" --filename=/dev/cxmq0 --time_based \
	--runtime=3 "$CXMQ_ROOT/fio/mixed.fio"
check "rmmod cxmq" rmmod cxmq
check "/dev/cxmq0 is gone" test ! -e /dev/cxmq0

check "nr_devices=3 bs=4096 creates three devices" load_cxmq nr_devices=3 bs=4096 gb=1
check "cxmq2 has bs=4096" test "$(cat /sys/block/cxmq2/queue/logical_block_size 2>/dev/null)" = 4096
fio_ok "fio on three devices at once" --name=multi --rw=randread --ioengine=libaio --bs=4k \
	--direct=1 --iodepth=8 --time_based --runtime=3 \
	--filename=/dev/cxmq0:/dev/cxmq1:/dev/cxmq2 --numjobs=2
check "rmmod cxmq (three devices)" rmmod cxmq

dmesg_clean "no kernel reports"
kmemleak_clean "no kmemleak reports"
summary
