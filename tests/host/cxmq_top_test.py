#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host test of scripts/cxmq-top against a fake /sys and /proc tree in a temporary directory.

The files are written in the module's formats (src/core/mq_show.cpp, src/shim/mq_sysfs.c, the
stats file of src/core/capi.cpp and the backends, the kernel's part_stat_show and diskstats);
the script's sample() and rates() read two samples with known counter deltas, and batch mode
runs as a program on the tree. Standard library only:
    python3 tests/host/cxmq_top_test.py [-v]
"""

import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "cxmq-top")


def load_top():
    loader = importlib.machinery.SourceFileLoader("cxmq_top", SCRIPT)
    spec = importlib.util.spec_from_loader("cxmq_top", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


top = load_top()


class FakeDevice:
    """The counters of one cxmq device; FakeTree.write() renders them as the module does."""

    def __init__(self, name, hctx_cpus, depth=64, scheduler="none", poll_hctx=()):
        self.name = name
        self.scheduler = scheduler
        self.depth = depth
        # diskstats: reads, rmerged, rsect, rticks, writes, wmerged, wsect, wticks, inflight,
        # io_ticks, time_in_queue, discards, dmerged, dsect, dticks, flushes, fticks
        self.stat = [0] * 17
        self.hctx = []
        for i, cpus in enumerate(hctx_cpus):
            self.hctx.append({
                "type": "poll" if i in poll_hctx else "default", "cpus": list(cpus),
                "queued": 0, "run": 0, "busy": 0, "direct": 0, "active": 0,
                "hist": [0] * 10, "poll": [0, 0, 0], "dispatch": [],
                "ctx": {c: {"dispatched": [0, 0], "completed": [0, 0], "merged": 0,
                            "staged": []} for c in cpus}})
        self.merge = {"requests": 0, "plug": 0, "ctx": 0, "sched": 0}
        self.backend = {"busy_answers": 0, "poll_done": 0}


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def list_text(header, reqs, limit=None):
    """pending / rq_list: the header, a line per request, '\\t...' when cut at `limit` lines."""
    lines = [header]
    shown = reqs if limit is None else reqs[:limit]
    lines += ["\ttag %d read sector %d len 8" % (t, t * 8) for t in shown]
    if limit is not None and len(reqs) > limit:
        lines.append("\t...")
    return "\n".join(lines) + "\n"


class FakeTree:
    """<root>/sys/block/cxmqN/..., <root>/sys/kernel/debug/cxmq/cxmqN/stats, proc/diskstats."""

    def __init__(self, root, devices, debugfs=True, pending_limit=None):
        self.root = root
        self.devices = devices
        self.debugfs = debugfs
        self.pending_limit = pending_limit

    def write(self):
        lines = []
        for minor, d in enumerate(self.devices):
            self.write_device(d)
            lines.append("%4d %7d %s %s" % (252, minor, d.name, " ".join(map(str, d.stat))))
        write(os.path.join(self.root, "proc/diskstats"), "\n".join(lines) + "\n")

    def write_device(self, d):
        base = os.path.join(self.root, "sys/block", d.name)
        # part_stat_show: 17 columns "%8lu ..." (fields 9-11 and ticks are %8u)
        write(os.path.join(base, "stat"), " ".join("%8d" % v for v in d.stat) + "\n")
        names = ["none", "mq-deadline", "kyber"]
        write(os.path.join(base, "cxmq/scheduler"),
              " ".join("[%s]" % n if n == d.scheduler else n for n in names) + "\n")
        for i, h in enumerate(d.hctx):
            hd = os.path.join(base, "mq", str(i))
            write(os.path.join(hd, "cpu_list"), ", ".join(map(str, h["cpus"])) + "\n")
            write(os.path.join(hd, "pending"), list_text("HCTX pending:", h["dispatch"],
                                                         self.pending_limit))
            write(os.path.join(hd, "active"), "%u\n" % h["active"])
            write(os.path.join(hd, "tags"),
                  "nr_tags=%u, reserved_tags=0, bits_per_word=%u\n"
                  "nr_free=%u, nr_reserved=0\nactive_queues=%u\n"
                  % (d.depth, 8, d.depth - h["active"], 0))
            write(os.path.join(hd, "nr_tags"), "%u\n" % d.depth)
            write(os.path.join(hd, "nr_reserved_tags"), "0\n")
            write(os.path.join(hd, "queued"), "%u\n" % h["queued"])
            write(os.path.join(hd, "run"), "%u\n" % h["run"])
            hist = "%8u\t%u\n" % (0, h["hist"][0])
            for b in range(1, 9):
                hist += "%8u\t%u\n" % (1 << (b - 1), h["hist"][b])
            hist += "%8u+\t%u\n" % (1 << 8, h["hist"][9])
            write(os.path.join(hd, "dispatched"), hist)
            write(os.path.join(hd, "io_poll"),
                  "considered=%u, invoked=%u, success=%u\n" % tuple(h["poll"]))
            write(os.path.join(hd, "type"), h["type"] + "\n")
            for c, x in h["ctx"].items():
                cd = os.path.join(hd, "cpu%d" % c)
                write(os.path.join(cd, "dispatched"), "%u %u\n" % tuple(x["dispatched"]))
                write(os.path.join(cd, "merged"), "%u\n" % x["merged"])
                write(os.path.join(cd, "completed"), "%u %u\n" % tuple(x["completed"]))
                write(os.path.join(cd, "rq_list"), list_text("CTX pending:", x["staged"]))
        stats = os.path.join(self.root, "sys/kernel/debug/cxmq", d.name, "stats")
        if self.debugfs:
            write(stats, self.stats_text(d))
        elif os.path.exists(stats):
            os.unlink(stats)

    @staticmethod
    def stats_text(d):
        """src/core/capi.cpp cxmq_queue_format_stats, the null backend's line."""
        o = ""
        for i, h in enumerate(d.hctx):
            o += ("hctx%u: queued=%u run=%u direct=%u busy=%u timeouts=0 tags_busy=%u/%u "
                  "dispatch=%u" % (i, h["queued"], h["run"], h["direct"], h["busy"],
                                   h["active"], d.depth, len(h["dispatch"])))
            o += " dispatched=" + ",".join(map(str, h["hist"]))
            o += " cpus=" + ",".join(map(str, h["cpus"]))
            o += " offline_drains=0,0"
            if h["type"] == "poll":
                o += " type=poll polls=%u,%u,%u" % tuple(h["poll"])
            o += "\n"
            for c, x in h["ctx"].items():
                o += "  cpu%u: dispatched=%u %u completed=%u %u pending=%u\n" % (
                    c, x["dispatched"][0], x["dispatched"][1], x["completed"][0],
                    x["completed"][1], len(x["staged"]))
        m = d.merge
        bios = m["requests"] + m["plug"] + m["ctx"] + m["sched"]
        o += ("merge: bios=%u requests=%u plug_merges=%u ctx_merges=%u unplugs=0 "
              "unplug_requests=0 sched_merges=%u\n" % (bios, m["requests"], m["plug"],
                                                        m["ctx"], m["sched"]))
        o += "sched: %s nr_requests=%u" % (d.scheduler, d.depth)
        o += "".join(" hctx%u_inflight=0" % i for i in range(len(d.hctx)))
        if d.scheduler == "kyber":
            o += " read_tokens=0/256 write_tokens=0/128 discard_tokens=0/64 other_tokens=0/16"
        o += "\n"
        o += "unplug_batches: 1=0 2-3=0 4-7=0 8-15=0 16-31=0 32=0\n"
        o += "rq_affinity: local=0 moved=0\n"
        o += ("backend: busy_answers=%u pages=0 softirq_done=0 timer_done=0 poll_done=%u "
              "requeues=0 lost=0\n" % (d.backend["busy_answers"], d.backend["poll_done"]))
        return o


