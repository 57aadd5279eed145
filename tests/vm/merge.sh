# Guest job: issue 8's requests of many bios, plugging, merging and limits (tests/vm/mq.sh runs
# it at its end, in the same boot). Every configuration is a device of its own (one module
# load, configfs devices), and the fio verify jobs of all of them run in two fio runs: under
# TCG on the debug kernel each program start costs seconds (fio ~25 s, python3 ~9 s), so the
# job keeps to bash builtins between them.
#   io:      fio --verify=crc32c, sizes 4k-64k, libaio and io_uring submitting and reaping 16 at a
#            time (the kernel plugs), sequential and random, in each irqmode: plug merges, unplug
#            batches; the debugfs merge: line, mq/*/cpu*/merged and /proc/diskstats agree, and
#            diskstats counts every bio. A backend answering busy now and then keeps requests
#            staged: software-queue merges. queue/nomerges 2 (no merges), 1, and toggled 0/1/2
#            every 0.2 s under IO. Limits: max_sectors_kb 1280 by default, max_sectors=256 gives
#            128, a lower max_sectors_kb under 1 MiB IO; data verifies throughout.
#   discard: non-contiguous 4k discards read back zero, the rest the pattern; one discard that
#            dm-linear scatters into 64 ranges merges into multi-range requests (where the
#            kernel has device-mapper: user space alone cannot send two discards at once).
#   ext4:    mkfs, many small files (some fsynced), fsck -fn clean, checksums after a remount;
#            every other file deleted with -o discard, fsck and the rest's checksums again.
# Environment:
#   CXMQ_MERGE_SIZE   region per fio job, in MiB: Nm (default 8m); CXMQ_MERGE_FILES ext4 files (2000)
#   CXMQ_MERGE_ONLY   parts to run (default "io discard ext4")
. "$CXMQ_ROOT/tests/vm/lib.sh"
CPUS=$CXMQ_CPUS
SIZE=${CXMQ_MERGE_SIZE:-8m}
FILES=${CXMQ_MERGE_FILES:-2000}
PARTS=" ${CXMQ_MERGE_ONLY:-io discard ext4} "
CFS=/sys/kernel/config/cxmq
BUSY=/sys/module/cxmq/parameters/busy_every
T=/tmp/merge
mkdir -p $T
[ -p $T/never ] || mkfifo $T/never
exec 9<>$T/never # `read -t S -u 9` sleeps S seconds without a fork
nap() { read -r -t "$1" -u 9 || true; }
dmesg_mark
SECONDS=0 TP=0
part() { # NAME: run part NAME? (and say how long the previous one took)
	echo "# merge: $((SECONDS - TP)) s for the previous part, $SECONDS s so far"
	TP=$SECONDS
	[[ "$PARTS" == *" $1 "* ]]
}

