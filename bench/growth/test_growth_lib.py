#!/usr/bin/python3
"""Unit checks of bench/growth's pure helpers: python3 -m unittest discover -s bench/growth -p 'test_*.py'"""
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import growth_lib as gl  # noqa: E402

KiB, MiB, GiB = gl.KiB, gl.MiB, gl.GiB


def row(group="size", size=GiB, files=1, piece=MiB, seeders=1, rate=0):
    r = dict(group=group, size=size, files=files, piece=piece, seeders=seeders, rate=rate)
    r["key"] = gl.row_key(r)
    return r


def run(wall, cpu, rss=40 * MiB, seeder_cpu=1.0):
    return dict(wall=wall, cpu=cpu, rss=rss, seeder_cpu=seeder_cpu)


class Parsing(unittest.TestCase):
    def test_size(self):
        self.assertEqual(gl.parse_size("1G"), GiB)
        self.assertEqual(gl.parse_size("16KiB"), 16 * KiB)
        self.assertEqual(gl.parse_size("256k"), 256 * KiB)
        self.assertEqual(gl.parse_size("1048576"), MiB)
        self.assertEqual(gl.parse_size("1.5M"), 3 * MiB // 2)
        for bad in ("", "0", "-1M", "12X", "M", "1 GB extra", "iB"):
            with self.assertRaises(ValueError, msg=bad):
                gl.parse_size(bad)
        self.assertEqual(gl.fmt_size(16 * KiB), "16 KiB")
        self.assertEqual(gl.fmt_size(10 * GiB), "10 GiB")
        self.assertEqual(gl.fmt_size(1000), "1000 B")

    def test_groups(self):
        self.assertEqual(gl.parse_groups(""), list(gl.GROUPS))
        self.assertEqual(gl.parse_groups("seeders, size"), ["size", "seeders"])
        for bad in ("sizes", "size,x", ","):
            with self.assertRaises(ValueError, msg=bad):
                gl.parse_groups(bad)

    def test_budget_from_header(self):
        self.assertEqual(gl.piece_memory_budget("  int64_t piece_memory_bytes = int64_t{32} << 20;\n"), 32 * MiB)
        self.assertEqual(gl.piece_memory_budget("int64_t piece_memory_bytes = int64_t{64} << 20;"), 64 * MiB)
        self.assertEqual(gl.piece_memory_budget("int64_t piece_memory_bytes = 1048576;"), MiB)
        self.assertEqual(gl.piece_memory_budget("nothing here", default=7), 7)
        header = Path(__file__).resolve().parents[2] / "io" / "session" / "session_config.h"
        if header.exists():  # the real header must still parse, or the report shows a stale budget
            self.assertIn("piece_memory_bytes", header.read_text())
            self.assertGreaterEqual(gl.piece_memory_budget(header.read_text(), default=-1), MiB)
        self.assertEqual(gl.effective_budget(32 * MiB, 16 * KiB), 32 * MiB)
        self.assertEqual(gl.effective_budget(32 * MiB, 64 * MiB), 64 * MiB)


class Matrix(unittest.TestCase):
    def test_full_matrix(self):
        rows = gl.matrix(aggregate_rate=2000 * 10**6)
        by = {g: [r for r in rows if r["group"] == g] for g in gl.GROUPS}
        self.assertEqual([r["size"] for r in by["size"]], [GiB, 4 * GiB, 10 * GiB])
        self.assertEqual([r["files"] for r in by["files"]], [10, 1000, 10000])
        self.assertEqual([r["piece"] for r in by["piece"]], [16 * KiB, 256 * KiB, MiB, 4 * MiB, 16 * MiB])
        self.assertEqual([r["seeders"] for r in by["seeders"]], [1, 8, 32])
        # The aggregate stays the same whatever the number of seeders.
        for r in by["seeders"]:
            self.assertAlmostEqual(r["rate"] * r["seeders"], 2000 * 10**6, delta=r["seeders"])
        self.assertTrue(all(r["rate"] == 0 for g in ("size", "files", "piece") for r in by[g]))
        self.assertEqual(len({r["key"] for r in rows}), len(rows))
        self.assertEqual(gl.seeder_cap(0, 8), 0)

    def test_scale_factor(self):
        first = row()
        self.assertEqual(gl.scale_factor(row(size=10 * GiB), first), 10)
        self.assertEqual(gl.scale_factor(row(files=10000), row(files=10)), 1000)
        # Piece group: 16 KiB first. The same bytes in 1024× fewer pieces may take no longer, but one
        # buffer of a 16 MiB piece may take 1024× the memory of a 16 KiB one.
        self.assertEqual(gl.scale_factor(row(piece=16 * MiB), row(piece=16 * KiB)), 1)
        self.assertEqual(gl.scale_factor(row(piece=16 * MiB), row(piece=16 * KiB), memory=True), 1024)
        self.assertEqual(gl.scale_factor(row(piece=16 * KiB), row(piece=MiB)), 64)
        self.assertEqual(gl.scale_factor(row(seeders=32), first), 32)
        self.assertEqual(gl.scale_factor(first, first), 1)
        self.assertEqual(gl.num_pieces(GiB + 1, MiB), 1025)


class Growth(unittest.TestCase):
    def test_ratios(self):
        g = gl.growth(row(size=4 * GiB), run(8.0, 8.0, 44 * MiB), row(), run(2.0, 1.0, 40 * MiB))
        self.assertAlmostEqual(g["wall"], 4.0)
        self.assertAlmostEqual(g["wall_per_size"], 1.0)
        self.assertAlmostEqual(g["cpu_gib"], 2.0)  # 2 s/GiB against 1 s/GiB
        self.assertAlmostEqual(g["rss"], 1.1)
        self.assertEqual(g["scale"], 4)
        self.assertIsNone(gl.growth(row(), None, row(), run(1, 1)))

    def test_verdict(self):
        first, big = row(), row(size=10 * GiB)
        linear = gl.growth(big, run(10.0, 10.0), first, run(1.0, 1.0))
        self.assertEqual(gl.verdict(linear), "≤ linear")
        noisy = gl.growth(big, run(11.0, 10.0), first, run(1.0, 1.0))  # 10% over: within tolerance
        self.assertEqual(gl.verdict(noisy), "≤ linear")
        slow = gl.growth(big, run(12.0, 10.0), first, run(1.0, 1.0))
        self.assertEqual(gl.verdict(slow), "super-linear (wall)")
        fat = gl.growth(big, run(5.0, 30.0, rss=500 * MiB), first, run(1.0, 1.0, rss=40 * MiB))
        self.assertEqual(gl.verdict(fat), "super-linear (cpu, rss)")
        # Same bytes, more seeders: time may grow up to linearly in seeders, not more.
        g = gl.growth(row(seeders=8), run(3.0, 1.0), row(seeders=1), run(1.0, 1.0))
        self.assertEqual(gl.verdict(g), "≤ linear")
        # Bigger pieces, same bytes: 1.3× the time is super-linear, 10× the RSS is not.
        g = gl.growth(row(piece=16 * MiB), run(1.3, 1.0, rss=400 * MiB), row(piece=16 * KiB),
                      run(1.0, 1.0, rss=40 * MiB))
        self.assertEqual(gl.verdict(g), "super-linear (wall)")
        self.assertEqual(gl.verdict(None), "–")

    def test_rss_check(self):
        self.assertEqual(gl.rss_verdict(50 * MiB, 20 * MiB, 32 * MiB), "within")
        self.assertEqual(gl.rss_verdict(60 * MiB, 20 * MiB, 32 * MiB), "**over**")
        self.assertEqual(gl.rss_verdict(None, 20 * MiB, 32 * MiB), "–")

    def test_summarize_uses_medians_of_successes(self):
        m = gl.summarize([run(1.0, 1.0), "run 2: timeout", run(3.0, 2.0), run(2.0, 9.0)])
        self.assertEqual(m["wall"], 2.0)
        self.assertEqual(m["cpu"], 2.0)
        self.assertIsNone(gl.summarize(["run 1: failed"]))


class Report(unittest.TestCase):
    def test_table(self):
        rows = [row(), row(size=4 * GiB), row(group="piece", piece=16 * KiB)]
        results = {rows[0]["key"]: [run(1.0, 1.0)], rows[1]["key"]: [run(4.4, 4.0), "run 2: timeout"],
                   rows[2]["key"]: ["run 1: exit 1"]}
        t = gl.table(rows, results, 20 * MiB, 32 * MiB).splitlines()
        ncols = len(gl.COLUMNS)
        self.assertEqual(len(t), 5)
        for line in t:
            self.assertEqual(line.count("|"), ncols + 1, line)
        self.assertIn("| 1.10 |", t[3])  # wall × / size ×
        self.assertIn("≤ linear", t[3])
        self.assertIn("1/2 — FAILED run 2: timeout", t[3])
        self.assertIn("| FAILED |", t[4])
        self.assertIn("| 1,024 |", t[2])  # pieces
        self.assertIn("20.0 / 32 | within", t[2])

    def test_replace_section(self):
        doc = "# B\n\n<!-- a:begin -->\nold\n<!-- a:end -->\n\ntail\n"
        out = gl.replace_section(doc, "a", "new $1 \\1")
        self.assertEqual(out, "# B\n\n<!-- a:begin -->\nnew $1 \\1\n<!-- a:end -->\n\ntail\n")
        out = gl.replace_section(doc, "b/c", "x")
        self.assertTrue(out.endswith("<!-- b/c:begin -->\nx\n<!-- b/c:end -->\n"))
        self.assertIn("old", out)


if __name__ == "__main__":
    unittest.main()
