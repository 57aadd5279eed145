#!/bin/bash
# The benchmark: one VM, alternating rounds of the same fio job (4k randread, io_uring, direct,
# iodepth 32, one job per vCPU) against cxmq and the drivers it is measured against:
#   A cxmq        insmod cxmq.ko irqmode=0 submit_queues=<vCPUs> hw_queue_depth=64 gb=16
#   B nullb-mq    null_blk queue_mode=2 irqmode=0 submit_queues=<vCPUs> hw_queue_depth=64 gb=16
#   C nullb-bio   null_blk queue_mode=0 irqmode=0 gb=16 (bio-based: no queueing at all, the floor)
#   D cxmq-mem    insmod cxmq.ko irqmode=0 memory_backed=1 submit_queues=<vCPUs> gb=1
#   E brd         brd rd_nr=1 rd_size=1048576 (1 GiB)
# round 1: A B C D E, round 2: A B C D E, ...; D and E are filled once per load before their
# timed round. A target whose module does not load (or lacks a parameter) is "unavailable" and
# the rest still run. Prints per target IOPS (mean, min-max), p50/p99 completion latency and the
# ratios cxmq/null_blk-mq, cxmq/null_blk-bio, cxmq-mem/brd; keeps every round's fio JSON and the
# table in the output directory. Measures only: exits non-zero only if the VM or the whole run
# failed.
#
# usage: bench.sh [--kernel debian|test|DIR] [--cpus N] [--rounds N] [--runtime S]
#                 [--targets "cxmq nullb-mq nullb-bio cxmq-mem brd"] [--mem MB] [--out DIR]
# Environment: CXMQ_CPUS (vCPUs, default 2), CXMQ_CACHE.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CXMQ_ROOT"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
kernel=debian cpus=${CXMQ_CPUS:-2} rounds=3 runtime=10 mem=3072 out=
targets="cxmq nullb-mq nullb-bio cxmq-mem brd"
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--cpus) cpus=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--runtime) runtime=$2; shift 2 ;;
	--targets) targets=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument $1" ;;
	esac
done
for v in cpus rounds runtime mem; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$v wants a positive integer, not '${!v}'"
done
for t in $targets; do
	case $t in cxmq|nullb-mq|nullb-bio|cxmq-mem|brd) ;; *) die "unknown target $t" ;; esac
done

scripts/setup.sh
case "$kernel" in
debian) kdir=$(scripts/fetch-debian-kernel.sh) ;;
test) kdir=$(scripts/build-test-kernel.sh)
	log "the test kernel has debug options (KASAN, lockdep, ...): its numbers are not comparable;"
	log "its DEBUG_KOBJECT_RELEASE makes rmmod null_blk oops (disk_release after the module is freed)" ;;
*) kdir=$(realpath "$kernel") ;;
esac
ko=$(scripts/build-module.sh "$kdir")

