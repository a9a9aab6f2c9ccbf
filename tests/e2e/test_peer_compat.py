"""Torrenty dialling real peers (aria2c, transmission-cli, libtorrent) while it already has pieces.

The peer is given with --peer and the torrent's tracker is unreachable, so every connection here is
one that Torrenty dialled: the path where it must wait for the remote handshake before it sends its
bitfield (aria2c bans a peer whose bitfield arrives together with its handshake). Each test either
resumes a half-done download (Torrenty's recheck finds every other piece) from a seeder, or runs
`torrenty seed --peer` to a leecher that must complete.
"""
import shutil
import signal
import time
import unittest

from harness import (LOOPBACK, MiB, TorrentyTestCase, free_port, make_torrent, tracker_url,
                     wait_port_listening, write_random_file)
from swarm_helpers import torrent_facts, valid_pieces

NAME = "compat.bin"
SIZE = 6 * MiB + 12345  # 25 pieces of 256 KiB, the last one short
BAN_LINE = "More than BtHandshakeMessage::MESSAGE_LENGTH bytes are buffered"


class PeerCompat(TorrentyTestCase):

    def setUp(self):
        super().setUp()
        self.src = self.path("src")
        write_random_file(self.src / NAME, SIZE, seed=8)
        # Nothing listens on the announce port: no peer learns of another through a tracker.
        self.torrent = make_torrent(self.src / NAME, tracker_url(free_port()), self.path("c.torrent"),
                                    piece_log2=18)

    # -- preparing data

    def half_done(self):
        """An output folder whose file has the even pieces right and the odd ones corrupt."""
        out = self.path("out")
        out.mkdir()
        shutil.copyfile(self.src / NAME, out / NAME)
        plen, total, hashes = torrent_facts(self.torrent)
        with open(out / NAME, "r+b") as f:
            for i in range(1, len(hashes), 2):
                f.seek(i * plen + 100)
                b = f.read(1)
                f.seek(i * plen + 100)
                f.write(bytes([b[0] ^ 0xFF]))
        good = valid_pieces(self.torrent, out / NAME)
        self.assertEqual(good, list(range(0, len(hashes), 2)))
        self.present = f"{len(good)}/{len(hashes)} pieces present"
        return out

    # -- Torrenty

    def download_from(self, peer_port, out, others, timeout=60, banned_by=None):
        p = self.start_torrenty(["download", self.torrent, "-o", out, "--port", free_port(),
                                 "--peer", f"{LOOPBACK}:{peer_port}"], name="torrenty-download")
        if banned_by is not None:
            self.wait_unless_banned(lambda: p.poll() is not None, banned_by, timeout, [p])
        rc = self.wait_exit(p, timeout, others=others)
        self.assertEqual(rc, 0, p.tail())
        self.assertIn(self.present, p.log_text())  # it had pieces when it dialled
        self.assertSameData(self.src / NAME, out / NAME)
        return p

    def start_seed(self):
        # Started once the leecher listens; it dials the leecher with --peer.
        return self.start_torrenty(["seed", self.torrent, "--data", self.src, "--port", free_port(),
                                    "--peer", f"{LOOPBACK}:{self.leech_port}"], name="torrenty-seed")

    def stop(self, proc):
        proc.send_signal(signal.SIGTERM)
        self.wait_exit(proc, 10)

    # -- aria2c

    def aria2c(self, out_dir, seed):
        log = self.logdir / f"aria2c-{'seed' if seed else 'leech'}.debuglog"
        p = self.start_aria2c(self.torrent, out_dir, seed=seed,
                              extra=[f"--log={log}", "--log-level=debug", "--bt-stop-timeout=0",
                                     "--bt-tracker-connect-timeout=2", "--bt-tracker-timeout=2"])
        p.debuglog = log
        wait_port_listening(p.port, 30, proc=p)
        return p

    def ban_lines(self, aria):
        text = aria.debuglog.read_text(errors="replace") if aria.debuglog.exists() else ""
        return [l for l in text.splitlines() if BAN_LINE in l]

    def wait_unless_banned(self, done, aria, timeout, procs):
        """Wait until done(), failing at once when aria2c bans Torrenty (no need to sit out the
        timeout), or when one of procs or aria2c exits first."""
        deadline = time.monotonic() + timeout
        while not done():
            bans = self.ban_lines(aria)
            if bans:
                self.fail("aria2c banned Torrenty:\n" + "\n".join(bans[:4]))
            for p in [aria] + list(procs):
                if p.poll() is not None and not done():
                    self.fail(f"{p.name} exited with {p.returncode}\n" + p.tail())
            if time.monotonic() > deadline:
                self.fail(f"not done within {timeout}s\n" + "\n".join(p.tail() for p in procs))
            time.sleep(0.1)

    def test_resume_half_done_from_aria2c_seeder(self):
        out = self.half_done()
        seed_dir = self.path("aria-seed")
        seed_dir.mkdir()
        shutil.copyfile(self.src / NAME, seed_dir / NAME)
        aria = self.aria2c(seed_dir, seed=True)
        aria.wait_for_output("SEED(", 60)  # its integrity check is done
        self.download_from(aria.port, out, [aria], banned_by=aria)
        self.assertEqual(self.ban_lines(aria), [])
        self.stop(aria)

    def test_seed_to_aria2c_leecher(self):
        out = self.path("aria-out")
        aria = self.aria2c(out, seed=False)
        self.leech_port = aria.port
        seed = self.start_seed()
        self.wait_unless_banned(lambda: aria.poll() == 0, aria, 60, [seed])
        self.assertSameData(self.src / NAME, out / NAME)
        self.assertEqual(self.ban_lines(aria), [])
        self.stop(seed)

    # -- transmission-cli

    def test_resume_half_done_from_transmission_seeder(self):
        out = self.half_done()
        seed_dir = self.path("tr-seed")
        seed_dir.mkdir()
        shutil.copyfile(self.src / NAME, seed_dir / NAME)
        tr = self.start_transmission(self.torrent, seed_dir)
        wait_port_listening(tr.port, 30, proc=tr)
        # It has checked its data once it says it is seeding.
        tr.wait_for_output("Seeding", 60, stdout_only=False)
        self.download_from(tr.port, out, [tr], timeout=90)
        self.stop(tr)

    def test_seed_to_transmission_leecher(self):
        out = self.path("tr-out")
        tr = self.start_transmission(self.torrent, out)
        wait_port_listening(tr.port, 30, proc=tr)
        self.leech_port = tr.port
        seed = self.start_seed()
        self.wait_for_file(tr.done_marker, 90, proc=tr, others=[seed])
        self.assertSameData(self.src / NAME, out / NAME)
        self.stop(seed)
        self.stop(tr)

    # -- libtorrent

    def test_resume_half_done_from_libtorrent_seeder(self):
        out = self.half_done()
        lt = self.start_lt_seeder(self.torrent, self.src)
        self.download_from(lt.port, out, [lt])
        self.stop(lt)

    def test_seed_to_libtorrent_leecher(self):
        out = self.path("lt-out")
        out.mkdir()
        lt = self.start_lt_peer(self.torrent, out, "leech", timeout=120)
        wait_port_listening(lt.port, 30, proc=lt)
        self.leech_port = lt.port
        seed = self.start_seed()
        lt.wait_for_output("DONE", 60)
        self.assertEqual(self.wait_exit(lt, 30, others=[seed]), 0, lt.tail())
        self.assertSameData(self.src / NAME, out / NAME)
        self.stop(seed)


if __name__ == "__main__":
    unittest.main()
