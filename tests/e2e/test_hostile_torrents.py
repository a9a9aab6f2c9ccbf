"""Malformed and hostile .torrent files, generated at test time.

Refused ones: `torrenty info X` and `torrenty download X -o DIR --peer 127.0.0.1:1` must exit
non-zero within 1 s with exactly one line on stderr, DIR must hold nothing afterwards, and nothing
may be created anywhere else in the sandbox (nor at the absolute paths some of them name).

Hostile names and paths that are cleaned instead (`..`, absolute paths, '/' or NUL inside a
component, duplicates, ...): the torrent loads, and a real download of it from a seeder puts every
file, with the right bytes, under DIR/<name> and nothing anywhere else.
"""
import hashlib
import json
import os
import subprocess
import time
import unittest
from pathlib import Path

from harness import (MiB, TorrentyTestCase, bencode, free_port, off_the_network, torrenty_bin,
                     wait_port_listening)

KiB = 1024
PIECE = 256 * KiB
EXIT_WITHIN = 1.0  # seconds, including process start-up
ABS_TARGET = "/tmp/torrenty-hostile-absolute-target"


def info_single(length=3 * PIECE + 5, name="file.bin", piece_length=PIECE, pieces=None):
    n = (length - 1) // piece_length + 1 if length > 0 and piece_length > 0 else 1
    return {"name": name, "piece length": piece_length, "length": length,
            "pieces": pieces if pieces is not None else bytes(20) * n}