def advance(d, dt, reads_ps=1000, writes_ps=250, merges_ps=50, busy_ps=10, runs_ps=400):
    """Moves a device's counters as `dt` seconds at the given rates would, split evenly over
    hardware and software queues (ints: choose rates that divide)."""
    R, W, M, B, U = (int(x * dt) for x in (reads_ps, writes_ps, merges_ps, busy_ps, runs_ps))
    s = d.stat
    s[0] += R; s[1] += M; s[2] += 8 * R; s[4] += W; s[5] += M; s[6] += 8 * W
    nh = len(d.hctx)
    for h in d.hctx:
        h["queued"] += (R + W) // nh
        h["run"] += U // nh
        h["busy"] += B // nh
        h["direct"] += (R + W) // nh // 2
        h["hist"][1] += U // nh // 2
        h["hist"][3] += U // nh // 2
        if h["type"] == "poll":
            h["poll"] = [v + 100 for v in h["poll"]]
        nc = len(h["ctx"])
        for x in h["ctx"].values():
            x["dispatched"][0] += R // nh // nc
            x["dispatched"][1] += W // nh // nc
            x["completed"][0] += R // nh // nc
            x["completed"][1] += W // nh // nc
            x["merged"] += M // nh // nc
    d.merge["requests"] += R + W
    d.backend["busy_answers"] += B


