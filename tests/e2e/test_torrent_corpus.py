"""`torrenty info` and `torrenty info --json` over the generated corpus of torrents in the wild
(tests/e2e/make_corpus.py): what loads, what each file is called, what is refused and how, that
pad files are never listed, and that no byte from the torrent reaches the terminal unescaped.
Where libtorrent is installed, it must agree on which cases load (except the listed differences).
"""
import json
import re
import subprocess
import unittest

from harness import TorrentyTestCase, torrenty_bin
from make_corpus import LIBTORRENT_DIFFERS, cases

try:
    import libtorrent as lt
except ImportError:  # run with /usr/bin/python3 to get it
    lt = None

# Raw C0 controls (tab and newline are the output's own), DEL, and C1 controls encoded as UTF-8.
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]")


def terminal_escape(s):
    """What engine::EscapeForTerminal makes of a valid UTF-8 string."""
    short = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return "".join(short.get(ch) or ("".join(f"\\x{b:02x}" for b in ch.encode())
                                      if RAW_CONTROL.match(ch) or ch in "\t\n" else ch) for ch in s)


class TorrentCorpus(TorrentyTestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.path("corpus")
        self.dir.mkdir()

    def _info(self, path, *flags):
        r = subprocess.run([torrenty_bin(), "info", *flags, str(path)], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10)
        return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8")

    def test_info_over_the_corpus(self):
        for name, (data, exp) in cases().items():
            p = self.dir / f"{name}.torrent"
            p.write_bytes(data)
            with self.subTest(case=name):
                rc, out, err = self._info(p)
                if "error" in exp:
                    self.assertEqual(rc, 1, out)
                    self.assertEqual(out, "")
                    self.assertEqual(err, f"torrenty info: {p}: {exp['error']}\n")
                    rc, out, err = self._info(p, "--json")
                    self.assertEqual((rc, out), (1, ""))
                    continue
                self.assertEqual(rc, 0, err)
                self.assertEqual(err, "")
                self.assertIsNone(RAW_CONTROL.search(out), repr(out))
                self._check_text(name, out, exp)

                rc, js, err = self._info(p, "--json")
                self.assertEqual(rc, 0, err)
                self.assertIsNone(RAW_CONTROL.search(js), repr(js))
                self._check_json(json.loads(js), exp, data)

    def _check_text(self, name, out, exp):
        lines = out.splitlines()
        self.assertEqual(lines[0], f"name: {terminal_escape(exp['name'])}")
        self.assertRegex(lines[2], r"^magnet: magnet:\?xt=urn:btih:[0-9a-f]{40}")
        self.assertRegex(lines[3], rf"^total size: {exp['total_size']} bytes ")
        files = lines[lines.index("files:") + 1:lines.index("trackers:")]
        self.assertEqual(len(files), len(exp["files"]), out)
        for line, (path, size, attrs) in zip(files, exp["files"]):
            self.assertTrue(line.startswith(f"  {size}  {path}"), f"{line!r} vs {path!r}")
            self.assertEqual("executable" in line, "x" in attrs, line)
            self.assertEqual("hidden" in line, "h" in attrs, line)
            self.assertEqual("symlink to" in line, "l" in attrs, line)
        self.assertNotIn(".pad", out)
        self.assertNotIn("_____padding_file_", out)
        if "comment" in exp:
            self.assertIn(f"comment: {terminal_escape(exp['comment'])}\n", out)

    def _check_json(self, j, exp, data):
        self.assertEqual(set(j), {"name", "info_hash", "magnet", "piece_length", "pieces", "total_size", "private",
                                  "files", "trackers", "web_seeds", "http_seeds", "comment", "created_by"})
        self.assertEqual(j["name"], exp["name"])
        self.assertEqual([[x["path"], x["size"], x["attrs"]] for x in j["files"]], exp["files"])
        self.assertEqual(j["total_size"], exp["total_size"])
        self.assertRegex(j["info_hash"], "^[0-9a-f]{40}$")
        for key in ("trackers", "web_seeds", "http_seeds", "comment", "pieces"):
            if key in exp:
                self.assertEqual(j[key], exp[key], key)
        for x in j["files"]:
            self.assertNotIn("..", x["path"].split("/"))
            self.assertFalse(x["path"].startswith("/"))
            if "l" in x["attrs"]:
                self.assertEqual(x["symlink_target"], exp["symlinks"][x["path"]])

    @unittest.skipIf(lt is None, "python3-libtorrent not available (run with /usr/bin/python3)")
    def test_libtorrent_agrees_on_what_loads(self):
        for name, (data, exp) in cases().items():
            with self.subTest(case=name):
                try:
                    lt.torrent_info(data)
                    lt_loads = True
                except RuntimeError:
                    lt_loads = False
                ours = "error" not in exp
                if name in LIBTORRENT_DIFFERS:
                    self.assertNotEqual(ours, lt_loads, LIBTORRENT_DIFFERS[name])
                else:
                    self.assertEqual(ours, lt_loads)

    def test_json_escaping(self):
        # Every character that needs escaping in JSON, in every string field.
        nasty = 'q"uote\\back\x00\x01\x1f\x7f\u0085 caf\u00e9 \U0001f600'
        from make_corpus import single, torrent
        data = torrent(single(name="n"), comment=nasty, **{"created by": nasty, "announce": nasty,
                                                         "url-list": [nasty]})
        data = data[:-1] + b"7:comment" + b"0:" + b"e"  # a repeated key must not win
        p = self.dir / "nasty.torrent"
        p.write_bytes(data + b"\xff\n")
        rc, js, err = self._info(p, "--json")
        self.assertEqual(rc, 0, err)
        self.assertIsNone(RAW_CONTROL.search(js), repr(js))
        j = json.loads(js)
        self.assertEqual(j["comment"], nasty)
        self.assertEqual(j["created_by"], nasty)
        self.assertEqual(j["trackers"], [[nasty.strip()]])
        self.assertEqual(j["web_seeds"], [nasty.strip()])
        # Invalid UTF-8 cannot be represented in JSON: it becomes U+FFFD.
        data = torrent(single(name="n"), comment=b"bad\xff\xc3")
        p.write_bytes(data)
        rc, js, err = self._info(p, "--json")
        self.assertEqual(json.loads(js)["comment"], "bad\ufffd\ufffd")
        # And the text form escapes the same bytes instead.
        rc, out, err = self._info(p)
        self.assertIn("comment: bad\\xff\\xc3\n", out)


if __name__ == "__main__":
    unittest.main()
