#!/usr/bin/python3
"""A hostile BitTorrent peer speaking the raw BEP 3 wire protocol, for Torrenty's e2e tests.

Listening modes (Torrenty dials it with `torrenty download --peer 127.0.0.1:PORT`):
  corrupt_blocks  full bitfield + unchoke, then answers every request with the real block with
                  one byte flipped (needs the data file)
  race_corrupt    full bitfield + unchoke, then answers only requests for the last block of a
                  piece, at once and corrupted, and never the others: every copy of a piece then
                  mixes its bad block with honest blocks (it wins the endgame race), so smart ban
                  must fetch the piece from one peer to find the culprit
  huge_length     after the handshake, a length prefix of 0xFFFFFFFF
  bad_bitfield    a bitfield one byte too long (variant="long"), one byte too short ("short") or of
                  the right size with the spare bits set ("spare")
  bad_piece       waits for a request, sends an unrequested (in-range, wrong-data) block, then a
                  piece message for an out-of-range index
  garbage         random bytes after the handshake
  wrong_infohash  answers the handshake with another info-hash
  silent          accepts TCP and never sends a byte (no handshake)
Dialling mode (the evil peer dials `torrenty seed`):
  request_flood   handshake + interested, then thousands of requests, never reading a byte; it
                  reconnects when dropped, on `connections` parallel sockets, for `duration` s

Everything it sees is recorded per connection (accepted/closed times, who closed, bytes, requests),
so a test can check that Torrenty dropped the connection, when, and whether it reconnected.
Only 127.0.0.1 is used. Stdlib only; runs as threads inside the test process (EvilPeer) or on its
own (`evil_peer.py --mode M --torrent T [--data F] [--listen PORT | --connect PORT]`, prints JSON).
"""
import argparse
import hashlib
import json
import os
import random
import socket
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import bdecode, bencode  # noqa: E402

LOOPBACK = "127.0.0.1"
PSTR = b"BitTorrent protocol"
BLOCK = 16 * 1024
MODES = ("corrupt_blocks", "race_corrupt", "huge_length", "bad_bitfield", "bad_piece", "garbage", "wrong_infohash",
         "silent", "request_flood")


