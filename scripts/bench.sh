#!/bin/bash
# The benchmark: one VM, alternating rounds of the same fio jobs against cxmq and the drivers it
# is measured against. Targets:
#   A cxmq        insmod cxmq.ko irqmode=0 submit_queues=<vCPUs> hw_queue_depth=64 gb=16
#   B nullb-mq    null_blk queue_mode=2 irqmode=0 submit_queues=<vCPUs> hw_queue_depth=64 gb=16
#   C nullb-bio   null_blk queue_mode=0 irqmode=0 gb=16 (bio-based, no queueing; lacks NOWAIT)
#   D cxmq-mem    insmod cxmq.ko irqmode=0 memory_backed=1 submit_queues=<vCPUs> gb=1
#   E brd         brd rd_nr=1 rd_size=1048576 (1 GiB)
#   F floor       insmod cxmq_floor.ko gb=16 (bench/floor: a bio-based disk that ends every bio
#                 in its submit_bio, with cxmq's NOWAIT, IO accounting and split: the floor)
#   G cxmq-dl     A with scheduler=mq-deadline (cxmq's own)
#   H nullb-dl    B with queue/scheduler mq-deadline (the kernel's)
#   I cxmq-kyber  A with scheduler=kyber
#   J nullb-kyber B with queue/scheduler kyber
#   K cxmq-poll   A with poll_queues=1
#   L nullb-poll  B with poll_queues=1
#   M cxmq-shared  A with nr_devices=2 shared_tags=1 (two devices, one tag set)
#   N nullb-shared B with nr_devices=2 shared_tags=1
#   O cxmq-virtio  insmod cxmq.ko nr_devices=0, a virtio-blk disk bound to it (QEMU null-co, a
#                  queue per vCPU, attached with --disk when a virtio target is selected)
#   P virtio-blk   the kernel's virtio_blk on an identical disk of its own (scheduler none)
#   Q cxmq-notrace A built without its tracepoints (make CXMQ_TRACE=0): what they cost while off
# Jobs (fio, direct=1, iodepth 32, one job per vCPU, time based), each on the targets listed;
# each is a job file in fio/ (poll-qd32: --iodepth=32 fio/poll.fio), rerun by hand with
# fio fio/<job>.fio --filename=/dev/...:
#   randread         4k randread, io_uring                                   all but K, L
#   randread-libaio  4k randread, libaio                                     cxmq, floor, G-J, O, P
#   seqwrite         4k sequential write, libaio, batch submit/complete 16,   cxmq, nullb-mq
#                    each job on a 1 GiB region (null_blk without a scheduler)
#   poll-qd1         4k randread, io_uring --hipri (polled), iodepth 1        K, L
#   poll-qd32        the same at iodepth 32                                   K, L
#   shared           4k randread, io_uring, each job over both devices        M, N
#   randread-qd1     4k randread, io_uring, iodepth 1, one job (latency)      O, P
#   scaling-qd1      4k randread, libaio, iodepth 1 (fio/randread-scaling.fio  cxmq, nullb-mq,
#                    with --iodepth=1 before the file)                        nullb-bio
#   scaling-qd8, scaling-qd32, scaling-qd128  the same at iodepth 8, 32, 128  the same
# round 1: A B C D E F, round 2: A B C D E F, ...; each target is loaded before its turn, runs
# its jobs one after the other and is unloaded; D and E are filled once per load before their
# timed job. A target whose module does not load (or lacks a parameter) is "unavailable" and the
# rest still run. Prints per job and target IOPS (mean, min-max), p50/p99 completion latency,
# for seqwrite the backend requests per bio (null_blk: /proc/diskstats, cxmq: the "merge:" line
# of its debugfs stats), and the ratios cxmq/null_blk-mq, cxmq/null_blk-bio, cxmq-mem/brd,
# cxmq/floor (io_uring and libaio), seqwrite cxmq/null_blk-mq, and for the schedulers
# cxmq+S/null_blk-mq+S (mq-deadline, kyber; io_uring and libaio) and what S costs each against
# its own none (cxmq+S/cxmq, null_blk+S/null_blk-mq), polled cxmq/null_blk-mq at QD1 and QD32,
# two devices sharing tags cxmq/null_blk (total IOPS), virtio cxmq/virtio_blk (io_uring, libaio,
# QD1);
# keeps every round's fio JSON
# and the table in the output directory, with charts of each job's IOPS and latency per target
# (scripts/bench-plot: iops-<job>.png, latency-<job>.png; skipped when matplotlib is missing).
# Measures only: exits non-zero only if the VM or the whole run failed.
#
# --scaling: one boot per vCPU count (--cpus "LIST", default "1 2 4"), each of the targets
# "cxmq nullb-mq nullb-bio" and jobs "scaling-qd1 scaling-qd8 scaling-qd32 scaling-qd128" unless
# --targets/--jobs say otherwise, into OUTDIR/cpus<N>/ (a plain run's output directory each),
# then OUTDIR/scaling.txt (IOPS per target, vCPUs and iodepth, cxmq/null_blk-mq and
# cxmq/null_blk-bio) and the line charts scaling-<N>cpu.png, scaling-qd<D>.png
# (scripts/bench-plot --scaling OUTDIR). Exits non-zero if a VM failed or no boot had a result.
#
# usage: bench.sh [--kernel debian|test|DIR] [--cpus N] [--rounds N] [--runtime S]
#                 [--targets "cxmq nullb-mq nullb-bio cxmq-mem brd floor cxmq-dl nullb-dl
#                             cxmq-kyber nullb-kyber cxmq-poll nullb-poll cxmq-shared
#                             nullb-shared cxmq-virtio virtio-blk cxmq-notrace"]
#                 [--jobs "randread randread-libaio seqwrite poll-qd1 poll-qd32 shared"] [--mem MB]
#                 [--out DIR]
#        bench.sh --scaling [--cpus "1 2 4"] [--rounds N] [--runtime S] [--kernel ...]
#                 [--targets ...] [--jobs ...] [--mem MB] [--out DIR]
# Environment: CXMQ_CPUS (vCPUs, default 2; not used by --scaling), CXMQ_CACHE.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CXMQ_ROOT"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
kernel=debian cpus=${CXMQ_CPUS:-2} rounds=3 runtime=10 mem=3072 out=
scaling= cpus_given= targets_given= jobs_given=
targets="cxmq nullb-mq nullb-bio cxmq-mem brd floor cxmq-dl nullb-dl cxmq-kyber nullb-kyber cxmq-poll nullb-poll cxmq-shared nullb-shared cxmq-virtio virtio-blk cxmq-notrace"
jobs="randread randread-libaio seqwrite poll-qd1 poll-qd32 shared"
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--cpus) cpus=$2; cpus_given=1; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--runtime) runtime=$2; shift 2 ;;
	--targets) targets=$2; targets_given=1; shift 2 ;;
	--jobs) jobs=$2; jobs_given=1; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--scaling) scaling=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument $1" ;;
	esac
