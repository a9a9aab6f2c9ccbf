"""`torrenty bench`: the machine-readable result (--json), the options that shape the payload
(--piece-length, --files, --seeders) and pieces/s as the headline of the text output."""
import json
import unittest

from harness import TorrentyTestCase

KEYS = {"size_bytes", "piece_length", "pieces", "files", "seeders", "wall_s", "mb_per_s",
        "pieces_per_s", "leecher_cpu_s", "leecher_cpu_s_per_gib", "seeder_cpu_s",
        "seeder_cpu_s_per_gib", "seeder_serving_cpu_s", "seeder_serving_cpu_s_per_gib", "peak_rss_mib",
        "verified"}


class Bench(TorrentyTestCase):

    def bench(self, args):
        res = self.run_torrenty(["bench"] + args, timeout=120, name="torrenty-bench")
        self.assertTorrentyOk(res, "torrenty bench")
        return res

    def test_json_is_one_object_with_every_figure(self):
        size = 8 << 20
        res = self.bench(["--size", "8M", "--piece-length", "256K", "--files", "3", "--seeders", "2",
                          "--json"])
        lines = [l for l in res.stdout.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, f"--json prints one line on stdout:\n{res.stdout}")
        r = json.loads(lines[0])
        self.assertEqual(set(r), KEYS)
        self.assertEqual(r["size_bytes"], size)
        self.assertEqual(r["piece_length"], 256 << 10)
        self.assertEqual(r["pieces"], 32)
        self.assertEqual(r["files"], 3)
        self.assertEqual(r["seeders"], 2)
        self.assertIs(r["verified"], True)
        self.assertGreater(r["wall_s"], 0)
        self.assertAlmostEqual(r["pieces_per_s"], 32 / r["wall_s"], delta=32 / r["wall_s"] * 1e-3)
        self.assertAlmostEqual(r["mb_per_s"], size / r["wall_s"] / 1e6, delta=size / r["wall_s"] / 1e9)
        self.assertAlmostEqual(r["leecher_cpu_s_per_gib"], r["leecher_cpu_s"] / (size / (1 << 30)),
                               delta=0.01 * max(1.0, r["leecher_cpu_s_per_gib"]))
        self.assertGreater(r["seeder_cpu_s"], 0)
        # Serving is part of the seeders' lifetime, which also holds their start-up check.
        self.assertGreaterEqual(r["seeder_serving_cpu_s"], 0)
        self.assertLessEqual(r["seeder_serving_cpu_s"], r["seeder_cpu_s"] + 0.02)
        self.assertGreater(r["peak_rss_mib"], 1)

    def test_hash_on_arrival_downloads_verified_data(self):
        # The shard takes the verdict the engine reached block by block (io/session/shard.cc)
        # instead of a hash pool result; the downloaded files must still equal the seed's.
        res = self.bench(["--size", "24M", "--piece-length", "4M", "--hash-on-arrival", "--json"])
        r = json.loads([l for l in res.stdout.splitlines() if l.strip()][0])
        self.assertEqual(r["pieces"], 6)
        self.assertIs(r["verified"], True)

    def test_hash_chunk_downloads_verified_data(self):
        # Pieces of 4 MiB go to the hash pool in 256 KiB chunks while they arrive
        # (TorrentConfig::hash_chunk_bytes); the last piece, 3 MiB, is shorter.
        res = self.bench(["--size", "23M", "--piece-length", "4M", "--hash-chunk", "256K", "--json"])
        r = json.loads([l for l in res.stdout.splitlines() if l.strip()][0])
        self.assertEqual(r["pieces"], 6)
        self.assertIs(r["verified"], True)

    def test_bad_hash_chunk_is_a_usage_error(self):
        res = self.run_torrenty(["bench", "--hash-chunk", "x"], timeout=15)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--hash-chunk needs a size", res.stderr)

    def test_text_output_leads_with_pieces_per_second(self):
        res = self.bench(["--size", "4M", "--piece-length", "64K"])
        lines = [l for l in res.stdout.splitlines() if l.strip()]
        self.assertIn("64 pieces of 64.0 KiB, 1 file(s), 1 seeder(s)", lines[0])
        self.assertRegex(lines[1], r"^\s*pieces/s\s+\d+$")
        self.assertTrue(any(l.split()[:2] == ["wall", "seconds"] for l in lines[2:]), res.stdout)

    def test_help_names_every_option(self):
        res = self.run_torrenty(["bench", "--help"], timeout=15)
        self.assertTorrentyOk(res, "torrenty bench --help")
        for opt in ("--size", "--piece-length", "--files", "--seeders", "--json",
                    "--hash-on-arrival", "--hash-chunk"):
            self.assertIn(opt, res.stdout)

    def test_bad_file_counts_are_usage_errors(self):
        for args, msg in [(["--files", "0"], "--files needs a number from 1 to 100000"),
                          (["--files", "x"], "--files needs a number from 1 to 100000"),
                          (["--size", "10", "--files", "11"], "--files must not exceed --size")]:
            res = self.run_torrenty(["bench"] + args, timeout=15)
            self.assertEqual(res.returncode, 2, args)
            self.assertIn(msg, res.stderr, args)


if __name__ == "__main__":
    unittest.main()
