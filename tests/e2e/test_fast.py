"""BEP 6 Fast extension against libtorrent and a hand-made peer, on loopback.

- have all / have none replace the bitfield in both directions with libtorrent, as Torrenty's -v
  log shows ("received have_all", "sent have_none", ...);
- a peer that Torrenty chokes gets a reject for each request, except for the pieces of its
  allowed-fast set (BEP 6's algorithm over 127.0.0.1), which are served while it is choked.
"""
import hashlib
import socket
import struct
import time
import unittest

from harness import (LOOPBACK, MiB, TorrentyTestCase, free_port, info_hash, make_torrent,
                     tracker_url, wait_port_listening, write_random_file)
from swarm_helpers import torrent_facts

NAME = "fast.bin"
SIZE = 5 * MiB + 777  # 21 pieces of 256 KiB: more than the 10 of an allowed-fast set


def allowed_fast_set(ip, ih, num_pieces, k=10):
    """BEP 6: the canonical allowed-fast set of the peer at IPv4 `ip` (dotted)."""
    k = min(k, num_pieces)
    x = bytes(int(b) for b in ip.split("."))[:3] + b"\0" + ih
    out = []
    while len(out) < k:
        x = hashlib.sha1(x).digest()
        for i in range(5):
            if len(out) >= k:
                break
            idx = struct.unpack(">I", x[4 * i:4 * i + 4])[0] % num_pieces
            if idx not in out:
                out.append(idx)
    return out


class WirePeer:
    """A blocking BitTorrent connection with a deadline on every read."""

    def __init__(self, port, ih, fast=True):
        self.s = socket.create_connection((LOOPBACK, port), timeout=10)
        reserved = bytearray(8)
        if fast:
            reserved[7] |= 0x04
        self.s.sendall(b"\x13BitTorrent protocol" + bytes(reserved) + ih + b"-PY0001-fasttestpeer")
        hs = self.recv_exact(68)
        self.remote_reserved = hs[20:28]
        assert hs[28:48] == ih, "wrong info-hash in the answer"

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by Torrenty")
            buf += chunk
        return buf

    def read_msg(self):
        """(id, payload); id None for a keep-alive."""
        (length,) = struct.unpack(">I", self.recv_exact(4))
        if length == 0:
            return None, b""
        body = self.recv_exact(length)
        return body[0], body[1:]

    def send(self, mid, payload=b""):
        self.s.sendall(struct.pack(">IB", 1 + len(payload), mid) + payload)

    def read_until(self, pred, timeout, seen):
        """Reads messages into `seen` until pred(id, payload) holds; returns that message."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                mid, payload = self.read_msg()
            except socket.timeout:
                break
            seen.append((mid, payload))
            if pred(mid, payload):
                return mid, payload
        raise AssertionError(f"no such message within {timeout}s; got ids {[m for m, _ in seen]}")

    def close(self):
        self.s.close()


class FastExtension(TorrentyTestCase):

    def setUp(self):
        super().setUp()
        self.src = self.path("src")
        write_random_file(self.src / NAME, SIZE, seed=6)
        # Nothing listens on the announce port: peers come from --peer / connect_peer only.
        self.torrent = make_torrent(self.src / NAME, tracker_url(free_port()), self.path("f.torrent"),
                                    piece_log2=18)

    def test_have_all_and_have_none_with_libtorrent(self):
        # Torrenty with nothing downloads from a libtorrent seed.
        seeder = self.start_lt_seeder(self.torrent, self.src)
        out = self.path("out")
        res = self.run_torrenty(["download", self.torrent, "-o", out, "--port", free_port(), "-v",
                                 "--peer", f"{LOOPBACK}:{seeder.port}"], timeout=60)
        self.assertTorrentyOk(res)
        self.assertSameData(self.src / NAME, out / NAME)
        peer = f"{LOOPBACK}:{seeder.port}"
        self.assertIn(f"peer {peer}: sent have_none", res.stderr)
        self.assertIn(f"peer {peer}: received have_all", res.stderr)
        self.assertNotIn("protocol error", res.stderr)

        # Torrenty seeds to a libtorrent leecher with nothing.
        port = free_port()
        seed = self.start_torrenty(["seed", self.torrent, "--data", self.src, "--port", port, "-v"],
                                   name="torrenty-seed")
        wait_port_listening(port, 20, proc=seed)
        leech = self.start_lt_peer(self.torrent, self.path("lt-out"), "leech",
                                   connect=[(LOOPBACK, port)], timeout=60)
        leech.wait_for_output("DONE", 60)
        self.assertSameData(self.src / NAME, self.path("lt-out") / NAME)
        text = seed.log_text()
        self.assertRegex(text, r"peer 127\.0\.0\.1:\d+: sent have_all")
        self.assertRegex(text, r"peer 127\.0\.0\.1:\d+: received have_none")

    def test_choked_peer_requests_are_rejected(self):
        plen, total, hashes = torrent_facts(self.torrent)
        ih = bytes.fromhex(info_hash(self.torrent))
        port = free_port()
        seed = self.start_torrenty(["seed", self.torrent, "--data", self.src, "--port", port, "-v"],
                                   name="torrenty-seed")
        wait_port_listening(port, 20, proc=seed)
        data = (self.src / NAME).read_bytes()

        peer = WirePeer(port, ih, fast=True)
        self.addCleanup(peer.close)
        self.assertTrue(peer.remote_reserved[7] & 0x04, "Torrenty's handshake lacks the Fast bit")
        seen = []
        peer.read_until(lambda m, p: m == 0x0E, 10, seen)  # have_all, instead of a bitfield
        self.assertNotIn(5, [m for m, _ in seen])
        peer.send(0x0F)  # have_none; never interested, so never unchoked

        expected = allowed_fast_set(LOOPBACK, ih, len(hashes))
        offered = []
        while len(offered) < len(expected):
            _, p = peer.read_until(lambda m, p: m == 0x11, 10, seen)
            offered.append(struct.unpack(">I", p)[0])
        self.assertEqual(offered, expected)

        outside = next(i for i in range(len(hashes)) if i not in expected)
        peer.send(6, struct.pack(">III", outside, 16384, 16384))
        _, p = peer.read_until(lambda m, p: m == 0x10, 10, seen)  # reject request
        self.assertEqual(struct.unpack(">III", p), (outside, 16384, 16384))

        inside = expected[0]
        peer.send(6, struct.pack(">III", inside, 0, 16384))
        _, p = peer.read_until(lambda m, p: m == 7, 10, seen)  # piece, while choked
        index, begin = struct.unpack(">II", p[:8])
        self.assertEqual((index, begin), (inside, 0))
        self.assertEqual(p[8:], data[inside * plen:inside * plen + 16384])

        ids = [m for m, _ in seen]
        self.assertNotIn(1, ids, "the peer was unchoked")
        self.assertEqual(ids.count(7), 1, "a block of a piece outside the allowed-fast set was sent")
        self.assertIsNone(seed.poll())


if __name__ == "__main__":
    unittest.main()