done
if [ -n "$scaling" ]; then # its own defaults
	[ -n "$cpus_given" ] || cpus="1 2 4"
	[ -n "$targets_given" ] || targets="cxmq nullb-mq nullb-bio"
	[ -n "$jobs_given" ] || jobs="scaling-qd1 scaling-qd8 scaling-qd32 scaling-qd128"
	[ -n "${cpus// /}" ] || die "--scaling wants at least one vCPU count in --cpus"
	for n in $cpus; do
		[[ $n =~ ^[1-9][0-9]*$ ]] || die "--cpus wants positive integers, not '$n'"
	done
elif ! [[ $cpus =~ ^[1-9][0-9]*$ ]]; then
	die "--cpus wants a positive integer (a list of them only with --scaling), not '$cpus'"
fi
for v in rounds runtime mem; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$v wants a positive integer, not '${!v}'"
done
for t in $targets; do
	case $t in cxmq|nullb-mq|nullb-bio|cxmq-mem|brd|floor|cxmq-dl|nullb-dl|cxmq-kyber|nullb-kyber|cxmq-poll|nullb-poll|cxmq-shared|nullb-shared|cxmq-virtio|virtio-blk|cxmq-notrace) ;;
	*) die "unknown target $t" ;; esac
done
# job_on JOB TARGET: whether JOB is measured on TARGET (as in tests/vm/bench.sh)
job_on() {
	case $1 in
	randread) [[ " cxmq-poll nullb-poll cxmq-shared nullb-shared " != *" $2 "* ]] ;;
	randread-libaio) [[ " cxmq floor cxmq-dl nullb-dl cxmq-kyber nullb-kyber cxmq-virtio virtio-blk cxmq-notrace " == *" $2 "* ]] ;;
	seqwrite) [[ " cxmq nullb-mq " == *" $2 "* ]] ;;
	poll-qd1|poll-qd32) [[ " cxmq-poll nullb-poll " == *" $2 "* ]] ;;
	shared) [[ " cxmq-shared nullb-shared " == *" $2 "* ]] ;;
	randread-qd1) [[ " cxmq-virtio virtio-blk " == *" $2 "* ]] ;;
	scaling-qd1|scaling-qd8|scaling-qd32|scaling-qd128) [[ " cxmq nullb-mq nullb-bio " == *" $2 "* ]] ;;
	*) return 1 ;;
	esac
}
for j in $jobs; do job_on "$j" cxmq || job_on "$j" cxmq-poll || job_on "$j" cxmq-shared ||
	job_on "$j" cxmq-virtio || die "unknown job $j"; done
