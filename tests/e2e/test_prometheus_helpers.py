"""Proves prometheus_helpers against a static target before it is pointed at `torrenty serve`:
a real Prometheus scrapes a tiny http.server on 127.0.0.1 that serves a fixed exposition."""
import base64
import http.server
import os
import threading
import time
import unittest

from harness import LOOPBACK, TorrentyTestCase
from prometheus_helpers import start_prometheus

EXPOSITION = b"""\
# HELP torrenty_payload_received_bytes_total Piece data received from peers, in bytes.
# TYPE torrenty_payload_received_bytes_total counter
torrenty_payload_received_bytes_total 12345
# HELP torrenty_peers Peer connections by state.
# TYPE torrenty_peers gauge
torrenty_peers{state="active"} 7
torrenty_peers{state="odd \\"quoted\\" \\\\ value\\nline"} 1
# HELP torrenty_disk_latency_seconds Time from submitting a disk operation to its completion.
# TYPE torrenty_disk_latency_seconds histogram
torrenty_disk_latency_seconds_bucket{le="0.001"} 3
torrenty_disk_latency_seconds_bucket{le="0.01"} 9
torrenty_disk_latency_seconds_bucket{le="+Inf"} 10
torrenty_disk_latency_seconds_sum 0.25
torrenty_disk_latency_seconds_count 10
"""


class StaticTarget:
    """An HTTP server on 127.0.0.1 answering `path` with EXPOSITION (and 404 otherwise),
    optionally behind basic auth; counts the scrapes it answered."""

    def __init__(self, path="/metrics", basic_auth=None):
        target = self
        self.scrapes = 0
        self.path = path
        self.auth = ("Basic " + base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
                     if basic_auth else None)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if target.auth is not None and self.headers.get("Authorization") != target.auth:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="metrics"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path != target.path:
                    self.send_error(404)
                    return
                target.scrapes += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(EXPOSITION)))
                self.end_headers()
                self.wfile.write(EXPOSITION)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return f"{LOOPBACK}:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class PrometheusHelpersTest(TorrentyTestCase):
    def static_target(self, **kw):
        t = StaticTarget(**kw)
        self.addCleanup(t.close)
        return t

    def test_scrapes_a_target_and_answers_queries(self):
        target = self.static_target()
        prom = start_prometheus(self, target.address)
        [(labels, value)] = prom.wait_for_sample("torrenty_payload_received_bytes_total", timeout=30)
        self.assertEqual(value, 12345)
        self.assertEqual(labels["job"], "torrenty")
        self.assertEqual(labels["instance"], target.address)
        self.assertGreaterEqual(target.scrapes, 1)
        # Escaped label values arrive unescaped.
        states = {l["state"]: v for l, v in prom.query("torrenty_peers")}
        self.assertEqual(states, {"active": 7, 'odd "quoted" \\ value\nline': 1})
        [(_, median)] = prom.query("histogram_quantile(0.5, torrenty_disk_latency_seconds_bucket)")
        self.assertTrue(0.001 < median <= 0.01, median)
        [(_, up)] = prom.query("up")
        self.assertEqual(up, 1)
        self.assertEqual(prom.wait_for_target(timeout=5)["scrapeUrl"],
                         f"http://{target.address}/metrics")
        # A 1 s interval: a second scrape follows within a few seconds.
        first = target.scrapes
        prom.wait_for_sample("count_over_time(up[1m])", timeout=15,
                             predicate=lambda s: s[0][1] >= 2)
        self.assertGreater(target.scrapes, first)

    def test_basic_auth_and_metrics_path(self):
        target = self.static_target(path="/custom/metrics", basic_auth=("admin", "s3cr:et"))
        prom = start_prometheus(self, target.address, metrics_path="/custom/metrics",
                                basic_auth=("admin", "s3cr:et"))
        [(_, value)] = prom.wait_for_sample("torrenty_payload_received_bytes_total", timeout=30)
        self.assertEqual(value, 12345)

    def test_missing_metric_times_out_with_the_target_state(self):
        target = self.static_target(basic_auth=("admin", "right"))
        prom = start_prometheus(self, target.address, basic_auth=("admin", "wrong"))
        t = prom.wait_for_target(health="down", timeout=30)
        self.assertIn("401", t["lastError"])
        t0 = time.monotonic()
        with self.assertRaises(AssertionError) as cm:
            prom.wait_for_sample("torrenty_payload_received_bytes_total", timeout=3)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn("401", str(cm.exception))  # the target's lastError is in the message
        with self.assertRaises(AssertionError):
            prom.query("this is not promql")

    def test_stop_kills_prometheus_by_pid(self):
        target = self.static_target()
        prom = start_prometheus(self, target.address)
        pid = prom.proc.pid
        os.kill(pid, 0)  # running
        prom.stop()
        self.assertIsNotNone(prom.proc.poll())
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)


if __name__ == "__main__":
    unittest.main()
