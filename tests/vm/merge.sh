# Guest job: issue 8's merging, plugging and limits (tests/vm/mq.sh runs it at its end, in the
# same boot). On a memory-backed device, fio --verify=crc32c with mixed sizes (4k-64k), libaio
# and io_uring, submitted 16 at a time (the kernel plugs), in every irqmode; the merge counters
# (debugfs stats `merge:` line, mq/*/cpu*/merged, /proc/diskstats merge columns) move and agree;
# queue/nomerges 2 (none), 1, and toggled under IO; max_sectors and queue/max_sectors_kb; ext4
# with many small files, fsck clean; non-contiguous 4k discards read back zero, concurrent
# discards (ext4 -o discard) merged; no kernel reports, no leaks.
#   CXMQ_MERGE_SIZE   region per fio job (numjobs = vCPUs; default 16m)
#   CXMQ_MERGE_FILES  ext4 small files (default 2000)
#   CXMQ_MERGE_ONLY   run only these parts (e.g. "irq ctx"; parts: irq ctx nomerges limits discard ext4)
. "$CXMQ_ROOT/tests/vm/lib.sh"
CPUS=$CXMQ_CPUS
SIZE=${CXMQ_MERGE_SIZE:-16m}
FILES=${CXMQ_MERGE_FILES:-2000}
ONLY=${CXMQ_MERGE_ONLY:-}
DEV=/dev/cxmq0
Q=/sys/block/cxmq0/queue
STATS=/sys/kernel/debug/cxmq/cxmq0/stats
# A device slow enough that requests stage on the software queues: one hardware queue, 2 tags,
# 1 ms per request; sequential bios then find their neighbour staged (software-queue merges).
STAGING="submit_queues=1 hw_queue_depth=2 irqmode=2 completion_nsec=1000000"
T=/tmp/merge
mkdir -p $T
FIO_JSON=/tmp/fio.$$.json # where lib.sh's fio_ok leaves fio's JSON
dmesg_mark
T0=$(date +%s) TP=$T0
part() { # NAME: run part NAME? (and say how long the previous one took)
	local now; now=$(date +%s)
	echo "# merge: $((now - TP)) s for the previous part, $((now - T0)) s so far"
	TP=$now
	[ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]
}