# ---- counters, read with builtins ----
MERGE_RE='^[[:space:]]*merge: bios=([0-9]+) requests=([0-9]+) plug_merges=([0-9]+) ctx_merges=([0-9]+) unplugs=([0-9]+) unplug_requests=([0-9]+)'
# stats DISK: its debugfs stats into M_OK (the merge: line is there) M_P M_C M_U M_N PAGES
stats() {
	local l
	M_OK=0 M_P=0 M_C=0 M_U=0 M_N=0 PAGES=0
	while IFS= read -r l; do
		if [[ $l =~ $MERGE_RE ]]; then
			M_OK=1 M_P=${BASH_REMATCH[3]} M_C=${BASH_REMATCH[4]}
			M_U=${BASH_REMATCH[5]} M_N=${BASH_REMATCH[6]}
		elif [[ $l =~ pages=([0-9]+) ]]; then
			PAGES=${BASH_REMATCH[1]}
		fi
	done < /sys/kernel/debug/cxmq/$1/stats
}
# dstat DISK: its /proc/diskstats line into DS, numbered as awk's fields: DS[4] reads,
# DS[5] reads merged, DS[8] writes, DS[9] writes merged, DS[15] discards, DS[16] discards merged
dstat() {
	local -a f
	DS=()
	while read -ra f; do
		if [ "${f[2]}" = "$1" ]; then DS=("" "${f[@]}"); return 0; fi
	done < /proc/diskstats
	return 1
}
ctx_sum() { # DISK: CTXSUM, the sum of its mq/*/cpu*/merged files
	local f v
	CTXSUM=0
	for f in /sys/block/$1/mq/*/cpu*/merged; do
		[ -e "$f" ] && read -r v < "$f" && CTXSUM=$((CTXSUM + v))
	done
}
# snap NAME: NAME's counters now, the baseline of deltas: S_P S_C S_U S_N S_R S_W S_D S_CTX
declare -A S_P S_C S_U S_N S_R S_W S_D S_CTX
snap() {
	local d=${DISK[$1]}
	stats $d; dstat $d; ctx_sum $d
	S_P[$1]=$M_P S_C[$1]=$M_C S_U[$1]=$M_U S_N[$1]=$M_N S_CTX[$1]=$CTXSUM
	S_R[$1]=${DS[4]} S_W[$1]=${DS[8]} S_D[$1]=$((DS[5] + DS[9] + DS[16]))
}
# delta NAME: since snap: D_P D_C D_U D_N D_R D_W D_D (diskstats merges) D_CTX
delta() {
	local d=${DISK[$1]}
	stats $d; dstat $d; ctx_sum $d
	D_P=$((M_P - S_P[$1])) D_C=$((M_C - S_C[$1])) D_U=$((M_U - S_U[$1])) D_N=$((M_N - S_N[$1]))
	D_R=$((DS[4] - S_R[$1])) D_W=$((DS[8] - S_W[$1])) D_D=$((DS[5] + DS[9] + DS[16] - S_D[$1]))
	D_CTX=$((CTXSUM - S_CTX[$1]))
}
# agree NAME LABEL: the three merge counts of NAME's IO agree
TOT_P=0 TOT_C=0
agree() {
	delta "$1"
	echo "#   $2 (${DISK[$1]}): plug_merges +$D_P ctx_merges +$D_C unplugs +$D_U (+$D_N requests); diskstats merged +$D_D; mq/*/cpu*/merged +$D_CTX"
	if [ $M_OK = 0 ]; then
		fail "$2: merge counters agree" "no merge: line in ${DISK[$1]}'s stats"
		return
	fi
	check "$2: mq/*/cpu*/merged (+$D_CTX) = ctx_merges (+$D_C); /proc/diskstats merges (+$D_D) = plug_merges + ctx_merges" \
		test "$D_CTX" -eq "$D_C" -a "$D_D" -eq $((D_P + D_C))
	TOT_P=$((TOT_P + D_P)) TOT_C=$((TOT_C + D_C))
}

# ---- devices ----
declare -A DISK
DISK[mod]=cxmq0
DEVS=()
# mkdev NAME ATTR=VALUE...: a powered configfs device (from the module parameters' settings,
# which are max_sectors=256's: every attribute that matters is set); its disk in DISK[NAME]
mkdev() {
	local name=$1 a idx; shift
	mkdir $CFS/$name || return 1
	DEVS+=("$name")
	for a in size=1024 memory_backed=1 max_sectors=0 irqmode=1 submit_queues="$CPUS" hw_queue_depth=64 "$@"; do
		echo "${a#*=}" > $CFS/$name/${a%%=*} || { echo "#   $name: $a refused"; return 1; }
	done
	echo 1 > $CFS/$name/power || return 1
	read -r idx < $CFS/$name/index
	DISK[$name]=cxmq$idx
}
rmdevs() {
	local n
	for n in "${DEVS[@]}"; do echo 0 > $CFS/$n/power; done
	rmdir "${DEVS[@]/#/$CFS/}"
	DEVS=()
}

