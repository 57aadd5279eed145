# Guest job: the multi-queue core and the null backend under fio. Data integrity (fio verify,
# crc32c) on a memory-backed device for each irqmode; discard frees pages and reads back zero;
# tag exhaustion (hw_queue_depth=1 under iodepth 256; io_uring's NOWAIT bios that got AGAIN and were
# submitted again count once in diskstats); a backend that answers busy now and then
# (the dispatch-list path, shown by the counters) with verify; no kernel reports, no leaks.
. "$CXMQ_ROOT/tests/vm/lib.sh"
CPUS=$CXMQ_CPUS
SIZE=${CXMQ_VERIFY_SIZE:-16m}
STATS=/sys/kernel/debug/cxmq/cxmq0/stats
dmesg_mark

verify_args() { # NAME: fio verify job over CPUS disjoint regions of SIZE
	echo --name="$1" --filename=/dev/cxmq0 --rw=randwrite --bs=4k --ioengine=io_uring \
		--direct=1 --iodepth=32 --numjobs="$CPUS" --size="$SIZE" --offset_increment="$SIZE" \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=0
}
stat_value() { # KEY: sum of KEY=N over the stats file
	grep -o "$1=[0-9]*" "$STATS" | cut -d= -f2 | awk '{s+=$1} END {print s+0}'
}

for irq in 0 1 2; do
	check "insmod memory_backed=1 irqmode=$irq submit_queues=$CPUS" \
		insmod "$CXMQ_KO" memory_backed=1 irqmode="$irq" submit_queues="$CPUS" gb=1 completion_nsec=20000
	fio_ok "fio verify crc32c, irqmode=$irq, $CPUS jobs x $SIZE, iodepth 32" $(verify_args "verify$irq")
	pages=$(stat_value pages)
	check "irqmode=$irq: pages were allocated on first write ($pages)" test "$pages" -gt 0
	check "rmmod (irqmode=$irq)" rmmod cxmq
done

check "insmod memory_backed=1 (discard)" insmod "$CXMQ_KO" memory_backed=1 gb=1
dd if=/dev/urandom of=/tmp/pattern bs=1M count=8 status=none
dd if=/tmp/pattern of=/dev/cxmq0 bs=1M oflag=direct status=none
before=$(stat_value pages)
check "8 MiB written: 2048 pages ($before)" test "$before" -eq 2048
check "data reads back" cmp -n 8388608 /tmp/pattern /dev/cxmq0
blkdiscard -o 1048576 -l 4194304 /dev/cxmq0
after=$(stat_value pages)
check "4 MiB discarded: 1024 pages freed ($before -> $after)" test "$after" -eq 1024
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/cxmq0 of=/tmp/back bs=1M count=8 iflag=direct status=none
check "discarded range reads back zeroes" cmp -n 4194304 -i 1048576:0 /tmp/back /dev/zero
check "the rest is intact" sh -c 'cmp -n 1048576 /tmp/pattern /tmp/back && cmp -i 5242880 /tmp/pattern /tmp/back'
check "rmmod (discard)" rmmod cxmq

check "insmod hw_queue_depth=1 irqmode=2" insmod "$CXMQ_KO" hw_queue_depth=1 submit_queues=1 irqmode=2 completion_nsec=50000
fio_ok "hw_queue_depth=1 under iodepth 256, $CPUS jobs" --name=exhaust --filename=/dev/cxmq0 \
	--rw=randread --bs=4k --ioengine=libaio --direct=1 --iodepth=256 --numjobs="$CPUS" \
	--time_based --runtime=5
# io_uring submits NOWAIT: a bio that finds no tag ends with AGAIN and io_uring submits it again
# from a worker; as with blk-mq, only the one that got a request is counted in diskstats
rd() { while read -r _ _ d r _; do [ "$d" = cxmq0 ] && echo "$r"; done < /proc/diskstats; }
before=$(rd)
out=$(fio --minimal --group_reporting --name=again --filename=/dev/cxmq0 --rw=randread --bs=4k \
	--ioengine=io_uring --direct=1 --iodepth=64 --numjobs="$CPUS" --time_based --runtime=3 2>&1)
kb=$(tail -n 1 <<<"$out" | cut -d';' -f6)
n=$(( $(rd) - before ))
check "io_uring NOWAIT under tag exhaustion: diskstats counts each read once (fio ${kb:-?} KiB = $(( ${kb:-0} / 4 )) reads, diskstats $n)" \
	test -n "$kb" -a "$n" = $(( ${kb:-0} / 4 ))
check "nothing left in flight" test "$(tr -s ' ' < /sys/block/cxmq0/inflight)" = " 0 0"
check "rmmod (tag exhaustion)" rmmod cxmq

check "insmod busy_every=7 memory_backed=1 irqmode=1" \
	insmod "$CXMQ_KO" busy_every=7 memory_backed=1 irqmode=1 submit_queues="$CPUS" gb=1
fio_ok "fio/randwrite-verify.fio (4k-64k, crc32c) through a busy backend" \
	--filename=/dev/cxmq0 "$CXMQ_ROOT/fio/randwrite-verify.fio"
cat "$STATS" | sed 's/^/#   /'
busy=$(stat_value busy_answers)
check "the backend answered busy ($busy times) and the queue counted it" \
	test "$busy" -gt 0 -a "$(stat_value busy)" -eq "$busy"
check "rmmod (busy)" rmmod cxmq

dmesg_clean "no kernel reports"
kmemleak_clean "no kmemleak reports"
summary; rc=$?
# issue 8's merging, plugging and limits tests join this boot (CXMQ_MERGE=0 leaves them out)
if [ "${CXMQ_MERGE:-1}" != 0 ]; then bash "$CXMQ_ROOT/tests/vm/merge.sh" || rc=1; fi
# issue 9's IO schedulers likewise (CXMQ_SCHED=0 leaves them out)
if [ "${CXMQ_SCHED:-1}" != 0 ]; then bash "$CXMQ_ROOT/tests/vm/sched.sh" || rc=1; fi
# issue 10's polling likewise (CXMQ_POLL=0 leaves it out)
if [ "${CXMQ_POLL:-1}" != 0 ]; then bash "$CXMQ_ROOT/tests/vm/poll.sh" || rc=1; fi
# and its timeouts and fault injection (CXMQ_TIMEOUT=0 leaves them out)
if [ "${CXMQ_TIMEOUT:-1}" != 0 ]; then bash "$CXMQ_ROOT/tests/vm/timeout.sh" || rc=1; fi
# and its shared tag sets (CXMQ_SHARED=0 leaves them out)
if [ "${CXMQ_SHARED:-1}" != 0 ]; then bash "$CXMQ_ROOT/tests/vm/shared.sh" || rc=1; fi
exit $rc