# ---- counters ----
mval() { # KEY: KEY=N of the stats file's merge: line; "none" when there is no such line
	local v
	v=$(sed -n "s/^[[:space:]]*merge:.*[[:space:]]$1=\([0-9][0-9]*\).*/\1/p" "$STATS" 2>/dev/null | head -n1)
	echo "${v:-none}"
}
num() { [[ "$1" =~ ^[0-9]+$ ]] && echo "$1" || echo 0; }
dstat() { # FIELD: that field of cxmq0's /proc/diskstats line ($5 reads merged, $8 writes, ...)
	awk -v f="$1" '$3 == "cxmq0" { print $f }' /proc/diskstats
}
dmerges() { awk '$3 == "cxmq0" { print $5 + $9 + $16 }' /proc/diskstats; }
ctx_merged_sum() { cat /sys/block/cxmq0/mq/*/cpu*/merged 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
stat_value() { grep -o "\<$1=[0-9]*" "$STATS" | cut -d= -f2 | awk '{s += $1} END {print s + 0}'; }

TOT_P=0 TOT_C=0 SEEN_LINE=0
# load NAME PARAMS...: insmod PARAMS, remember the counters' starting points
load() {
	LOAD=$1; shift
	LOAD_IOS=0 LOAD_R=0 LOAD_W=0 LOAD_FIO_R=0 LOAD_FIO_W=0
	if ! insmod "$CXMQ_KO" "$@"; then fail "$LOAD: insmod $*"; return 1; fi
	pass "$LOAD: insmod $*"
	if [ $SEEN_LINE = 0 ]; then
		SEEN_LINE=1
		check "stats has a merge: line (bios requests plug_merges ctx_merges unplugs unplug_requests)" \
			grep -Eq '^[[:space:]]*merge: bios=[0-9]+ requests=[0-9]+ plug_merges=[0-9]+ ctx_merges=[0-9]+ unplugs=[0-9]+ unplug_requests=[0-9]+' "$STATS"
	fi
	L_P=$(num "$(mval plug_merges)") L_C=$(num "$(mval ctx_merges)") L_D=$(dmerges)
	L_R=$(dstat 4) L_W=$(dstat 8)
}
# unload: the counters of this load agree with each other; rmmod
unload() {
	local p c m d line b r
	line=$(grep -E '^[[:space:]]*merge:' "$STATS")
	echo "#   $LOAD: ${line:-no merge: line}; diskstats merged r/w/d: $(dstat 5) $(dstat 9) $(dstat 16)"
	p=$(mval plug_merges) c=$(mval ctx_merges)
	b=$(mval bios) r=$(mval requests)
	[ "$b" = none ] || echo "#   bios - requests = $((b - r)), plug_merges + ctx_merges = $(( $(num "$p") + $(num "$c") ))"
	m=$(ctx_merged_sum)
	d=$(( $(dmerges) - L_D ))
	[ "$c" = none ] || c=$(( c - L_C ))
	[ "$p" = none ] || p=$(( p - L_P ))
	check "$LOAD: the mq/*/cpu*/merged files sum to ctx_merges ($m, $c)" test "$m" = "$c"
	if [ "$p" = none ] || [ "$c" = none ]; then
		fail "$LOAD: /proc/diskstats merges = plug_merges + ctx_merges" "no merge: counters (diskstats merges: $d)"
	else
		check "$LOAD: /proc/diskstats merges ($d) = plug_merges + ctx_merges ($p + $c)" test "$d" -eq $((p + c))
		TOT_P=$((TOT_P + p)) TOT_C=$((TOT_C + c))
	fi
	if [ "$LOAD_IOS" = 1 ]; then # fio jobs whose every IO is one bio: diskstats counts bios
		local dr=$(( $(dstat 4) - L_R )) dw=$(( $(dstat 8) - L_W ))
		check "$LOAD: /proc/diskstats counts every bio (reads $dr = fio's $LOAD_FIO_R, writes $dw = fio's $LOAD_FIO_W)" \
			test "$dr" -eq "$LOAD_FIO_R" -a "$dw" -eq "$LOAD_FIO_W"
	fi
	check "$LOAD: rmmod" rmmod cxmq
}
# mfio NAME FIO-ARGS...: fio_ok, and the merges it made: J_P J_C J_U J_N (deltas; 0 without counters)
mfio() {
	local name=$1 p0 c0 u0 n0 ios; shift
	p0=$(num "$(mval plug_merges)") c0=$(num "$(mval ctx_merges)")
	u0=$(num "$(mval unplugs)") n0=$(num "$(mval unplug_requests)")
	rm -f "$FIO_JSON"
	fio_ok "$name" "$@"
	J_P=$(( $(num "$(mval plug_merges)") - p0 )) J_C=$(( $(num "$(mval ctx_merges)") - c0 ))
	J_U=$(( $(num "$(mval unplugs)") - u0 )) J_N=$(( $(num "$(mval unplug_requests)") - n0 ))
	echo "#   merges: plug $J_P, ctx $J_C; unplugs $J_U sending $J_N requests"
	if ios=$(python3 - "$FIO_JSON" 2>/dev/null <<'PY'
import json, sys
text = open(sys.argv[1]).read()
d = json.loads(text[text.index("{"):])
print(sum(j["read"]["total_ios"] for j in d["jobs"]), sum(j["write"]["total_ios"] for j in d["jobs"]))
PY
	); then
		LOAD_FIO_R=$((LOAD_FIO_R + ${ios% *})) LOAD_FIO_W=$((LOAD_FIO_W + ${ios#* }))
	fi
}
# job NAME RW ENGINE [FIO-ARGS...]: verify job, CPUS jobs on disjoint regions of SIZE, mixed
# sizes, submitted and reaped 16 at a time (the kernel plugs each batch)
job() {
	local name=$1 rw=$2 eng=$3; shift 3
	mfio "$name" --name="$name" --filename=$DEV --rw="$rw" --bsrange=4k-64k --ioengine="$eng" \
		--direct=1 --iodepth=32 --iodepth_batch_submit=16 --iodepth_batch_complete_min=16 \
		--numjobs="$CPUS" --size="$SIZE" --offset_increment="$SIZE" \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=0 "$@"
}
# single NAME RW ENGINE: the same, one IO per submission (no plug): bios that find the hardware
# queue full stage, the next one can merge with them
single() {
	local name=$1 rw=$2 eng=$3; shift 3
	mfio "$name" --name="$name" --filename=$DEV --rw="$rw" --bsrange=4k-64k --ioengine="$eng" \
		--direct=1 --iodepth=32 --numjobs="$CPUS" --size="$SIZE" --offset_increment="$SIZE" \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=0 "$@"
}

# ---- 1: every irqmode, sequential and random, libaio and io_uring ----
if part irq; then
	for irq in 0 1 2; do
		load "irqmode=$irq" memory_backed=1 gb=1 irqmode=$irq submit_queues="$CPUS" completion_nsec=20000 || continue
		LOAD_IOS=1
		sp=0 su=0 sn=0
		for eng in libaio io_uring; do
			job "irqmode=$irq $eng: sequential writes 4k-64k, batches of 16, verify" write $eng
			sp=$((sp + J_P)) su=$((su + J_U)) sn=$((sn + J_N))
			job "irqmode=$irq $eng: random writes 4k-64k, batches of 16, verify" randwrite $eng
		done
		check "irqmode=$irq: sequential batches were plug-merged ($sp bios) and sent by unplugs ($su batches, $sn requests, <= 32 each)" \
			test "$sp" -gt 0 -a "$su" -gt 0 -a "$sn" -ge "$su" -a "$sn" -le $((32 * su))
		unload
	done
fi

# ---- 2: software-queue merges: requests stage behind a full hardware queue ----
if part ctx; then
	if load "staging" memory_backed=1 gb=1 $STAGING; then
		LOAD_IOS=1
		cp=0 cc=0
		job "staging libaio: sequential writes, batches of 16, verify" write libaio
		cp=$((cp + J_P)) cc=$((cc + J_C))
		single "staging libaio: sequential writes, one per submission, verify" write libaio
		cp=$((cp + J_P)) cc=$((cc + J_C))
		job "staging io_uring: sequential writes, batches of 16, verify" write io_uring
		cp=$((cp + J_P)) cc=$((cc + J_C))
		check "staging: bios merged into requests staged on software queues ($cc; plug merges $cp)" test "$cc" -gt 0
		unload
	fi
fi

# ---- 3: queue/nomerges ----
if part nomerges; then
	if load "nomerges=2" memory_backed=1 gb=1 $STAGING; then
		LOAD_IOS=1
		echo 2 > $Q/nomerges
		check "nomerges=2: queue/nomerges reads 2" test "$(cat $Q/nomerges)" = 2
		job "nomerges=2 libaio: sequential writes, batches of 16, verify" write libaio
		np=$J_P nc=$J_C
		single "nomerges=2 libaio: sequential writes, one per submission, verify" write libaio
		np=$((np + J_P)) nc=$((nc + J_C))
		job "nomerges=2 io_uring: random writes, batches of 16, verify" randwrite io_uring
		np=$((np + J_P)) nc=$((nc + J_C))
		check "nomerges=2: no merges (plug $np, ctx $nc, mq/*/cpu*/merged $(ctx_merged_sum), diskstats $(( $(dmerges) - L_D )))" \
			test "$np" -eq 0 -a "$nc" -eq 0 -a "$(ctx_merged_sum)" -eq 0 -a "$(dmerges)" -eq "$L_D"
		unload
	fi
	if load "nomerges=1" memory_backed=1 gb=1 $STAGING; then
		LOAD_IOS=1
		echo 1 > $Q/nomerges
		check "nomerges=1: queue/nomerges reads 1" test "$(cat $Q/nomerges)" = 1
		job "nomerges=1 libaio: sequential writes, batches of 16, verify" write libaio
		single "nomerges=1 libaio: sequential writes, one per submission, verify" write libaio
		job "nomerges=1 io_uring: random writes, batches of 16, verify" randwrite io_uring
		unload
	fi
	if load "nomerges toggled" memory_backed=1 gb=1 $STAGING; then
		LOAD_IOS=1
		rm -f $T/toggle.stop $T/toggle.res
		( n=0 bad=0
		  while [ ! -e $T/toggle.stop ]; do
			for v in 0 1 2; do
				echo $v > $Q/nomerges 2>/dev/null || bad=$((bad + 1))
				n=$((n + 1)); sleep 0.2
			done
		  done
		  echo "$n $bad" > $T/toggle.res ) &
		tpid=$!
		job "nomerges toggled 0/1/2 every 0.2 s: libaio sequential writes, batches of 16, verify" write libaio --loops=2
		single "nomerges toggled: libaio sequential writes, one per submission, verify" write libaio
		job "nomerges toggled: io_uring random writes, batches of 16, verify" randwrite io_uring
		touch $T/toggle.stop; wait $tpid
		read -r tn tbad < $T/toggle.res
		check "nomerges toggled $tn times during the verify jobs, every write accepted ($tbad refused)" \
			test "$tn" -ge 6 -a "$tbad" -eq 0
		dmesg_clean "nomerges toggled under IO: no kernel reports"
		echo 0 > $Q/nomerges
		unload
	fi
fi

# ---- 4: max_sectors and queue/max_sectors_kb ----
if part limits; then
	if load "limits default" memory_backed=1 gb=1 irqmode=1 submit_queues="$CPUS"; then
		echo "#   max_sectors_kb $(cat $Q/max_sectors_kb), max_hw_sectors_kb $(cat $Q/max_hw_sectors_kb), max_segments $(cat $Q/max_segments), max_discard_segments $(cat $Q/max_discard_segments), discard_max_bytes $(cat $Q/discard_max_bytes)"
		check "default queue/max_sectors_kb is 1280 (not 127): $(cat $Q/max_sectors_kb)" test "$(cat $Q/max_sectors_kb)" = 1280
		check "memory-backed: queue/max_discard_segments > 1 ($(cat $Q/max_discard_segments))" \
			test "$(cat $Q/max_discard_segments)" -gt 1
		job "2 MiB sequential writes (each split at max_sectors), verify" write libaio --bsrange=2m-2m --iodepth=8 \
			--iodepth_batch_submit=4 --iodepth_batch_complete_min=4
		job "random writes 4k-2m, io_uring, verify" randwrite io_uring --bsrange=4k-2m --iodepth=8 \
			--iodepth_batch_submit=4 --iodepth_batch_complete_min=4
		unload
	fi
	if load "max_sectors=256" memory_backed=1 gb=1 irqmode=1 submit_queues="$CPUS" max_sectors=256; then
		check "max_sectors=256: queue/max_hw_sectors_kb is 128 ($(cat $Q/max_hw_sectors_kb))" test "$(cat $Q/max_hw_sectors_kb)" = 128
		check "max_sectors=256: queue/max_sectors_kb is 128 ($(cat $Q/max_sectors_kb))" test "$(cat $Q/max_sectors_kb)" = 128
		check "max_sectors_kb above max_hw_sectors_kb is refused" sh -c "! echo 256 > $Q/max_sectors_kb 2>/dev/null"
		echo 32 > $Q/max_sectors_kb
		check "queue/max_sectors_kb takes 32" test "$(cat $Q/max_sectors_kb)" = 32
		job "max_sectors_kb=32: 1 MiB sequential writes, batches of 16, verify" write libaio --bsrange=1m-1m
		job "max_sectors_kb=32: random writes 4k-1m, io_uring, verify" randwrite io_uring --bsrange=4k-1m
		unload
	fi
fi

# ---- 5: discard: many non-contiguous 4k ranges ----
cat > $T/helper.py <<'PY'
import fcntl, hashlib, os, random, struct, sys

BLKDISCARD = 0x1277
def procs(n, work):  # run work(i) in n processes; fails when one of them does
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

cmd = sys.argv[1]
if cmd == "discard":  # DEV START LEN NPROC: discard every other 4k block of [START, START+LEN)
    dev, start, length, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    blocks = list(range(start, start + length, 8192))
    def work(i):
        fd = os.open(dev, os.O_RDWR)
        for off in blocks[i::n]:
            fcntl.ioctl(fd, BLKDISCARD, struct.pack("QQ", off, 4096))
        os.close(fd)
    sys.exit(0 if procs(n, work) else 1)
elif cmd == "cmpdisc":  # PATTERN BACK START LEN: discarded blocks zero, all else the pattern
    pat, back = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
    start, length = int(sys.argv[4]), int(sys.argv[5])
    bad = 0
    for off in range(0, len(pat), 4096):
        want = pat[off:off + 4096]
        if start <= off < start + length and (off - start) % 8192 == 0:
            want = bytes(4096)
        if back[off:off + 4096] != want:
            if bad < 5:
                print("#   block at %d: %s" % (off, "not zero" if want == bytes(4096) else "differs from the pattern"))
            bad += 1
    print("#   %d of %d blocks wrong" % (bad, len(pat) // 4096))
    sys.exit(1 if bad or len(back) != len(pat) else 0)
elif cmd == "mkfiles":  # DIR N SUMS: N files of varied sizes in 20 directories, some fsynced
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
                    f.flush(); os.fsync(f.fileno())
            out.write("%s  %s\n" % (hashlib.sha256(data).hexdigest(), p))
elif cmd == "verify":  # SUMS: every file listed has its checksum
    bad = 0
    for line in open(sys.argv[2]):
        h, p = line.rstrip("\n").split("  ", 1)
        try:
            ok = hashlib.sha256(open(p, "rb").read()).hexdigest() == h
        except OSError as e:
            ok = False
        if not ok:
            if bad < 5:
                print("#   %s: wrong or unreadable" % p)
            bad += 1
    print("#   %d files checked, %d wrong" % (sum(1 for _ in open(sys.argv[2])), bad))
    sys.exit(1 if bad else 0)
elif cmd == "rm":  # SUMS KEPT NPROC: delete every other file from NPROC processes at once
    lines = open(sys.argv[2]).read().splitlines()
    n = int(sys.argv[4])
    gone = lines[0::2]
    open(sys.argv[3], "w").write("".join(l + "\n" for l in lines[1::2]))
    def work(i):
        for l in gone[i::n]:
            os.unlink(l.split("  ", 1)[1])
    sys.exit(0 if procs(n, work) else 1)
PY

DISC_RAN=0 DISC_M=0 # discards merged, summed over the discard and ext4 loads
if part discard; then
	if load "discard" memory_backed=1 gb=1 $STAGING; then
		DISC_RAN=1 d0=$(dstat 16)
		dd if=/dev/urandom of=$T/pattern bs=1M count=8 status=none
		dd if=$T/pattern of=$DEV bs=1M oflag=direct status=none
		check "discard: 8 MiB pattern written (2048 pages: $(stat_value pages))" test "$(stat_value pages)" -eq 2048
		check "discard: 512 non-contiguous 4k discards from 4 processes" \
			python3 $T/helper.py discard $DEV 1048576 4194304 4
		check "discard: 512 pages freed (2048 -> $(stat_value pages))" test "$(stat_value pages)" -eq 1536
		dd if=$DEV of=$T/back bs=1M count=8 iflag=direct status=none
		check "discard: discarded blocks read back zero, the others the pattern" \
			python3 $T/helper.py cmpdisc $T/pattern $T/back 1048576 4194304
		DISC_M=$((DISC_M + $(dstat 16) - d0))
		echo "#   discards merged by the raw discards: $(( $(dstat 16) - d0 )) (BLKDISCARD ioctls are synchronous and serialized)"
		unload
	fi
fi

# ---- 6: ext4: many small files, fsck, checksums; concurrent deletions with -o discard ----
if part ext4; then
	have_ext4() { grep -qw ext4 /proc/filesystems; }
	have_ext4 || modprobe -d "$CXMQ_MODROOT" -S "$CXMQ_KABI" ext4 2>$T/modprobe.err || true
	if ! have_ext4; then
		pass "ext4: many small files, fsck, discard # SKIP no ext4 in this kernel ($(head -c 200 $T/modprobe.err))"
	elif load "ext4" memory_backed=1 gb=1 $STAGING; then
		M=$T/mnt
		mkdir -p $M
		check "ext4: mkfs.ext4 (256 MiB)" mkfs.ext4 -q -F $DEV 256M
		if check "ext4: mount" mount -t ext4 $DEV $M; then
			check "ext4: $FILES small files of varied sizes, some fsynced" \
				python3 $T/helper.py mkfiles $M "$FILES" $T/sums
			check "ext4: umount after writing" umount $M
		fi
		fsck_ok() { fsck.ext4 -fn $DEV > $T/fsck.out 2>&1 || { sed 's/^/#   /' $T/fsck.out | tail -n 20; return 1; }; }
		check "ext4: fsck.ext4 -fn is clean" fsck_ok
		if check "ext4: mount again" mount -t ext4 $DEV $M; then
			check "ext4: every file has its checksum" python3 $T/helper.py verify $T/sums
			check "ext4: umount after reading" umount $M
		fi
		# data=writeback: each deletion discards its blocks at once, in the deleting process, so
		# the discards of 8 processes are in flight together (ordered mode defers them to one worker)
		if check "ext4: mount -o discard,data=writeback" mount -t ext4 -o discard,data=writeback $DEV $M; then
			pg0=$(stat_value pages) dd0=$(dstat 16) dc0=$(dstat 15)
			check "ext4: every other file deleted by 8 processes at once" \
				python3 $T/helper.py rm $T/sums $T/kept 8
			sync
			pg1=$(stat_value pages) dd1=$(dstat 16) dc1=$(dstat 15)
			DISC_M=$((DISC_M + dd1 - dd0))
			echo "#   discards merged by the deletions: $((dd1 - dd0))"
			check "ext4: the deleted files' blocks were discarded ($((dc1 - dc0)) discards, pages $pg0 -> $pg1)" \
				test "$pg1" -lt "$pg0" -a "$dc1" -gt "$dc0"
			check "ext4: umount after the deletions" umount $M
		fi
		check "ext4: fsck.ext4 -fn is clean after the deletions" fsck_ok
		if check "ext4: mount after the deletions" mount -t ext4 $DEV $M; then
			check "ext4: the files kept have their checksums" python3 $T/helper.py verify $T/kept
			check "ext4: umount at the end" umount $M
		fi
		unload
	fi
fi
if [ $DISC_RAN = 1 ]; then
	check "discards were merged: /proc/diskstats discards merged +$DISC_M (raw discards and ext4 deletions)" \
		test "$DISC_M" -gt 0
fi

if [ -z "$ONLY" ]; then
	check "over the whole run: plug merges ($TOT_P) and software-queue merges ($TOT_C)" test "$TOT_P" -gt 0 -a "$TOT_C" -gt 0
fi
part end >/dev/null
echo "# merge: $(( $(date +%s) - T0 )) s in all"
dmesg_clean "merge: no kernel reports"
kmemleak_clean "merge: no kmemleak reports"
summary
