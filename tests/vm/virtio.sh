# Guest job: the virtio backend (issue 11). The host attached (scripts/vm-run.sh --disk) raw-file
# virtio-blk disks listed in CXMQ_VIRTIO_DATA, "ID:QUEUES:SERIAL:HOSTFILE" each, and the job
# before this one (virtio_disks.sh) left every virtio block device unbound. Loading cxmq binds
# them to its own virtio driver (nothing else holds them); the checks: the disks and their
# queues, serials and limits; fio verify random and sequential under none, mq-deadline and
# kyber; flushes (fsync) and FUA (O_DSYNC) writes as flush steps; discard and write-zeroes read
# back zero; ext4 with fsck; data written through cxmq read back through the kernel's virtio_blk
# after a rebind and in the host's file; CPU hotplug under fio (a queue drained before its
# interrupt's CPU goes); unbind and hot-unplug under fio; rmmod. At its end no
# driver is bound to a virtio block device, and none binds by itself (drivers_autoprobe 0).
. "$CXMQ_ROOT/tests/vm/lib.sh"
dmesg_mark
SECONDS=0
modp() { modprobe -d "$CXMQ_MODROOT" -S "$CXMQ_KABI" "$@"; }
read -r -a specs <<<"${CXMQ_VIRTIO_DATA:?CXMQ_VIRTIO_DATA not set}"
VIRTIO=/sys/bus/virtio
NFILES=${CXMQ_VIRTIO_FILES:-200} # ext4 files; CXMQ_VIRTIO_SIZE: each fio verify job's size

cxmq_disk_of() { # serial -> cxmqN
	local b
	for b in /sys/block/cxmq*; do
		[ "$(cat "$b/serial" 2>/dev/null)" = "$1" ] && { echo "${b##*/}"; return 0; }
	done
	return 1
}
virtio_of() { readlink -f "/sys/block/$1/device" | xargs basename; } # cxmqN -> virtioM

check "insmod cxmq nr_devices=0 (its virtio driver takes the unbound virtio disks)" \
	insmod "$CXMQ_KO" nr_devices=0
declare -A DISK VDEV
for spec in "${specs[@]}"; do
	IFS=: read -r id queues serial file <<<"$spec"
	d=
	for ((i = 0; i < 50; i++)); do d=$(cxmq_disk_of "$serial") && break; sleep 0.1; done
	if [ -z "$d" ]; then fail "$id: a cxmq disk with serial $serial"; continue; fi
	DISK[$id]=$d VDEV[$id]=$(virtio_of "$d")
	check "$id: $d on ${VDEV[$id]}, bound to cxmq, serial $serial" \
		test -e "$VIRTIO/drivers/cxmq/${VDEV[$id]}"
	check "$id: $queues hardware queues in mq/" test "$(ls /sys/block/$d/mq | wc -l)" = "$queues"
	check "$id: write cache (the device flushes): queue/write_cache says write back" \
		grep -q "write back" /sys/block/$d/queue/write_cache
	check "$id: discard and write-zeroes offered" sh -c \
		"[ \$(cat /sys/block/$d/queue/discard_max_bytes) -gt 0 ] && [ \$(cat /sys/block/$d/queue/write_zeroes_max_bytes) -gt 0 ]"
