"""Resuming downloads: after kill -9 only the missing pieces are fetched again; a clean stop leaves a
resume file (DIR/.torrenty/<info-hash>.resume) and a complete folder is recognised at once; a full
disk ends the download with one clear error and a consistent resume file.
"""
import os
import re
import signal
import subprocess
import time
import unittest

from harness import LOOPBACK, MiB, TorrentyTestCase, free_port, info_hash, make_torrent, \
    tracker_url, wait_port_listening, wait_until, write_random_file
from swarm_helpers import exit_signal, popcount_bitfield, resume_path, \
    seeder_uploaded, start_throttled_seeder, torrent_facts, valid_pieces, wait_for_stderr


def bdecode_strict(data):
    """A tiny strict bencode decoder (no leading zeros, sorted unique dict keys, no trailing data)."""
    def dec(i):
        c = data[i:i + 1]
        if c == b"i":
            j = data.index(b"e", i)
            s = data[i + 1:j]
            if not s or s == b"-0" or (s.lstrip(b"-").startswith(b"0") and s.lstrip(b"-") != b"0"):
                raise ValueError(f"bad integer at {i}")
            return int(s), j + 1
        if c == b"l":
            i += 1
            out = []
            while data[i:i + 1] != b"e":
                v, i = dec(i)
                out.append(v)
            return out, i + 1
        if c == b"d":
            i += 1
            out, last = {}, None
            while data[i:i + 1] != b"e":
                k, i = dec(i)
                if not isinstance(k, bytes) or (last is not None and k <= last):
                    raise ValueError(f"dict keys not sorted/unique at {i}")
                last = k
                out[k], i = dec(i)
            return out, i + 1
        if c.isdigit():
            j = data.index(b":", i)
            if data[i:i + 1] == b"0" and j != i + 1:
                raise ValueError(f"bad string length at {i}")
            n = int(data[i:j])
            if j + 1 + n > len(data):
                raise ValueError("string runs past the end")
            return data[j + 1:j + 1 + n], j + 1 + n
        raise ValueError(f"bad bencode at offset {i}")
    v, end = dec(0)
    if end != len(data):
        raise ValueError("trailing bytes after the value")
    return v


def seeder_total_when_idle(seeder, timeout=10):
    """The throttled seeder's upload total once it reports no peer in a status line printed after
    this call (its stderr has one a second, stamped with the shared monotonic clock)."""
    since = time.monotonic()

    def idle():
        for line in reversed(seeder.log_text().splitlines()):
            m = re.match(r"\[throttled ([\d.]+)\] .* peers=(\d+) ", line)
            if m and float(m.group(1)) > since:
                return m.group(2) == "0"
        return False

    wait_until(idle, timeout, "the seeder noticing the dropped connection", procs=[seeder])
    return seeder_uploaded(seeder)


