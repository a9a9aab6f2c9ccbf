"""`torrenty serve` /metrics end to end: a torrent added with the real transmission-remote downloads
from a libtorrent seeder found through opentracker, a real Prometheus server scrapes /metrics (with
basic auth, as --rpc-auth demands), and its query API shows the transfer; `promtool check metrics`
accepts a direct scrape."""
import base64
import subprocess
import unittest
import urllib.error
import urllib.request

from harness import (LOOPBACK, MiB, TorrentyTestCase, free_port, info_hash, make_torrent,
                     wait_port_listening, write_random_file)
from prometheus_helpers import start_prometheus
from swarm_helpers import torrent_facts

USER, PASSWORD = "metrics", "s3cret-pass"


class MetricsTest(TorrentyTestCase):
    def scrape(self, rpc_port, auth=(USER, PASSWORD)):
        req = urllib.request.Request(f"http://{LOOPBACK}:{rpc_port}/metrics")
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"))
            return r.read().decode()

    def test_prometheus_scrapes_a_download(self):
        src = self.path("seed", "payload.bin")
        src.parent.mkdir()
        write_random_file(src, 6 * MiB + 12345, seed=9)
        tracker_port = free_port()
        torrent = make_torrent(src, f"http://{LOOPBACK}:{tracker_port}/announce",
                               self.path("payload.torrent"), piece_log2=18)
        ih = info_hash(torrent)
        _, size, hashes = torrent_facts(torrent)
        pieces = len(hashes)
        self.tracker([ih], port=tracker_port)
        seeder = self.start_lt_seeder(torrent, self.path("seed"))

        rpc_port = free_port()
        downloads = self.path("downloads")
        serve = self.start_torrenty([
            "serve", "--state-dir", self.path("state"), "--download-dir", downloads,
            "--port", free_port(), "--rpc-port", rpc_port, "--rpc-auth", f"{USER}:{PASSWORD}",
            "--threads", 2])
        wait_port_listening(rpc_port, 20, proc=serve)

        # Without the credentials /metrics is refused like the RPC.
        with self.assertRaises(urllib.error.HTTPError) as refused:
            self.scrape(rpc_port, auth=None)
        self.assertEqual(refused.exception.code, 401)

        prom = start_prometheus(self, f"{LOOPBACK}:{rpc_port}", basic_auth=(USER, PASSWORD))
        prom.wait_for_target("up", timeout=30)

        add = subprocess.run(["transmission-remote", f"{LOOPBACK}:{rpc_port}",
                              "--auth", f"{USER}:{PASSWORD}", "-a", str(torrent)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(add.returncode, 0, add.stdout.decode(errors="replace"))

        # PromQL comparisons keep a sample only when it holds: these wait for the transfer as
        # Prometheus stored it.
        got = prom.wait_for_sample(f"torrenty_payload_received_bytes_total >= {size}", timeout=60)
        self.assertLessEqual(got[0][1], size * 1.05)
        prom.wait_for_sample(f"torrenty_pieces_verified_total == {pieces}", timeout=30)
        prom.wait_for_sample('torrenty_torrents{state="seeding"} == 1', timeout=30)
        prom.wait_for_sample('torrenty_announces_total{result="success"} >= 1', timeout=30)
        prom.wait_for_sample("torrenty_disk_latency_seconds_count > 0", timeout=30)
        prom.wait_for_sample("torrenty_protocol_received_bytes_total > 0", timeout=30)
        prom.wait_for_sample("torrenty_ring_completions_total > 0", timeout=30)
        prom.wait_for_sample("torrenty_torrents_hosted == 1", timeout=30)
        per_shard = prom.query("sum(torrenty_shard_payload_received_bytes_total)")
        self.assertEqual(per_shard[0][1], got[0][1])
        self.assertEqual(prom.query("torrenty_pieces_failed_total")[0][1], 0)
        self.assertSameData(src, downloads / "payload.bin")

        text = self.scrape(rpc_port)
        check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout.decode(errors="replace") + "\n" + text)
        self.assertEqual(check.stdout.decode(errors="replace"), "")
        self.assertIn(f"torrenty_pieces_verified_total {pieces}\n", text)
        self.assertIsNone(seeder.poll(), "the seeder exited early\n" + seeder.tail())


if __name__ == "__main__":
    unittest.main()