done
ids=("${!DISK[@]}")
[ ${#ids[@]} -eq ${#specs[@]} ] || { summary; exit 1; }
first=${specs[0]%%:*} second=${specs[1]%%:*}
A=${DISK[$first]} B=${DISK[$second]}

verify_args=(--ioengine=libaio --direct=1 --iodepth=16 --iodepth_batch_submit=8
	--iodepth_batch_complete_min=4 --verify=crc32c --verify_fatal=1 --do_verify=1
	--randrepeat=0 --verify_state_save=0 --size=${CXMQ_VIRTIO_SIZE:-24M})
for sched in none mq-deadline kyber; do
	for d in $A $B; do echo "$sched" > /sys/block/$d/cxmq/scheduler; done
	check "scheduler $sched on $A and $B" grep -q "\[$sched\]" /sys/block/$B/cxmq/scheduler
	fio_ok "$sched: fio verify crc32c, random 4k-64k, on $A and $B at once" \
		--rw=randwrite --bsrange=4k-64k "${verify_args[@]}" \
		--name=a --filename=/dev/$A --name=b --filename=/dev/$B
done
for d in $A $B; do echo none > /sys/block/$d/cxmq/scheduler; done
fio_ok "fio verify crc32c, sequential 128k writes, io_uring QD32 (merged, split at max_sectors_kb)" \
	--rw=write --bs=128k --ioengine=io_uring --direct=1 --iodepth=32 --verify=crc32c \
	--verify_fatal=1 --do_verify=1 --verify_state_save=0 --size=32M --name=seq --filename=/dev/$B

stat_flushes() { grep -o "flushes=[0-9]*" /sys/kernel/debug/cxmq/$1/stats | cut -d= -f2; }
f0=$(stat_flushes $A)
fio_ok "fio --fsync=1: 4k writes, each followed by a flush" \
	--rw=randwrite --bs=4k --ioengine=psync --direct=1 --fsync=1 --size=4M --io_size=256k \
	--name=fsync --filename=/dev/$A
f1=$(stat_flushes $A)
check "the fsyncs reached the device as flushes ($f0 -> $f1, 64 writes)" test $((f1 - f0)) -ge 60
check "O_DSYNC direct writes (FUA: the write, then a flush)" \
	dd if=/dev/urandom of=/dev/$A bs=4k count=32 oflag=direct,dsync status=none
f2=$(stat_flushes $A)
check "the FUA writes each got their flush ($f1 -> $f2, 32 writes)" test $((f2 - f1)) -ge 32

# cache_type (QEMU offers VIRTIO_BLK_F_CONFIG_WCE): write through turns the kernel's write-cache
# flag off, so fsyncs end without reaching the device; write back again, and they reach it
ct=/sys/block/$A/cache_type
check "$A: cache_type says write back" grep -qx "write back" $ct
refused "cache_type: a word other than write through/back is refused" $ct "write around" \
	"$A: cache_type=write around is invalid"
check "echo 'write through' > cache_type" sh -c "echo 'write through' > $ct"
check "cache_type and queue/write_cache say write through" sh -c \
	"grep -qx 'write through' $ct && grep -qx 'write through' /sys/block/$A/queue/write_cache"
fsync_flushes() { # 16 4k writes each with an fsync: the flushes the device saw
	local f0
	f0=$(stat_flushes $A)
	fio --rw=randwrite --bs=4k --ioengine=psync --direct=1 --fsync=1 --size=4M --io_size=64k \
		--name=fsync --filename=/dev/$A >/dev/null 2>&1 || { echo -1; return; }
	echo $(($(stat_flushes $A) - f0))
}
n=$(fsync_flushes)
check "write through: 16 fsyncs, no flush reached the device ($n)" test "$n" = 0
check "echo 'write back' > cache_type" sh -c "echo 'write back' > $ct"
n=$(fsync_flushes)
check "write back again: queue/write_cache says so, the 16 fsyncs flushed ($n)" sh -c \
	"grep -qx 'write back' /sys/block/$A/queue/write_cache && [ $n -ge 15 ]"

# discard and write-zeroes read back zero (the host punches holes: discard=unmap)
zero_at() { [ "$(dd if=/dev/$1 bs=1M count=4 skip=$2 iflag=direct status=none | tr -d '\0' | wc -c)" = 0 ]; }
dd if=/dev/urandom of=/dev/$A bs=1M count=8 oflag=direct status=none
check "blkdiscard 4 MiB at 0" blkdiscard -o 0 -l $((4 << 20)) /dev/$A
check "the discarded range reads back zero" zero_at $A 0
check "blkdiscard -z (write zeroes) 4 MiB at 4 MiB" blkdiscard -z -o $((4 << 20)) -l $((4 << 20)) /dev/$A
check "the zeroed range reads back zero" zero_at $A 4

# ext4 round trip on the second disk
grep -qw ext4 /proc/filesystems || modp ext4 2>/dev/null
if command -v mkfs.ext4 >/dev/null && grep -qw ext4 /proc/filesystems; then
	mnt=/tmp/cxmq-virtio-mnt; mkdir -p $mnt
	check "mkfs.ext4 on $B" mkfs.ext4 -q -F /dev/$B
	if mount /dev/$B $mnt; then
		for i in $(seq 1 $NFILES); do head -c $((RANDOM % 16384 + 1)) /dev/urandom > $mnt/f$i; done
		(cd $mnt && sha256sum f* > /tmp/virtio-sums)
		umount $mnt
		check "fsck.ext4 -fn clean" fsck.ext4 -fn /dev/$B
		mount /dev/$B $mnt && check "$NFILES files read back after a remount" \
			sh -c "cd $mnt && sha256sum -c --quiet /tmp/virtio-sums"
		umount $mnt
	else
		fail "mount ext4 on $B"
	fi
fi

# rq_affinity on a one-queue disk (CXMQ_VIRTIO_AFFINITY names it by serial), the submitter on
# another CPU than the one its interrupt lands on: 0 completes there, 2 on the submitter, 1 on
# the submitter unless the two share a cache (CPUs of one die: topology/die_cpus_list)
C=
[ -n "${CXMQ_VIRTIO_AFFINITY:-}" ] && C=$(cxmq_disk_of "$CXMQ_VIRTIO_AFFINITY")
if [ -n "$C" ] && [ "$CXMQ_CPUS" -ge 2 ]; then
	vc=$(virtio_of $C)
	irqs() { awk -v n="$vc-req.0" -v c="$CXMQ_CPUS" '$NF == n { for (i = 2; i <= c + 1; i++) printf "%s ", $i }' /proc/interrupts; }
	rqa() { grep "^rq_affinity:" /sys/kernel/debug/cxmq/$C/stats | grep -o "$1=[0-9]*" | cut -d= -f2; }
	read -r -a before <<<"$(irqs)"
	dd if=/dev/$C of=/dev/null bs=4k count=200 iflag=direct status=none
	read -r -a after <<<"$(irqs)"
	irqcpu=-1 best=0
	for ((i = 0; i < ${#after[@]}; i++)); do
		dlt=$(( ${after[$i]} - ${before[$i]:-0} )); [ $dlt -gt $best ] && best=$dlt irqcpu=$i
	done
	check "$C ($vc): 1 hardware queue, its interrupt on CPU $irqcpu" 		test "$(ls /sys/block/$C/mq | wc -l)" = 1 -a $irqcpu -ge 0
	sub=$(( (irqcpu + 1) % CXMQ_CPUS ))
	check "queue/rq_affinity starts at blk-mq's 1" test "$(cat /sys/block/$C/queue/rq_affinity)" = 1
	die=$(cat /sys/devices/system/cpu/cpu$irqcpu/topology/die_cpus_list 2>/dev/null)
	share=0; python3 -c "import sys; r=set()
for p in sys.argv[1].split(','):
    a,_,b=p.partition('-'); r.update(range(int(a), int(b or a)+1))
sys.exit(0 if int(sys.argv[2]) in r else 1)" "${die:-$irqcpu}" $sub && share=1
	for mode in 0 1 2; do
		echo $mode > /sys/block/$C/queue/rq_affinity
		l0=$(rqa local) m0=$(rqa moved)
		taskset -c $sub dd if=/dev/$C of=/dev/null bs=4k count=400 iflag=direct status=none
		l=$(( $(rqa local) - l0 )) m=$(( $(rqa moved) - m0 ))
		if [ $mode = 0 ] || { [ $mode = 1 ] && [ $share = 1 ]; }; then want=local; else want=moved; fi
		if [ $want = local ]; then ok=$([ $m = 0 ] && [ $l -ge 400 ] && echo y); else ok=$([ $l = 0 ] && [ $m -ge 400 ] && echo y); fi
		check "rq_affinity $mode, submitter CPU $sub, interrupt CPU $irqcpu (share a cache: $share): 400 reads, local $l, moved $m ($want)" 			test "$ok" = y
	done
	echo 1 > /sys/block/$C/queue/rq_affinity
fi

# CPU hotplug (blk_mq_hctx_notify_offline): each of B's virtqueues has its interrupt on one CPU
# (affinity-managed: it shuts down when that CPU goes). fio pinned to the last CPU keeps requests
# in flight on that CPU's queue, the host throttling the disk (QMP) so that they
# are still there when the CPU's hotplug callbacks run; the CPU goes offline: the queue was
# drained first (the stats count the drain and the requests it waited for, none is left on
# it), fio carries on elsewhere without an error; back online, the queue takes that CPU's
# requests again. Then random CPUs go and come under fio verify (scenarios.sh's scenario 2, on
# a virtio disk).
last=$((CXMQ_CPUS - 1))
IFS=: read -r idB _ _ _ <<<"${specs[1]}"
if [ $last -ge 1 ] && [ -e /sys/devices/system/cpu/cpu$last/online ]; then
	hqdir=$(ls -d /sys/block/$B/mq/*/cpu$last 2>/dev/null | head -n1); hqdir=${hqdir%/cpu*}
	hq=${hqdir##*/}
	check "$B: CPU $last alone on its queue ($hq: cpu_list $(cat $hqdir/cpu_list 2>/dev/null))" \
		test "$(cat $hqdir/cpu_list 2>/dev/null)" = "$last"
	hline() { grep "^hctx$hq:" /sys/kernel/debug/cxmq/$B/stats; }
	drains() { hline | sed -nE 's/.* offline_drains=([0-9]+),([0-9]+).*/\1 \2/p'; }
	read -r dr0 dd0 <<<"$(drains)"
	q0=$(cat $hqdir/queued)
	taskset -c $last fio --name=hp --filename=/dev/$B --rw=randrw --bs=4k --ioengine=libaio \
		--direct=1 --iodepth=32 --time_based --runtime=12 --output=/tmp/fio-hp.out >/dev/null 2>&1 &
	fpid=$!
	for ((i = 0; i < 100; i++)); do [ $(( $(cat $hqdir/queued) - q0 )) -gt 200 ] && break; sleep 0.1; done
	ans=$(vm_throttle "$idB" 40)
	check "the host throttles $idB to 40 IOPS ($ans)" test "$ans" = ok
	sleep 1
	t0=${EPOCHREALTIME/./}
	echo 0 > /sys/devices/system/cpu/cpu$last/online
	ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
	line=$(hline)
	read -r dr1 dd1 <<<"$(drains)"
	vm_throttle "$idB" 0 >/dev/null
	check "CPU $last offline under fio ($ms ms): queue $hq drained first ($((dr1 - dr0)) drain, of $((dd1 - dd0)) requests)" \
		test $((dr1 - dr0)) = 1 -a $((dd1 - dd0)) -gt 0
	check "queue $hq: inactive, no request left on it" grep -q ' tags_busy=0/.* inactive ' <<<"$line"
	wait $fpid; rc=$?
	check "fio carried on elsewhere and ended without errors (exit $rc)" test $rc = 0
	echo 1 > /sys/devices/system/cpu/cpu$last/online
	line=$(hline)
	check "CPU $last online: queue $hq active again" test -n "$line" -a "${line/ inactive /}" = "$line"
	r0=$(field $hqdir/cpu$last/dispatched 1)
	taskset -c $last dd if=/dev/$B of=/dev/null bs=4k count=100 iflag=direct status=none
	check "CPU $last's reads go to queue $hq again (100)" \
		test $(( $(field $hqdir/cpu$last/dispatched 1) - r0 )) -eq 100
	verify_loop $B /tmp/virtio-hp.log &
	vpid=$!
	n=0 end=$(( EPOCHSECONDS + ${CXMQ_VIRTIO_HOTPLUG_SECONDS:-10} ))
	while [ $EPOCHSECONDS -lt $end ]; do
		c=$(( RANDOM % last + 1 )); f=/sys/devices/system/cpu/cpu$c/online
		read -r on < $f; echo $((1 - on)) > $f; n=$((n + 1))
		sleep 0.3
	done
	touch /tmp/virtio-hp.log.stop
	wait $vpid
	read -r runs bad < /tmp/virtio-hp.log.result
	head -n 20 /tmp/virtio-hp.log 2>/dev/null | sed 's/^/#   /'
	for ((c = 1; c <= last; c++)); do echo 1 > /sys/devices/system/cpu/cpu$c/online; done
	check "fio verify crc32c on $B while CPUs went and came $n times: $runs runs, $bad failed" \
		test "$bad" = 0 -a "$runs" -gt 0 -a $n -gt 0
fi

# data written through cxmq, read back through the kernel's virtio_blk and in the host's file
IFS=: read -r _ _ serialA fileA <<<"${specs[0]}"
dd if=/dev/urandom of=/tmp/virtio-pattern bs=1M count=4 status=none
check "4 MiB written through cxmq at 16 MiB" \
	dd if=/tmp/virtio-pattern of=/dev/$A bs=1M seek=16 oflag=direct,dsync status=none
vA=${VDEV[$first]}
check "unbind $vA from cxmq: $A goes" sh -c \
	"echo $vA > $VIRTIO/drivers/cxmq/unbind && [ ! -e /sys/block/$A ]"
modp virtio_blk 2>/dev/null
echo 0 > $VIRTIO/drivers_autoprobe 2>/dev/null # (virtio_blk takes only what it is given)
vd=
if echo $vA > $VIRTIO/drivers/virtio_blk/bind; then
	for ((i = 0; i < 50; i++)); do
		vd=$(ls $VIRTIO/devices/$vA/block 2>/dev/null | head -n1); [ -n "$vd" ] && break; sleep 0.1
	done
fi
if [ -n "$vd" ]; then
	pass "$vA bound to virtio_blk: /dev/$vd"
	check "virtio_blk reads back what cxmq wrote" sh -c \
		"dd if=/dev/$vd bs=1M skip=16 count=4 iflag=direct status=none | cmp -s - /tmp/virtio-pattern"
	check "the host's file holds it too" sh -c \
		"dd if=$fileA bs=1M skip=16 count=4 status=none | cmp -s - /tmp/virtio-pattern"
	echo $vA > $VIRTIO/drivers/virtio_blk/unbind
else
	fail "$vA bound to virtio_blk"
fi
check "and back to cxmq (bind)" sh -c "echo $vA > $VIRTIO/drivers/cxmq/bind"
for ((i = 0; i < 50; i++)); do A=$(cxmq_disk_of "$serialA") && break; sleep 0.1; done
check "its disk is back as $A" test -n "$A" -a -e "/sys/block/$A"

# unbind under fio: IO in flight completes or fails, new IO fails, nothing hangs (writes: a
# removed disk has capacity 0, where reads just see the end of the device)
fio --name=u --filename=/dev/$A --rw=randwrite --bs=4k --ioengine=libaio --direct=1 --iodepth=32 \
	--time_based --runtime=30 --output=/tmp/fio-unbind.out >/dev/null 2>&1 &
fpid=$!
sleep 3
t0=$SECONDS
echo $vA > $VIRTIO/drivers/cxmq/unbind; urc=$?
check "unbind under fio returns ($((SECONDS - t0)) s)" test $urc = 0 -a $((SECONDS - t0)) -lt 20
wait $fpid; rc=$?
check "fio on the unbound disk ended with errors (exit $rc), $((SECONDS - t0)) s after" \
	test $rc -ne 0 -a $((SECONDS - t0)) -lt 25
check "$A is gone" test ! -e /sys/block/$A
# hot-unplug under fio (the host's QMP device_del)
fio --name=h --filename=/dev/$B --rw=randwrite --bs=16k --ioengine=libaio --direct=1 \
	--iodepth=16 --time_based --runtime=40 --output=/tmp/fio-unplug.out >/dev/null 2>&1 &
fpid=$!
sleep 3
t0=$SECONDS
ans=$(vm_unplug "$idB")
check "$idB hot-unplugged by the host under fio ($ans)" test "$ans" = ok
wait $fpid; rc=$?
check "fio on the unplugged disk ended with errors (exit $rc), $((SECONDS - t0)) s after" \
	test $rc -ne 0 -a $((SECONDS - t0)) -lt 35
check "$B is gone" test ! -e /sys/block/$B
check "rmmod cxmq" rmmod cxmq
check "no virtio block device is bound any more" sh -c "! ls $VIRTIO/devices/*/block >/dev/null 2>&1"
dmesg_clean "virtio backend: no kernel reports"
kmemleak_clean "virtio backend: no kmemleak reports"
echo "# virtio: $SECONDS s"
summary