[ -n "$targets" ] && [ -n "$jobs" ] || die "no target or no job selected"
# how many timed fio runs a round has; the targets that run at least one
npairs=0 loaded=
for t in $targets; do
	n=0
	for j in $jobs; do job_on "$j" "$t" && n=$((n + 1)); done
	npairs=$((npairs + n)); [ $n = 0 ] || loaded+=" $t"
done
[ $npairs -gt 0 ] || die "none of the jobs ($jobs) runs on any of the targets ($targets)"

scripts/setup.sh
case "$kernel" in
debian) kdir=$(scripts/fetch-debian-kernel.sh) ;;
test) kdir=$(scripts/build-test-kernel.sh)
	log "the test kernel has debug options (KASAN, lockdep, ...): its numbers are not comparable;"
	log "its DEBUG_KOBJECT_RELEASE makes rmmod null_blk oops (disk_release after the module is freed)" ;;
*) kdir=$(realpath "$kernel") ;;
esac
# only the modules a selected target needs
ko= floorko= notraceko=
if grep -qE '(^| )cxmq(-mem|-dl|-kyber|-poll|-shared|-virtio)?( |$)' <<<"$loaded"; then ko=$(scripts/build-module.sh "$kdir"); fi
if grep -qE '(^| )cxmq-notrace( |$)' <<<"$loaded"; then notraceko=$(CXMQ_TRACE=0 scripts/build-module.sh "$kdir"); fi
if grep -qE '(^| )floor( |$)' <<<"$loaded"; then floorko=$(bench/floor/build.sh "$kdir"); fi

