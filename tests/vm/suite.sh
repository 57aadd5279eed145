# Guest job: several guest jobs in one boot (a boot of the debug kernel costs about 1.5 minutes
# under TCG, a kmemleak scan 20-25 s). usage: suite.sh JOB.sh... (names under tests/vm/).
# Each job runs as it would alone, its own dmesg checks included; kmemleak is scanned once,
# after the last, and any leak fails that final check (its backtrace names the code).
. "$CXMQ_ROOT/tests/vm/lib.sh"
rc=0
for job in "$@"; do
	echo "# suite: $job ($SECONDS s so far)"
	CXMQ_KMEMLEAK_LATER=1 bash "$CXMQ_ROOT/tests/vm/$job" || rc=1
done
echo "# suite: kmemleak ($SECONDS s so far)"
kmemleak_clean "no kmemleak reports after $*"
summary || rc=1
exit $rc
