"""BEP 11 peer exchange against libtorrent on loopback (no tracker, no DHT, no LSD).

- Torrenty, given only the first seeder S1, learns a second peer S2 (a libtorrent peer that S1
  serves) from S1's ut_pex and dials it: its -v log shows the connection to S2's port.
- Torrenty sends ut_pex: a libtorrent peer connected only to Torrenty learns S1 or S2 from it
  (libtorrent's peer list says the address came through PEX) and dials it.
- Across shards: with --threads 4, the seeders Torrenty is connected to sit on different shards,
  yet a libtorrent peer connected to one shard learns every one of them from Torrenty's ut_pex.
"""
import re
import time
import unittest

from harness import (LOOPBACK, MiB, TorrentyTestCase, free_port, make_torrent, tracker_url,
                     wait_port_listening, write_random_file)



def wait_until(pred, timeout, proc):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        if proc.popen.poll() is not None:
            return pred()
        time.sleep(0.1)
    return pred()


NAME = "pex.bin"
SIZE = 16 * MiB + 333
# S1 serves slowly, so Torrenty is still downloading when PEX has done its work.
S1_UPLOAD_RATE = 200_000
S2_DOWNLOAD_RATE = 50_000
PEX_SOURCE_BIT = 4  # libtorrent peer_info.source: learned through ut_pex


class PeerExchange(TorrentyTestCase):

    def setUp(self):
        super().setUp()
        self.src = self.path("src")
        write_random_file(self.src / NAME, SIZE, seed=11)
        # Nothing listens on the announce port: peers come from --peer / connect_peer / PEX only.
        self.torrent = make_torrent(self.src / NAME, tracker_url(free_port()),
                                    self.path("p.torrent"), piece_log2=18)

    def test_learns_a_peer_through_pex_and_tells_others(self):
        s1 = self.start_lt_seeder(self.torrent, self.src, upload_rate=S1_UPLOAD_RATE)
        s2 = self.start_lt_peer(self.torrent, self.path("s2"), "leech",
                                connect=[(LOOPBACK, s1.port)], download_rate=S2_DOWNLOAD_RATE,
                                timeout=300, name="lt-s2")
        port = free_port()
        t = self.start_torrenty(["download", self.torrent, "-o", self.path("out"), "--port", port,
                                 "-v", "--no-lsd", "--peer", f"{LOOPBACK}:{s1.port}"])
        wait_port_listening(port, 20, proc=t)
        log = t.wait_for_output(f"peer {LOOPBACK}:{s2.port}: connected (outgoing)", 150,
                                stdout_only=False)
        self.assertRegex(log, rf"peer {LOOPBACK}:{s1.port}: ut_pex: \d+ peers")
        self.assertNotIn("protocol error", log)

        # A libtorrent peer that knows only Torrenty learns the others from Torrenty's ut_pex.
        lt3 = self.start_lt_peer(self.torrent, self.path("l3"), "leech",
                                 connect=[(LOOPBACK, port)], download_rate=S2_DOWNLOAD_RATE,
                                 timeout=300, name="lt-l3", print_peers=True)
        others = {s1.port, s2.port}

        def learned_through_pex():
            for m in re.finditer(r"PEER [\d.]+:(\d+) source=(\d+) outgoing=1", lt3.output()):
                if int(m.group(1)) in others and int(m.group(2)) & PEX_SOURCE_BIT:
                    return True
            return False

        self.assertTrue(wait_until(learned_through_pex, 90, proc=lt3),
                        "libtorrent did not dial S1/S2 after Torrenty's ut_pex:\n" + lt3.output())

    def test_ut_pex_lists_the_peers_of_every_shard(self):
        # Slow seeders: Torrenty stays connected to them (a seed drops seeds) for over a minute,
        # so a first ut_pex that went out before the shards' lists were relayed is followed by a
        # second one in time.
        seeders = [self.start_lt_seeder(self.torrent, self.src, name=f"lt-s{i}", upload_rate=40_000)
                   for i in range(4)]
        port = free_port()
        peers = []
        for s in seeders:
            peers += ["--peer", f"{LOOPBACK}:{s.port}"]
        t = self.start_torrenty(["download", self.torrent, "-o", self.path("out"), "--port", port,
                                 "-v", "--no-lsd", "--threads", "4", *peers])
        wait_port_listening(port, 20, proc=t)
        for s in seeders:
            t.wait_for_output(f"peer {LOOPBACK}:{s.port}: handshake done", 60, stdout_only=False)
        lt = self.start_lt_peer(self.torrent, self.path("l"), "leech", connect=[(LOOPBACK, port)],
                                download_rate=S2_DOWNLOAD_RATE, timeout=300, name="lt-l",
                                print_peers=True)
        wanted = {s.port for s in seeders}

        def learned():
            return {int(m.group(1)) for m in
                    re.finditer(r"PEER [\d.]+:(\d+) source=(\d+) outgoing=1", lt.output())
                    if int(m.group(2)) & PEX_SOURCE_BIT}

        self.assertTrue(wait_until(lambda: wanted <= learned(), 90, proc=lt),
                        f"libtorrent learned {sorted(learned())} of {sorted(wanted)} through "
                        f"Torrenty's ut_pex:\n" + lt.output()[-3000:])


if __name__ == "__main__":
    unittest.main()