# ---- fio: job sections on the devices, all in one run ----
# sec NAME SPEC...: job sections on device NAME, one region of N x SIZE each, N = numjobs. SPEC
# is RW:ENGINE:MODE[:BSRANGE[:NUMJOBS[:EXTRA]]], MODE b submitting and reaping 16 at a time (the
# kernel plugs each batch), s one IO per submission (no plug: a bio that finds a request staged
# on its software queue may merge with it). Job names are NAME-<n>: results are told per device.
declare -A NSEC
FIOARGS=()
sec() {
	local name=$1 sp rw eng mode bs nj extra off=0; shift
	for sp in "$@"; do
		IFS=: read -r rw eng mode bs nj extra <<<"$sp"
		nj=${nj:-$CPUS}
		NSEC[$name]=$((${NSEC[$name]:-0} + 1))
		FIOARGS+=(--name="$name-${NSEC[$name]}" --filename=/dev/${DISK[$name]} --rw="$rw"
			--ioengine="$eng" --bsrange="${bs:-4k-64k}" --numjobs="$nj" --offset=$((off))m
			--offset_increment="$SIZE")
		[ "$mode" = b ] && FIOARGS+=(--iodepth_batch_submit=16 --iodepth_batch_complete_min=16)
		[ -z "$extra" ] || FIOARGS+=($extra)
		off=$((off + nj * ${SIZE%m}))
	done
}
# runfio LABEL: fio_ok over the sections collected; per device NAME: fio's reads F_R, writes F_W,
# jobs F_JOBS and failed jobs F_BAD
declare -A F_R F_W F_JOBS F_BAD
runfio() {
	local l re='^#   ([A-Za-z0-9]+)-[0-9]+: error=([0-9]+) read: ([0-9]+) IOs .* write: ([0-9]+) IOs'
	fio_ok "$1" --direct=1 --iodepth=32 --size="$SIZE" --verify=crc32c --verify_fatal=1 --verify_state_save=0 \
		--do_verify=1 --randrepeat=0 "${FIOARGS[@]}" > $T/fio.out
	FIOARGS=()
	while IFS= read -r l; do
		echo "$l"
		[[ $l =~ $re ]] || continue
		local n=${BASH_REMATCH[1]}
		F_JOBS[$n]=$((${F_JOBS[$n]:-0} + 1))
		F_R[$n]=$((${F_R[$n]:-0} + BASH_REMATCH[3])) F_W[$n]=$((${F_W[$n]:-0} + BASH_REMATCH[4]))
		if [ "${BASH_REMATCH[2]}" != 0 ] || [ "${BASH_REMATCH[3]}" = 0 ] || [ "${BASH_REMATCH[4]}" = 0 ]; then
			F_BAD[$n]=$((${F_BAD[$n]:-0} + 1))
		fi
	done < $T/fio.out
}
verified() { # NAME LABEL JOBS: NAME's JOBS fio jobs all wrote, read back and verified
	check "$2: $3 fio jobs verified (${F_JOBS[$1]:-0} ran, ${F_BAD[$1]:-0} failed)" \
		test "${F_JOBS[$1]:-0}" -eq "$3" -a "${F_BAD[$1]:-0}" -eq 0
}
Q() { echo /sys/block/${DISK[$1]}/queue; }
qread() { read -r QV < "$(Q "$1")/$2"; } # NAME FILE: QV

check "insmod max_sectors=256 memory_backed=1 gb=1 irqmode=1 submit_queues=$CPUS (cxmq0)" \
	insmod "$CXMQ_KO" max_sectors=256 memory_backed=1 gb=1 irqmode=1 submit_queues="$CPUS"
stats cxmq0
check "stats has a merge: line (bios requests plug_merges ctx_merges unplugs unplug_requests)" test $M_OK = 1

