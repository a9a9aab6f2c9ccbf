"""Web seeds (BEP 19 url-list): a Python http.server with Range support on 127.0.0.1 as the origin,
alone (single- and multi-file layouts) or with a libtorrent peer; a lying origin, one that answers
503 for a while, and one that sends bad Content-Range headers and short bodies."""
import http.server
import os
import re
import threading
import time
import unittest

import test_serve
from harness import (MiB, KiB, TorrentyTestCase, free_port, make_tree, write_random_file)


class Origin:
    """A threaded HTTP/1.1 server over `root` that honours single byte ranges. `behave(handler, n)`
    may answer request number n itself (return True) to misbehave."""

    def __init__(self, root, behave=None):
        self.root = os.path.realpath(root)
        self.behave = behave
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes_served = 0
        self.paths = []
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                with origin.lock:
                    origin.requests += 1
                    n = origin.requests
                    origin.paths.append(self.path)
                if origin.behave is not None and origin.behave(self, n):
                    return
                body, status, headers = origin.answer(self.path, self.headers.get("Range"))
                self.send(status, body, headers)

            def send(self, status, body, headers=()):
                try:
                    self.send_response(status)
                    for k, v in headers:
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client finished (or gave up) first
                with origin.lock:
                    origin.bytes_served += len(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}/{path}"

    def file_of(self, url_path):
        from urllib.parse import unquote
        p = os.path.realpath(os.path.join(self.root, unquote(url_path.lstrip("/"))))
        if not p.startswith(self.root + os.sep) or not os.path.isfile(p):
            return None
        return p

    def answer(self, url_path, range_header):
        p = self.file_of(url_path)
        if p is None:
            return b"not found", 404, ()
        size = os.path.getsize(p)
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", range_header or "")
        with open(p, "rb") as f:
            if not m:
                return f.read(), 200, ()
            first, last = int(m.group(1)), min(int(m.group(2)), size - 1)
            if first > last:
                return b"", 416, [("Content-Range", f"bytes */{size}")]
            f.seek(first)
            return f.read(last - first + 1), 206, [("Content-Range", f"bytes {first}-{last}/{size}")]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class WebSeedTest(TorrentyTestCase):

    def origin(self, root, behave=None):
        o = Origin(root, behave)
        self.addCleanup(o.stop)
        return o

    def create(self, path, web_seed, out, piece="64K"):
        res = self.run_torrenty(["create", path, "--web-seed", web_seed, "--piece-length", piece,
                                 "-o", out], timeout=60, name="torrenty-create")
        self.assertTorrentyOk(res, "torrenty create")
        return out

    def download(self, torrent, out, *extra, timeout=90):
        res = self.run_torrenty(["download", torrent, "-o", out, "--port", free_port(), *extra],
                                timeout=timeout)
        self.assertTorrentyOk(res, "torrenty download")
        return res

    def test_single_file_origin_only(self):
        data = self.path("www")
        write_random_file(data / "one.bin", 3 * MiB + 12345)
        o = self.origin(data)
        # A URL ending in '/' gets the torrent's name appended (BEP 19).
        t = self.create(data / "one.bin", o.url(), self.path("one.torrent"))
        self.download(t, self.path("dl"))
        self.assertSameData(data / "one.bin", self.path("dl", "one.bin"))
        self.assertTrue(all(p == "/one.bin" for p in o.paths), o.paths)
        # One copy, and not one request per piece: runs of pieces share a request.
        self.assertEqual(o.bytes_served, 3 * MiB + 12345)
        self.assertLess(o.requests, 3 * MiB // (64 * KiB))

    def test_single_file_url_names_the_file(self):
        data = self.path("www")
        write_random_file(data / "other-name.bin", 1 * MiB + 1)
        os.link(data / "other-name.bin", self.path("one.bin"))
        o = self.origin(data)
        t = self.create(self.path("one.bin"), o.url("other-name.bin"), self.path("one.torrent"))
        self.download(t, self.path("dl"))
        self.assertSameData(data / "other-name.bin", self.path("dl", "one.bin"))

    def test_multi_file_origin_only(self):
        www = self.path("www")
        tree = make_tree(www / "my tree")
        write_random_file(tree / "sub dir" / "odd #name.bin", 300 * KiB + 7)
        o = self.origin(www)
        # 16 KiB pieces: many pieces span files, so a run needs one request per file.
        t = self.create(tree, o.url().rstrip("/"), self.path("tree.torrent"), piece="16K")
        self.download(t, self.path("dl"))
        self.assertSameData(tree, self.path("dl", "my tree"))
        self.assertIn("/my%20tree/sub%20dir/odd%20%23name.bin", o.paths)

    def test_origin_and_libtorrent_peer(self):
        data = self.path("www")
        write_random_file(data / "mix.bin", 8 * MiB)
        o = self.origin(data)
        t = self.create(data / "mix.bin", o.url(), self.path("mix.torrent"))
        seeder = self.start_lt_seeder(t, data)
        # The origin is capped, so the peer, which has every piece, does most of the work.
        self.download(t, self.path("dl"), "--peer", f"127.0.0.1:{seeder.port}",
                      "--web-seed-max-rate", "512K")
        self.assertSameData(data / "mix.bin", self.path("dl", "mix.bin"))
        self.assertLess(o.bytes_served, 4 * MiB)

    def test_lying_origin_is_dropped_and_peer_completes(self):
        data = self.path("www")
        write_random_file(data / "lie.bin", 4 * MiB)

        def lie(handler, n):
            body, status, headers = o.answer(handler.path, handler.headers.get("Range"))
            body = bytes(b ^ 0x5A for b in body)
            handler.send(status, body, headers)
            return True

        o = self.origin(data, lie)
        t = self.create(data / "lie.bin", o.url(), self.path("lie.torrent"))
        # A slow peer, so the origin's answers arrive while pieces are still missing.
        seeder = self.start_lt_seeder(t, data, upload_rate=1 * MiB)
        res = self.download(t, self.path("dl"), "--peer", f"127.0.0.1:{seeder.port}")
        self.assertSameData(data / "lie.bin", self.path("dl", "lie.bin"))
        self.assertRegex(res.stderr, r"web seed http://127\.0\.0\.1:\d+/ dropped: 3 pieces failed")

    def test_origin_503_for_a_while_then_serves(self):
        data = self.path("www")
        write_random_file(data / "busy.bin", 2 * MiB)
        busy_until = time.monotonic() + 2.5

        def busy(handler, n):
            if time.monotonic() >= busy_until:
                return False
            handler.send(503, b"busy", [("Retry-After", "1")])
            return True

        o = self.origin(data, busy)
        t = self.create(data / "busy.bin", o.url(), self.path("busy.torrent"))
        res = self.download(t, self.path("dl"))
        self.assertSameData(data / "busy.bin", self.path("dl", "busy.bin"))
        self.assertIn("HTTP status 503; retrying in 1000 ms", res.stderr)
        # Retry-After was honoured: about one request a second while busy, not a flood.
        self.assertLess(o.requests, 12)

    def test_bad_content_range_and_short_body(self):
        data = self.path("www")
        write_random_file(data / "odd.bin", 1 * MiB + 5)

        def odd(handler, n):
            body, status, headers = o.answer(handler.path, handler.headers.get("Range"))
            if n == 1:
                handler.send(206, body, [("Content-Range", "bytes 0-1/2")])
                return True
            if n == 2:
                handler.send(206, body[:-1], headers)
                return True
            if n == 3:  # the connection drops midway
                handler.send_response(206)
                for k, v in headers:
                    handler.send_header(k, v)
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body[: len(body) // 2])
                handler.wfile.flush()
                handler.close_connection = True
                return True
            return False

        o = self.origin(data, odd)
        t = self.create(data / "odd.bin", o.url(), self.path("odd.torrent"))
        res = self.download(t, self.path("dl"))
        self.assertSameData(data / "odd.bin", self.path("dl", "odd.bin"))
        self.assertIn('Content-Range "bytes 0-1/2" is not bytes', res.stderr)
        self.assertRegex(res.stderr, r"body of \d+ bytes for a range of \d+")

    def test_no_web_seeds_flag(self):
        data = self.path("www")
        write_random_file(data / "no.bin", 1 * MiB)
        o = self.origin(data)
        t = self.create(data / "no.bin", o.url(), self.path("no.torrent"))
        seeder = self.start_lt_seeder(t, data)
        self.download(t, self.path("dl"), "--no-web-seeds", "--peer", f"127.0.0.1:{seeder.port}")
        self.assertSameData(data / "no.bin", self.path("dl", "no.bin"))
        self.assertEqual(o.requests, 0)

    def test_max_rate_caps_origin_traffic(self):
        data = self.path("www")
        write_random_file(data / "slow.bin", 2 * MiB)
        o = self.origin(data)
        t = self.create(data / "slow.bin", o.url(), self.path("slow.torrent"))
        res = self.download(t, self.path("dl"), "--web-seed-max-rate", "1M")
        self.assertSameData(data / "slow.bin", self.path("dl", "slow.bin"))
        # 2 MiB at 1 MiB/s: at least about a second beyond the first second's burst.
        self.assertGreater(res.elapsed, 1.0)

    def test_bad_rate_flag(self):
        res = self.run_torrenty(["download", self.path("x.torrent"), "--web-seed-max-rate", "fast"],
                                timeout=15)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--web-seed-max-rate needs bytes per second", res.stderr)


class WebSeedServe(test_serve.ServeCase):

    def test_serve_downloads_from_web_seeds(self):
        www = self.path("www")
        write_random_file(www / "s1.bin", 2 * MiB + 1)
        write_random_file(www / "s2.bin", 1 * MiB + 2)
        o = Origin(www)
        self.addCleanup(o.stop)
        serve = self.start_serve(self.path("state"), self.path("dl"))
        for name in ("s1.bin", "s2.bin"):
            t = self.path(f"{name}.torrent")
            res = self.run_torrenty(["create", www / name, "--web-seed", o.url(), "-o", t],
                                    timeout=60, name="torrenty-create")
            self.assertTorrentyOk(res, "torrenty create")
            self.add(serve, t)
        self.wait_done(serve, ["s1.bin", "s2.bin"], 60)
        self.assertSameData(www / "s1.bin", self.path("dl", "s1.bin"))
        self.assertSameData(www / "s2.bin", self.path("dl", "s2.bin"))


if __name__ == "__main__":
    unittest.main()
