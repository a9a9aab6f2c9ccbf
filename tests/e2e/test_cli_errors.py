"""CLI failures: non-zero exit, exactly one line on stderr, quickly; --help exits 0."""
import re
import unittest

from harness import (REPO_ROOT, MiB, TorrentyTestCase, free_port, make_torrent, tracker_url,
                     write_random_file)

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

    def assertFailsCleanly(self, args, code=None, says=None):
        res = self.run_torrenty(args, timeout=10, name="torrenty-err")
        if code is not None:
            self.assertEqual(res.returncode, code, f"torrenty {args}\n{res.stderr}")
        if says is not None:
            self.assertIn(says, res.stderr)
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
            "create of a missing path": ["create", str(self.path("missing")), "--tracker",
                                         tracker_url(free_port()), "-o", str(self.path("y.torrent"))],
            "download without torrent": ["download"],
        }
        for what, args in cases.items():
            with self.subTest(what):
                self.assertFailsCleanly([str(a) for a in args])

    def test_urls_and_unusable_magnets_give_one_clear_line(self):
        magnet = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=x"
        cases = {
            "download magnet without peers": (["download", magnet, "-o", self.out], "names no peers"),
            "download https": (["download", "https://example.com/x.torrent"], "URLs are not supported yet"),
            "download http": (["download", "http://example.com/x.torrent"], "URLs are not supported yet"),
            "info magnet": (["info", magnet], "magnet links are taken by download and serve only"),
        }
        for what, (cmd, says) in cases.items():
            with self.subTest(what):
                self.assertFailsCleanly([str(a) for a in cmd], code=1, says=says)
        self.assertFalse(self.out.exists(), "a failed magnet download created its output folder")

    def test_bad_sizes_give_one_clear_line(self):
        t = str(self.torrent)
        cases = {
            "create --piece-length 3M": (["create", self.data, "--piece-length", "3M"], "got '3M'"),
            "create --piece-length 8K": (["create", self.data, "--piece-length", "8K"], "from 16K"),
            "create --piece-length 1X": (["create", self.data, "--piece-length", "1X"], "got '1X'"),
            "download --piece-memory 1.5M": (["download", t, "-o", self.out, "--piece-memory", "1.5M"],
                                             "got '1.5M'"),
            "download --piece-memory 512K": (["download", t, "-o", self.out, "--piece-memory", "512K"],
                                             "at least 1M"),
            "bench --size 0": (["bench", "--size", "0"], "invalid size '0'"),
            "bench --size 10Q": (["bench", "--size", "10Q"], "invalid size '10Q'"),
            "bench --piece-length 100K": (["bench", "--piece-length", "100K"], "power of two"),
            "download --max-open-files 0": (["download", t, "-o", self.out, "--max-open-files", "0"],
                                            "--max-open-files needs a number from 1"),
            "seed --max-open-files x": (["seed", t, "--data", self.data, "--max-open-files", "x"],
                                        "--max-open-files needs a number from 1"),
            "serve --max-open-files -1": (["serve", "--max-open-files", "-1"],
                                          "--max-open-files needs a number from 1"),
        }
        for what, (args, says) in cases.items():
            with self.subTest(what):
                self.assertFailsCleanly([str(a) for a in args], code=2, says=says)

    def test_version(self):
        want = re.search(r"project\(torrenty VERSION (\d+\.\d+\.\d+)",
                         (REPO_ROOT / "CMakeLists.txt").read_text()).group(1)
        for args in (["--version"], ["version"]):
            with self.subTest(args[0]):
                res = self.run_torrenty(args, timeout=10, name="torrenty-version")
                self.assertEqual(res.returncode, 0, res.stderr)
                self.assertEqual(res.stdout, f"torrenty {want}\n")
                self.assertEqual(res.stderr, "")

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
