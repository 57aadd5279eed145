#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host test of scripts/bench-plot on synthetic summary.json files in a temporary directory.

The files have the layout scripts/bench.sh's table code writes (per target the randread job's
results at the top, the other jobs under "jobs", labels and descriptions); the script runs as a
program, as bench.sh runs it, on a plain run's directory and on a --scaling directory
(cpus<N>/summary.json). Standard library only; skipped when matplotlib is importable neither
here nor by Debian's /usr/bin/python3 (the script reruns itself with that one):
    python3 tests/host/bench_plot_test.py [-v]
"""

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "bench-plot")
PNG = b"\x89PNG\r\n\x1a\n"
LABELS = {"cxmq": "A cxmq", "nullb-mq": "B null_blk mq", "nullb-bio": "C null_blk bio",
          "floor": "F floor", "cxmq-poll": "K cxmq polled"}
SCALING_JOBS = ["scaling-qd1", "scaling-qd8", "scaling-qd32", "scaling-qd128"]


def have_matplotlib():
    if importlib.util.find_spec("matplotlib") is not None:
        return True
    try:
        return subprocess.run(["/usr/bin/python3", "-c", "import matplotlib"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False


def res(iops, p50=50.0, p99=120.0, rounds=3, failed=0):
    """A job's results as bench.sh's table code keeps them."""
    rs = [{"round": i + 1, "iops": iops * (0.97 + 0.03 * i), "p50": p50, "p99": p99}
          for i in range(rounds)]
    r = {"rounds": rs, "failed": failed, "iou_wrk": [], "unavailable": None}
    if rs:
        v = [x["iops"] for x in rs]
        r.update(iops_mean=sum(v) / len(v), iops_min=min(v), iops_max=max(v),
                 p50_mean=p50, p99_mean=p99)
    return r


def summary(vcpus, jobs, per_target, unavailable=()):
    """per_target: target -> {job: results}; randread goes to the top as in bench.sh."""
    targets = {}
    for t, js in per_target.items():
        top = dict(js.get("randread", res(0, rounds=0)))
        top["unavailable"] = None
        top["prefill_mbs"] = []
        top["jobs"] = {j: r for j, r in js.items() if j != "randread"}
        targets[t] = top
    for t in unavailable:
        targets[t] = dict(res(0, rounds=0), unavailable="no module file x.ko", prefill_mbs=[],
                          jobs={})
    return {"guest": {"kernel": "6.1.0-28-amd64", "vcpus": str(vcpus), "fio": "fio-3.33",
                      "rounds": "3", "runtime": "10"},
            "jobs": jobs, "targets": targets,
            "labels": {t: LABELS.get(t, t) for t in targets},
            "descriptions": {j: "4k randread, synthetic" for j in jobs}}


def run(*args):
    return subprocess.run([SCRIPT] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)


@unittest.skipUnless(have_matplotlib(), "matplotlib is not installed (python3-matplotlib)")
class BenchPlotTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bench-plot-test.")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write(self, sub, s):
        d = os.path.join(self.dir, sub)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "summary.json"), "w") as f:
            json.dump(s, f)
        return d

    def assertPng(self, path):
        self.assertTrue(os.path.isfile(path), path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), PNG, path)

    def test_run(self):
        jobs = ["randread", "randread-libaio", "seqwrite", "poll-qd1"]
        d = self.write("run", summary(2, jobs, {
            "cxmq": {"randread": res(500e3), "randread-libaio": res(480e3),
                     "seqwrite": res(300e3, failed=1)},
            "nullb-mq": {"randread": res(520e3), "seqwrite": res(310e3)},
            "nullb-bio": {"randread": res(600e3, p50=40, p99=900)},
            "floor": {"randread": res(650e3), "randread-libaio": res(640e3)},
            # a target whose every round failed: no data, left out
            "cxmq-poll": {"poll-qd1": res(0, rounds=0, failed=3)},
        }, unavailable=["brd"]))
        p = run(d)
        self.assertEqual(p.returncode, 0, p.stderr)
        want = [os.path.join(d, "%s-%s.png" % (k, j))
                for j in ("randread", "randread-libaio", "seqwrite") for k in ("iops", "latency")]
        self.assertEqual(p.stdout.split(), want)
        for f in want:
            self.assertPng(f)
        # poll-qd1 has no result anywhere: no chart
        self.assertFalse(os.path.exists(os.path.join(d, "iops-poll-qd1.png")))

    def test_no_summary(self):
        p = run(self.dir)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("summary.json", p.stderr)

    def test_scaling(self):
        base = {"cxmq": 100e3, "nullb-mq": 110e3, "nullb-bio": 130e3}
        for n in (1, 2, 4):
            per = {t: {j: res(v * n ** 0.7 * (1 + k), p50=10.0 * (k + 1), p99=30.0 * (k + 1))
                       for k, j in enumerate(SCALING_JOBS)} for t, v in base.items()}
            if n == 4:
                del per["nullb-bio"]
            self.write("cpus%d" % n, summary(n, SCALING_JOBS, per,
                                               unavailable=["nullb-bio"] if n == 4 else ()))
        p = run("--scaling", self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.split()
        txt = os.path.join(self.dir, "scaling.txt")
        self.assertEqual(out[0], txt)
        pngs = ["scaling-%dcpu.png" % n for n in (1, 2, 4)] + \
               ["scaling-qd%d.png" % d for d in (1, 8, 32, 128)]
        self.assertEqual(out[1:], [os.path.join(self.dir, f) for f in pngs])
        for f in pngs:
            self.assertPng(os.path.join(self.dir, f))
        with open(txt) as f:
            text = f.read()
        lines = text.splitlines()
        head = next(l for l in lines if l.startswith("vCPUs"))
        for w in ("A cxmq", "B null_blk mq", "C null_blk bio", "cxmq/null_blk-mq",
                  "cxmq/null_blk-bio"):
            self.assertIn(w, head)
        # 2 vCPUs, iodepth 8: cxmq 2^0.7 * 100k * 2 against null_blk-mq's 110k: 0.91
        row = next(l.split() for l in lines if l.split()[:2] == ["2", "8"])
        self.assertEqual(row[2], "%.0f" % (100e3 * 2 ** 0.7 * 2))
        self.assertEqual(row[5:7], ["0.91", "0.77"])
        # 4 vCPUs: nullb-bio unavailable, its ratio n/a
        row = next(l.split() for l in lines if l.split()[:2] == ["4", "32"])
        self.assertEqual(row[4], "n/a")
        self.assertEqual(row[6], "n/a")
        self.assertIn("unavailable", text)


if __name__ == "__main__":
    unittest.main()
