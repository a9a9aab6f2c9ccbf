"""Swarms found only through opentracker's UDP tracker (BEP 15).

opentracker listens for UDP on the same port number as HTTP (-P); the harness checks readiness and
scrapes over HTTP, which sees the same swarm. The torrents list only udp:// URLs (plus, in the mixed
test, a dead http:// tracker in the same tier), so every peer torrenty finds came over UDP.
"""
import unittest

from harness import LOOPBACK, MiB, TorrentyTestCase, free_port, info_hash, make_torrent, \
    wait_port_listening, write_random_file


def udp_tracker_url(port):
    return f"udp://{LOOPBACK}:{port}/announce"


class UdpTracker(TorrentyTestCase):

    def _torrent(self, name, announce, size):
        src = self.path("src")
        write_random_file(src / name, size)
        torrent = make_torrent(src / name, announce, self.path(f"{name}.torrent"), piece_log2=18)
        return src, torrent

    def _download(self, announce, tport, name):
        src, torrent = self._torrent(name, announce, 16 * MiB + 4321)
        ih = info_hash(torrent)
        tracker = self.tracker([ih], port=tport)
        seeder = self.start_lt_seeder(torrent, src)
        # The seeder reached the tracker over UDP before torrenty starts.
        tracker.wait_for_swarm(ih, 30, seeders=1, procs=[seeder])
        out = self.path("out")
        res = self.run_torrenty(["download", torrent, "-o", out, "--port", free_port()], timeout=120)
        self.assertTorrentyOk(res, "torrenty download")
        self.assertIsNone(seeder.poll(), "the libtorrent seeder died during the download")
        self.assertSameData(src / name, out / name)
        return res, tracker, ih

    def test_download_from_libtorrent_via_udp_tracker(self):
        tport = free_port()
        res, tracker, ih = self._download(udp_tracker_url(tport), tport, "udp-payload.bin")
        self.assertNotIn("tracker:", res.stderr, "torrenty logged a tracker problem:\n" + res.stderr)
        # torrenty said goodbye (event=stopped) over UDP: only the seeder is left.
        self.assertEqual(tracker.scrape(ih), (1, 0))

    def test_mixed_tier_dead_http_and_udp(self):
        tport = free_port()
        dead = free_port()  # nothing listens there: connection refused, fall through to UDP
        announce = f"http://{LOOPBACK}:{dead}/announce,{udp_tracker_url(tport)}"
        self._download(announce, tport, "mixed-payload.bin")

    def test_libtorrent_downloads_from_torrenty_seed_via_udp_tracker(self):
        tport = free_port()
        data, torrent = self._torrent("seed-payload.bin", udp_tracker_url(tport), 16 * MiB + 99)
        ih = info_hash(torrent)
        tracker = self.tracker([ih], port=tport)
        sport = free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", data, "--port", sport],
                                   name="torrenty-seed")
        wait_port_listening(sport, 60, proc=seed)
        tracker.wait_for_swarm(ih, 30, seeders=1, procs=[seed])
        out = self.path("lt-out")
        leecher = self.start_lt_peer(torrent, out, "leech", timeout=120)
        leecher.wait_for_output("DONE", 120)
        self.assertSameData(data / "seed-payload.bin", out / "seed-payload.bin")
        self.assertIsNone(seed.poll(), "torrenty seed exited early\n" + seed.tail())
        seed.send_signal(15)
        self.wait_exit(seed, 10)


if __name__ == "__main__":
    unittest.main()