[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/cxmq-bench${scaling:+-scaling}.XXXXXX")
mkdir -p "$out"; out=$(realpath "$out")

# The guest's numbers are only as good as the host's idle time: note what else was running.
host_note() {
	echo "$1 loadavg: $(cut -d' ' -f1-3 /proc/loadavg), other qemu: $(pgrep -c -x qemu-system-x86 || true)"
}
# sampler DIR: every second, the host's busy CPU time (steal included) and that of the QEMU
# writing to DIR, in clock ticks, so that each round can be told how much CPU something else
# took from it (see the table).
sampler() {
	local d=$1 qpid= p u n s i w q sq st
	while sleep 1; do
		if [ -z "$qpid" ]; then
			for p in $(pgrep -x qemu-system-x86); do
				grep -qF "cxmq.out=$d " "/proc/$p/cmdline" 2>/dev/null && qpid=$p
			done
		fi
		read -r _ u n s i w q sq st _ < /proc/stat
		set -- $(cut -d')' -f2 "/proc/$qpid/stat" 2>/dev/null)
		echo "$(date +%s.%N) $((u + n + s + q + sq + st)) $(( ${12:-0} + ${13:-0} ))"
	done > "$d/host-cpu.txt"
}

# plot DIR [--scaling]: scripts/bench-plot's charts (and, --scaling, scaling.txt) in DIR, their
# names in $plotted (", iops-randread.png, ..."). Without matplotlib, or should it fail, a note
# and no charts: the benchmark only measures.
plot() {
	local d=$1 p f
	plotted=
	if ! p=$(scripts/bench-plot "${@:2}" "$d" 2> "$d/plot.err"); then
		log "charts: $(tail -n 1 "$d/plot.err")"
	fi
	while IFS= read -r f; do
		if [ -n "$f" ]; then plotted+=", ${f#"$d"/}"; fi
	done <<<"$p"
	[ -s "$d/plot.err" ] || rm -f "$d/plot.err"
}

# table DIR: the numbers, from the JSON saved in DIR (on the host: python3 is slow to start in
# a TCG guest), on stdout and in DIR/table.txt, and DIR/summary.json; 3 when nothing had a result
table() {
python3 - "$1" "$targets" "$jobs" <<'PY' | tee "$1/table.txt"
import json, os, re, statistics as st, sys

out, targets, jobs = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
NAMES = {"cxmq": ("A", "cxmq"), "nullb-mq": ("B", "null_blk mq"), "nullb-bio": ("C", "null_blk bio"),
         "cxmq-mem": ("D", "cxmq memory"), "brd": ("E", "brd"), "floor": ("F", "floor"),
         "cxmq-dl": ("G", "cxmq mq-dl"), "nullb-dl": ("H", "null_blk mq-dl"),
         "cxmq-kyber": ("I", "cxmq kyber"), "nullb-kyber": ("J", "null_blk kyber"),
         "cxmq-poll": ("K", "cxmq polled"), "nullb-poll": ("L", "null_blk polled"),
         "cxmq-shared": ("M", "cxmq shared x2"), "nullb-shared": ("N", "null_blk shared x2"),
         "cxmq-virtio": ("O", "cxmq virtio"), "virtio-blk": ("P", "virtio_blk"),
         "cxmq-notrace": ("Q", "cxmq notrace")}
# job -> (description, fio's side of the JSON, the targets it runs on: None for every one)
POLLED = ("cxmq-poll", "nullb-poll")
SHARED = ("cxmq-shared", "nullb-shared")
VIRTIO = ("cxmq-virtio", "virtio-blk")
JOBS = {"randread": ("4k randread, io_uring, direct=1, iodepth=32", "read",
                     tuple(t for t in NAMES if t not in POLLED + SHARED)),
        "randread-libaio": ("4k randread, libaio, direct=1, iodepth=32", "read",
                            ("cxmq", "floor", "cxmq-dl", "nullb-dl", "cxmq-kyber", "nullb-kyber",
                             "cxmq-notrace") + VIRTIO),
        "randread-qd1": ("4k randread, io_uring, direct=1, iodepth=1, one job", "read", VIRTIO),
        "seqwrite": ("4k sequential write, libaio, direct=1, iodepth=32, batch submit/complete 16, "
                     "a 1 GiB region per job", "write", ("cxmq", "nullb-mq")),
        "poll-qd1": ("4k randread, io_uring --hipri (polled), direct=1, iodepth=1", "read", POLLED),
        "poll-qd32": ("4k randread, io_uring --hipri (polled), direct=1, iodepth=32", "read", POLLED),
        "shared": ("4k randread, io_uring, direct=1, iodepth=32, each job over two devices sharing "
                   "tags", "read", SHARED)}
# --scaling: iodepth per fio job (fio/randread-scaling.fio with --iodepth=D before it)
JOBS.update(("scaling-qd%d" % d, ("4k randread, libaio, direct=1, iodepth=%d" % d, "read",
                                  ("cxmq", "nullb-mq", "nullb-bio"))) for d in (1, 8, 32, 128))
# where a target's backend requests per bio come from: cxmq's debugfs "merge:" line, or the
# request counts of a blk-mq disk's /proc/diskstats (bio-based disks account bios there)
RPB_SOURCE = {"cxmq": "cxmq", "cxmq-mem": "cxmq", "nullb-mq": "diskstats"}

def runs_on(j, t):
    return JOBS[j][2] is None or t in JOBS[j][2]

def load_json(path):
    text = open(path, errors="replace").read()
    return json.loads(text[text.index("{"):])   # fio may print warnings before the JSON

try:
    tsv = [l.rstrip("\n").split("\t") for l in open(os.path.join(out, "rounds.tsv"))][1:]
except OSError:
    tsv = []
guest = {}
try:
    for l in open(os.path.join(out, "guest.txt")):
        k, _, v = l.partition(": ")
        guest[k] = v.strip()
except OSError:
    pass
# host CPU samples: time, busy ticks of the whole host, ticks of our QEMU (0 when not running)
samples = []
try:
    for l in open(os.path.join(out, "host-cpu.txt")):
        f = l.split()
        if len(f) == 3:
            samples.append((float(f[0]), int(f[1]), int(f[2])))
except (OSError, ValueError):
    pass

def host_other(t0, t1):
    """CPUs' worth of host time (steal included) not spent in our QEMU between t0 and t1."""
    a = [x for x in samples if x[0] <= t0]
    b = [x for x in samples if x[0] >= t1]
    if not a or not b or not a[-1][2] or b[0][2] < a[-1][2]:
        return None
    a, b = a[-1], b[0]
    return max(0.0, ((b[1] - a[1]) - (b[2] - a[2])) / 100.0 / (b[0] - a[0]))

def counters(path, side):
    """Deltas over a job from its .counters file: the diskstats request and merge counts of the
    side (read/write), and the cxmq "merge:" line's fields (None where a line is missing)."""
    c = {}
    try:
        for l in open(path):
            k, _, v = l.rstrip("\n").partition(": ")
            c[k] = v.strip()
    except OSError:
        return None, None
    disk = None
    try:
        a, b = c["diskstats before"].split()[3:], c["diskstats after"].split()[3:]
        i = 0 if side == "read" else 4   # completed, merged, sectors, ms (reads, then writes)
        disk = {"completed": int(b[i]) - int(a[i]), "merged": int(b[i + 1]) - int(a[i + 1])}
    except (KeyError, IndexError, ValueError):
        pass
    merge = None
    kv = lambda s: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", s.partition("merge:")[2])}
    a, b = kv(c.get("merge before", "")), kv(c.get("merge after", ""))
    if "bios" in a and "requests" in a and "bios" in b and "requests" in b:
        merge = {k: b[k] - a[k] for k in b if k in a}
    return disk, merge

def empty():
    return {"rounds": [], "failed": 0, "iou_wrk": [], "unavailable": None}

runtime = float(guest.get("runtime", "0") or 0)
data = {}                            # (target, job) -> results
prefill = {t: [] for t in targets}   # target -> MB/s of its prefills
unavail = {}
for t in targets:
    un = os.path.join(out, "unavailable", t)
    if os.path.exists(un):
        unavail[t] = " ".join(open(un).read().split())
    for j in jobs:
        if runs_on(j, t):
            data[t, j] = empty()
            data[t, j]["unavailable"] = unavail.get(t)
for f in tsv:
    if len(f) < 9 or f[0] not in targets:
        continue
    t, j, rnd, status = f[0], f[1], f[2], f[3]
    if status == "unavailable" or (t, j) not in data:
        continue
    r = data[t, j]
    if status != "ok":
        r["failed"] += 1
        continue
    base = "%s.r%s" % (t, rnd) if j == "randread" else "%s.%s.r%s" % (t, j, rnd)
    side = JOBS[j][1]
    try:
        d = load_json(os.path.join(out, "raw", base + ".json"))
        job = d["jobs"][0]            # group_reporting: one entry for all jobs
        io = job[side]
        if job["error"] or io["total_ios"] == 0:
            r["failed"] += 1
            continue
        pct = io["clat_ns"]["percentile"]
        x = {"round": int(rnd), "iops": io["iops"],
             "p50": pct["50.000000"] / 1000.0, "p99": pct["99.000000"] / 1000.0,
             "usr": job["usr_cpu"], "sys": job["sys_cpu"], "ctx": job["ctx"],
             "ios": io["total_ios"],
             "host_other": host_other(d["timestamp"] - runtime, d["timestamp"])}
        disk, merge = counters(os.path.join(out, "raw", base + ".counters"), side)
        x["diskstats"], x["merge"] = disk, merge
        src = RPB_SOURCE.get(t)
        if src == "diskstats" and disk and disk["completed"] + disk["merged"] > 0:
            x["bios"], x["requests"] = disk["completed"] + disk["merged"], disk["completed"]
        elif src == "cxmq" and merge and merge["bios"] > 0:
            x["bios"], x["requests"] = merge["bios"], merge["requests"]
        r["rounds"].append(x)
        if f[7].isdigit():
            r["iou_wrk"].append(int(f[7]))
    except (OSError, ValueError, KeyError, IndexError) as e:
        r["failed"] += 1
        r.setdefault("errors", []).append("round %s: %r" % (rnd, e))
    if f[5] != "-":                   # the first job after a load: its target's prefill
        try:
            p = load_json(os.path.join(out, "raw", "%s.r%s.prefill.json" % (t, rnd)))
            prefill[t].append(p["jobs"][0]["write"]["bw_bytes"] / 1e6)
        except (OSError, ValueError, KeyError, IndexError):
            pass
for r in data.values():
    rs = r["rounds"]
    if rs:
        r["iops_mean"] = st.mean(x["iops"] for x in rs)
        r["iops_min"] = min(x["iops"] for x in rs)
        r["iops_max"] = max(x["iops"] for x in rs)
        r["p50_mean"] = st.mean(x["p50"] for x in rs)
        r["p99_mean"] = st.mean(x["p99"] for x in rs)
        # over every round with counts: all requests over all bios
        if all("bios" in x for x in rs):
            r["requests_per_bio"] = sum(x["requests"] for x in rs) / sum(x["bios"] for x in rs)

nj = guest.get("vcpus", "?")
print("cxmq benchmark: %s, %s vCPUs, %s, numjobs=%s, %s rounds x %ss per job, round-robin" % (
      guest.get("kernel", "?"), nj, guest.get("fio", "?"), nj, guest.get("rounds", "?"),
      guest.get("runtime", "?")))
try:
    for l in open(os.path.join(out, "host.txt")):
        print("host at " + l.strip())
except OSError:
    pass

def fmt_rpb(r):
    v = r.get("requests_per_bio")
    return "%.4f" % v if v is not None else "n/a"

for j in jobs:
    ts = [t for t in targets if (t, j) in data]
    if not ts:
        continue
    rpb = j == "seqwrite"
    print()
    print("%s: %s, numjobs=%s" % (j, JOBS[j][0], nj))
    print("%-16s %5s %10s  %-19s %9s %9s%s" % ("target", "runs", "IOPS mean", "IOPS min-max",
          "p50 us", "p99 us", " %12s" % "requests/bio" if rpb else ""))
    for t in ts:
        r = data[t, j]
        label = "%s %s" % NAMES[t]
        if r["unavailable"]:
            print("%-16s unavailable: %s" % (label, r["unavailable"][:160]))
        elif not r["rounds"]:
            print("%-16s %5s no successful round (%d failed)" % (label, "0", r["failed"]))
        else:
            runs = str(len(r["rounds"])) + ("+%df" % r["failed"] if r["failed"] else "")
            print("%-16s %5s %10.0f  %-19s %9.1f %9.1f%s" % (label, runs, r["iops_mean"],
                  "%.0f-%.0f" % (r["iops_min"], r["iops_max"]), r["p50_mean"], r["p99_mean"],
                  " %12s" % fmt_rpb(r) if rpb else ""))
# --scaling's jobs (one boot's vCPUs; scripts/bench-plot --scaling puts the boots together)
SCALING_RATIOS = tuple(("scaling-qd%d" % d, "cxmq", b, "QD%d: cxmq / %s" % (d, name))
                       for d in (1, 8, 32, 128)
                       for b, name in (("nullb-mq", "null_blk-mq"), ("nullb-bio", "null_blk-bio")))
print()
print("%-32s %8s %8s %8s" % ("ratio (of the means)", "IOPS", "p50", "p99"))
for j, a, b, name in (("randread", "cxmq", "nullb-mq", "cxmq / null_blk-mq"),
                      ("randread", "cxmq", "nullb-bio", "cxmq / null_blk-bio"),
                      ("randread", "cxmq-mem", "brd", "cxmq-memory / brd"),
                      ("randread", "cxmq", "floor", "cxmq / floor"),
                      ("randread-libaio", "cxmq", "floor", "cxmq / floor, libaio"),
                      ("seqwrite", "cxmq", "nullb-mq", "seqwrite: cxmq / null_blk-mq"),
                      ("randread", "cxmq-dl", "nullb-dl", "mq-deadline: cxmq / null_blk"),
                      ("randread-libaio", "cxmq-dl", "nullb-dl", "mq-deadline: cxmq / null_blk, libaio"),
                      ("randread", "cxmq-kyber", "nullb-kyber", "kyber: cxmq / null_blk"),
                      ("randread-libaio", "cxmq-kyber", "nullb-kyber", "kyber: cxmq / null_blk, libaio"),
                      ("randread", "cxmq-dl", "cxmq", "cxmq: mq-deadline / none"),
                      ("randread", "cxmq-kyber", "cxmq", "cxmq: kyber / none"),
                      ("randread", "nullb-dl", "nullb-mq", "null_blk: mq-deadline / none"),
                      ("randread", "nullb-kyber", "nullb-mq", "null_blk: kyber / none"),
                      ("poll-qd1", "cxmq-poll", "nullb-poll", "polled QD1: cxmq / null_blk-mq"),
                      ("poll-qd32", "cxmq-poll", "nullb-poll", "polled QD32: cxmq / null_blk-mq"),
                      ("shared", "cxmq-shared", "nullb-shared", "shared tags x2: cxmq / null_blk"),
                      ("randread", "cxmq-virtio", "virtio-blk", "virtio: cxmq / virtio_blk"),
                      ("randread-libaio", "cxmq-virtio", "virtio-blk", "virtio: cxmq / virtio_blk, libaio"),
                      ("randread-qd1", "cxmq-virtio", "virtio-blk", "virtio QD1: cxmq / virtio_blk"),
                      ("randread", "cxmq", "cxmq-notrace", "tracepoints off: cxmq / no tracepoints"),
                      ("randread-libaio", "cxmq", "cxmq-notrace", "tracepoints off: cxmq / none, libaio")) + SCALING_RATIOS:
    if j not in jobs or a not in targets or b not in targets:
        continue
    ra, rb = data.get((a, j)), data.get((b, j))
    if ra and rb and ra["rounds"] and rb["rounds"]:
        vals = ["%8.2f" % (ra[k] / rb[k]) if rb[k] else "%8s" % "n/a" for k in ("iops_mean", "p50_mean", "p99_mean")]
    else:
        vals = ["%8s" % "n/a"] * 3
    extra = ""
    if j == "seqwrite":
        extra = "   requests/bio: cxmq %s, null_blk-mq %s" % (fmt_rpb(ra or {}), fmt_rpb(rb or {}))
    print("%-32s %s%s" % (name, " ".join(vals), extra))
print()
print("per target and job (per round where several): fio's CPU use and context switches per IO,")
print("io_uring async workers seen half way through a round, host CPUs busy outside this VM during")
print("the round, the device's scheduler and hardware queues, merge counters; raw fio JSON in %s/raw" % out)
for t in targets:
    desc = {}
    try:
        for l in open(os.path.join(out, "targets", t)):
            k, _, v = l.partition(": ")
            desc[k] = v.strip()
    except OSError:
        pass
    first = True
    for j in jobs:
        r = data.get((t, j))
        if not r or not r["rounds"]:
            continue
        rs = r["rounds"]
        ctx_per_io = st.mean(x["ctx"] / x["ios"] for x in rs)
        cpu = st.mean(x["usr"] + x["sys"] for x in rs)
        extra = ""
        if first and prefill[t]:
            extra = ", prefill %.0f MB/s" % st.mean(prefill[t])
        first = False
        if j == "seqwrite":
            m = [x["merge"] for x in rs if x.get("merge")]
            dk = [x["diskstats"] for x in rs if x.get("diskstats")]
            if RPB_SOURCE.get(t) == "cxmq":
                extra += ", cxmq merge: " + (" ".join("%s=%d" % (k, sum(y.get(k, 0) for y in m))
                                                       for k in m[0]) if m else "n/a (no merge: line in debugfs stats)")
            if dk:
                extra += ", diskstats writes=%d merged=%d" % (sum(y["completed"] for y in dk),
                                                              sum(y["merged"] for y in dk))
        other = "/".join("?" if x["host_other"] is None else "%.2f" % x["host_other"] for x in rs)
        sched = re.sub(r".*\[(.*)\].*", r"\1", desc.get("cxmq/scheduler", desc.get("scheduler", "?")))
        if j == "seqwrite" and RPB_SOURCE.get(t) == "diskstats":
            sched = "none"
        print("  %-10s %-15s fio usr+sys %5.1f%%, ctx/IO %.3f, iou-wrk %s, host other CPU %s, sched %s, hw queues %s%s" % (
            t, j, cpu, ctx_per_io, "/".join(map(str, r["iou_wrk"])) or "-", other, sched,
            desc.get("hw_queues", "?"), extra))
# the host CPUs the guest's vCPU threads do not need; beyond those, other work slows the guest
spare = max(0, (os.cpu_count() or 1) - int(guest.get("vcpus", "1") or 1))
busy = ["%s %s r%d (%.2f)" % (t, j, x["round"], x["host_other"]) for (t, j), r in data.items()
        for x in r["rounds"] if x["host_other"] is not None and x["host_other"] > spare + 0.25]
if busy:
    print()
    print("warning: other work on the host took CPU time the guest needed during: " + ", ".join(busy))
    print("         (%d host CPUs for %s vCPUs: those rounds are slowed, compare them with care)" % (
          os.cpu_count(), guest.get("vcpus", "?")))
# summary.json: per target the randread job's results at the top (as before the other jobs
# existed), the other jobs under "jobs"
rows = {}
for t in targets:
    top = dict(data.get((t, "randread"), empty()))
    top["unavailable"] = unavail.get(t)
    top["prefill_mbs"] = prefill[t]
    top["jobs"] = {j: data[t, j] for j in jobs if j != "randread" and (t, j) in data}
    rows[t] = top
# labels and descriptions: the names of the table, for scripts/bench-plot's charts
json.dump({"guest": guest, "jobs": jobs, "targets": rows,
           "labels": {t: "%s %s" % NAMES[t] for t in targets},
           "descriptions": {j: JOBS[j][0] for j in jobs}},
          open(os.path.join(out, "summary.json"), "w"), indent=1)
ok = any(r["rounds"] for r in data.values())
sys.exit(0 if ok else 3)
PY
	return "${PIPESTATUS[0]}"
}

# boot N DIR: one VM with N vCPUs running every selected job on every selected target, its
# output in DIR, then DIR/table.txt, summary.json and the charts. Sets boot_vm (the VM's exit
# status), boot_table (the table's: 0 when some job had a result) and plotted (the charts).
boot() {
	local n=$1 d=$2 t nfill=0 timeout spid vdisks=()
	mkdir -p "$d"
	rm -rf "$d/raw" "$d/unavailable" "$d/targets" "$d/rounds.tsv" "$d/table.txt" "$d"/iops-*.png \
		"$d"/latency-*.png "$d/plot.err"
	# the virtio targets' two identical disks (QEMU null-co, 16 GiB, a queue per vCPU)
	if grep -qE '(^| )(cxmq-virtio|virtio-blk)( |$)' <<<"$loaded"; then
		vdisks=(--disk "null=16384,queues=$n,serial=bench-a,id=ba" --disk "null=16384,queues=$n,serial=bench-b,id=bb")
	fi
	# generous: boot, every timed job with its share of load/unload, and the 1 GiB fills of D and E
	for t in $loaded; do case $t in cxmq-mem|brd) nfill=$((nfill + 1)) ;; esac; done
	timeout=$((300 + rounds * npairs * (runtime + 40) + rounds * nfill * 120))
	[ "$kernel" != test ] || timeout=$((timeout * 2))
	log "bench: $rounds rounds x ${runtime}s on $n vCPUs, targets: $targets, jobs: $jobs (output: $d)"
	host_note start > "$d/host.txt"
	sampler "$d" & spid=$!
	set +e
	scripts/vm-run.sh --kernel "$kdir" --cpus "$n" --mem "$mem" --timeout "$timeout" --out "$d" "${vdisks[@]}" \
		--env CXMQ_KO_DIR="$ko" --env CXMQ_FLOOR_KO_DIR="$floorko" --env CXMQ_NOTRACE_KO_DIR="$notraceko" \
		--env CXMQ_BENCH_ROUNDS="$rounds" \
		--env CXMQ_BENCH_RUNTIME="$runtime" --env CXMQ_BENCH_TARGETS="$targets" \
		--env CXMQ_BENCH_JOBS="$jobs" tests/vm/bench.sh
	boot_vm=$?
	kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
	host_note end >> "$d/host.txt"
	table "$d"; boot_table=$?
	set -e
	plot "$d"
}

