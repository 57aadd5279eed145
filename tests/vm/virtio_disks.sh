# Guest job: the VM harness's virtio-blk disks (scripts/vm-run.sh --disk), which the virtio
# backend's tests will run on. CXMQ_VIRTIO_DISKS lists what the host attached, "ID:QUEUES:SERIAL"
# each, in order. Checks that the guest sees each as a virtio block device, that the kernel's
# virtio_blk drives it with that many hardware queues and that serial, that it reads, and that
# the host can hot-unplug the last one while the guest runs (vm_unplug).
. "$CXMQ_ROOT/tests/vm/lib.sh"
dmesg_mark
SECONDS=0
modp() { modprobe -d "$CXMQ_MODROOT" -S "$CXMQ_KABI" "$@"; }
read -r -a disks <<<"${CXMQ_VIRTIO_DISKS:?CXMQ_VIRTIO_DISKS not set}"

blkdevs() { # the virtio devices of type block (VIRTIO_ID_BLOCK)
	local d n=0
	for d in /sys/bus/virtio/devices/*; do
		[ "$(cat "$d/device" 2>/dev/null)" = 0x0002 ] && n=$((n + 1))
	done
	echo $n
}
check "the guest sees ${#disks[@]} virtio block devices" test "$(blkdevs)" = ${#disks[@]}
modp virtio_blk 2>/dev/null # (built in, or loaded already: nothing to do)
declare -A byserial
for ((i = 0; i < 50; i++)); do
	for b in /sys/block/vd*; do
		[ -e "$b/serial" ] && byserial[$(cat "$b/serial")]=${b##*/}
	done
	[ ${#byserial[@]} -ge ${#disks[@]} ] && break
	sleep 0.1
done
last=
for spec in "${disks[@]}"; do
	IFS=: read -r id queues serial <<<"$spec"
	d=${byserial[$serial]:-}
	if [ -z "$d" ]; then fail "$id: a virtio_blk disk with serial $serial"; continue; fi
	pass "$id: virtio_blk drives it as $d (serial $serial)"
	check "$id: $queues hardware queue(s)" test "$(ls /sys/block/$d/mq | wc -l)" = "$queues"
	check "$id: reads" dd if=/dev/$d of=/dev/null bs=64k count=16 iflag=direct status=none
	last=$id lastdev=$d
done
if [ -n "$last" ]; then
	ans=$(vm_unplug "$last")
	check "$last: hot-unplugged by the host ($ans)" test "$ans" = ok
	for ((i = 0; i < 100; i++)); do [ -e /sys/block/$lastdev ] || break; sleep 0.1; done
	check "$last: $lastdev is gone, one virtio block device fewer" \
		test ! -e /sys/block/$lastdev -a "$(blkdevs)" = $(( ${#disks[@]} - 1 ))
fi
# Unbind rather than rmmod: virtio_blk's module exit does not wait for its disks' releases,
# which CONFIG_DEBUG_KOBJECT_RELEASE delays by seconds, so a release then reads the unloaded
# module's block_device_operations (an oops in disk_release; cxmq's exit waits for ->free_disk).
unbind_all() {
	local d
	for d in /sys/bus/virtio/drivers/virtio_blk/virtio*; do
		[ -e "$d" ] && echo "${d##*/}" >/sys/bus/virtio/drivers/virtio_blk/unbind
	done
	! ls -d /sys/block/vd* >/dev/null 2>&1
}
check "virtio_blk unbound (the jobs after this one see no virtio disk driven)" unbind_all
dmesg_clean "virtio disks: no kernel reports"
echo "# virtio_disks: $SECONDS s"
summary
