"""Torrenty dialling real peers (aria2c, transmission-cli, libtorrent) while it already has pieces.

The peer is given with --peer and the torrent's tracker is unreachable, so every connection here is
one that Torrenty dialled: the path where it must wait for the remote handshake before it sends its
bitfield (aria2c bans a peer whose bitfield arrives together with its handshake). Each test either
resumes a half-done download (Torrenty's recheck finds every other piece) from a seeder, or runs
`torrenty seed --peer` to a leecher that must complete.
"""
import os
import re
import shutil
import signal
import time
import unittest
from pathlib import Path

from harness import (LOOPBACK, KiB, MiB, TorrentyTestCase, free_port, make_torrent, tracker_url,
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

    def download_from(self, peer_port, out, others):
        p = self.start_torrenty(["download", self.torrent, "-o", out, "--port", free_port(),
                                 "--peer", f"{LOOPBACK}:{peer_port}"], name="torrenty-download")
        rc = self.wait_exit(p, 90, others=others)
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

    def assertNotBanned(self, aria):
        text = aria.debuglog.read_text(errors="replace") if aria.debuglog.exists() else ""
        self.assertNotIn(BAN_LINE, text)

    def test_resume_half_done_from_aria2c_seeder(self):
        out = self.half_done()
        seed_dir = self.path("aria-seed")
        seed_dir.mkdir()
        shutil.copyfile(self.src / NAME, seed_dir / NAME)
        aria = self.aria2c(seed_dir, seed=True)
        aria.wait_for_output("SEED(", 60)  # its integrity check is done
        self.download_from(aria.port, out, [aria])
        self.assertNotBanned(aria)
        self.stop(aria)

    def test_seed_to_aria2c_leecher(self):
        out = self.path("aria-out")
        aria = self.aria2c(out, seed=False)
        self.leech_port = aria.port
        seed = self.start_seed()
        self.assertEqual(self.wait_exit(aria, 90, others=[seed]), 0, aria.tail())
        self.assertSameData(self.src / NAME, out / NAME)
        self.assertNotBanned(aria)
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
        self.download_from(tr.port, out, [tr])
        self.stop(tr)

    def test_seed_to_transmission_leecher(self):
        out = self.path("tr-out")
        tr = self.start_transmission(self.torrent, out)
        wait_port_listening(tr.port, 30, proc=tr)
        self.leech_port = tr.port
        seed = self.start_seed()
        self.wait_for_file(tr.done_marker, 120, proc=tr, others=[seed])
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
        lt.wait_for_output("DONE", 90)
        self.assertEqual(self.wait_exit(lt, 30, others=[seed]), 0, lt.tail())
        self.assertSameData(self.src / NAME, out / NAME)
        self.stop(seed)


if __name__ == "__main__":
    unittest.main()
