# Guest job: every file cxmq makes in sysfs and configfs is documented in the kernel's ABI format
# (Documentation/ABI/testing/sysfs-block-cxmq and configfs-cxmq). With a device from the module
# parameters and a powered configfs device with a poll queue, under none, mq-deadline and kyber
# in turn (so each scheduler's iosched/ exists), it lists every regular file under
# /sys/block/cxmq*/mq/ and /sys/block/cxmq*/cxmq/, the virtio disks' serial and cache_type where
# there are any, and every attribute of /sys/kernel/config/cxmq/*/; maps each to its generic
# path (cxmqN -> cxmq<N>, hardware queue numbers -> <n>, cpuM -> cpu<m>, the configfs device ->
# <dev>) and fails once for each file no What: line of the two files names. Files are listed,
# never read. Only bash, grep, sed and awk (python3 is slow to start in the guest).
. "$CXMQ_ROOT/tests/vm/lib.sh"
dmesg_mark
ABI_DIR=$CXMQ_ROOT/Documentation/ABI/testing
ABI_FILES=("$ABI_DIR/sysfs-block-cxmq" "$ABI_DIR/configfs-cxmq")
LIST=/tmp/abi.files.$$

# abi_generic: live paths on stdin, one a line -> their documented form on stdout
abi_generic() {
	sed -E -e 's#^/sys/block/cxmq[0-9]+(/|$)#/sys/block/cxmq<N>\1#' \
		-e 's#^(/sys/block/cxmq<N>/mq/)[0-9]+(/|$)#\1<n>\2#' \
		-e 's#^(/sys/block/cxmq<N>/mq/<n>/)cpu[0-9]+(/|$)#\1cpu<m>\2#' \
		-e 's#^/sys/kernel/config/cxmq/[^/]+(/|$)#/sys/kernel/config/cxmq/<dev>\1#'
}
# abi_whats FILE...: every What: of the ABI files, one a line (trailing blanks and a final
# ",.;" dropped, as scripts/get_abi.pl reads them)
abi_whats() {
	sed -n 's/^What:[[:space:]]*//p' "$@" | sed -E 's/[[:space:]]+$//; s/[,.;]$//'
}
# live_files: the regular files cxmq has made now (sysfs under its disks, configfs attributes)
live_files() {
	local f
	shopt -s globstar nullglob
	for f in /sys/block/cxmq*/mq/** /sys/block/cxmq*/cxmq/** /sys/block/cxmq*/serial \
		/sys/block/cxmq*/cache_type "$CFS"/*/**; do
		[[ -f $f && ! -L $f ]] && printf '%s\n' "$f"
	done
	shopt -u globstar nullglob
}

for f in "${ABI_FILES[@]}"; do
	check "${f#"$CXMQ_ROOT"/} is readable and has What: lines" grep -q '^What:' "$f"
done
if ! check "insmod cxmq nr_devices=1 gb=1 submit_queues=$CXMQ_CPUS" \
	load_cxmq nr_devices=1 gb=1 submit_queues="$CXMQ_CPUS"; then
	summary; exit
fi
S=/sys/block/cxmq0/cxmq
MKDEV_SIZE=64
check "a powered configfs device with a poll queue ($CFS/abi)" mkdev abi poll_queues=1
: > "$LIST"
for sched in none mq-deadline kyber; do
	if [ "$sched" != none ]; then
		check "cxmq0: switch to $sched" sh -c "echo $sched > $S/scheduler"
		check "cxmq0: $sched's iosched/ exists" test -d $S/iosched
	fi
	live_files >> "$LIST"
done
check "cxmq0: back to none" sh -c "echo none > $S/scheduler"

# (files, not process substitution: the guest has no /dev/fd)
awk '!seen[$0]++' "$LIST" > "$LIST.u"
abi_generic < "$LIST.u" > "$LIST.g"
mapfile -t files < "$LIST.u"
mapfile -t generic < "$LIST.g"
declare -A documented seen
for g in "${generic[@]}"; do seen[$g]=1; done
# the listing found the kinds of files it should (a glob gone wrong must not pass for nothing)
missing=()
for p in "/sys/block/cxmq<N>/mq/<n>/cpu_list" "/sys/block/cxmq<N>/mq/<n>/cpu<m>/rq_list" \
	"/sys/block/cxmq<N>/cxmq/scheduler" "/sys/block/cxmq<N>/cxmq/iosched/read_expire" \
	"/sys/block/cxmq<N>/cxmq/iosched/read_lat_nsec" "/sys/kernel/config/cxmq/<dev>/power"; do
	[ -n "${seen[$p]:-}" ] || missing+=("not listed: $p")
done
name="the listing has mq/<n>/, cpu<m>/, cxmq/, both schedulers' iosched/ and configfs files"
if [ ${#missing[@]} -eq 0 ]; then pass "$name"; else fail "$name" "${missing[@]}"; fi

abi_whats "${ABI_FILES[@]}" > "$LIST.w"
mapfile -t whats < "$LIST.w"
for w in "${whats[@]}"; do documented[$w]=1; done
bad=0
for i in "${!files[@]}"; do
	g=${generic[$i]}
	if [ -z "${documented[$g]:-}" ]; then
		fail "undocumented: ${files[$i]}" "no What: $g in ${ABI_FILES[*]#"$ABI_DIR"/}"
		bad=$((bad + 1))
	fi
done
[ "$bad" -eq 0 ] && [ ${#files[@]} -gt 0 ] && pass "all ${#files[@]} cxmq sysfs and configfs files checked (${#seen[@]} distinct paths) are documented in Documentation/ABI/testing/"
[ "$bad" -eq 0 ] || echo "#   $bad of ${#files[@]} files checked are undocumented"
# Documented files this boot did not show (the virtio disks' without one): a note, no test
for w in "${whats[@]}"; do
	[[ $w == */ || -n ${seen[$w]:-} ]] || echo "#   documented, not seen in this boot: $w"
done

check "$CFS/abi: power off" sh -c "echo 0 > $CFS/abi/power"
check "$CFS/abi: rmdir" rmdir "$CFS/abi"
check "rmmod cxmq" rmmod cxmq
rm -f "$LIST" "$LIST.u" "$LIST.g" "$LIST.w"
dmesg_clean "no kernel reports"
summary
