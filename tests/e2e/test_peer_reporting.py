"""What `torrenty download` says about its peers: the "no peer reachable" line by default, one line
per connect, close and tracker reply with -v (against a real libtorrent seeder), nothing at all with
-q, and tracker text with control characters escaped onto one line.
"""
import signal
import time
import unittest

from fake_tracker import FakeTracker
from harness import LOOPBACK, MiB, TorrentyTestCase, free_port, make_torrent, tracker_url, \
    write_random_file
from swarm_helpers import lines_with, wait_for_stderr


class PeerReporting(TorrentyTestCase):

    def _payload(self, size=2 * MiB + 123, name="rep.bin", announce=None):
        src = self.path("src")
        data = write_random_file(src / name, size)
        torrent = make_torrent(data, announce or tracker_url(free_port()), self.path(f"{name}.torrent"))
        return src, data, torrent

    def test_refused_peer_is_reported_once(self):
        _, _, torrent = self._payload()
        dead = free_port()  # nothing listens here: the connect is refused
        t = self.start_torrenty(["download", torrent, "-o", self.path("out"), "--port", free_port(),
                                 "--peer", f"{LOOPBACK}:{dead}"])
        self.assertTrue(wait_for_stderr(t, "no peer reachable: 1 refused", 15),
                        "no 'no peer reachable' line within 15 s\n" + t.tail())
        # The redial after the 10 s backoff is refused again: the situation is unchanged, so the
        # line is not repeated.
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and t.poll() is None:
            time.sleep(0.5)
        self.assertIsNone(t.poll(), "torrenty exited\n" + t.tail())
        t.send_signal(signal.SIGTERM)
        self.wait_exit(t, 10)
        hits = lines_with(t.log_text(), "no peer reachable")
        self.assertEqual(hits, ["no peer reachable: 1 refused"], t.log_text())
        self.assertNotIn(f"peer {LOOPBACK}:{dead}: connect failed", t.log_text(),
                         "per-peer lines belong to -v")

    def test_verbose_shows_connect_handshake_and_close_with_a_real_peer(self):
        seeder_port = free_port()
        tracker = FakeTracker("peers", peers=[(LOOPBACK, seeder_port)]).start()
        self.addCleanup(tracker.stop)
        src, data, torrent = self._payload(announce=tracker.announce_url)
        seeder = self.start_lt_seeder(torrent, src, port=seeder_port)
        dead = free_port()
        res = self.run_torrenty(["download", torrent, "-o", self.path("out"), "--port", free_port(), "-v",
                                 "--peer", f"{LOOPBACK}:{dead}"], timeout=60)
        self.assertTorrentyOk(res, "torrenty download -v")
        self.assertSameData(data, self.path("out") / data.name)
        err = res.stderr
        live = f"peer {LOOPBACK}:{seeder.port}"
        self.assertTrue(lines_with(err, f"{live}: connected (outgoing)"), err)
        handshake = lines_with(err, f"{live}: handshake done")
        self.assertTrue(handshake, err)
        self.assertIn("client libtorrent", handshake[0])
        # Once complete, the seeder is a seed like us: the connection closes with that reason.
        self.assertTrue(lines_with(err, f"closed peer {LOOPBACK}:{seeder.port}: both seeds"), err)
        self.assertTrue(lines_with(err, f"peer {LOOPBACK}:{dead}: connect failed: refused"), err)
        self.assertTrue(lines_with(err, "tracker: 1 peers, interval 30 s"), err)
        print(f"\n  {handshake[0]!r}", end="")

    def test_quiet_download_prints_nothing(self):
        src, data, torrent = self._payload()
        seeder = self.start_lt_seeder(torrent, src)
        res = self.run_torrenty(["download", torrent, "-o", self.path("out"), "--port", free_port(), "-q",
                                 "--peer", f"{LOOPBACK}:{seeder.port}"], timeout=60)
        self.assertTorrentyOk(res, "torrenty download -q")
        self.assertSameData(data, self.path("out") / data.name)
        self.assertEqual(res.stdout, "", "stdout with -q")
        self.assertEqual(res.stderr, "", "stderr with -q")

    def test_quiet_and_verbose_exclude_each_other(self):
        _, _, torrent = self._payload(size=1000)
        res = self.run_torrenty(["download", torrent, "-q", "-v"], timeout=10)
        self.assertNotEqual(res.returncode, 0)
        self.assertEqual(len(res.stderr_lines()), 1, res.stderr)

    def test_tracker_failure_text_is_escaped(self):
        reason = "line one\nline two \x1b[31mred\x1b[0m"
        tracker = FakeTracker("failure", failure_reason=reason).start()
        self.addCleanup(tracker.stop)
        src, data, torrent = self._payload(announce=tracker.announce_url)
        seeder = self.start_lt_seeder(torrent, src)
        res = self.run_torrenty(["download", torrent, "-o", self.path("out"), "--port", free_port(),
                                 "--peer", f"{LOOPBACK}:{seeder.port}"], timeout=60)
        self.assertTorrentyOk(res, "torrenty download")
        self.assertNotIn("\x1b", res.stderr, "ESC reached the terminal")
        hits = lines_with(res.stderr, "line one")
        self.assertEqual(len(hits), 1, res.stderr)
        self.assertIn("tracker", hits[0])
        self.assertIn("line one\\nline two \\x1b[31mred", hits[0])
        for line in res.stderr.splitlines():
            self.assertFalse(line.startswith("line two"), f"the tracker's newline split the line: {line!r}")


if __name__ == "__main__":
    unittest.main()