def two_samples(tree, devices=None, dt=2.0, **rates):
    """sample(), advance every device by dt seconds, sample(); times set to exactly dt apart."""
    tree.write()
    a = top.sample(tree.root, devices)
    for d in tree.devices:
        advance(d, dt, **rates)
    tree.write()
    b = top.sample(tree.root, devices)
    b["time"] = a["time"] + dt
    return a, b


def by_name(r, name):
    return next(d for d in r["devices"] if d["name"] == name)


class CxmqTopTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="cxmq-top-test.")
        self.dev = FakeDevice("cxmq0", [[0, 1], [2, 3]])
        self.tree = FakeTree(self.root, [self.dev])

    def tearDown(self):
        shutil.rmtree(self.root)

    def test_device_rates(self):
        r = top.rates(*two_samples(self.tree))
        self.assertAlmostEqual(r["interval"], 2.0)
        d = by_name(r, "cxmq0")
        self.assertAlmostEqual(d["read_iops"], 1000.0)
        self.assertAlmostEqual(d["write_iops"], 250.0)
        self.assertAlmostEqual(d["iops"], 1250.0)
        self.assertAlmostEqual(d["merged"], 100.0)  # reads and writes merged, 50/s each
        self.assertAlmostEqual(d["read_kbs"], 4000.0)  # 8 sectors per read
        self.assertAlmostEqual(d["requests"], 1250.0)
        self.assertAlmostEqual(d["busy"], 10.0)
        self.assertEqual(d["scheduler"], "none")
        self.assertEqual(d["hw_queues"], 2)

    def test_hctx_and_ctx_rates(self):
        self.dev.hctx[1]["dispatch"] = [5, 6, 7]
        self.dev.hctx[0]["active"] = 9
        self.dev.hctx[0]["ctx"][1]["staged"] = [3, 4]
        d = by_name(top.rates(*two_samples(self.tree)), "cxmq0")
        h0, h1 = d["hctx"]
        self.assertEqual(h0["cpus"], [0, 1])
        self.assertEqual(h0["type"], "default")
        self.assertAlmostEqual(h0["queued"], 625.0)
        self.assertAlmostEqual(h0["dispatched"], 625.0)
        self.assertAlmostEqual(h0["completed"], 625.0)
        self.assertAlmostEqual(h0["read_completed"], 500.0)
        self.assertAlmostEqual(h0["merged"], 25.0)  # 100 merges in 2 s, 50 per queue
        self.assertAlmostEqual(h0["runs"], 200.0)
        self.assertAlmostEqual(h0["busy"], 5.0)
        self.assertAlmostEqual(h0["direct"], 312.5)
        self.assertEqual((h0["tags_active"], h0["nr_tags"]), (9, 64))
        self.assertEqual((h0["map_busy"], h0["map_depth"]), (9, 64))
        self.assertEqual(h1["pending"], 3)
        self.assertEqual(h0["hist_delta"], [0, 200, 0, 200, 0, 0, 0, 0, 0, 0])
        self.assertEqual(len(h0["ctx"]), 2)
        c1 = h0["ctx"][1]
        self.assertEqual(c1["cpu"], 1)
        self.assertAlmostEqual(c1["dispatched"], 312.5)  # 625 requests of 2 s per CPU
        self.assertAlmostEqual(c1["write_completed"], 62.5)
        self.assertEqual(c1["staged"], 2)

    def test_without_debugfs(self):
        """Non-root or debugfs not mounted: the stats file's values are '-', the rest shows;
        pending then comes from the page, 'N+' when it was cut."""
        self.tree.debugfs = False
        self.tree.pending_limit = 2
        self.dev.hctx[0]["dispatch"] = [1, 2, 3, 4]
        r = top.rates(*two_samples(self.tree))
        d = by_name(r, "cxmq0")
        self.assertIsNone(d["busy"])
        self.assertIsNone(d["requests"])
        self.assertIsNone(d["hctx"][0]["busy"])
        self.assertIsNone(d["hctx"][0]["direct"])
        self.assertAlmostEqual(d["iops"], 1250.0)
        self.assertEqual((d["hctx"][0]["pending"], d["hctx"][0]["pending_more"]), (2, True))
        text = top.render_text(r)
        self.assertIn(" busy/s=- ", text)
        self.assertIn(" pending=2+ ", text)

    def test_missing_files_and_devices(self):
        """A device asked for but absent, a hardware queue and files of a device vanishing."""
        _, b = two_samples(self.tree, ["cxmq0", "cxmq7"])
        shutil.rmtree(os.path.join(self.root, "sys/block/cxmq0/mq/1"))
        os.unlink(os.path.join(self.root, "sys/block/cxmq0/mq/0/queued"))
        os.unlink(os.path.join(self.root, "sys/block/cxmq0/stat"))  # diskstats remains
        c = top.sample(self.root, ["cxmq0", "cxmq7"])
        c["time"] = b["time"] + 1.0
        r = top.rates(b, c)
        d = by_name(r, "cxmq0")
        self.assertEqual(d["hw_queues"], 1)
        self.assertIsNone(d["hctx"][0]["queued"])
        self.assertAlmostEqual(d["iops"], 0.0)  # from /proc/diskstats
        absent = by_name(r, "cxmq7")
        self.assertFalse(absent["present"])
        text = top.render_text(r)
        self.assertRegex(text, r"(?m)^device cxmq7 iops=- .* scheduler=- hw_queues=-$")
        self.assertIn(" queued/s=- ", text)
        shutil.rmtree(os.path.join(self.root, "sys"))
        top.render_text(top.rates(c, top.sample(self.root, ["cxmq0"])))

    def test_reset_counter(self):
        _, a = two_samples(self.tree)
        self.dev.hctx[0]["run"] = 0  # e.g. the device made again
        self.tree.write()
        b = top.sample(self.root)
        b["time"] = a["time"] + 1
        h0 = by_name(top.rates(a, b), "cxmq0")["hctx"][0]
        self.assertIsNone(h0["runs"])

    def test_poll_queue_and_scheduler(self):
        dev = FakeDevice("cxmq1", [[0, 1], [0, 1]], scheduler="kyber", poll_hctx=(1,))
        dev.backend["poll_done"] = 7
        self.tree.devices.append(dev)
        a, b = two_samples(self.tree)
        d = by_name(top.rates(a, b), "cxmq1")
        self.assertEqual(d["scheduler"], "kyber")
        self.assertEqual(d["poll_done"], 0.0)
        self.assertEqual(d["hctx"][1]["type"], "poll")
        self.assertEqual(d["hctx"][1]["io_poll"], [100, 100, 100])
        self.assertEqual(d["hctx"][1]["io_poll_rate"], [50.0, 50.0, 50.0])
        text = top.render_text(top.rates(a, b))
        self.assertRegex(text, r"(?m)^hctx cxmq1/1 type=poll .* io_poll=100,100,100 "
                         r"io_poll/s=50.0,50.0,50.0$")
        self.assertRegex(text, r"(?m)^device cxmq1 .* scheduler=kyber ")

    def test_truncated_stats(self):
        text = FakeTree.stats_text(self.dev)
        cut = text[:text.index("hctx1:") + 30]  # a page ending inside hctx1's line
        st = top.parse_stats(cut)
        self.assertIn(0, st["hctx"])
        self.assertNotIn(1, st["hctx"])
        self.assertEqual(st["ctx"][(0, 1)]["pending"], 0)

    def test_parsers(self):
        self.assertEqual(top.parse_scheduler("none [mq-deadline] kyber\n"), "mq-deadline")
        self.assertEqual(top.parse_cpu_list("0, 2\n"), [0, 2])
        self.assertEqual(top.count_list("HCTX pending:\n"), (0, False))
        self.assertEqual(top.fmt_hist([0, 3, 0, 0, 0, 0, 0, 0, 0, 2]), "1:3,256+:2")
        self.assertEqual(top.fmt_hist([0] * 10), "none")

    def test_batch_text_format(self):
        """render_text: a header line with time and interval, then device, hctx, ctx lines of
        key=value fields."""
        text = top.render_text(top.rates(*two_samples(self.tree)), show_ctx=True)
        lines = text.splitlines()
        self.assertRegex(lines[0], r"^cxmq-top time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} "
                         r"interval=2\.000 devices=1$")
        self.assertEqual(lines[1],
                         "device cxmq0 iops=1250.0 read_iops=1000.0 write_iops=250.0 "
                         "read_kB/s=4000.0 write_kB/s=1000.0 merged/s=100.0 requests/s=1250.0 "
                         "busy/s=10.0 poll_done/s=0.0 inflight=0 scheduler=none hw_queues=2")
        self.assertEqual(lines[2],
                         "hctx cxmq0/0 type=default cpus=0,1 queued/s=625.0 dispatched/s=625.0 "
                         "merged/s=25.0 completed/s=625.0 runs/s=200.0 direct/s=312.5 "
                         "busy/s=5.0 tags=0/64 map_busy=0/64 active_queues=0 pending=0 "
                         "hist=1:200,4:200 hist_delta=1:200,4:200")
        self.assertEqual(lines[3],
                         "ctx cxmq0/0/cpu0 dispatched/s=312.5 merged/s=12.5 completed/s=312.5 "
                         "read_completed/s=250.0 write_completed/s=62.5 staged=0")
        self.assertEqual([l.split()[0] for l in lines],
                         ["cxmq-top", "device", "hctx", "ctx", "ctx", "hctx", "ctx", "ctx"])
        for line in lines[1:]:
            for field in line.split()[2:]:
                self.assertRegex(field, r"^[a-z_/A-Z]+=\S+$")

    def test_batch_program(self):
        """The script itself in batch mode: -n snapshots, -p filter, rates of an idle tree."""
        self.tree.devices.append(FakeDevice("cxmq1", [[0]]))
        self.tree.write()
        out = subprocess.run(
            [sys.executable, SCRIPT, "--root", self.root, "-b", "-n", "2", "-d", "0.2",
             "-p", "cxmq1"], check=True, capture_output=True, text=True).stdout
        heads = re.findall(r"(?m)^cxmq-top time=\S+ interval=(\S+) devices=1$", out)
        self.assertEqual(len(heads), 2)
        for iv in heads:
            self.assertAlmostEqual(float(iv), 0.2, delta=0.15)
        self.assertEqual(len(re.findall(r"(?m)^device cxmq1 iops=0\.0 ", out)), 2)
        self.assertNotIn("cxmq0", out)
        self.assertEqual(len(re.findall(r"(?m)^hctx cxmq1/0 ", out)), 2)
        self.assertEqual(len(re.findall(r"(?m)^ctx cxmq1/0/cpu0 ", out)), 2)

    def test_help(self):
        out = subprocess.run([sys.executable, SCRIPT, "--help"], check=True,
                             capture_output=True, text=True).stdout
        for opt in ("-b", "-n", "-d", "-p", "--ctx", "--root"):
            self.assertIn(opt, out)


if __name__ == "__main__":
    unittest.main()
