"""A small HTTP tracker for Torrenty's e2e tests: a recording proxy in front of opentracker, or a
canned tracker that fails, hangs, or hands out a fixed peer list. Stdlib only; 127.0.0.1 only.

Runs on background threads inside the test process:

    t = FakeTracker("proxy", upstream_port=opentracker.port).start()   # forwards, records
    t = FakeTracker("failure", failure_reason="e2e: torrent not allowed").start()
    t = FakeTracker("silent").start()       # accepts TCP connections, never answers
    t = FakeTracker("refuse")               # nothing listens on t.port (connection refused)
    t = FakeTracker("peers", peers=[("127.0.0.1", 6881)], interval=30, min_interval=30).start()
    ...
    t.announce_url; t.announces(port=P) -> [Announce]; t.stop()

In `peers` mode, `peers` may also be a callable f(n) -> list of (host, port), where n counts the
announces already answered for that client port (0 for its first): e.g. no peers at first, the
seeder afterwards. `proxy` mode may rewrite the upstream's interval / min interval.
Every announce is recorded (time, query parameters, client port) before it is answered.
"""
import socket
import struct
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import LOOPBACK, bdecode, bencode, free_port

MODES = ("proxy", "failure", "silent", "refuse", "peers")


class Announce:
    """One announce as the tracker saw it."""

    def __init__(self, t, path, params, info_hash):
        self.time = t                # time.monotonic() when it arrived
        self.path = path
        self.params = params         # str -> str (last value wins), info_hash excluded
        self.info_hash = info_hash   # raw 20 bytes, or None

    def get(self, key, default=None):
        return self.params.get(key, default)

    def int(self, key, default=None):
        v = self.params.get(key)
        return default if v is None or v == "" else int(v)

    @property
    def event(self):
        return self.params.get("event", "")

    @property
    def port(self):
        return self.int("port", -1)

    def __repr__(self):
        keys = ("event", "uploaded", "downloaded", "left", "port", "numwant", "compact")
        shown = " ".join(f"{k}={self.params[k]}" for k in keys if k in self.params)
        return f"<announce t={self.time:.2f} {shown}>"


def compact_peers(peers):
    return b"".join(socket.inet_aton(h) + struct.pack(">H", p) for h, p in peers)


class FakeTracker:
    def __init__(self, mode, port=None, upstream_port=None, failure_reason="e2e tracker says no",
                 peers=(), interval=30, min_interval=30, rewrite_interval=None):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        if mode == "proxy" and not upstream_port:
            raise ValueError("proxy mode needs upstream_port")
        self.mode = mode
        self.port = port or free_port()
        self.upstream_port = upstream_port
        self.failure_reason = failure_reason
        self.peers = peers
        self.interval = interval
        self.min_interval = min_interval
        self.rewrite_interval = rewrite_interval  # proxy: (interval, min_interval) or None
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._announces = []
        self._answered = {}  # client port -> announces answered
        self._server = None
        self._listener = None
        self._held = []
        self._threads = []
        self._stopping = threading.Event()
        self.errors = []  # exceptions inside handlers (e.g. upstream unreachable)

    @property
    def announce_url(self):
        return f"http://{LOOPBACK}:{self.port}/announce"

    # ------------------------------------------------------------------ lifecycle

    def start(self):
        if self.mode == "refuse":
            return self  # nothing listens: connection refused
        if self.mode == "silent":
            self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((LOOPBACK, self.port))
            self._listener.listen(64)
            self._listener.settimeout(0.2)
            th = threading.Thread(target=self._silent_loop, daemon=True, name=f"silent-{self.port}")
            th.start()
            self._threads.append(th)
            return self
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):  # noqa: N802 - http.server API
                tracker._handle(self)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        self._server.daemon_threads = True
        th = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True, name=f"tracker-{self.mode}-{self.port}")
        th.start()
        self._threads.append(th)
        return self

    def stop(self):
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for s in self._held:
            try:
                s.close()
            except OSError:
                pass
        self._held.clear()
        for th in self._threads:
            th.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ------------------------------------------------------------------ records

    def announces(self, port=None, info_hash=None):
        """Announces seen so far (oldest first), optionally only those from one client port."""
        with self._lock:
            out = list(self._announces)
        if port is not None:
            out = [a for a in out if a.port == int(port)]
        if info_hash is not None:
            out = [a for a in out if a.info_hash == info_hash]
        return out

    def silent_connections(self):
        return len(self._held)

    def wait_for(self, pred, timeout, port=None, procs=()):
        """Wait until pred(announces(port)) is true; returns the list. Fails early if a proc exits."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.announces(port)
            if pred(got):
                return got
            for p in procs:
                if p.poll() is not None:
                    raise AssertionError(f"{p.name} exited with {p.returncode} while waiting for "
                                         f"announces (have {got})\n" + p.tail())
            if time.monotonic() > deadline:
                raise AssertionError(f"tracker on port {self.port}: condition not met within "
                                     f"{timeout}s; announces: {got}")
            time.sleep(0.1)

    # ------------------------------------------------------------------ internals

    def _silent_loop(self):
        while not self._stopping.is_set():
            try:
                s, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            self._held.append(s)  # never read, never answered, closed only at stop()
            with self._lock:
                self._announces.append(Announce(time.monotonic(), "", {}, None))

    def _record(self, handler):
        split = urllib.parse.urlsplit(handler.path)
        params = {}
        info_hash = None
        for k, v in urllib.parse.parse_qsl(split.query, keep_blank_values=True, encoding="latin-1"):
            if k == "info_hash":
                info_hash = v.encode("latin-1")
            else:
                params[k] = v
        a = Announce(time.monotonic(), split.path, params, info_hash)
        with self._lock:
            self._announces.append(a)
            n = self._answered.get(a.port, 0)
            self._answered[a.port] = n + 1
        return a, split, n

    def _reply(self, handler, body, status=200):
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _handle(self, handler):
        try:
            a, split, n = self._record(handler)
            if split.path != "/announce":
                self._reply(handler, b"not found", 404)
                return
            if self.mode == "failure":
                self._reply(handler, bencode({"failure reason": self.failure_reason}))
            elif self.mode == "peers":
                peers = self.peers(n) if callable(self.peers) else list(self.peers)
                self._reply(handler, bencode({
                    "interval": self.interval, "min interval": self.min_interval,
                    "complete": 1, "incomplete": 1, "peers": compact_peers(peers)}))
            elif self.mode == "proxy":
                url = f"http://{LOOPBACK}:{self.upstream_port}{split.path}?{split.query}"
                with urllib.request.urlopen(url, timeout=5) as r:
                    body = r.read()
                if self.rewrite_interval is not None:
                    resp = bdecode(body)
                    if b"interval" in resp:
                        resp[b"interval"] = self.rewrite_interval[0]
                        resp[b"min interval"] = self.rewrite_interval[1]
                        body = bencode(resp)
                self._reply(handler, body)
        except Exception as e:  # noqa: BLE001 - recorded for the test to report
            self.errors.append(repr(e))
            try:
                self._reply(handler, b"proxy error", 502)
            except OSError:
                pass