def info_multi(files, name="dir", piece_length=PIECE):
    total = sum(f["length"] for f in files)
    n = max(1, (total - 1) // piece_length + 1)
    return {"name": name, "piece length": piece_length, "files": files, "pieces": bytes(20) * n}


def torrent(info, **top):
    d = {"announce": "http://127.0.0.1:1/announce", "info": info}
    d.update(top)
    return bencode(d)


def valid():
    return torrent(info_single())


def f(path, length=PIECE):
    return {"length": length, "path": path}


def raw_dict(*pairs):
    """A bencoded dict with keys in the given order (bencode() would sort and dedupe them)."""
    return b"d" + b"".join(bencode(k) + v for k, v in pairs) + b"e"


# name -> bytes of the .torrent (or a callable(path) that writes it)
def cases():
    v = valid()
    deep = 100_000
    c = {
        "empty_file": b"",
        "not_bencode": b"this is not a torrent\n",
        "truncated_half": v[: len(v) // 2],
        "truncated_last_byte": v[:-1],
        "nesting_100000_lists": b"l" * deep + b"e" * deep,
        "nesting_100000_dicts": b"d1:a" * deep + b"i0e" + b"e" * deep,
        "nesting_in_info": raw_dict(("info", b"d4:name" + b"l" * deep + b"e" * deep + b"e")),
        "top_level_list": b"l" + v + b"e",
        "missing_info": bencode({"announce": "http://127.0.0.1:1/announce"}),
        "info_is_list": torrent([1, 2, 3]),
        "info_is_string": torrent("info"),
        "name_is_int": torrent(dict(info_single(), name=42)),
        "name_missing": torrent({k: x for k, x in info_single().items() if k != "name"}),
        "length_negative": torrent(info_single(length=-1, pieces=bytes(20))),
        "length_zero": torrent(info_single(length=0, pieces=b"")),
        "length_huge_2pow62": torrent(info_single(length=2 ** 62, pieces=bytes(20))),
        "length_huge_2pow62_big_pieces": torrent(info_single(length=2 ** 62, piece_length=2 ** 28,
                                                             pieces=bytes(20))),
        "length_beyond_int64": torrent(info_single()).replace(b"6:lengthi786437e",
                                                              b"6:lengthi99999999999999999999e"),
        "length_is_string": torrent(dict(info_single(), length="12")),
        "piece_length_zero": torrent(info_single(piece_length=0, pieces=bytes(20))),
        "piece_length_negative": torrent(info_single(piece_length=-PIECE, pieces=bytes(20))),
        "piece_length_huge": torrent(info_single(piece_length=2 ** 40, pieces=bytes(20))),
        "pieces_not_multiple_of_20": torrent(info_single(pieces=bytes(20) * 4 + b"x")),
        "pieces_too_few": torrent(info_single(pieces=bytes(20) * 3)),
        "pieces_too_many": torrent(info_single(pieces=bytes(20) * 5)),
        "pieces_missing": torrent({k: x for k, x in info_single().items() if k != "pieces"}),
        "pieces_is_int": torrent(dict(info_single(), pieces=4)),
        "both_length_and_files": torrent(dict(info_single(), files=[f(["a"])])),
        "neither_length_nor_files": torrent({k: x for k, x in info_single().items() if k != "length"}),
        "files_empty_list": torrent(info_multi([])),
        "files_not_a_list": torrent(dict(info_multi([f(["a"])]), files={"a": 1})),
        "v2_only": torrent({"name": "v2", "piece length": PIECE, "meta version": 2,
                            "file tree": {"a": {"": {"length": 5, "pieces root": b"r" * 32}}}}),
        "file_negative_length": torrent(info_multi([f(["a"]), f(["b"], -5)])),
        "file_lengths_overflow": torrent({"name": "dir", "piece length": PIECE, "pieces": bytes(20),
                                          "files": [f(["a"], 2 ** 62), f(["b"], 2 ** 62)]}),
        "file_length_huge": torrent({"name": "dir", "piece length": PIECE, "pieces": bytes(20),
                                     "files": [f(["a"], 2 ** 62)]}),
        "file_path_empty_list": torrent(info_multi([f([])])),
        "file_path_not_strings": torrent(info_multi([f([1, 2])])),
        "file_path_too_long": torrent(info_multi([f(["d" * 255] * 20)])),
        "file_path_too_long_after_cut": torrent(info_multi([f(["d" * 1000] * 17)])),
        "file_not_a_dict": torrent(dict(info_multi([f(["a"])]), files=[[1]])),
        # (Unsorted keys, repeated keys and trailing bytes are tolerated on purpose: real torrents
        # have them, and the info-hash is taken over the raw bytes of the first info dict. Unsafe
        # names and paths are cleaned: see cleaned_cases.)
        "integer_leading_zero": v.replace(b"i262144e", b"i0262144e"),
        "negative_zero": torrent(info_single()).replace(b"i786437e", b"i-0e"),
        "string_length_past_end": raw_dict(("info", b"999999999:abc")),
    }
    return c


def real_torrent(name, files, piece_length=16 * KiB):
    """An info dict whose pieces hash real data. `files` is a list of (raw path list, length), or
    an int for a single-file torrent. Returns (info, [bytes of each file in torrent order])."""
    sizes = [files] if isinstance(files, int) else [n for _, n in files]
    blobs = [hashlib.sha256(f"{name!r}{i}".encode()).digest() * (n // 32 + 1) for i, n in enumerate(sizes)]
    blobs = [b[:n] for b, n in zip(blobs, sizes)]
    data = b"".join(blobs)
    pieces = b"".join(hashlib.sha1(data[i:i + piece_length]).digest()
                      for i in range(0, len(data), piece_length))
    info = {"name": name, "piece length": piece_length, "pieces": pieces}
    if isinstance(files, int):
        info["length"] = files
    else:
        info["files"] = [{"length": n, "path": p} for p, n in files]
    return info, blobs


# name -> (bytes of the .torrent, file contents in torrent order). Each loads with cleaned paths.
def cleaned_cases():
    c = {}
    single_names = {
        "name_empty": "", "name_dotdot": "..", "name_dot": ".", "name_with_slash": "../escaped.bin",
        "name_absolute": ABS_TARGET, "name_with_nul": "a\0b", "name_too_long": "n" * 5000,
        "name_newline_escape": "evil\n\x1b[2Jname",
    }
    for case, name in single_names.items():
        info, blobs = real_torrent(name, 20_000 + len(case))
        c[case] = (torrent(info), blobs)
    multi_paths = {
        "file_path_dotdot": [["..", "escaped.bin"]],
        "file_path_dotdot_deep": [["ok", "..", "..", "escaped.bin"]],
        "file_path_only_dotdot": [["..", "..", ".."]],
        "file_path_absolute": [[ABS_TARGET]],
        "file_path_absolute_components": [["", "tmp", "torrenty-hostile-absolute-target"]],
        "file_path_empty_component": [["a", "", "b"]],
        "file_path_dot": [[".", "a"]],
        "file_path_slash_inside": [["a/../../escaped.bin"]],
        "file_path_backslash": [["..\\..\\escaped.bin"]],
        "file_path_nul": [["a\0b"]],
        "file_path_control_chars": [["line\nbreak", "\x1b[31mred"]],
        "duplicate_paths": [["same", "x.bin"], ["same", "x.bin"]],
        "file_is_also_a_dir": [["a"], ["a", "b"]],
        "dotdot_and_dir_collide": [["..", "a"], ["a", "b"]],
    }
    for case, paths in multi_paths.items():
        info, blobs = real_torrent("dir", [(p, 5_000 + 1_000 * i) for i, p in enumerate(paths)])
        c[case] = (torrent(info), blobs)
    info, blobs = real_torrent("file.bin", 30_000)
    c["trailing_garbage"] = (torrent(info) + b"xyz", blobs)
    other, _ = real_torrent("other.bin", 30_000)
    c["duplicate_dict_keys"] = (raw_dict(("info", bencode(info)), ("info", bencode(other))), blobs)
    return c


class HostileTorrents(TorrentyTestCase):

    def _run(self, argv, cwd, timeout=5):
        t = time.monotonic()
        try:  # subprocess.run kills the child (by PID) when the timeout expires
            r = subprocess.run(off_the_network([torrenty_bin()] + [str(a) for a in argv]),
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"torrenty {argv} still running after {timeout} s")
        return r, time.monotonic() - t

    def _snapshot(self, root):
        return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))

    def _check(self, name, path, timeout=5):
        sandbox = self.path("sandbox", name)
        sandbox.mkdir(parents=True)
        out = sandbox / "out"
        before = self._snapshot(self.workdir / "torrents")
        for argv in (["info", path], ["download", path, "-o", out, "--peer", "127.0.0.1:1"]):
            with self.subTest(case=name, command=argv[0]):
                r, elapsed = self._run(argv, cwd=sandbox, timeout=timeout)
                err = r.stderr.decode(errors="replace")
                lines = [l for l in err.splitlines() if l.strip()]
                self.assertNotEqual(r.returncode, 0, f"{name}: {argv[0]} accepted it:\n{r.stdout!r}")
                self.assertGreater(r.returncode, 0, f"{name}: {argv[0]} killed by signal {-r.returncode}")
                self.assertLess(elapsed, EXIT_WITHIN, f"{name}: {argv[0]} took {elapsed:.2f}s")
                self.assertEqual(len(lines), 1, f"{name}: {argv[0]} stderr:\n{err}")
                self.assertLess(len(lines[0]), 1000, f"{name}: stderr line too long: {lines[0][:200]}...")
                self.assertEqual(r.stdout, b"", f"{name}: {argv[0]} printed to stdout")
                self.assertTrue(not out.exists() or not any(out.iterdir()),
                                f"{name}: {out} not empty: {self._snapshot(out)}")
                self.assertEqual(self._snapshot(sandbox), [] if not out.exists() else ["out"],
                                 f"{name}: files created in the sandbox")
                self.assertFalse(Path(ABS_TARGET).exists(), f"{name}: created {ABS_TARGET}")
        self.assertEqual(self._snapshot(self.workdir / "torrents"), before)
        self.assertEqual(sorted(p.name for p in self.workdir.iterdir()), ["logs", "sandbox", "torrents"])

    def test_malformed_torrents(self):
        tdir = self.path("torrents")
        tdir.mkdir()
        t0 = time.monotonic()
        all_cases = cases()
        for name, data in all_cases.items():
            p = tdir / f"{name}.torrent"
            p.write_bytes(data)
            self._check(name, p)
        print(f"\n  [{len(all_cases)} malformed torrents x 2 commands in {time.monotonic() - t0:.1f}s]", end="")

    def test_cleaned_torrents_stay_inside_the_folder(self):
        tdir = self.path("torrents")
        tdir.mkdir()
        for name, (data, blobs) in cleaned_cases().items():
            p = tdir / f"{name}.torrent"
            p.write_bytes(data)
            with self.subTest(case=name):
                self._download_cleaned(name, p, blobs)
        self.assertFalse(Path(ABS_TARGET).exists(), f"created {ABS_TARGET}")
        self.assertEqual(sorted(x.name for x in self.workdir.iterdir()), ["logs", "sandbox", "torrents"])

    def _download_cleaned(self, name, torrent_path, blobs):
        r, _ = self._run(["info", "--json", torrent_path], cwd=self.workdir)
        self.assertEqual(r.returncode, 0, r.stderr)
        meta = json.loads(r.stdout)
        paths = [x["path"] for x in meta["files"]]
        self.assertEqual(len(paths), len(blobs))
        for rel in paths:
            parts = rel.split("/")
            self.assertEqual(parts[0], meta["name"], rel)
            self.assertFalse(rel.startswith("/") or ".." in parts or "" in parts or "." in parts, rel)
            self.assertTrue(all(c >= " " and c != "\x7f" for c in rel), repr(rel))
        # The info-hash is the SHA-1 of the (first) info dict as written.
        r2, _ = self._run(["info", torrent_path], cwd=self.workdir)
        self.assertNotIn("\x1b", r2.stdout.decode(), "raw ESC printed")

        sandbox = self.path("sandbox", name)
        seed_dir, out = sandbox / "seed", sandbox / "out"
        for rel, blob in zip(paths, blobs):
            (seed_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (seed_dir / rel).write_bytes(blob)
        port = free_port()
        seeder = self.start_torrenty(["seed", torrent_path, "--data", seed_dir, "--port", port,
                                      "--threads", 1], name=f"seed-{name}")
        wait_port_listening(port, 30, proc=seeder)
        res = self.run_torrenty(["download", torrent_path, "-o", out, "--peer", f"127.0.0.1:{port}",
                                 "--threads", 1], timeout=60, name=f"download-{name}")
        seeder.stop()
        self.assertTorrentyOk(res, f"download of {name}")

        # Exactly the listed files, inside out/<name>, with their bytes; nothing else anywhere.
        got = sorted(str(x.relative_to(out)) for x in out.rglob("*")
                     if x.is_file() and ".torrenty" not in x.relative_to(out).parts)
        self.assertEqual(got, sorted(paths))
        for rel, blob in zip(paths, blobs):
            self.assertEqual((out / rel).read_bytes(), blob, rel)
        top = sorted(x.name for x in out.iterdir())
        self.assertEqual(top, sorted({".torrenty", meta["name"]}), top)
        self.assertEqual(sorted(x.name for x in sandbox.iterdir()), ["out", "seed"])
        self.assertFalse(Path(ABS_TARGET).exists(), f"{name}: created {ABS_TARGET}")
        self.assertFalse((self.workdir / "escaped.bin").exists())
        self.assertFalse((self.path("sandbox") / "escaped.bin").exists())

    def test_valid_torrent_control(self):
        # The generator itself is sound: the same valid torrent is accepted by `torrenty info`.
        tdir = self.path("torrents")
        tdir.mkdir()
        p = tdir / "valid.torrent"
        p.write_bytes(valid())
        r, _ = self._run(["info", p], cwd=tdir)
        self.assertEqual(r.returncode, 0, r.stderr)
        ih = hashlib.sha1(bencode(info_single())).hexdigest()
        self.assertIn(ih, r.stdout.decode())

    def test_70mib_torrent_file(self):
        tdir = self.path("torrents")
        tdir.mkdir()
        p = tdir / "huge.torrent"
        head = b"d7:comment73400320:"
        with open(p, "wb") as fh:
            fh.write(head)
            fh.truncate(70 * MiB)  # sparse; the string would be 70 MiB of zero bytes
        self._check("file_70mib", p)

    def test_not_a_regular_file(self):
        tdir = self.path("torrents")
        tdir.mkdir()
        d = tdir / "a_directory.torrent"
        d.mkdir()
        self._check("directory", d)
        self._check("dev_zero", "/dev/zero")
        self._check("missing_file", tdir / "does-not-exist.torrent")

    def test_fifo(self):
        # A FIFO with no writer: a plain open() would block forever.
        tdir = self.path("torrents")
        tdir.mkdir()
        fifo = tdir / "fifo.torrent"
        os.mkfifo(fifo)
        self._check("fifo", fifo, timeout=2)


if __name__ == "__main__":
    unittest.main()
