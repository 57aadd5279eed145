# Guest job: scripts/cxmq-top against a loaded device under fio (in no suite yet: run it with
# scripts/vm-run.sh ... tests/vm/top.sh).
#   batch:  cxmq-top -b -d 1 -p cxmq0 runs in the background from before fio starts until after
#           it ended (fio and python3 take seconds to start under TCG, so the snapshots are
#           bounded by a kill, not by -n); fio 4k randread io_uring QD32, a job per vCPU,
#           time based (CXMQ_TOP_RUNTIME, 8 s). The snapshots with IO, less the first and last
#           (intervals only partly inside fio's run), have a median device iops within 10% of
#           fio's (the jobs' read IOPS summed from its JSON).
#   format: every snapshot has a line per hardware queue of mq/ and per software queue, the
#           device line a scheduler field (none), the stats file's fields where debugfs is
#           readable; nothing on stderr.
#   gone:   after rmmod, cxmq-top -p cxmq0 prints the device with '-' and exits 0.
. "$CXMQ_ROOT/tests/vm/lib.sh"
dmesg_mark
RUNTIME=${CXMQ_TOP_RUNTIME:-8}
TOP=$CXMQ_ROOT/scripts/cxmq-top
OUT=/tmp/cxmq-top.out
ERR=/tmp/cxmq-top.err

check "insmod cxmq.ko submit_queues=$CXMQ_CPUS gb=16" load_cxmq submit_queues="$CXMQ_CPUS" gb=16
queues=$(ls -d /sys/block/cxmq0/mq/[0-9]* | wc -l)
cpus=$(ls -d /sys/block/cxmq0/mq/[0-9]*/cpu[0-9]* | wc -l)

python3 "$TOP" -b -n 600 -d 1 -p cxmq0 > $OUT 2> $ERR &
top_pid=$!
# its first snapshot: python3 is running and sampling before fio starts
for ((i = 0; i < 600; i++)); do
	grep -q '^device cxmq0 ' $OUT && break
	kill -0 $top_pid 2>/dev/null || break
	sleep 0.1
done
check "cxmq-top -b printed its first snapshot" grep -q '^device cxmq0 ' $OUT
fio_ok "fio 4k randread io_uring QD32 x$CXMQ_CPUS ${RUNTIME}s beside cxmq-top" --name=randread \
	--filename=/dev/cxmq0 --rw=randread --bs=4k --direct=1 --ioengine=io_uring --iodepth=32 \
	--numjobs="$CXMQ_CPUS" --time_based --runtime="$RUNTIME" --norandommap --randrepeat=0
FIO_JSON=/tmp/fio.$$.json # where fio_ok (lib.sh) had fio write its JSON
sleep 2.5 # two idle snapshots after fio's
kill $top_pid
wait $top_pid
check "cxmq-top exits 0 on SIGTERM" test $? = 0
check "cxmq-top wrote nothing on stderr" test ! -s $ERR
[ -s $ERR ] && sed 's/^/#   /' $ERR | head -n 20

# fio's total IOPS: each job's "read" : { ... "iops" : N, ... }
fio_iops=$(awk '/"read" : \{/ {r = 1} /"write" : \{/ {r = 0}
	r && /"iops" : / {v = $3; gsub(/[",]/, "", v); s += v; r = 0} END {printf "%.1f", s}' "$FIO_JSON")
# the device iops of the snapshots with fio's IO (over 1% of its IOPS: not a stray read of
# udev's), less the first and last
mid=$(awk -v min="$fio_iops" '$1 == "device" && $2 == "cxmq0" {
	v = $3; sub(/^iops=/, "", v); if (v != "-" && v + 0 > min / 100) print v}' $OUT | sed '1d;$d' | sort -n)
n_mid=$(grep -c . <<<"$mid")
median=$(awk '{v[NR] = $1} END {if (NR) printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}' <<<"$mid")
echo "# fio: $fio_iops IOPS; cxmq-top: median ${median:-none} of $n_mid snapshots inside fio's run:" $mid
check "at least 3 cxmq-top snapshots inside fio's run" test "$n_mid" -ge 3
check "cxmq-top's median iops within 10% of fio's" \
	awk -v a="${median:-0}" -v b="$fio_iops" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= 0.1 * b)}'

snaps=$(grep -c '^cxmq-top time=[^ ]* interval=[0-9.]* devices=1$' $OUT)
check "every snapshot has a header line with time and interval" test "$snaps" -eq "$(grep -c '^cxmq-top ' $OUT)" -a "$snaps" -ge 5
ok=1
for ((h = 0; h < queues; h++)); do
	[ "$(grep -c "^hctx cxmq0/$h type=default " $OUT)" -eq "$snaps" ] || { ok=0; echo "#   no line for hctx $h in some snapshot"; }
done
check "every snapshot has a line for each of the $queues hardware queues" test $ok = 1
check "every snapshot has a line for each of the $cpus software queues" test "$(grep -c '^ctx cxmq0/' $OUT)" -eq $((snaps * cpus))
check "the device lines have scheduler=none" test "$(grep -c '^device cxmq0 .* scheduler=none ' $OUT)" -eq "$snaps"
check "hardware queue lines show tags of hw_queue_depth 64" grep -q '^hctx cxmq0/0 .* tags=[0-9]*/64 ' $OUT
if [ -r /sys/kernel/debug/cxmq/cxmq0/stats ]; then
	check "with debugfs: direct/s and busy/s are numbers" \
		grep -Eq '^hctx cxmq0/0 .* direct/s=[0-9.]+ busy/s=[0-9.]+ ' $OUT
fi
tail -n $((2 + queues + cpus)) $OUT | sed 's/^/#   /'

check "rmmod cxmq" rmmod cxmq
gone=$(python3 "$TOP" -b -n 1 -d 0.5 -p cxmq0 2>&1); rc=$?
check "cxmq-top on a device gone: exit 0, '-' fields" \
	grep -q '^device cxmq0 iops=- .* scheduler=- hw_queues=-$' <<<"$gone"
[ $rc = 0 ] || fail "cxmq-top on a device gone exits 0" "exit $rc: $gone"

dmesg_clean "no kernel reports"
summary
