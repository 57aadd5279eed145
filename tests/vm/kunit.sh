# Guest job: load the KUnit module; its suites run at load and print KTAP to the kernel log,
# which is kept in $CXMQ_OUT/kunit.log for the host to parse (kunit.py parse).
. "$CXMQ_ROOT/tests/vm/lib.sh"
dmesg_mark
start=$DMESG_MARK
insmod "$KO_DIR/cxmq_kunit.ko" || { echo "insmod cxmq_kunit.ko failed"; exit 1; }
dmesg | tail -n +"$((start + 1))" | sed 's/^\[[ 0-9.]*\] //' > "$CXMQ_OUT/dmesg.log"
# A module's suites print no top-level KTAP header (only built-in suites get one): add it.
{
	echo "KTAP version 1"
	echo "1..$(grep -c '^    # Subtest:' "$CXMQ_OUT/dmesg.log")"
	cat "$CXMQ_OUT/dmesg.log"
} > "$CXMQ_OUT/kunit.log"
grep -E 'ok [0-9]|# ' "$CXMQ_OUT/kunit.log"
rmmod cxmq_kunit
dmesg_clean "kunit: no kernel reports while the suites ran"
kmemleak_clean "kunit: no leaks after the suites"
summary
