"""A magnet link's x.pe peer over IPv6: the metadata phase dials x.pe=[::1]:PORT (a libtorrent
seeder listening on 127.0.0.1:PORT and [::1]:PORT, named only by its IPv6 address), fetches and
verifies the metadata, and the download that follows completes; in `download` and in `serve`
(transmission-remote adds the link)."""
import unittest

import test_serve

from harness import MiB, TorrentyTestCase, free_port, info_hash, make_torrent, write_random_file
from test_ipv6 import ipv6_loopback_available


@unittest.skipUnless(ipv6_loopback_available(), "no IPv6 loopback on this machine")
class Magnet6(TorrentyTestCase):
    def test_metadata_from_an_ipv6_x_pe_peer(self):
        src = self.path("src")
        write_random_file(src / "six.bin", 2 * MiB + 99, seed=8)
        torrent = make_torrent(src / "six.bin", f"http://127.0.0.1:{free_port()}/announce",
                               self.path("t.torrent"), piece_log2=16)
        ih = info_hash(torrent)
        seeder = self.start_lt_seeder(torrent, src, ipv6=True)
        out = self.path("out")
        magnet = f"magnet:?xt=urn:btih:{ih}&dn=six.bin&x.pe=[::1]:{seeder.port}"
        r = self.run_torrenty(["download", magnet, "-o", out, "--port", free_port(), "-v"], timeout=60)
        self.assertTorrentyOk(r, "torrenty download MAGNET with an IPv6 x.pe")
        self.assertIn("SHA-1 matches the info-hash", r.stderr)
        self.assertEqual(info_hash(out / "six.bin.torrent"), ih)
        self.assertSameData(src / "six.bin", out / "six.bin")
        self.assertIn(f"peer [::1]:{seeder.port}: handshake done", r.stderr)
        self.assertNotIn(f"127.0.0.1:{seeder.port}", r.stderr)


@unittest.skipUnless(ipv6_loopback_available(), "no IPv6 loopback on this machine")
class ServeMagnet6(test_serve.ServeCase):
    def test_transmission_remote_adds_a_magnet_with_an_ipv6_x_pe(self):
        src = self.path("src")
        write_random_file(src / "six.bin", 2 * MiB + 7, seed=9)
        torrent = make_torrent(src / "six.bin", f"http://127.0.0.1:{free_port()}/announce",
                               self.path("t.torrent"), piece_log2=16)
        ih = info_hash(torrent)
        seeder = self.start_lt_seeder(torrent, src, ipv6=True)
        downloads = self.path("downloads")
        downloads.mkdir()
        serve = self.start_serve(self.path("state"), download_dir=downloads)
        self.add(serve, f"magnet:?xt=urn:btih:{ih}&dn=six.bin&x.pe=[::1]:{seeder.port}")
        self.wait_done(serve, ["six.bin"], 60)
        self.assertSameData(src / "six.bin", downloads / "six.bin")


if __name__ == "__main__":
    unittest.main()