# ---- io ----
if part io; then
	for irq in 0 1 2; do
		# tags for all 32 x 2 x CPUS IOs: no REQ_NOWAIT bio fails for want of one (io_uring would
		# send it again, and /proc/diskstats count it twice)
		for k in s r; do
			mkdev irq$irq$k irqmode=$irq hw_queue_depth=$((64 * CPUS)) completion_nsec=20000 ||
				fail "configfs device irq$irq$k"
		done
		sec irq${irq}s write:libaio:b write:io_uring:b
		sec irq${irq}r randwrite:libaio:b randwrite:io_uring:b
	done
	mkdev ldef && sec ldef write:libaio:b:2m-2m:1:--iodepth=4 randwrite:io_uring:b:4k-2m:1:--iodepth=4
	qread ldef max_sectors_kb
	check "default queue/max_sectors_kb is 1280 (not 127): $QV" test "$QV" = 1280
	qread ldef max_discard_segments
	check "memory-backed: queue/max_discard_segments > 1 ($QV)" test "$QV" -gt 1
	qread mod max_hw_sectors_kb
	check "max_sectors=256: queue/max_hw_sectors_kb is 128 ($QV)" test "$QV" = 128
	qread mod max_sectors_kb
	check "max_sectors=256: queue/max_sectors_kb is 128 ($QV)" test "$QV" = 128
	check "max_sectors_kb above max_hw_sectors_kb is refused" sh -c "! echo 256 > $(Q mod)/max_sectors_kb 2>/dev/null"
	echo 32 > "$(Q mod)/max_sectors_kb"; qread mod max_sectors_kb
	check "queue/max_sectors_kb takes 32 ($QV)" test "$QV" = 32
	sec mod write:libaio:b:1m-1m:1:--iodepth=8 randwrite:io_uring:b:4k-1m:1:--iodepth=8
	for n in "${!DISK[@]}"; do snap $n; done
	runfio "fio verify on 8 devices at once: every irqmode sequential and random, libaio and io_uring in batches of 16; 1-2 MiB IO under max_sectors_kb 1280 and 32"
	for irq in 0 1 2; do
		verified irq${irq}s "irqmode=$irq sequential" $((2 * CPUS))
		delta irq${irq}s
		check "irqmode=$irq: sequential batches were plug-merged ($D_P bios), sent by unplugs ($D_U batches, $D_N requests, <= 32 each)" \
			test "$D_P" -gt 0 -a "$D_U" -gt 0 -a "$D_N" -ge "$D_U" -a "$D_N" -le $((32 * D_U))
		check "irqmode=$irq sequential: /proc/diskstats counts every bio (reads $D_R = fio's ${F_R[irq${irq}s]:-0}, writes $D_W = fio's ${F_W[irq${irq}s]:-0})" \
			test "$D_R" -eq "${F_R[irq${irq}s]:-0}" -a "$D_W" -eq "${F_W[irq${irq}s]:-0}"
		agree irq${irq}s "irqmode=$irq sequential"
		verified irq${irq}r "irqmode=$irq random" $((2 * CPUS))
		delta irq${irq}r
		check "irqmode=$irq random: /proc/diskstats counts every bio (reads $D_R = fio's ${F_R[irq${irq}r]:-0}, writes $D_W = fio's ${F_W[irq${irq}r]:-0})" \
			test "$D_R" -eq "${F_R[irq${irq}r]:-0}" -a "$D_W" -eq "${F_W[irq${irq}r]:-0}"
		agree irq${irq}r "irqmode=$irq random"
	done
	verified ldef "2 MiB sequential and 4k-2m random IO (max_sectors_kb 1280)" 2
	agree ldef "max_sectors_kb 1280"
	verified mod "1 MiB sequential and 4k-1m random IO under max_sectors_kb 32" 2
	agree mod "max_sectors_kb 32"

	# Requests stay staged on the software queues while the backend refuses some (busy_every):
	# bios submitted one at a time then merge into them. One hardware queue for every CPU.
	STAGE="submit_queues=1 hw_queue_depth=64 irqmode=2 completion_nsec=2000000"
	for n in stage nm2 nm1 toggle; do mkdev $n $STAGE || fail "configfs device $n"; done
	JOBS3="write:libaio:s write:libaio:b randwrite:io_uring:b"
	sec stage write:libaio:s:4k-64k::--loops=2 write:io_uring:s write:libaio:b randwrite:io_uring:b
	sec nm2 $JOBS3
	sec nm1 $JOBS3
	sec toggle write:libaio:s:4k-64k::--loops=2 write:libaio:b:4k-64k::--loops=2 randwrite:io_uring:b
	echo 2 > "$(Q nm2)/nomerges"; qread nm2 nomerges
	check "queue/nomerges takes 2 ($QV)" test "$QV" = 2
	echo 1 > "$(Q nm1)/nomerges"; qread nm1 nomerges
	check "queue/nomerges takes 1 ($QV)" test "$QV" = 1
	for n in stage nm2 nm1 toggle; do snap $n; done
	echo 2 > $BUSY
	rm -f $T/toggle.stop
	tq=$(Q toggle)/nomerges
	( n=0 bad=0
	  while [ ! -e $T/toggle.stop ]; do
		for v in 0 1 2; do
			echo $v > "$tq" 2>/dev/null || bad=$((bad + 1))
			n=$((n + 1)); nap 0.2
		done
	  done
	  echo "$n $bad" > $T/toggle.res ) &
	tpid=$!
	runfio "fio verify, backend busy every 2nd request, one hardware queue: sequential writes one per submission and in batches, random writes; nomerges 0, 2, 1, toggled 0/1/2 every 0.2 s"
	touch $T/toggle.stop; wait $tpid
	echo 0 > $BUSY
	read -r tn tbad < $T/toggle.res
	verified stage "staged (nomerges 0)" $((4 * CPUS))
	delta stage
	check "staged: bios merged into requests staged on the software queue ($D_C; plug merges $D_P)" test "$D_C" -gt 0
	agree stage "staged (nomerges 0)"
	verified nm2 "nomerges=2" $((3 * CPUS))
	delta nm2
	check "nomerges=2: no merges (plug +$D_P, ctx +$D_C, diskstats +$D_D, mq/*/cpu*/merged +$D_CTX)" \
		test "$D_P" -eq 0 -a "$D_C" -eq 0 -a "$D_D" -eq 0 -a "$D_CTX" -eq 0
	verified nm1 "nomerges=1" $((3 * CPUS))
	agree nm1 "nomerges=1"
	verified toggle "nomerges toggled" $((3 * CPUS))
	check "nomerges toggled $tn times during the verify jobs, every write accepted ($tbad refused)" \
		test "$tn" -ge 6 -a "$tbad" -eq 0
	agree toggle "nomerges toggled"
	check "over the io part: plug merges ($TOT_P) and software-queue merges ($TOT_C)" test "$TOT_P" -gt 0 -a "$TOT_C" -gt 0
	dmesg_clean "io part: no kernel reports"
	rmdevs