[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/cxmq-bench.XXXXXX")
mkdir -p "$out"; out=$(realpath "$out")
rm -rf "$out/raw" "$out/unavailable" "$out/targets" "$out/rounds.tsv" "$out/table.txt"

# generous: boot, every round with its load/unload, and the 1 GiB fills of D and E
n=$(wc -w <<<"$targets"); nfill=$(grep -owE 'cxmq-mem|brd' <<<"$targets" | wc -l)
timeout=$((300 + rounds * n * (runtime + 40) + rounds * nfill * 120))
[ "$kernel" != test ] || timeout=$((timeout * 2))
log "bench: $rounds rounds x ${runtime}s on $cpus vCPUs, targets: $targets (output: $out)"
# The guest's numbers are only as good as the host's idle time: note what else was running.
host_note() {
	echo "$1 loadavg: $(cut -d' ' -f1-3 /proc/loadavg), other qemu: $(pgrep -c -x qemu-system-x86 || true)"
}
host_note start > "$out/host.txt"
# Every second: the host's busy CPU time (steal included) and our QEMU's, in clock ticks, so
# that each round can be told how much CPU something else took from it (see the table).
sampler() {
	local qpid= p u n s i w q sq st
	while sleep 1; do
		if [ -z "$qpid" ]; then
			for p in $(pgrep -x qemu-system-x86); do
				grep -qF "cxmq.out=$out " "/proc/$p/cmdline" 2>/dev/null && qpid=$p
			done
		fi
		read -r _ u n s i w q sq st _ < /proc/stat
		set -- $(cut -d')' -f2 "/proc/$qpid/stat" 2>/dev/null)
		echo "$(date +%s.%N) $((u + n + s + q + sq + st)) $(( ${12:-0} + ${13:-0} ))"
	done > "$out/host-cpu.txt"
}
sampler & spid=$!
set +e
scripts/vm-run.sh --kernel "$kdir" --cpus "$cpus" --mem "$mem" --timeout "$timeout" --out "$out" \
	--env CXMQ_KO_DIR="$ko" --env CXMQ_BENCH_ROUNDS="$rounds" --env CXMQ_BENCH_RUNTIME="$runtime" \
	--env CXMQ_BENCH_TARGETS="$targets" tests/vm/bench.sh
vmrc=$?
kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
host_note end >> "$out/host.txt"

# The numbers, from the saved JSON (on the host: python3 is slow to start in a TCG guest).
python3 - "$out" "$targets" <<'PY' | tee "$out/table.txt"
import json, os, re, statistics as st, sys

out, targets = sys.argv[1], sys.argv[2].split()
NAMES = {"cxmq": ("A", "cxmq"), "nullb-mq": ("B", "null_blk mq"), "nullb-bio": ("C", "null_blk bio"),
         "cxmq-mem": ("D", "cxmq memory"), "brd": ("E", "brd")}

def load_json(path):
    text = open(path, errors="replace").read()
    return json.loads(text[text.index("{"):])   # fio may print warnings before the JSON

rows = {}
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

runtime = float(guest.get("runtime", "0") or 0)
for t in targets:
    r = {"rounds": [], "failed": 0, "iou_wrk": [], "unavailable": None, "prefill_mbs": []}
    un = os.path.join(out, "unavailable", t)
    if os.path.exists(un):
        r["unavailable"] = " ".join(open(un).read().split())
    for f in tsv:
        if len(f) < 8 or f[0] != t:
            continue
        tgt, rnd, status = f[0], f[1], f[2]
        if status == "unavailable":
            continue
        if status != "ok":
            r["failed"] += 1
            continue
        try:
            d = load_json(os.path.join(out, "raw", "%s.r%s.json" % (t, rnd)))
            job = d["jobs"][0]            # group_reporting: one entry for all jobs
            rd = job["read"]
            if job["error"] or rd["total_ios"] == 0:
                r["failed"] += 1
                continue
            pct = rd["clat_ns"]["percentile"]
            r["rounds"].append({"round": int(rnd), "iops": rd["iops"],
                                "p50": pct["50.000000"] / 1000.0, "p99": pct["99.000000"] / 1000.0,
                                "usr": job["usr_cpu"], "sys": job["sys_cpu"], "ctx": job["ctx"],
                                "ios": rd["total_ios"],
                                "host_other": host_other(d["timestamp"] - runtime, d["timestamp"])})
            if f[6].isdigit():
                r["iou_wrk"].append(int(f[6]))
        except (OSError, ValueError, KeyError, IndexError) as e:
            r["failed"] += 1
            r.setdefault("errors", []).append("round %s: %r" % (rnd, e))
        try:
            p = load_json(os.path.join(out, "raw", "%s.r%s.prefill.json" % (t, rnd)))
            w = p["jobs"][0]["write"]
            r["prefill_mbs"].append(w["bw_bytes"] / 1e6)
        except (OSError, ValueError, KeyError, IndexError):
            pass
    if r["rounds"]:
        rs = r["rounds"]
        r["iops_mean"] = st.mean(x["iops"] for x in rs)
        r["iops_min"] = min(x["iops"] for x in rs)
        r["iops_max"] = max(x["iops"] for x in rs)
        r["p50_mean"] = st.mean(x["p50"] for x in rs)
        r["p99_mean"] = st.mean(x["p99"] for x in rs)
    rows[t] = r

print("cxmq benchmark: %s, %s vCPUs, %s: 4k randread, io_uring, direct=1, iodepth=32, "
      "numjobs=%s, %s rounds x %ss, round-robin" % (
      guest.get("kernel", "?"), guest.get("vcpus", "?"), guest.get("fio", "?"),
      guest.get("vcpus", "?"), guest.get("rounds", "?"), guest.get("runtime", "?")))
try:
    for l in open(os.path.join(out, "host.txt")):
        print("host at " + l.strip())
except OSError:
    pass
print()
print("%-16s %5s %10s  %-19s %9s %9s" % ("target", "runs", "IOPS mean", "IOPS min-max", "p50 us", "p99 us"))
for t in targets:
    r = rows[t]
    label = "%s %s" % NAMES[t]
    if r["unavailable"]:
        print("%-16s unavailable: %s" % (label, r["unavailable"][:160]))
    elif not r["rounds"]:
        print("%-16s %5s no successful round (%d failed)" % (label, "0", r["failed"]))
    else:
        runs = str(len(r["rounds"])) + ("+%df" % r["failed"] if r["failed"] else "")
        print("%-16s %5s %10.0f  %-19s %9.1f %9.1f" % (label, runs, r["iops_mean"],
              "%.0f-%.0f" % (r["iops_min"], r["iops_max"]), r["p50_mean"], r["p99_mean"]))
print()
print("%-28s %8s %8s %8s" % ("ratio (of the means)", "IOPS", "p50", "p99"))
for a, b, name in (("cxmq", "nullb-mq", "cxmq / null_blk-mq"), ("cxmq", "nullb-bio", "cxmq / null_blk-bio"),
                   ("cxmq-mem", "brd", "cxmq-memory / brd")):
    ra, rb = rows.get(a), rows.get(b)
    if ra and rb and ra["rounds"] and rb["rounds"]:
        vals = ["%8.2f" % (ra[k] / rb[k]) if rb[k] else "%8s" % "n/a" for k in ("iops_mean", "p50_mean", "p99_mean")]
    else:
        vals = ["%8s" % "n/a"] * 3
    print("%-28s %s" % (name, " ".join(vals)))
print()
print("per target (per round where several): fio's CPU use and context switches per IO, io_uring async")
print("workers seen half way through a round, host CPUs busy outside this VM during the round, the")
print("device's scheduler and hardware queues; raw fio JSON in %s/raw" % out)
for t in targets:
    r = rows[t]
    if not r["rounds"]:
        continue
    rs = r["rounds"]
    desc = {}
    try:
        for l in open(os.path.join(out, "targets", t)):
            k, _, v = l.partition(": ")
            desc[k] = v.strip()
    except OSError:
        pass
    ctx_per_io = st.mean(x["ctx"] / x["ios"] for x in rs)
    cpu = st.mean(x["usr"] + x["sys"] for x in rs)
    extra = ""
    if r["prefill_mbs"]:
        extra = ", prefill %.0f MB/s" % st.mean(r["prefill_mbs"])
    other = "/".join("?" if x["host_other"] is None else "%.2f" % x["host_other"] for x in rs)
    print("  %-10s fio usr+sys %5.1f%%, ctx/IO %.3f, iou-wrk %s, host other CPU %s, sched %s, hw queues %s%s" % (
        t, cpu, ctx_per_io, "/".join(map(str, r["iou_wrk"])) or "?", other,
        re.sub(r".*\[(.*)\].*", r"\1", desc.get("scheduler", "?")), desc.get("hw_queues", "?"), extra))
# the host CPUs the guest's vCPU threads do not need; beyond those, other work slows the guest
spare = max(0, (os.cpu_count() or 1) - int(guest.get("vcpus", "1") or 1))
busy = ["%s r%d (%.2f)" % (t, x["round"], x["host_other"]) for t in targets for x in rows[t]["rounds"]
        if x["host_other"] is not None and x["host_other"] > spare + 0.25]
if busy:
    print()
    print("warning: other work on the host took CPU time the guest needed during: " + ", ".join(busy))
    print("         (%d host CPUs for %s vCPUs: those rounds are slowed, compare them with care)" % (
          os.cpu_count(), guest.get("vcpus", "?")))
json.dump({"guest": guest, "targets": rows}, open(os.path.join(out, "summary.json"), "w"), indent=1)
ok = any(r["rounds"] for r in rows.values())
sys.exit(0 if ok else 3)
PY
prc=${PIPESTATUS[0]}
set -e
log "output: $out (table.txt, summary.json, raw/*.json, guest.log, console.log)"
echo "$out"
if [ "$vmrc" != 0 ]; then log "the VM run failed (exit $vmrc)"; exit "$vmrc"; fi
[ "$prc" = 0 ] || { log "no target produced a result"; exit 1; }
