"""BEP 7 IPv6 on loopback: downloads over [::1] from libtorrent and from Torrenty.

- libtorrent listens on 127.0.0.1:P and [::1]:P; Torrenty is given only --peer [::1]:P, so every
  byte comes over IPv6, and -v names the peer as [::1]:P.
- Torrenty seeds without --bind (one dual-stack socket): a libtorrent leecher dials [::1] and a
  Torrenty leecher dials 127.0.0.1, and both complete.
- Torrenty seeds with --bind ::1 (nothing answers on 127.0.0.1); a Torrenty leecher bound to ::1
  dials it with --peer [::1]:PORT and completes.
- --bind with a bad address is one clear line and exit 2.
"""
import socket
import unittest

from harness import (MiB, TorrentyTestCase, free_port, make_torrent, tracker_url,
                     wait_port_listening, write_random_file)

NAME = "six.bin"
SIZE = 3 * MiB + 4321


def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@unittest.skipUnless(ipv6_loopback_available(), "no IPv6 loopback on this machine")
class Ipv6(TorrentyTestCase):

    def setUp(self):
        super().setUp()
        self.src = self.path("src")
        write_random_file(self.src / NAME, SIZE, seed=7)
        self.torrent = make_torrent(self.src / NAME, tracker_url(free_port()), self.path("s.torrent"),
                                    piece_log2=18)

    def test_download_from_libtorrent_over_ipv6(self):
        seeder = self.start_lt_seeder(self.torrent, self.src, ipv6=True)
        out = self.path("out")
        res = self.run_torrenty(["download", self.torrent, "-o", out, "--port", free_port(), "-v",
                                 "--peer", f"[::1]:{seeder.port}"], timeout=60)
        self.assertTorrentyOk(res)
        self.assertSameData(self.src / NAME, out / NAME)
        self.assertIn(f"peer [::1]:{seeder.port}: handshake done", res.stderr)
        self.assertNotIn(f"127.0.0.1:{seeder.port}", res.stderr)

    def test_dual_stack_seed_serves_ipv6_and_ipv4(self):
        # No --bind: one listening socket per shard takes both families.
        port = free_port()
        seed = self.start_torrenty(["seed", self.torrent, "--data", self.src, "--port", port, "-v"],
                                   name="torrenty-seed")
        wait_port_listening(port, 20, proc=seed)
        leech = self.start_lt_peer(self.torrent, self.path("lt-out"), "leech", ipv6=True,
                                   connect=[f"[::1]:{port}"], timeout=60)
        leech.wait_for_output("DONE", 60)
        self.assertSameData(self.src / NAME, self.path("lt-out") / NAME)
        self.assertRegex(seed.log_text(), r"peer \[::1\]:\d+: connected \(incoming\)")

        out = self.path("out4")
        res = self.run_torrenty(["download", self.torrent, "-o", out, "--port", free_port(),
                                 "--peer", f"127.0.0.1:{port}"], timeout=60)
        self.assertTorrentyOk(res)
        self.assertSameData(self.src / NAME, out / NAME)
        self.assertRegex(seed.log_text(), r"peer 127\.0\.0\.1:\d+: connected \(incoming\)")

    def test_download_from_torrenty_bound_to_ipv6(self):
        port = free_port()
        seed = self.start_torrenty(["seed", self.torrent, "--data", self.src, "--port", port,
                                    "--bind", "::1"], name="torrenty-seed")
        wait_port_listening(port, 20, proc=seed)
        # Bound to ::1: nothing answers on 127.0.0.1.
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        out = self.path("out")
        res = self.run_torrenty(["download", self.torrent, "-o", out, "--port", free_port(),
                                 "--bind", "[::1]", "-v", "--peer", f"[::1]:{port}"], timeout=60)
        self.assertTorrentyOk(res)
        self.assertSameData(self.src / NAME, out / NAME)
        self.assertIn(f"peer [::1]:{port}: handshake done", res.stderr)

    def test_bad_bind_address(self):
        res = self.run_torrenty(["download", self.torrent, "-o", self.path("out"),
                                 "--bind", "not-an-address"], timeout=10)
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn("not-an-address", res.stderr)
        res = self.run_torrenty(["download", self.torrent, "-o", self.path("out"),
                                 "--peer", "::1:6881"], timeout=10)
        self.assertEqual(res.returncode, 2, res.stderr)


if __name__ == "__main__":
    unittest.main()