fi

# ---- python helper: discards, checksums ----
IFS= read -r -d '' HELPER <<'PY'
import fcntl, hashlib, mmap, os, random, struct, sys

BLKDISCARD = 0x1277
def procs(n, work):  # work(i) in n processes at once; false when one of them failed
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            try:
                work(i)
                os._exit(0)
            except BaseException as e:
                print("#   worker %d: %r" % (i, e))
                os._exit(1)
        pids.append(pid)
    return all(os.waitpid(p, 0)[1] == 0 for p in pids)

def every_other(ranges):  # the 4k blocks discarded: every other one of each START:LEN range
    return {off for a in ranges for s, l in [map(int, a.split(":"))] for off in range(s, s + l, 8192)}

cmd = sys.argv[1]
if cmd == "discard":  # DEV PATTERN NPROC START:LEN (discard) START:LEN... (also expected zero)
    # discards every other 4k block of the first range by BLKDISCARD, from NPROC processes,
    # then reads the device back: those blocks and every other one of the other ranges are
    # zero, the rest is the pattern
    dev, pat, n, ranges = sys.argv[2], open(sys.argv[3], "rb").read(), int(sys.argv[4]), sys.argv[5:]
    blocks = sorted(every_other(ranges[:1]))
    def work(i):
        fd = os.open(dev, os.O_RDWR)
        for off in blocks[i::n]:
            fcntl.ioctl(fd, BLKDISCARD, struct.pack("QQ", off, 4096))
        os.close(fd)
    if not procs(n, work):
        sys.exit(1)
    zero = every_other(ranges)
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, len(pat))  # page-aligned, as O_DIRECT wants
    got = os.preadv(fd, [buf], 0)
    back = bytes(buf[:got])
    bad = 0
    for off in range(0, len(pat), 4096):
        want = bytes(4096) if off in zero else pat[off:off + 4096]
        if back[off:off + 4096] != want:
            if bad < 5:
                print("#   block at %d: %s" % (off, "not zero" if off in zero else "not the pattern"))
            bad += 1
    print("#   %d discarded, %d of %d blocks wrong" % (len(blocks), bad, len(pat) // 4096))
    sys.exit(1 if bad or len(back) != len(pat) else 0)
elif cmd == "dmtable":  # DEV SECTOR N: dm-linear table of N 4k targets on every other 4k block from SECTOR
    dev, sector, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(sys.argv[5], "w") as f:
        for i in range(n):
            f.write("%d 8 linear %s %d\n" % (i * 8, dev, sector + i * 16))
elif cmd == "mkfiles":  # DIR N SUMS: N files of varied sizes in 20 directories, every 25th fsynced
    top, n, sums = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    rnd = random.Random(8)
    with open(sums, "w") as out:
        for i in range(n):
            d = os.path.join(top, "d%02d" % (i % 20))
            os.makedirs(d, exist_ok=True)
            size = rnd.choice((rnd.randint(1, 4096), rnd.randint(1, 24576), rnd.randint(4096, 131072)))
            data = rnd.randbytes(size)
            p = os.path.join(d, "f%05d" % i)
            with open(p, "wb") as f:
                f.write(data)
                if i % 25 == 0:
                    f.flush()
                    os.fsync(f.fileno())
            out.write("%s  %s\n" % (hashlib.sha256(data).hexdigest(), p))
elif cmd in ("verify", "verify-rm"):  # SUMS [KEPT NPROC]: checksums; verify-rm then deletes every
    # other file from NPROC processes at once and lists the others in KEPT
    lines = open(sys.argv[2]).read().splitlines()
    bad = 0
    for line in lines:
        h, p = line.split("  ", 1)
        try:
            ok = hashlib.sha256(open(p, "rb").read()).hexdigest() == h
        except OSError:
            ok = False
        if not ok:
            if bad < 5:
                print("#   %s: wrong or unreadable" % p)
            bad += 1
    print("#   %d files checked, %d wrong" % (len(lines), bad))
    if cmd == "verify-rm" and not bad:
        n = int(sys.argv[4])
        gone = lines[0::2]
        open(sys.argv[3], "w").write("".join(l + "\n" for l in lines[1::2]))
        def work(i):
            for l in gone[i::n]:
                os.unlink(l.split("  ", 1)[1])
        bad = 0 if procs(n, work) else 1
        print("#   %d files deleted by %d processes" % (len(gone), n))
    sys.exit(1 if bad else 0)
PY
helper() { python3 -c "$HELPER" "$@"; }

# ---- discard ----
# From user space, Linux 6.1 sends one discard range per BLKDISCARD ioctl (or fallocate), under
# the disk's invalidate lock, in a plug of its own: neither fio's trims (synchronous ioctls) nor
# concurrent processes put two discards of one disk in flight together. Device-mapper does: one
# discard of a dm-linear device whose targets are scattered becomes one discard bio per target
# on cxmq0, all in the discarding task's plug, where they merge into multi-range requests.
if part discard; then
	if mkdev disc; then
		d=${DISK[disc]}
		dd if=/dev/urandom of=$T/pattern bs=1M count=8 status=none
		dd if=$T/pattern of=/dev/$d bs=1M oflag=direct status=none
		stats $d
		check "discard: 8 MiB pattern written ($PAGES pages)" test "$PAGES" -eq 2048
		zero=
		grep -qw device-mapper /proc/misc || modprobe -d "$CXMQ_MODROOT" -S "$CXMQ_KABI" dm-mod 2>/dev/null || true
		if ! grep -qw device-mapper /proc/misc; then
			pass "discard: one discard scattered by dm-linear into 64 ranges merges # SKIP no device-mapper in this kernel"
		elif ! command -v dmsetup >/dev/null; then
			pass "discard: one discard scattered by dm-linear into 64 ranges merges # SKIP no dmsetup (package dmsetup)"
		else
			helper dmtable /dev/$d 8192 64 $T/dmtable # 4k targets over cxmq [4 MiB, 4.5 MiB)
			if check "discard: dm-linear device of 64 scattered 4k targets" \
				env DM_DISABLE_UDEV=1 dmsetup --noudevsync create cxmq-scatter $T/dmtable; then
				snap disc; dstat $d; c0=${DS[15]} m0=${DS[16]}
				check "discard: blkdiscard of the whole dm device" blkdiscard /dev/mapper/cxmq-scatter
				delta disc
				check "discard: 64 discard bios on $d merged into multi-range requests (diskstats discards +$((DS[15] - c0)), discards merged +$((DS[16] - m0)), plug merges +$D_P)" \
					test $((DS[15] - c0)) -eq 64 -a $((DS[16] - m0)) -gt 0 -a $((DS[16] - m0)) -eq "$D_P"
				check "discard: dmsetup remove" env DM_DISABLE_UDEV=1 dmsetup --noudevsync remove cxmq-scatter
				zero=4194304:524288
			fi
		fi
		check "discard: 256 non-contiguous 4k discards (BLKDISCARD, 4 processes); discarded blocks read back zero, the others the pattern" \
			helper discard /dev/$d $T/pattern 4 1048576:2097152 $zero
		freed=256
		[ -z "$zero" ] || freed=320
		stats $d
		check "discard: their $freed pages were freed (2048 -> $PAGES)" test "$PAGES" -eq $((2048 - freed))
		rmdevs
	else
		fail "configfs device disc"
	fi
fi

# ---- ext4 ----
if part ext4; then
	grep -qw ext4 /proc/filesystems || modprobe -d "$CXMQ_MODROOT" -S "$CXMQ_KABI" ext4 2>$T/modprobe.err || true
	if ! grep -qw ext4 /proc/filesystems; then
		pass "ext4: small files, fsck, checksums # SKIP no ext4 in this kernel: $(head -c 200 $T/modprobe.err)"
	elif mkdev fs; then
		d=/dev/${DISK[fs]} M=$T/mnt
		mkdir -p $M
		fsck_ok() { fsck.ext4 -fn $d > $T/fsck.out 2>&1 || { sed 's/^/#   /' $T/fsck.out | tail -n 20; return 1; }; }
		check "ext4: mkfs.ext4 (256 MiB of ${DISK[fs]})" mkfs.ext4 -q -F $d 256M
		if check "ext4: mount" mount -t ext4 $d $M; then
			check "ext4: $FILES small files of varied sizes, every 25th fsynced" helper mkfiles $M "$FILES" $T/sums
			check "ext4: umount after writing" umount $M
		fi
		echo "#   ext4: ${SECONDS} s"
		check "ext4: fsck.ext4 -fn is clean" fsck_ok
		echo "#   ext4: ${SECONDS} s"
		# data=writeback: a deletion discards the file's blocks at once, in the deleting process
		# (ordered mode leaves them to a worker, which gives up when the unmount comes first)
		if check "ext4: mount -o discard,data=writeback" mount -t ext4 -o discard,data=writeback $d $M; then
			stats ${DISK[fs]}; pg0=$PAGES; dstat ${DISK[fs]}; dc0=${DS[15]}
			check "ext4: every file has its checksum; every other one deleted by 8 processes at once" \
				helper verify-rm $T/sums $T/kept 8
			check "ext4: umount after the deletions" umount $M
			echo "#   ext4: ${SECONDS} s"
			stats ${DISK[fs]}; dstat ${DISK[fs]}
			check "ext4: the deleted files' blocks were discarded (+$((DS[15] - dc0)) discards, pages $pg0 -> $PAGES)" \
				test "$PAGES" -lt "$pg0" -a "${DS[15]}" -gt "$dc0"
		fi
		check "ext4: fsck.ext4 -fn is clean after the deletions" fsck_ok
		echo "#   ext4: ${SECONDS} s"
		if check "ext4: mount after the deletions" mount -t ext4 $d $M; then
			check "ext4: the files kept have their checksums" helper verify $T/kept
			check "ext4: umount at the end" umount $M
		fi
		dstat ${DISK[fs]}
		echo "#   ext4: diskstats merged r/w/d ${DS[5]} ${DS[9]} ${DS[16]}"
		rmdevs
	else
		fail "configfs device fs"
	fi
fi

part end >/dev/null
check "rmmod cxmq" rmmod cxmq
echo "# merge: $SECONDS s in all"
dmesg_clean "merge: no kernel reports"
kmemleak_clean "merge: no kmemleak reports"
summary
