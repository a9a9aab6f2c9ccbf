"""torrenty create: its torrents work with libtorrent, aria2c and torrenty itself."""
import json
import os
import re
import subprocess
import unittest

from harness import (KiB, MiB, TorrentyTestCase, bdecode, free_port, info_hash, info_hash_stdlib,
                     make_torrent, make_tree, tracker_url, wait_port_listening, write_random_file)

# What libtorrent (the reference loader) reads from a .torrent, as JSON.
LT_SHOW = r"""
import json, sys
import libtorrent as lt
ti = lt.torrent_info(sys.argv[1])
fs = ti.files()
print(json.dumps({
    "name": ti.name(),
    "info_hash": str(ti.info_hash()),
    "trackers": [[t.tier, t.url] for t in ti.trackers()],
    "comment": ti.comment(),
    "creator": ti.creator(),
    "web_seeds": [w["url"] for w in ti.web_seeds()],
    "files": [[fs.file_path(i), fs.file_size(i)] for i in range(fs.num_files())],
    "piece_length": ti.piece_length(),
    "num_pieces": ti.num_pieces(),
    "private": ti.priv(),
}))
"""


def lt_show(torrent):
    r = subprocess.run(["/usr/bin/python3", "-c", LT_SHOW, str(torrent)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"libtorrent rejected {torrent}:\n{r.stdout.decode(errors='replace')}")
    return json.loads(r.stdout)


class CreateTorrents(TorrentyTestCase):

    def create(self, path, announce, out, *extra):
        res = self.run_torrenty(["create", path, "--tracker", announce, "-o", out, *extra], timeout=60,
                                name="torrenty-create")
        self.assertTorrentyOk(res, "torrenty create")
        self.assertTrue(out.exists(), f"torrenty create wrote no {out}")
        return out

    def test_created_tree_torrent_libtorrent_seeds_torrenty_downloads(self):
        src = self.path("src")
        tree = make_tree(src / "tree")
        port = free_port()
        torrent = self.create(tree, tracker_url(port), self.path("tree.torrent"),
                              "--piece-length", 256 * KiB)
        meta = bdecode(torrent.read_bytes())
        self.assertEqual(meta[b"announce"].decode(), tracker_url(port))
        self.assertEqual(meta[b"info"][b"piece length"], 256 * KiB)
        ih = info_hash(torrent)
        self.tracker([ih], port=port)
        self.start_lt_seeder(torrent, src)  # libtorrent checks the original data against it
        out = self.path("out")
        res = self.run_torrenty(["download", torrent, "-o", out, "--port", free_port()], timeout=60)
        self.assertTorrentyOk(res, "torrenty download")
        self.assertSameData(tree, out / "tree")

    def test_created_file_torrent_torrenty_seeds_libtorrent_downloads(self):
        data = self.path("data")
        write_random_file(data / "single.bin", 20 * MiB + 4097)
        port = free_port()
        torrent = self.create(data / "single.bin", tracker_url(port), self.path("single.torrent"))
        ih = info_hash(torrent)
        tracker = self.tracker([ih], port=port)
        sport = free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", data, "--port", sport], name="torrenty-seed")
        wait_port_listening(sport, 60, proc=seed)
        tracker.wait_for_swarm(ih, 30, seeders=1, procs=[seed])
        leech = self.start_lt_peer(torrent, self.path("out"), "leech")  # finds torrenty via the tracker
        leech.wait_for_output("DONE", 60)
        self.assertSameData(data / "single.bin", self.path("out", "single.bin"))

    def test_aria2c_accepts_created_torrent_and_info_hash_matches(self):
        tree = make_tree(self.path("src", "meta-tree"))
        torrent = self.create(tree, tracker_url(free_port()), self.path("meta.torrent"))
        rc, text = self.aria2_show(torrent)
        self.assertEqual(rc, 0, f"aria2c -S rejected the torrent:\n{text}")
        m = re.search(r"Info Hash:\s*([0-9a-fA-F]{40})", text)
        self.assertIsNotNone(m, f"no Info Hash in aria2c -S output:\n{text}")
        aria_ih = m.group(1).lower()
        self.assertEqual(aria_ih, info_hash(torrent))
        self.assertEqual(aria_ih, info_hash_stdlib(torrent))
        self.assertEqual(aria_ih, self.torrenty_info_hash(torrent))
        for rel in ("a/b/c/deep.bin", "empty.txt", "z/last.bin"):
            self.assertIn(rel, text)

    def test_private_flag_and_piece_length(self):
        data = self.path("data")
        write_random_file(data / "p.bin", 3 * MiB + 1)
        torrent = self.create(data / "p.bin", tracker_url(free_port()), self.path("p.torrent"),
                              "--private", "--piece-length", 1 * MiB)
        info = bdecode(torrent.read_bytes())[b"info"]
        self.assertEqual(info.get(b"private"), 1)
        self.assertEqual(info[b"piece length"], 1 * MiB)
        self.assertEqual(info[b"length"], 3 * MiB + 1)
        self.assertEqual(len(info[b"pieces"]), 4 * 20)
        self.assertEqual(info[b"name"], b"p.bin")


    def test_defaults_tiers_comment_source_web_seeds_as_libtorrent_reads_them(self):
        tree = make_tree(self.path("src", "album"))
        cwd = self.path("cwd")
        cwd.mkdir()
        res = self.run_torrenty(["create", tree, "--tracker", "http://a.example/ann, http://b.example/ann",
                                 "--tracker", "udp://c.example:6969", "--comment", "hello world",
                                 "--source", "SRC", "--web-seed", "http://w1.example/",
                                 "--web-seed=http://w2.example/files/", "--piece-length", "32K"],
                                timeout=60, cwd=cwd, name="torrenty-create")
        self.assertTorrentyOk(res, "torrenty create")
        torrent = cwd / "album.torrent"  # -o defaults to <name>.torrent in the current folder
        self.assertTrue(torrent.exists(), f"no {torrent}; stdout:\n{res.stdout}")
        self.assertEqual(res.stderr.strip(), "", "a small input printed progress")
        lines = res.stdout.splitlines()
        self.assertRegex(lines[0], r"^wrote album\.torrent: \d+ files, ")
        lt = lt_show(torrent)
        self.assertEqual(lines[1], f"info-hash: {lt['info_hash']}")
        self.assertEqual(lt["info_hash"], info_hash_stdlib(torrent))
        self.assertEqual(lt["name"], "album")
        # libtorrent shuffles the URLs inside a tier, as BEP 12 says
        self.assertEqual(sorted(lt["trackers"]), [[0, "http://a.example/ann"], [0, "http://b.example/ann"],
                                                  [1, "udp://c.example:6969"]])
        self.assertEqual(lt["comment"], "hello world")
        self.assertRegex(lt["creator"], r"^torrenty/\d+\.\d+\.\d+$")
        self.assertEqual(lt["web_seeds"], ["http://w1.example/", "http://w2.example/files/"])
        self.assertEqual(lt["piece_length"], 32 * KiB)
        meta = bdecode(torrent.read_bytes())
        self.assertEqual(meta[b"info"][b"source"], b"SRC")
        self.assertEqual(meta[b"announce"], b"http://a.example/ann")
        # torrenty info agrees with the line create printed
        self.assertEqual(self.torrenty_info_hash(torrent), lt["info_hash"])

    def test_without_tracker_has_no_announce_and_downloads_by_peer(self):
        data = self.path("data")
        write_random_file(data / "nt.bin", 3 * MiB + 3)
        out = self.path("nt.torrent")
        res = self.run_torrenty(["create", data / "nt.bin", "-o", out], timeout=60, name="torrenty-create")
        self.assertTorrentyOk(res, "torrenty create")
        self.assertIn(f"wrote {out}: 1 file, 3.0 MiB", res.stdout)
        meta = bdecode(out.read_bytes())
        self.assertNotIn(b"announce", meta)
        self.assertNotIn(b"announce-list", meta)
        self.assertEqual(lt_show(out)["trackers"], [])
        sport = free_port()
        seed = self.start_torrenty(["seed", out, "--data", data, "--port", sport], name="torrenty-seed")
        wait_port_listening(sport, 60, proc=seed)
        dl = self.run_torrenty(["download", out, "-o", self.path("dl"), "--port", free_port(),
                                "--peer", f"127.0.0.1:{sport}"], timeout=60)
        self.assertTorrentyOk(dl, "torrenty download")
        self.assertSameData(data / "nt.bin", self.path("dl", "nt.bin"))

    def test_follows_symlinks_like_mktorrent(self):
        src = self.path("src")
        tree = make_tree(src / "linked")
        write_random_file(src / "outside" / "sub" / "far.bin", 300 * KiB + 7)
        write_random_file(src / "outside" / "single.bin", 70 * KiB)
        os.symlink(src / "outside" / "sub", tree / "dirlink")
        os.symlink("../outside/single.bin", tree / "filelink.bin")
        ours = self.create(tree, "http://t.example/ann", self.path("ours.torrent"), "--piece-length", "256K")
        theirs = make_torrent(tree, "http://t.example/ann", self.path("theirs.torrent"), piece_log2=18)
        a = bdecode(ours.read_bytes())[b"info"]
        b = bdecode(theirs.read_bytes())[b"info"]
        files = [b"/".join(f[b"path"]) for f in a[b"files"]]
        self.assertIn(b"dirlink/far.bin", files)
        self.assertIn(b"filelink.bin", files)
        self.assertEqual(a[b"files"], b[b"files"])
        self.assertEqual(a[b"pieces"], b[b"pieces"], "piece hashes differ from mktorrent's")
        shown = dict(lt_show(ours)["files"])
        self.assertEqual(shown["linked/filelink.bin"], 70 * KiB)

    def test_dangling_link_and_link_loop_are_refused_with_a_reason(self):
        for kind in ("dangling", "loop"):
            with self.subTest(kind):
                tree = make_tree(self.path(kind, "tree"))
                if kind == "dangling":
                    os.symlink("no-such-file", tree / "broken")
                    want = "dangling symbolic link: "
                else:
                    os.symlink("..", tree / "a" / "up")
                    want = "symbolic link loop: "
                out = self.path(f"{kind}.torrent")
                res = self.run_torrenty(["create", tree, "-o", out], timeout=60, name="torrenty-create")
                self.assertEqual(res.returncode, 1, res.proc.tail())
                self.assertEqual(len(res.stderr_lines()), 1, res.stderr)
                self.assertIn(want, res.stderr)
                self.assertFalse(out.exists())

    def test_progress_on_large_input_only(self):
        big = self.path("big.sparse")
        with open(big, "wb") as f:  # holes read as zeros: large to hash, free on disk
            f.truncate(2 << 30)
        res = self.run_torrenty(["create", big, "-o", self.path("big.torrent")], timeout=60,
                                name="torrenty-create")
        self.assertTorrentyOk(res, "torrenty create")
        progress = [line for line in res.stderr_lines() if line.startswith("hashing: ")]
        self.assertTrue(progress, f"no progress lines while hashing 2 GiB:\n{res.stderr}")
        for line in progress:
            self.assertRegex(line, r"^hashing: +\d+\.\d% \(.* of 2\.0 GiB\)$")
        # bounded rate: one line per second after the first half second
        self.assertLessEqual(len(progress), res.elapsed + 1, res.stderr)
        self.assertRegex(res.stderr_lines()[-1], r"^hashed 2\.0 GiB in [\d.]+ s ")

    def test_piece_length_takes_size_suffixes(self):
        data = self.path("data")
        write_random_file(data / "s.bin", 1 * MiB)
        for text, want in (("16K", 16 * KiB), ("256KiB", 256 * KiB), ("1M", 1 * MiB), ("524288", 512 * KiB)):
            with self.subTest(text):
                t = self.create(data / "s.bin", "http://t.example/ann", self.path(f"s{want}.torrent"),
                                "--piece-length", text)
                self.assertEqual(bdecode(t.read_bytes())[b"info"][b"piece length"], want)


if __name__ == "__main__":
    unittest.main()