if [ -z "$scaling" ]; then
	boot "$cpus" "$out"
	log "output: $out (table.txt, summary.json, raw/*.json, guest.log, console.log$plotted)"
	echo "$out"
	if [ "$boot_vm" != 0 ]; then log "the VM run failed (exit $boot_vm)"; exit "$boot_vm"; fi
	[ "$boot_table" = 0 ] || { log "no target produced a result"; exit 1; }
	exit 0
fi

# --scaling: a boot per vCPU count into OUTDIR/cpus<N>, then OUTDIR/scaling.txt and its charts
# (bench-plot reads every cpus*/summary.json: none stays from another run's vCPU counts)
rm -f "$out/scaling.txt" "$out"/scaling-*.png "$out"/cpus*/summary.json
nboots=$(wc -w <<<"$cpus") i=0 vmfail=0 results=0
for n in $cpus; do
	i=$((i + 1))
	log "scaling: boot $i of $nboots, $n vCPUs"
	boot "$n" "$out/cpus$n"
	if [ "$boot_vm" != 0 ]; then
		log "scaling: the VM run with $n vCPUs failed (exit $boot_vm)"
		[ "$vmfail" != 0 ] || vmfail=$boot_vm
	fi
	[ "$boot_table" != 0 ] || results=$((results + 1))
done
plot "$out" --scaling
if [ -f "$out/scaling.txt" ]; then echo; cat "$out/scaling.txt"; fi
log "output: $out (cpus<N>/ for each boot as a plain run's directory$plotted)"
echo "$out"
if [ "$vmfail" != 0 ]; then log "a VM run failed (exit $vmfail)"; exit "$vmfail"; fi
[ "$results" -gt 0 ] || { log "no boot produced a result"; exit 1; }
