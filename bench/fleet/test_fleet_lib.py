#!/usr/bin/python3
"""Unit checks of bench/fleet's parsing and report helpers: python3 -m unittest bench/fleet/test_fleet_lib.py"""
import sys
import unittest
import xml.dom.minidom
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fleet_lib as fl  # noqa: E402


class Parsing(unittest.TestCase):
    def test_rate(self):
        self.assertEqual(fl.parse_rate("100mbit"), 100_000_000)
        self.assertEqual(fl.parse_rate("1gbit"), 10**9)
        self.assertEqual(fl.parse_rate("1.5Gbit"), 1_500_000_000)
        self.assertEqual(fl.parse_rate("10mbps"), 80_000_000)  # tc: bps is bytes
        for bad in ("", "fast", "100mbt", "-1mbit", "1bit"):
            with self.assertRaises(ValueError, msg=bad):
                fl.parse_rate(bad)
        self.assertEqual(fl.fmt_rate(100_000_000), "100mbit")

    def test_size_duration_lists(self):
        self.assertEqual(fl.parse_size("256M"), 256 << 20)
        self.assertEqual(fl.parse_size("1GiB"), 1 << 30)
        self.assertEqual(fl.parse_size("256K"), 256 << 10)
        for bad in ("", "0", "12X", "M"):
            with self.assertRaises(ValueError, msg=bad):
                fl.parse_size(bad)
        self.assertEqual(fl.parse_duration("0ms"), 0.0)
        self.assertAlmostEqual(fl.parse_duration("5ms"), 0.005)
        self.assertAlmostEqual(fl.parse_duration("1.5s"), 1.5)
        with self.assertRaises(ValueError):
            fl.parse_duration("5 min")
        self.assertEqual(fl.parse_hosts("4,8,16,32"), [4, 8, 16, 32])
        self.assertEqual(fl.parse_hosts("8, 8"), [8])
        for bad in ("", "0", "4,x", "300"):
            with self.assertRaises(ValueError, msg=bad):
                fl.parse_hosts(bad)
        with self.assertRaises(ValueError):
            fl.parse_list("torrenty,rtorrent", ["torrenty", "aria2c"], "client")

    def test_flag_detection(self):
        seed_help = "  --no-pex             no peer exchange\n  --super-seed-ratio R  x\n"
        self.assertFalse(fl.supports_flag(seed_help, "--super-seed"))  # a longer flag is not it
        self.assertTrue(fl.supports_flag(seed_help + "  --super-seed  hand out\n", "--super-seed"))
        sup = fl.origin_support(seed_help, "  --web-seed-max-rate R   cap\n")
        self.assertIsNone(sup["seeder"])
        self.assertIsNone(sup["webseed"])
        self.assertIn("not supported by this build", sup["superseed"])


class Report(unittest.TestCase):
    def test_percentiles_nearest_rank(self):
        v = [5.0, 1.0, 3.0, 2.0, 4.0, 8.0, 7.0, 6.0]
        self.assertEqual(fl.percentile(v, 50), 4.0)
        self.assertEqual(fl.percentile(v, 99), 8.0)  # 8 hosts: p99 is the last host
        self.assertEqual(fl.percentile(v, 100), 8.0)
        self.assertEqual(fl.percentile(list(range(1, 101)), 99), 99)
        self.assertEqual(fl.percentile([2.5], 50), 2.5)

    def test_t_star(self):
        # 64 MiB over 100 Mbit/s: 5.37 s; a slower origin dominates.
        self.assertAlmostEqual(fl.t_star(64 << 20, 10**8, 10**8), 5.3687, places=3)
        self.assertAlmostEqual(fl.t_star(64 << 20, 5 * 10**7, 10**8), 10.737, places=2)
        self.assertTrue(fl.targets(p99=6.0, p100=9.0, ts=5.0))
        self.assertFalse(fl.targets(p99=8.0, p100=9.0, ts=5.0))   # p99 > 1.25 T* + 1
        self.assertFalse(fl.targets(p99=6.0, p100=9.6, ts=5.0))   # p100 > 1.5 T* + 2

    def run_dict(self, done, tx=None):
        return {"n": len(done), "client": "torrenty", "origin": "seeder", "size": 64 << 20, "pieces": 256,
                "host_bits": 10**8, "origin_bits": 10**8, "done": done, "origin_tx_bytes": tx,
                "cpu_seconds": 4.0, "idle_pct": 37.0, "wall_s": 8.0, "cpus": 2}

    def test_summarize_and_table(self):
        r = fl.summarize(self.run_dict([6.0, 7.0, 6.5, 7.5], tx=(64 << 20) * 1.5))
        self.assertEqual((r["first"], r["p50"], r["p99"], r["p100"]), (6.0, 6.5, 7.5, 7.5))
        self.assertAlmostEqual(r["origin_copies"], 1.5)
        self.assertAlmostEqual(r["cpu_per_gib"], 4.0 / 0.25)
        self.assertAlmostEqual(r["pieces_per_s"], 4 * 256 / 7.5)
        self.assertTrue(r["meets_targets"])
        self.assertFalse(fl.summarize(self.run_dict([6.0, 7.0, 6.5, 8.0]))["meets_targets"])  # p99 > 1.25 T* + 1
        row = fl.table_row(r)
        self.assertEqual(row.count("|"), fl.TABLE_HEAD.splitlines()[0].count("|"))
        self.assertIn("| 7.50 | 5.37 | 1.40 | ✓ | 1.50 | 16.00 | 137 | 25 | 37 |", row)

        failed = fl.summarize(self.run_dict([6.0, None, 7.0, 8.0]))
        self.assertIsNone(failed.get("p100"))
        self.assertIn("FAILED: 3/4 hosts completed", fl.table_row(failed))
        self.assertEqual(fl.table_row(failed).count("|"), row.count("|"))

        skipped = fl.summarize(dict(self.run_dict([None] * 4), skipped="not supported by this build"))
        self.assertEqual(fl.table_row(skipped).count("|"), row.count("|"))

    def test_svg_is_well_formed(self):
        runs = [fl.summarize(self.run_dict([6.0, 7.0, 6.5, 8.0])),
                fl.summarize(dict(self.run_dict([None] * 4), skipped="x", client="aria2c"))]
        svg = fl.svg_plot(runs, "a <title> & more")
        xml.dom.minidom.parseString(svg)
        self.assertEqual(svg.count("<polyline"), 1)
        self.assertIn("T* = 5.37 s", svg)

    def test_idle_percent(self):
        a = fl.read_cpu_times("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3 4\n")
        b = fl.read_cpu_times("cpu  150 0 150 900 100 0 0 0 0 0\n")
        self.assertEqual(a, (800, 1000))
        self.assertAlmostEqual(fl.idle_percent(a, b), 100.0 * 200 / 300)


if __name__ == "__main__":
    unittest.main()
