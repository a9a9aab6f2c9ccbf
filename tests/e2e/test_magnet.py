"""Magnet links (BEP 9 over BEP 10) against real peers on 127.0.0.1.

- Torrenty fetches the metadata and the data from a libtorrent seeder named by x.pe (and by
  --peer), verifies both, and saves the metadata as DIR/<name>.torrent.
- Torrenty seeds, and libtorrent and aria2c that start from a magnet link get the metadata from it.
- A peer that lies about the metadata (wrong bytes, wrong size) is dropped with a clear line and
  the download still completes from an honest peer.
"""
import json
import os
import shutil
import sys
import unittest
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_serve  # noqa: E402
from harness import LOOPBACK, MiB  # noqa: E402

HERE = Path(__file__).resolve().parent
LIAR = HERE / "metadata_liar.py"


class MagnetTest(harness.TorrentyTestCase):
    def make_content(self, size=3 * MiB + 12345, name="payload.bin", announce=None):
        src = self.path("src")
        src.mkdir(exist_ok=True)
        data = src / name
        harness.write_random_file(data, size, seed=7)
        # A tracker nobody listens on: libtorrent's announces fail at once and change nothing.
        announce = announce or f"http://{LOOPBACK}:{harness.free_port()}/announce"
        torrent = harness.make_torrent(data, announce, self.path("t.torrent"), piece_log2=16)
        return src, data, torrent, harness.info_hash(torrent)

    def test_metadata_and_data_from_libtorrent_via_x_pe(self):
        src, data, torrent, ih = self.make_content()
        seeder = self.start_lt_seeder(torrent, src)
        out = self.path("out")
        magnet = f"magnet:?xt=urn:btih:{ih}&dn=payload.bin&x.pe={LOOPBACK}:{seeder.port}"
        r = self.run_torrenty(["download", magnet, "-o", out], timeout=90)
        self.assertTorrentyOk(r, "torrenty download MAGNET")
        self.assertSameData(data, out / "payload.bin")
        self.assertIn("fetching metadata", r.stderr)
        self.assertIn("SHA-1 matches the info-hash", r.stderr)
        saved = out / "payload.bin.torrent"
        self.assertTrue(saved.exists(), r.stderr)
        self.assertEqual(harness.info_hash(saved), ih)

    def start_qbittorrent_seeder(self, torrent, save_path):
        """qbittorrent-nox seeding `torrent` from `save_path`, on loopback, with DHT, PEX, LSD and
        UPnP off; it is driven through its WebUI API (no login from localhost). Returns its peer
        port."""
        peer_port, web_port = harness.free_port(), harness.free_port()
        profile = self.path("qbt")
        conf = profile / "qBittorrent" / "config"
        conf.mkdir(parents=True)
        (conf / "qBittorrent.conf").write_text(
            "[LegalNotice]\nAccepted=true\n\n"
            "[BitTorrent]\nSession\\DHTEnabled=false\nSession\\LSDEnabled=false\n"
            "Session\\PeXEnabled=false\nSession\\QueueingSystemEnabled=false\n"
            f"Session\\Port={peer_port}\nSession\\InterfaceAddress={LOOPBACK}\n\n"
            "[Preferences]\nConnection\\UPnP=false\nGeneral\\Locale=en\n"
            f"WebUI\\Address={LOOPBACK}\nWebUI\\Port={web_port}\nWebUI\\LocalHostAuth=false\n"
            "WebUI\\CSRFProtection=false\nWebUI\\HostHeaderValidation=false\n")
        qbt = self.start("qbittorrent", ["qbittorrent-nox", f"--profile={profile}"])
        harness.wait_port_listening(web_port, 30, proc=qbt)
        api = f"http://{LOOPBACK}:{web_port}/api/v2"
        boundary = "torrentyboundary"
        body = b"".join([
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"torrents\"; filename=\"t.torrent\"\r\n"
            "Content-Type: application/x-bittorrent\r\n\r\n".encode(), Path(torrent).read_bytes(), b"\r\n",
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"savepath\"\r\n\r\n{save_path}\r\n".encode(),
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"skip_checking\"\r\n\r\ntrue\r\n".encode(),
            f"--{boundary}--\r\n".encode()])
        req = urllib.request.Request(f"{api}/torrents/add", data=body, method="POST", headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.read().strip(), b"Ok.")

        def seeding():
            with urllib.request.urlopen(f"{api}/torrents/info", timeout=10) as r:
                return any(t["progress"] == 1 for t in json.load(r))
        harness.wait_until(seeding, 30, "qBittorrent seeding", procs=[qbt])
        harness.wait_port_listening(peer_port, 30, proc=qbt)
        return peer_port

    @unittest.skipUnless(shutil.which("qbittorrent-nox"), "qbittorrent-nox is not installed")
    def test_metadata_and_data_from_qbittorrent_via_x_pe(self):
        src, data, torrent, ih = self.make_content()
        port = self.start_qbittorrent_seeder(torrent, src)
        out = self.path("out")
        magnet = f"magnet:?xt=urn:btih:{ih}&dn=payload.bin&x.pe={LOOPBACK}:{port}"
        r = self.run_torrenty(["download", magnet, "-o", out, "-v"], timeout=90)
        self.assertTorrentyOk(r, "torrenty download MAGNET from qBittorrent")
        self.assertIn("client qBittorrent", r.stderr)
        self.assertIn("SHA-1 matches the info-hash", r.stderr)
        self.assertSameData(data, out / "payload.bin")
        self.assertEqual(harness.info_hash(out / "payload.bin.torrent"), ih)

    def seeded_swarm_on_tracker(self, size):
        """A libtorrent seeder in an opentracker swarm: (tracker, tracker port, data, info-hash)."""
        tracker_port = harness.free_port()
        src, data, torrent, ih = self.make_content(
            size=size, announce=harness.tracker_url(tracker_port))
        tracker = self.tracker([ih], port=tracker_port)
        seeder = self.start_lt_seeder(torrent, src)
        tracker.wait_for_swarm(ih, 30, seeders=1, procs=[seeder])
        return tracker, tracker_port, data, ih

    def test_metadata_from_peers_of_the_links_tracker(self):
        tracker, _, data, ih = self.seeded_swarm_on_tracker(1 * MiB + 3)
        out = self.path("out")
        r = self.run_torrenty(["download", f"magnet:?xt=urn:btih:{ih}&tr={tracker.announce_url}",
                               "-o", out], timeout=90)
        self.assertTorrentyOk(r, "torrenty download MAGNET with tr only")
        self.assertSameData(data, out / "payload.bin")
        # The saved torrent keeps the link's tracker.
        r = self.run_torrenty(["info", out / "payload.bin.torrent"], timeout=15)
        self.assertIn(f"tier 0: {tracker.announce_url}", r.stdout)

    def test_metadata_from_peers_of_the_links_udp_tracker(self):
        # Most magnets in the wild list only udp:// trackers (BEP 15).
        _, tracker_port, data, ih = self.seeded_swarm_on_tracker(1 * MiB + 5)
        out = self.path("out")
        udp = f"udp://{LOOPBACK}:{tracker_port}/announce"
        r = self.run_torrenty(["download", f"magnet:?xt=urn:btih:{ih}&tr={udp}", "-o", out,
                               "--no-dht", "--no-lsd", "-v"], timeout=90)
        self.assertTorrentyOk(r, "torrenty download MAGNET with a udp:// tr only")
        self.assertSameData(data, out / "payload.bin")
        self.assertIn(f"tracker {udp}: 1 peers", r.stderr)

    def test_base32_magnet_with_peer_flag_and_no_save(self):
        import base64
        src, data, torrent, ih = self.make_content(size=700 * 1024)
        seeder = self.start_lt_seeder(torrent, src)
        out = self.path("out")
        b32 = base64.b32encode(bytes.fromhex(ih)).decode()
        r = self.run_torrenty(["download", f"magnet:?xt=urn:btih:{b32}", "-o", out,
                               "--peer", f"{LOOPBACK}:{seeder.port}", "--no-save-torrent"],
                              timeout=90)
        self.assertTorrentyOk(r, "torrenty download MAGNET --peer")
        self.assertSameData(data, out / "payload.bin")
        self.assertFalse((out / "payload.bin.torrent").exists())

    def test_torrenty_serves_metadata_to_libtorrent(self):
        src, data, torrent, ih = self.make_content()
        port = harness.free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", src, "--port", port, "-v"],
                                   name="torrenty-seed")
        harness.wait_port_listening(port, 30, proc=seed)
        out = self.path("lt-out")
        out.mkdir()
        leech = self.start_lt_peer(None, out, "leech", connect=[(LOOPBACK, port)],
                                   magnet=f"magnet:?xt=urn:btih:{ih}", timeout=90)
        leech.wait_for_output("METADATA", 60)
        leech.wait_for_output("DONE", 60)
        self.assertSameData(data, out / "payload.bin")

    def test_torrenty_serves_metadata_to_aria2c_through_a_tracker(self):
        src = self.path("src")
        src.mkdir()
        data = src / "payload.bin"
        harness.write_random_file(data, 2 * MiB + 99, seed=3)
        # The tracker must know the info-hash before it exists, so make the torrent first with a
        # placeholder announce, then one with the real tracker (the info-hash does not change).
        tracker_port = harness.free_port()
        torrent = harness.make_torrent(data, harness.tracker_url(tracker_port), self.path("t.torrent"),
                                       piece_log2=16)
        ih = harness.info_hash(torrent)
        tracker = self.tracker([ih], port=tracker_port)
        port = harness.free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", src, "--port", port, "-v"],
                                   name="torrenty-seed")
        harness.wait_port_listening(port, 30, proc=seed)
        tracker.wait_for_swarm(ih, 30, seeders=1, procs=[seed])
        out = self.path("aria-out")
        out.mkdir()
        magnet = f"magnet:?xt=urn:btih:{ih}&tr={tracker.announce_url}"
        aria = self.start_aria2c(magnet, out, extra=["--bt-metadata-only=false",
                                                     "--bt-save-metadata=false"])
        harness.wait_until(lambda: aria.poll() is not None, 90, "aria2c to finish", procs=[seed])
        self.assertEqual(aria.returncode, 0, aria.tail())
        self.assertSameData(data, out / "payload.bin")

    def test_lying_metadata_peers_are_dropped(self):
        src, data, torrent, ih = self.make_content(size=1 * MiB)
        liars = []
        for mode in ("wrong-bytes", "wrong-size"):
            port = harness.free_port()
            p = self.start(f"liar-{mode}", [harness.PYTHON, LIAR, "--torrent", torrent, "--port",
                                            port, "--mode", mode], separate_stdout=True)
            p.wait_for_output("LISTENING", 15)
            liars.append(port)
        out = self.path("out")
        # The honest seeder's port is given with --peer but nothing listens there until both
        # lies were caught; Torrenty redials it after its backoff and gets everything from it.
        honest_port = harness.free_port()
        magnet = (f"magnet:?xt=urn:btih:{ih}&x.pe={LOOPBACK}:{liars[0]}"
                  f"&x.pe={LOOPBACK}:{liars[1]}")
        t = self.start_torrenty(["download", magnet, "-o", out, "--peer",
                                 f"{LOOPBACK}:{honest_port}"])
        t.wait_for_output(f"peer {LOOPBACK}:{liars[0]}: sent metadata that does not hash to the "
                          "info-hash; dropped", 30, stdout_only=False)
        t.wait_for_output(f"peer {LOOPBACK}:{liars[1]}: lies about the metadata size", 30,
                          stdout_only=False)
        self.assertIsNone(t.poll(), "torrenty survives the liars")
        self.start_lt_seeder(torrent, src, port=honest_port)
        harness.wait_until(lambda: t.poll() is not None, 90, "torrenty to finish")
        self.assertEqual(t.returncode, 0, t.tail())
        self.assertSameData(data, out / "payload.bin")

    def test_info_and_create_print_the_magnet(self):
        src, data, torrent, ih = self.make_content(size=100 * 1024)
        r = self.run_torrenty(["info", torrent], timeout=15)
        self.assertTorrentyOk(r, "torrenty info")
        self.assertIn(f"magnet: magnet:?xt=urn:btih:{ih}&dn=payload.bin&tr=http%3A%2F%2F", r.stdout)
        r = self.run_torrenty(["create", data, "-o", self.path("c.torrent")], timeout=30)
        self.assertTorrentyOk(r, "torrenty create")
        ih2 = harness.info_hash(self.path("c.torrent"))
        self.assertIn(f"magnet: magnet:?xt=urn:btih:{ih2}&dn=payload.bin", r.stdout)

    def test_signal_during_the_metadata_phase(self):
        import signal
        dead = harness.free_port()  # nothing listens: the fetch keeps redialling
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            with self.subTest(sig.name):
                t = self.start_torrenty(["download", f"magnet:?xt=urn:btih:{'b' * 40}&x.pe="
                                         f"{LOOPBACK}:{dead}", "-o", self.path("o")])
                t.wait_for_output("fetching metadata", 15, stdout_only=False)
                t.send_signal(sig)
                harness.wait_until(lambda: t.poll() is not None, 10, "torrenty to stop")
                self.assertEqual(t.returncode, code, t.tail())
                self.assertIn("stopped before the metadata arrived", t.log_text())

    def test_bad_magnet_is_one_clear_line(self):
        r = self.run_torrenty(["download", "magnet:?xt=urn:btih:1234", "-o", self.path("o")],
                              timeout=15)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("neither 40 hex digits nor 32 base32", r.stderr)
        r = self.run_torrenty(["download", "magnet:?xt=urn:btih:" + "a" * 40, "-o", self.path("o")],
                              timeout=15)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("names no peers", r.stderr)


class ServeMagnetTest(test_serve.ServeCase):
    def test_transmission_remote_adds_a_magnet(self):
        src = self.path("src")
        src.mkdir()
        data = src / "payload.bin"
        harness.write_random_file(data, 2 * MiB + 5, seed=11)
        announce = f"http://{LOOPBACK}:{harness.free_port()}/announce"
        torrent = harness.make_torrent(data, announce, self.path("t.torrent"), piece_log2=16)
        ih = harness.info_hash(torrent)
        seeder = self.start_lt_seeder(torrent, src)
        downloads = self.path("downloads")
        downloads.mkdir()
        serve = self.start_serve(self.path("state"), download_dir=downloads)
        self.add(serve, f"magnet:?xt=urn:btih:{ih}&dn=payload.bin&x.pe={LOOPBACK}:{seeder.port}")
        self.wait_done(serve, ["payload.bin"], 90)
        self.assertSameData(data, downloads / "payload.bin")
        self.assertIn("fetching metadata", serve.log_text())
        # Kept like any added torrent, so a restart finds it.
        self.assertTrue(list(self.path("state", "torrents").glob(f"{ih}.torrent")))


if __name__ == "__main__":
    unittest.main()