class Resume(TorrentyTestCase):

    def test_kill9_midway_then_resume_fetches_only_missing(self):
        size = 256 * MiB
        src = self.path("src")
        write_random_file(src / "big.bin", size)
        torrent = make_torrent(src / "big.bin", tracker_url(free_port()), self.path("big.torrent"),
                               piece_log2=20)
        plen, total, hashes = torrent_facts(torrent)
        seeder = start_throttled_seeder(self, torrent, src, rate=40 * MiB)
        out = self.path("out")
        args = ["download", torrent, "-o", out, "--port", free_port(),
                "--peer", f"{LOOPBACK}:{seeder.port}"]
        p = self.start_torrenty(args, name="torrenty-run1")
        deadline = time.monotonic() + 40
        while seeder_uploaded(seeder) < size // 2:
            if p.poll() is not None:
                self.fail(f"torrenty exited ({p.returncode}) before half the data was sent\n" + p.tail())
            if time.monotonic() > deadline:
                self.fail(f"the seeder sent only {seeder_uploaded(seeder)} bytes in 40 s\n" + p.tail()
                          + seeder.tail())
            time.sleep(0.02)
        t_run1 = time.monotonic() - p.started
        p.send_signal(signal.SIGKILL)
        self.wait_exit(p, 10)
        up1 = seeder_total_when_idle(seeder)
        good = valid_pieces(torrent, out / "big.bin")
        have_bytes = sum(min(plen, total - i * plen) for i in good)
        missing = total - have_bytes
        print(f"\n  run 1 killed after {t_run1:.1f}s: seeder sent {up1} bytes, "
              f"{len(good)}/{len(hashes)} pieces valid on disk, missing {missing} bytes")
        self.assertGreater(len(good), 0, "nothing was on disk after the first run")
        self.assertLess(len(good), len(hashes), "the first run finished before kill -9")

        res = self.run_torrenty(args, timeout=60, name="torrenty-run2")
        up2 = seeder_total_when_idle(seeder)
        refetched = up2 - up1
        print(f"  run 2: {res.elapsed:.1f}s, seeder sent {refetched} bytes "
              f"(missing {missing}, allowed {missing + 8 * MiB}, overhead {refetched - missing})")
        self.assertTorrentyOk(res, "torrenty download (resumed)")
        self.assertSameData(src / "big.bin", out / "big.bin")
        self.assertLessEqual(refetched, missing + 8 * MiB,
                             f"the resumed download fetched {refetched} bytes; only {missing} were missing")

    def test_clean_stop_writes_resume_and_complete_folder_is_instant(self):
        size = 16 * MiB + 12345
        src = self.path("src")
        write_random_file(src / "clean.bin", size)
        torrent = make_torrent(src / "clean.bin", tracker_url(free_port()), self.path("clean.torrent"))
        ih = info_hash(torrent)
        _, _, hashes = torrent_facts(torrent)
        n = len(hashes)
        seeder = self.start_lt_seeder(torrent, src)
        out = self.path("out")
        p = self.start_torrenty(["download", torrent, "-o", out, "--port", free_port(), "--seed",
                                 "--peer", f"{LOOPBACK}:{seeder.port}"], name="torrenty-dl-seed")
        wait_for_stderr(p, f"({n}/{n} pieces)", 40)
        self.assertSameData(src / "clean.bin", out / "clean.bin")
        t = time.monotonic()
        p.send_signal(signal.SIGINT)
        rc = self.wait_exit(p, 10)
        took = time.monotonic() - t
        self.assertEqual(rc, 0, "torrenty download --seed: non-zero exit after SIGINT\n" + p.tail())
        self.assertLess(took, 5.0, f"{took:.1f}s to exit after SIGINT")

        rp = resume_path(out, ih)
        self.assertTrue(rp.is_file(), f"no resume file at {rp} after a clean stop; "
                        f"{out}/.torrenty has {sorted(os.listdir(out / '.torrenty')) if (out / '.torrenty').is_dir() else 'nothing'}")
        raw = rp.read_bytes()
        print(f"\n  resume file {rp.name}: {len(raw)} bytes")
        self.assertGreater(len(raw), 0, "the resume file is empty")
        doc = bdecode_strict(raw)
        self.assertIsInstance(doc, dict)
        self.assertEqual(doc.get(b"info-hash"), bytes.fromhex(ih), "resume file names another torrent")
        self.assertEqual(popcount_bitfield(doc.get(b"pieces", b""), n), n,
                         "resume file after a complete download does not list every piece")

        # `torrenty seed` on the same folder serves it (the resume file does not get in the way).
        sport = free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", out, "--port", sport], name="torrenty-seed")
        wait_port_listening(sport, 20, proc=seed)
        seeder.stop()
        lt_out = self.path("lt-out")
        leecher = self.start_lt_peer(torrent, lt_out, "leech", connect=[(LOOPBACK, sport)], timeout=60)
        leecher.wait_for_output("DONE", 60)
        self.assertSameData(src / "clean.bin", lt_out / "clean.bin")
        seed.send_signal(signal.SIGINT)
        self.assertEqual(self.wait_exit(seed, 10), 0, seed.tail())

        # Downloading an already complete folder again: exits 0 at once.
        res = self.run_torrenty(["download", torrent, "-o", out, "--port", free_port()], timeout=30,
                                name="torrenty-again")
        print(f"  second download of a complete folder: rc {res.returncode} in {res.elapsed:.2f}s")
        self.assertTorrentyOk(res, "torrenty download (already complete)")
        self.assertLess(res.elapsed, 3.0, "download of a complete folder was not quick\n" + res.stderr)
        self.assertSameData(src / "clean.bin", out / "clean.bin")

    def test_disk_full_one_error_line_and_sane_resume(self):
        size = 64 * MiB
        fs_size = 24 * MiB
        src = self.path("src")
        write_random_file(src / "full.bin", size)
        torrent = make_torrent(src / "full.bin", tracker_url(free_port()), self.path("full.torrent"),
                               piece_log2=20)
        ih = info_hash(torrent)
        plen, _, hashes = torrent_facts(torrent)
        small = self.path("small")
        small.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={fs_size}", "tmpfs", str(small)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        self.assertEqual(r.returncode, 0, f"mount tmpfs failed: {r.stdout.decode(errors='replace')}")

        def unmount():
            for proc in reversed(self.procs):  # nothing may hold files open there
                proc.stop()
            subprocess.run(["umount", str(small)], timeout=20)
            if os.path.ismount(small):
                subprocess.run(["umount", "-l", str(small)], timeout=20)
        self.addCleanup(unmount)

        # Throttled so that the disk fills after a few periodic resume saves (every 5 s): the
        # resume file then really lists pieces, and each one is checked against the disk below.
        seeder = start_throttled_seeder(self, torrent, src, rate=2 * MiB)
        res = self.run_torrenty(["download", torrent, "-o", small, "--port", free_port(),
                                 "--peer", f"{LOOPBACK}:{seeder.port}"], timeout=60)
        lines = res.stderr_lines()
        enospc = [l for l in lines if "No space left on device" in l]
        print(f"\n  exit {res.returncode} after {res.elapsed:.1f}s; ENOSPC lines: {enospc}; "
              f"last line: {lines[-1] if lines else None!r}")
        self.assertIsNone(exit_signal(res.returncode), f"torrenty died of a signal (rc {res.returncode})\n"
                          + res.proc.tail())
        self.assertNotEqual(res.returncode, 0, "torrenty reported success on a full disk")
        self.assertEqual(len(enospc), 1,
                         f"expected exactly one 'No space left on device' line, got {len(enospc)}:\n{res.stderr}")
        self.assertEqual(lines[-1], enospc[0], f"the ENOSPC error is not the final line:\n{res.stderr}")
        self.assertIn("full.bin", enospc[0], "the error line does not name the file")

        rp = resume_path(small, ih)
        self.assertTrue(rp.is_file(), f"no resume file after {res.elapsed:.1f}s of download:\n{res.stderr}")
        doc = bdecode_strict(rp.read_bytes())
        self.assertEqual(doc.get(b"info-hash"), bytes.fromhex(ih), "resume file names another torrent")
        bits = doc.get(b"pieces", b"")
        claimed = {i for i in range(len(hashes)) if i // 8 < len(bits) and bits[i // 8] & (0x80 >> (i % 8))}
        fit = fs_size // plen
        good = set(valid_pieces(torrent, small / "full.bin"))
        print(f"  resume file lists {len(claimed)} pieces; {fit} fit; {len(good)} valid on disk")
        self.assertGreater(len(claimed), 0, "the resume file lists no piece, so it proves nothing")
        self.assertLessEqual(len(claimed), fit, "the resume file claims more pieces than fit on the disk")
        self.assertTrue(claimed <= good, f"the resume file claims pieces that are not on disk: "
                        f"{sorted(claimed - good)[:10]}")


if __name__ == "__main__":
    unittest.main()