class TorrentFacts:
    """What the evil peer needs to know about a (single-file) torrent."""

    def __init__(self, torrent_path, data_path=None):
        meta = bdecode(Path(torrent_path).read_bytes())
        info = meta[b"info"]
        self.info_hash = hashlib.sha1(bencode(info)).digest()
        self.piece_length = info[b"piece length"]
        if b"length" in info:
            self.total_length = info[b"length"]
        else:
            self.total_length = sum(f[b"length"] for f in info[b"files"])
        self.num_pieces = len(info[b"pieces"]) // 20
        self.data_path = Path(data_path) if data_path else None

    def piece_size(self, i):
        return min(self.piece_length, self.total_length - i * self.piece_length)

    def read(self, piece, begin, length):
        with open(self.data_path, "rb") as f:
            f.seek(piece * self.piece_length + begin)
            return f.read(length)

    def bitfield(self, spare=False):
        n = self.num_pieces
        bits = bytearray(b"\xff" * ((n + 7) // 8))
        if n % 8:
            bits[-1] = (0xFF << (8 - n % 8)) & 0xFF
            if spare:
                bits[-1] |= 0xFF >> (n % 8)  # the spare bits BEP 3 says must be zero
        return bytes(bits)


def handshake(info_hash, peer_id):
    return bytes([len(PSTR)]) + PSTR + bytes(8) + info_hash + peer_id


def msg(msg_id, payload=b""):
    return struct.pack(">IB", 1 + len(payload), msg_id) + payload


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("eof")
        buf += chunk
    return buf


class ConnRecord:
    def __init__(self, index, t0):
        self.index = index
        self.t0 = t0
        self.opened_at = time.monotonic() - t0
        self.handshake_received = False
        self.peer_id = None           # the remote's 20-byte peer id, as text (who dialled us)
        self.offense_at = None        # when the hostile bytes went out
        self.closed_at = None         # when the connection ended
        self.closed_by = None         # "peer" (Torrenty closed/reset it), "us", or None (still open)
        self.bytes_in = 0
        self.bytes_out = 0
        self.requests_seen = 0
        self.blocks_sent = 0
        self.note = ""

    def mark(self, attr):
        setattr(self, attr, time.monotonic() - self.t0)

    def as_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "t0"}


class EvilPeer:
    """Runs the chosen mode on background threads. Use start() ... stop(); read records()."""

    def __init__(self, mode, torrent, data=None, port=0, target_port=None, variant=None,
                 connections=4, duration=10.0, requests_per_burst=2000, seed=1):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode}")
        self.mode = mode
        self.facts = TorrentFacts(torrent, data)
        self.variant = variant
        self.target_port = target_port
        self.connections = connections
        self.duration = duration
        self.requests_per_burst = requests_per_burst
        self.rng = random.Random(seed)
        self.peer_id = b"-EV0001-" + bytes(self.rng.randrange(256) for _ in range(12))
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._records = []
        self._stop = threading.Event()
        self._threads = []
        self._socks = set()
        self.listen_sock = None
        self.port = None
        if mode != "request_flood":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((LOOPBACK, port))
            s.listen(16)
            s.settimeout(0.2)
            self.listen_sock = s
            self.port = s.getsockname()[1]

    # ------------------------------------------------------------------ lifecycle

    def start(self):
        if self.mode == "request_flood":
            for i in range(self.connections):
                self._spawn(self._flood_loop)
        else:
            self._spawn(self._accept_loop)
        return self

    def stop(self):
        self._stop.set()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)
        if self.listen_sock is not None:
            self.listen_sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def records(self):
        with self._lock:
            return [r.as_dict() for r in self._records]

    def now(self):
        return time.monotonic() - self.t0

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _new_record(self):
        with self._lock:
            r = ConnRecord(len(self._records), self.t0)
            self._records.append(r)
            return r

    def _track(self, sock, add):
        with self._lock:
            (self._socks.add if add else self._socks.discard)(sock)

    # ------------------------------------------------------------------ listening side

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                sock, _ = self.listen_sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            rec = self._new_record()
            self._spawn(self._serve, sock, rec)

    def _send(self, sock, rec, data):
        sock.sendall(data)
        rec.bytes_out += len(data)

    def _serve(self, sock, rec):
        self._track(sock, True)
        sock.settimeout(0.2)
        try:
            self._serve_mode(sock, rec)
            self._drain_until_closed(sock, rec)
        except (ConnectionError, OSError) as e:
            if rec.closed_at is None:
                rec.mark("closed_at")
                rec.closed_by = "us" if self._stop.is_set() else "peer"
                rec.note = rec.note or type(e).__name__
        finally:
            self._track(sock, False)
            sock.close()

    def _recv(self, sock, rec, n, until=None):
        """Blocking read of exactly n bytes, honouring stop(); raises ConnectionError on EOF and
        socket.timeout once `until` (a time.monotonic() value) has passed."""
        buf = b""
        while len(buf) < n:
            if self._stop.is_set():
                raise ConnectionAbortedError("stopped")
            try:
                chunk = sock.recv(n - len(buf))
            except socket.timeout:
                if until is not None and time.monotonic() > until:
                    raise
                continue
            if not chunk:
                raise ConnectionResetError("eof")
            rec.bytes_in += len(chunk)
            buf += chunk
        return buf

    def _read_msg(self, sock, rec, until=None):
        (length,) = struct.unpack(">I", self._recv(sock, rec, 4, until))
        if length == 0:
            return None, b""
        body = self._recv(sock, rec, length, until)
        return body[0], body[1:]

    def _drain_until_closed(self, sock, rec):
        """Read and discard until Torrenty closes the connection (or stop())."""
        while True:
            if self._stop.is_set():
                rec.mark("closed_at")
                rec.closed_by = "us"
                return
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                rec.mark("closed_at")
                rec.closed_by = "peer"
                return
            rec.bytes_in += len(chunk)

    def _serve_mode(self, sock, rec):
        f = self.facts
        mode = self.mode
        if mode == "silent":
            return  # never send a byte; _drain_until_closed waits for Torrenty to give up
        hs = self._recv(sock, rec, 68)
        rec.handshake_received = True
        rec.peer_id = hs[48:68].decode("latin-1")
        if mode == "wrong_infohash":
            other = hashlib.sha1(b"not the torrent you are looking for").digest()
            self._send(sock, rec, handshake(other, self.peer_id))
            rec.mark("offense_at")
            return
        self._send(sock, rec, handshake(hs[28:48], self.peer_id))
        if mode == "huge_length":
            self._send(sock, rec, b"\xff\xff\xff\xff" + bytes(64))
            rec.mark("offense_at")
            return
        if mode == "garbage":
            self._send(sock, rec, self.rng.randbytes(64 * 1024))
            rec.mark("offense_at")
            return
        if mode == "bad_bitfield":
            good = f.bitfield()
            variant = self.variant or "long"
            if variant == "long":
                bits = good + b"\xff"
            elif variant == "short":
                bits = good[:-1]
            elif variant == "spare":
                bits = f.bitfield(spare=True)
                if bits == good:
                    raise ValueError("torrent has a multiple of 8 pieces: no spare bits to set")
            else:
                raise ValueError(f"unknown bad_bitfield variant {variant}")
            self._send(sock, rec, msg(5, bits))
            rec.mark("offense_at")
            return
        # corrupt_blocks, race_corrupt and bad_piece look like a seeder.
        self._send(sock, rec, msg(5, f.bitfield()) + msg(1))
        while True:
            mid, payload = self._read_msg(sock, rec)
            if mid != 6:
                continue
            rec.requests_seen += 1
            index, begin, length = struct.unpack(">III", payload)
            if mode == "race_corrupt":
                if begin + length < f.piece_size(index):
                    continue  # held forever: only a snub takes it back
                data = bytearray(f.read(index, begin, length))
                data[0] ^= 0xFF
                self._send(sock, rec, msg(7, struct.pack(">II", index, begin) + bytes(data)))
                rec.blocks_sent += 1
                if rec.offense_at is None:
                    rec.mark("offense_at")
                continue
            if mode == "corrupt_blocks":
                data = bytearray(f.read(index, begin, length))
                data[len(data) // 2] ^= 0xFF
                self._send(sock, rec, msg(7, struct.pack(">II", index, begin) + bytes(data)))
                rec.blocks_sent += 1
                if rec.offense_at is None:
                    rec.mark("offense_at")
                continue
            # bad_piece: first, garbage for the first block of every piece this peer was not asked
            # for (some of them are being fetched from honest peers: a client that accepts
            # unrequested blocks lets us poison those pieces and get the honest peers blamed),
            # then a piece message for an impossible index.
            requested = {index}
            sock.settimeout(0.01)  # only what is already there: the download is quick
            until = time.monotonic() + 0.02
            try:
                while True:
                    mid, payload = self._read_msg(sock, rec, until)
                    if mid == 6:
                        rec.requests_seen += 1
                        requested.add(struct.unpack(">I", payload[:4])[0])
            except socket.timeout:
                pass
            sock.settimeout(0.2)
            for other in range(f.num_pieces):
                if other in requested:
                    continue
                size = min(BLOCK, f.piece_size(other))
                self._send(sock, rec, msg(7, struct.pack(">II", other, 0) + self.rng.randbytes(size)))
                rec.blocks_sent += 1
            self._send(sock, rec, msg(7, struct.pack(">II", f.num_pieces + 7, 0) + bytes(BLOCK)))
            rec.mark("offense_at")
            return

    # ------------------------------------------------------------------ dialling side

    def _flood_loop(self):
        """One socket at a time: flood requests without ever reading, reconnect when dropped."""
        f = self.facts
        deadline = time.monotonic() + self.duration
        while not self._stop.is_set() and time.monotonic() < deadline:
            rec = self._new_record()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._track(sock, True)
            try:
                # A small receive buffer: Torrenty's sends stall quickly as we never read.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.settimeout(2.0)
                sock.connect((LOOPBACK, self.target_port))
                sock.settimeout(None)  # sends may block while Torrenty pushes back; stop() unblocks
                pid = b"-EV0001-" + bytes(self.rng.randrange(256) for _ in range(12))
                sock.sendall(handshake(f.info_hash, pid) + msg(2))  # handshake + interested
                rec.bytes_out += 68 + 5
                time.sleep(0.2)  # let the unchoke go out (we never read it)
                rec.mark("offense_at")
                burst = bytearray()
                i = 0
                while not self._stop.is_set() and time.monotonic() < deadline:
                    burst.clear()
                    for _ in range(self.requests_per_burst):
                        piece = i % f.num_pieces
                        nblocks = (f.piece_size(piece) + BLOCK - 1) // BLOCK
                        blk = (i // f.num_pieces) % nblocks
                        length = min(BLOCK, f.piece_size(piece) - blk * BLOCK)
                        burst += msg(6, struct.pack(">III", piece, blk * BLOCK, length))
                        i += 1
                    sock.sendall(bytes(burst))
                    rec.bytes_out += len(burst)
                    rec.requests_seen += self.requests_per_burst  # here: requests *sent*
                rec.mark("closed_at")
                rec.closed_by = "us"
            except (ConnectionError, OSError) as e:
                rec.mark("closed_at")
                rec.closed_by = "us" if self._stop.is_set() else "peer"
                rec.note = type(e).__name__
                time.sleep(0.05)
            finally:
                self._track(sock, False)
                sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=MODES, required=True)
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--data")
    ap.add_argument("--listen", type=int, default=0, help="port to listen on (listening modes)")
    ap.add_argument("--connect", type=int, help="torrenty seed port on 127.0.0.1 (request_flood)")
    ap.add_argument("--variant")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=4)
    a = ap.parse_args()
    ev = EvilPeer(a.mode, a.torrent, a.data, port=a.listen, target_port=a.connect, variant=a.variant,
                  connections=a.connections, duration=a.duration)
    if ev.port:
        print(f"LISTENING {ev.port}", flush=True)
    ev.start()
    try:
        time.sleep(a.duration)
    except KeyboardInterrupt:
        pass
    ev.stop()
    print(json.dumps(ev.records(), indent=1))


if __name__ == "__main__":
    main()
