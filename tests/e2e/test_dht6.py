"""The DHT over IPv6 (BEP 32) against libtorrent DHT nodes on ::1 only: Torrenty bootstrapped
from [::1]:PORT finds a libtorrent seeder through the IPv6 DHT and downloads from it over IPv6,
and Torrenty's announce_peer over IPv6 makes it findable by a libtorrent node. No IPv4 DHT node
exists in these tests, so everything found went through nodes6, IPv6 values and the IPv6 table."""
import signal
import socket
import unittest

from harness import TorrentyTestCase, free_port, wait_until, write_random_file, bdecode
from test_dht import LtDhtMixin, lt_dht_node, make_trackerless_torrent

try:
    import libtorrent as lt
except ImportError:  # the e2e suite runs under /usr/bin/python3, which has it
    lt = None

V6 = "::1"


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind((V6, 0))
        return True
    except OSError:
        return False


@unittest.skipIf(lt is None, "python3-libtorrent is not importable")
@unittest.skipUnless(have_ipv6_loopback(), "no IPv6 loopback")
class Dht6Test(LtDhtMixin, TorrentyTestCase):
    LT_HOST = V6

    def lt_node(self, port):
        return lt_dht_node(port, V6)

    def test_announce_over_ipv6_makes_torrenty_findable_by_libtorrent(self):
        (a, b), (pa, pb) = self.lt_nodes(2)
        data = self.path("data")
        data.mkdir()
        write_random_file(data / "payload.bin", 300 * 1024, seed=11)
        torrent = self.path("t.torrent")
        ih = make_trackerless_torrent(data / "payload.bin", torrent)
        port = free_port()
        seed = self.torrenty(["seed", torrent, "--data", data, "--port", port, "-v",
                              "--dht-bootstrap", f"[{V6}]:{pa}"])
        seen = set()
        for seen in self.get_peers(b, ih, 60):
            if (V6, port) in seen:
                break
            self.assertIsNone(seed.poll(), seed.tail())
        self.assertIn((V6, port), seen, "libtorrent never found torrenty through the IPv6 DHT\n" + seed.tail())
        wait_until(lambda: "get_peers done (IPv6)" in seed.log_text(), 30, "torrenty's IPv6 lookup line",
                   procs=[seed])
        # The IPv6 nodes are kept across runs, in nodes6 (38 bytes each).
        seed.stop(signal.SIGINT)
        saved = bdecode(self.path("state", "torrenty", "dht.dat").read_bytes())
        self.assertEqual(len(saved[b"nodes"]), 0)
        self.assertGreaterEqual(len(saved[b"nodes6"]) // 38, 1)
        self.assertEqual(len(saved[b"nodes6"]) % 38, 0)
        self.assertIn(bytes(15) + b"\x01" + pa.to_bytes(2, "big"), saved[b"nodes6"])

    def test_download_finds_an_ipv6_seeder_only_through_the_ipv6_dht(self):
        (a, b, c), ports = self.lt_nodes(3)
        data = self.path("data")
        data.mkdir()
        write_random_file(data / "payload.bin", 2 * 1024 * 1024 + 321, seed=12)
        torrent = self.path("t.torrent")
        ih = make_trackerless_torrent(data / "payload.bin", torrent)
        handle = c.add_torrent({"ti": lt.torrent_info(str(torrent)), "save_path": str(data)})
        wait_until(lambda: handle.status().state == lt.torrent_status.seeding, 60, "libtorrent seeding")
        found = set()
        for found in self.get_peers(a, ih, 60):
            if (V6, ports[2]) in found:
                break
        self.assertIn((V6, ports[2]), found, "the seeder never reached the IPv6 DHT")
        out = self.path("out")
        dl = self.torrenty(["download", torrent, "-o", out, "--port", free_port(), "-v",
                            "--dht-bootstrap", f"[{V6}]:{ports[0]}"], name="torrenty-dl6")
        try:
            rc = dl.popen.wait(timeout=60)
        except Exception:
            self.fail("the download did not finish within 60 s\n" + dl.tail())
        self.assertEqual(rc, 0, dl.tail())
        self.assertIn(f"peer [{V6}]:{ports[2]}: connected (outgoing)", dl.log_text())
        self.assertSameData(data / "payload.bin", out / "payload.bin")

    def test_libtorrent_finds_a_seeder_through_torrentys_nodes6(self):
        """A libtorrent node whose only DHT contact is Torrenty learns the other IPv6 nodes, and the
        seeder's announce, through the nodes6 of Torrenty's answers."""
        (a, c), (pa, pc) = self.lt_nodes(2)
        data = self.path("data")
        data.mkdir()
        write_random_file(data / "payload.bin", 200 * 1024, seed=13)
        torrent = self.path("t.torrent")
        ih = make_trackerless_torrent(data / "payload.bin", torrent)
        handle = c.add_torrent({"ti": lt.torrent_info(str(torrent)), "save_path": str(data)})
        wait_until(lambda: handle.status().state == lt.torrent_status.seeding, 60, "libtorrent seeding")
        found = set()
        for found in self.get_peers(a, ih, 60):
            if (V6, pc) in found:
                break
        self.assertIn((V6, pc), found, "the seeder never reached the IPv6 DHT")
        # Torrenty runs a torrent of its own, so it knows a and c but stores nothing for ih.
        other = self.path("other")
        other.mkdir()
        write_random_file(other / "x.bin", 64 * 1024, seed=14)
        other_torrent = self.path("other.torrent")
        make_trackerless_torrent(other / "x.bin", other_torrent)
        port = free_port()
        seed = self.torrenty(["seed", other_torrent, "--data", other, "--port", port, "-v",
                              "--dht-bootstrap", f"[{V6}]:{pa}"])
        wait_until(lambda: "get_peers done (IPv6)" in seed.log_text(), 30, "torrenty's IPv6 lookup",
                   procs=[seed])
        b = lt_dht_node(free_port(), V6)
        self.addCleanup(lambda: b)
        b.add_dht_node((V6, port))
        found = set()
        for found in self.get_peers(b, ih, 30):
            if (V6, pc) in found:
                break
            self.assertIsNone(seed.poll(), seed.tail())
        self.assertIn((V6, pc), found, "libtorrent never got past torrenty's answers\n" + seed.tail())
        # The peer could also come from an announce c later sent to Torrenty itself; the other
        # nodes in b's table could only come from Torrenty's nodes6.
        wait_until(lambda: b.status().dht_nodes >= 3, 30, "b to learn a and c from torrenty", procs=[seed])


if __name__ == "__main__":
    unittest.main()
