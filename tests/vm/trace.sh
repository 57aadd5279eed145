# Guest job: cxmq's tracepoints (src/shim/cxmq_trace.h). tracefs lists events/cxmq/ with every
# event; with all of them on, a short fio job: every request issued shows up once as issued and
# once as completed (a requeue may come between two issues of one tag), in order per hardware
# queue and tag, none lost (the ring buffer's overrun counts stay 0), and the completed
# requests hold every bio fio did; then the standard tools: perf record -e 'cxmq:*' and
# trace-cmd record -e cxmq see each of 64 reads complete once.
. "$CXMQ_ROOT/tests/vm/lib.sh"
dmesg_mark
T=/sys/kernel/tracing
[ -e $T/events ] || mount -t tracefs nodev $T 2>/dev/null
EVENTS="cxmq_rq_insert cxmq_rq_merge cxmq_rq_issue cxmq_rq_requeue cxmq_rq_complete cxmq_plug cxmq_unplug cxmq_run"

check "insmod cxmq (busy_every=5: requeues too)" load_cxmq submit_queues="$CXMQ_CPUS" gb=1 irqmode=1 busy_every=5
missing=
for e in $EVENTS; do [ -e $T/events/cxmq/$e/format ] || missing+=" $e"; done
check "tracefs events/cxmq/ has every event${missing:+ (missing:$missing)}" test -z "$missing"

echo 0 > $T/tracing_on
echo > $T/trace
echo 8192 > $T/buffer_size_kb
echo 1 > $T/events/cxmq/enable
echo 1 > $T/tracing_on
out=/tmp/trace.fio.json
fio --output-format=json --output=$out --name=t --filename=/dev/cxmq0 --rw=randrw --bs=4k \
	--direct=1 --ioengine=io_uring --iodepth=16 --numjobs=2 --io_size=4m --norandommap \
	--randrepeat=0 >/dev/null 2>&1
frc=$?
echo 0 > $T/tracing_on
echo 0 > $T/events/cxmq/enable
cat $T/trace > /tmp/trace.txt
ios=$(sed -n 's/^ *"total_ios" : \([0-9]*\),$/\1/p' $out | awk '{s += $1} END {print s + 0}')
check "fio randrw 4k io_uring, 2 jobs x 4 MiB, with every cxmq event on ($ios IOs)" test $frc = 0
overrun=$(cat $T/per_cpu/cpu*/stats | awk '/^overrun:/ {s += $2} END {print s + 0}')
check "no trace event lost (overrun $overrun)" test "$overrun" = 0
# per device, hardware queue and tag: issue, then requeue (and issue again) or complete
res=$(awk '
	match($0, /cxmq_(rq_issue|rq_requeue|rq_complete): [0-9]+,[0-9]+ /) {
		split(substr($0, RSTART, RLENGTH), a, /[: ]+/); ev = a[1]; dev = a[2]
		match($0, /tag=[0-9]+ hctx=[0-9]+/); k = dev " " substr($0, RSTART, RLENGTH)
		if (ev == "cxmq_rq_issue") { if (fl[k]) bad++; fl[k] = 1; iss++ }
		else { if (!fl[k]) bad++; fl[k] = 0 }
		if (ev == "cxmq_rq_requeue") req++
		if (ev == "cxmq_rq_complete") {
			comp++; match($0, /bios=[0-9]+/); bios += substr($0, RSTART + 5, RLENGTH - 5)
			if ($0 !~ / status=0 /) errs++
		}
	}
	/cxmq_rq_merge:/ { mer++ }
	END { for (k in fl) if (fl[k]) open++
		printf "%d %d %d %d %d %d %d %d", iss, comp, req, bios, bad, open, errs, mer }' /tmp/trace.txt)
read -r iss comp req bios bad open errs mer <<<"$res"
echo "#   trace: $iss issued, $comp completed, $req requeued, $mer merges, $bios bios completed"
check "each issue is followed by one requeue or completion of its tag ($bad out of order)" test "$bad" = 0
check "every issued request completed ($open left open)" test "$open" = 0
check "issues = completions + requeues ($iss = $comp + $req)" test "$iss" = $((comp + req))
check "requeues traced (busy_every=5: $req)" test "$req" -gt 0
check "completions hold every bio fio did ($bios bios, fio $ios IOs), status 0 ($errs not)" \
	sh -c "[ $bios = $ios ] && [ $errs = 0 ]"
check "inserts, runs and plugs traced" sh -c \
	"grep -q cxmq_rq_insert: /tmp/trace.txt && grep -q cxmq_run: /tmp/trace.txt && grep -q cxmq_unplug: /tmp/trace.txt"
echo 1408 > $T/buffer_size_kb
rmmod cxmq
check "insmod cxmq (no busy answers)" load_cxmq submit_queues="$CXMQ_CPUS" gb=1

# the standard tools
if command -v perf >/dev/null; then
	perf record -q -e 'cxmq:*' -a -o /tmp/perf.cxmq.data -- dd if=/dev/cxmq0 of=/dev/null \
		bs=4k count=64 iflag=direct status=none 2>/tmp/perf.err
	n=$(perf script -i /tmp/perf.cxmq.data 2>/dev/null | grep -c 'cxmq:cxmq_rq_complete:')
	check "perf record -e 'cxmq:*': 64 direct reads, 64 completions ($n)" test "$n" = 64
else
	fail "perf record -e 'cxmq:*'" "no perf in the guest"
fi
if command -v trace-cmd >/dev/null; then
	(cd /tmp && trace-cmd record -q -e cxmq -o /tmp/trace-cmd.dat dd if=/dev/cxmq0 of=/dev/null \
		bs=4k count=64 iflag=direct status=none >/tmp/trace-cmd.err 2>&1)
	n=$(trace-cmd report -i /tmp/trace-cmd.dat 2>/dev/null | grep -c 'cxmq_rq_complete:')
	check "trace-cmd record -e cxmq: 64 direct reads, 64 completions ($n)" test "$n" = 64
else
	fail "trace-cmd record -e cxmq" "no trace-cmd in the guest"
fi
check "rmmod cxmq" rmmod cxmq
dmesg_clean "no kernel reports (tracing)"
kmemleak_clean "no kmemleak reports (tracing)"
summary
