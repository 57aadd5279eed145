# Guest job of scripts/demo.sh: load cxmq, drive /dev/cxmq0 with fio, show what sysfs says.
set -e
KO=$CXMQ_KO_DIR/cxmq.ko
echo "== $(uname -r), $(nproc) vCPUs: insmod cxmq.ko $CXMQ_PARAMS"
insmod "$KO" $CXMQ_PARAMS
dmesg | grep 'cxmq:' | tail -n 3
ls -l /dev/cxmq*
for rw in randread randwrite; do
	echo; echo "== fio: 4k $rw, io_uring, direct, iodepth 32, $(nproc) jobs, 10 s on /dev/cxmq0"
	fio --name="$rw" --filename=/dev/cxmq0 --rw="$rw" --bs=4k --ioengine=io_uring --direct=1 \
		--iodepth=32 --numjobs="$(nproc)" --time_based --runtime=10 --group_reporting \
		--norandommap --randrepeat=0
done
echo; echo "== sysfs: /sys/block/cxmq0"
for f in size ro removable queue/logical_block_size queue/physical_block_size \
	 queue/max_sectors_kb queue/nr_requests queue/rotational queue/nomerges; do
	printf '%-28s %s\n' "$f" "$(cat /sys/block/cxmq0/$f 2>/dev/null || echo '-')"
done
if [ -d /sys/block/cxmq0/mq ]; then
	echo; echo "== sysfs: /sys/block/cxmq0/mq/"
	(cd /sys/block/cxmq0/mq && find . -type f | sort | while read -r f; do
		printf '%-28s %s\n' "$f" "$(head -c 300 "$f" | tr '\n' ' ')"; done)
fi
if [ -r /sys/kernel/debug/cxmq/cxmq0/stats ]; then
	echo; echo "== queue counters: /sys/kernel/debug/cxmq/cxmq0/stats"
	cat /sys/kernel/debug/cxmq/cxmq0/stats
fi
echo; echo "== /proc/diskstats"
grep ' cxmq0 ' /proc/diskstats
echo; echo "== module parameters: /sys/module/cxmq/parameters"
grep -H . /sys/module/cxmq/parameters/* | sed 's|.*/||'
rmmod cxmq
echo; echo "== rmmod cxmq: done"
