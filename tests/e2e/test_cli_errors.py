"""CLI failures: non-zero exit, exactly one line on stderr, quickly; --help exits 0."""
import unittest

from harness import MiB, TorrentyTestCase, free_port, make_torrent, tracker_url, write_random_file

SUBCOMMANDS = ["download", "seed", "create", "info", "bench"]


class CliErrors(TorrentyTestCase):

    def setUp(self):
        super().setUp()
        data = self.path("data")
        write_random_file(data / "f.bin", 1 * MiB + 1)
        self.data = data
        self.torrent = make_torrent(data / "f.bin", tracker_url(free_port()), self.path("f.torrent"))
        self.garbage = self.path("garbage.torrent")
        self.garbage.write_bytes(b"this is not bencode \x00\xff" * 50)
        self.truncated = self.path("truncated.torrent")
        self.truncated.write_bytes(self.torrent.read_bytes()[:100])
        self.out = self.path("out")

    def assertFailsCleanly(self, args):
        res = self.run_torrenty(args, timeout=10, name="torrenty-err")
        self.assertNotEqual(res.returncode, 0, f"torrenty {args} exited 0\n{res.proc.tail()}")
        self.assertGreater(res.returncode, 0, f"torrenty {args} died by a signal ({res.returncode})\n"
                           + res.proc.tail())
        self.assertEqual(len(res.stderr_lines()), 1,
                         f"torrenty {args}: expected exactly one line on stderr, got:\n{res.stderr}")
        self.assertLess(res.elapsed, 5.0, f"torrenty {args} took {res.elapsed:.1f}s to fail")

    def test_failures(self):
        t, g = str(self.torrent), str(self.garbage)
        cases = {
            "no arguments": [],
            "unknown subcommand": ["frobnicate"],
            "unknown flag": ["download", t, "--no-such-flag"],
            "missing torrent (download)": ["download", str(self.path("nope.torrent")), "-o", self.out],
            "missing torrent (info)": ["info", str(self.path("nope.torrent"))],
            "missing torrent (seed)": ["seed", str(self.path("nope.torrent")), "--data", self.data],
            "garbage torrent (info)": ["info", g],
            "garbage torrent (download)": ["download", g, "-o", self.out],
            "garbage torrent (seed)": ["seed", g, "--data", self.data],
            "truncated torrent (info)": ["info", str(self.truncated)],
            "bad --port (too big)": ["download", t, "-o", self.out, "--port", "99999"],
            "bad --port (not a number)": ["download", t, "-o", self.out, "--port", "abc"],
            "bad --port (negative)": ["seed", t, "--data", self.data, "--port", "-5"],
            "bad --peer": ["download", t, "-o", self.out, "--peer", "127.0.0.1"],
            "seed without --data": ["seed", t],
            "create without --tracker": ["create", str(self.data), "-o", str(self.path("x.torrent"))],
            "create of a missing path": ["create", str(self.path("missing")), "--tracker",
                                         tracker_url(free_port()), "-o", str(self.path("y.torrent"))],
            "download without torrent": ["download"],
        }
        for what, args in cases.items():
            with self.subTest(what):
                self.assertFailsCleanly([str(a) for a in args])

    def test_help(self):
        for sub in [None] + SUBCOMMANDS:
            args = ["--help"] if sub is None else [sub, "--help"]
            with self.subTest(" ".join(args)):
                res = self.run_torrenty(args, timeout=10, name="torrenty-help")
                self.assertEqual(res.returncode, 0, f"torrenty {' '.join(args)} exited {res.returncode}\n"
                                 + res.proc.tail())
                self.assertTrue((res.stdout + res.stderr).strip(), "--help printed nothing")


if __name__ == "__main__":
    unittest.main()
