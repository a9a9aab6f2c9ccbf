"""BEP 16 super-seeding: `torrenty seed --super-seed` hands each piece out once before repeating.

A swarm of libtorrent and aria2c leechers completes from it with the right data while the origin
uploads about one copy (an ordinary seed uploads more to the same swarm), and a raw peer sees no
bitfield from it: have_none (Fast) or nothing, then one `have` at a time. `serve` takes the same
mode for all torrents (--super-seed) or per torrent (torrent-add/torrent-set superSeed).
"""
import json
import os
import re
import signal
import socket
import struct
import time
import unittest
import urllib.request

from harness import (MiB, TorrentyTestCase, free_port, info_hash, make_torrent, tracker_url,
                     wait_port_listening, wait_until, write_random_file)

MSG_HAVE, MSG_BITFIELD, MSG_HAVE_ALL, MSG_HAVE_NONE = 4, 5, 14, 15
UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def first_messages(port, ih_hex, fast, timeout=15.0):
    """Connects as a bare peer with no pieces, says interested, and returns the (id, payload)
    messages it receives up to and including the first `have`, `bitfield` or `have all`."""
    reserved = bytearray(8)
    if fast:
        reserved[7] |= 0x04
    peer_id = b"-PY0001-" + os.urandom(6).hex().encode()[:12]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"\x13BitTorrent protocol" + bytes(reserved) + bytes.fromhex(ih_hex) + peer_id)
        hs = recv_exact(s, 68)
        if hs[28:48] != bytes.fromhex(ih_hex):
            raise AssertionError("handshake for another torrent")
        if fast:
            s.sendall(struct.pack(">IB", 1, MSG_HAVE_NONE))
        s.sendall(struct.pack(">IB", 1, 2))  # interested
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            (length,) = struct.unpack(">I", recv_exact(s, 4))
            if length == 0:
                continue  # keep-alive
            body = recv_exact(s, length)
            got.append((body[0], body[1:]))
            if body[0] in (MSG_HAVE, MSG_BITFIELD, MSG_HAVE_ALL):
                return got
        raise AssertionError(f"no have/bitfield within {timeout}s: {got}")


def uploaded_bytes(seed_log):
    """The payload bytes the seed reports at exit ("NAME: uploaded 12.3 MiB in 4.5 s")."""
    m = re.findall(r": uploaded ([\d.]+) (B|KiB|MiB|GiB) in ", seed_log)
    if not m:
        raise AssertionError("no 'uploaded' line from the seed:\n" + seed_log[-2000:])
    value, unit = m[-1]
    return float(value) * UNITS[unit]


class SuperSeed(TorrentyTestCase):

    SIZE = 16 * MiB + 4321  # 65 pieces of 256 KiB

    def _prepare(self):
        data = self.path("data")
        data.mkdir()
        write_random_file(data / "payload.bin", self.SIZE, seed=16)
        tport = free_port()
        torrent = make_torrent(data / "payload.bin", tracker_url(tport), self.path("p.torrent"))
        return data, torrent, info_hash(torrent), tport

    def _seed(self, torrent, data, super_seed, name):
        port = free_port()
        args = ["seed", torrent, "--data", data, "--port", port, "-v"]
        if super_seed:
            args.append("--super-seed")
        seed = self.start_torrenty(args, name=name)
        wait_port_listening(port, 60, proc=seed)
        seed.port = port
        return seed

    def _stop(self, proc):
        proc.send_signal(signal.SIGTERM)
        self.wait_exit(proc, 15)

    def _swarm_upload(self, data, torrent, ih, tracker, super_seed):
        """4 leechers (3 libtorrent, 1 aria2c) from one seed; returns the seed's upload."""
        tag = "super" if super_seed else "plain"
        seed = self._seed(torrent, data, super_seed, f"seed-{tag}")
        tracker.wait_for_swarm(ih, 30, seeders=1, procs=[seed])
        outs = [self.path(f"{tag}-lt{i}") for i in range(3)] + [self.path(f"{tag}-aria")]
        for o in outs:
            o.mkdir()
        lts = [self.start_lt_peer(torrent, o, "leech", name=f"lt-{tag}-{i}", timeout=240)
               for i, o in enumerate(outs[:3])]
        aria = self.start_aria2c(torrent, outs[3])
        leechers = lts + [aria]
        for p in leechers:
            self.assertEqual(self.wait_exit(p, 240, others=[seed]), 0, p.tail())
        for o in outs:
            self.assertSameData(data / "payload.bin", o / "payload.bin")
        self._stop(seed)
        return uploaded_bytes(seed.log_text())

    def test_swarm_completes_and_origin_uploads_about_one_copy(self):
        data, torrent, ih, tport = self._prepare()
        tracker = self.tracker([ih], port=tport)
        up_super = self._swarm_upload(data, torrent, ih, tracker, super_seed=True)
        up_plain = self._swarm_upload(data, torrent, ih, tracker, super_seed=False)
        sys_msg = (f"origin uploaded {up_super / self.SIZE:.2f}x the file with --super-seed, "
                   f"{up_plain / self.SIZE:.2f}x without")
        print(f"\n{sys_msg}")
        # A peer is shown its next piece once its last was seen at another peer or once it has
        # it itself (libtorrent's default, non-strict super-seeding), so how much the origin
        # repeats depends on how fast the leechers trade: 1.04-1.5x on an idle machine, up to
        # 2.2x on a loaded one, against 3-3.8x plain in the same runs.
        self.assertLessEqual(up_super, 2.5 * self.SIZE, sys_msg)
        self.assertLessEqual(up_super, 0.85 * up_plain, sys_msg)

    def test_no_bitfield_on_the_wire(self):
        data, torrent, ih, _ = self._prepare()
        seed = self._seed(torrent, data, True, "seed-super")
        for fast in (True, False):
            msgs = first_messages(seed.port, ih, fast)
            ids = [m[0] for m in msgs]
            self.assertNotIn(MSG_BITFIELD, ids, f"fast={fast}: {ids}")
            self.assertNotIn(MSG_HAVE_ALL, ids, f"fast={fast}: {ids}")
            self.assertEqual(ids[-1], MSG_HAVE, f"fast={fast}: {ids}")
            if fast:
                self.assertEqual(ids[0], MSG_HAVE_NONE, ids)
        # The same peer sees the whole set from an ordinary seed: the probe tells them apart.
        plain = self._seed(torrent, data, False, "seed-plain")
        self.assertEqual(first_messages(plain.port, ih, True)[-1][0], MSG_HAVE_ALL)
        self.assertEqual(first_messages(plain.port, ih, False)[-1][0], MSG_BITFIELD)

    def test_serve_super_seed_default_and_per_torrent(self):
        data, torrent, ih, _ = self._prepare()
        peer_port, rpc_port = free_port(), free_port()
        argv = ["serve", "--state-dir", self.path("state"), "--download-dir", data, "--port",
                peer_port, "--rpc-port", rpc_port, "--no-dht", "--no-lsd"]
        sid = [""]

        def rpc(method, **args):
            body = json.dumps({"method": method, "arguments": args}).encode()
            for _ in range(2):
                req = urllib.request.Request(f"http://127.0.0.1:{rpc_port}/transmission/rpc", body,
                                             {"X-Transmission-Session-Id": sid[0]})
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        reply = json.loads(r.read())
                        self.assertEqual(reply["result"], "success", reply)
                        return reply["arguments"]
                except urllib.error.HTTPError as e:
                    if e.code != 409:
                        raise
                    sid[0] = e.headers["X-Transmission-Session-Id"]
            self.fail("no session id")

        def listed():
            got = rpc("torrent-get", fields=["id", "status", "superSeed"])["torrents"]
            self.assertEqual(len(got), 1, got)
            return got[0]

        def first_after_handshake():
            try:
                return first_messages(peer_port, ih, True)[-1][0]
            except (OSError, AssertionError):
                return None  # the torrent is (re)starting

        def expect(first, superseed, serve):
            wait_until(lambda: listed()["status"] == 6, 60, "torrent seeding", procs=[serve])
            self.assertEqual(listed()["superSeed"], superseed)
            wait_until(lambda: first_after_handshake() == first, 30,
                       f"message {first} first from serve", procs=[serve])

        # The session's default (--super-seed) applies to a torrent without a setting of its own.
        serve = self.start_torrenty(argv + ["--super-seed"], name="serve")
        wait_port_listening(rpc_port, 30, proc=serve)
        rpc("torrent-add", filename=str(torrent))
        expect(MSG_HAVE, True, serve)
        # Per torrent, off: the torrent restarts and peers see the whole set again.
        rpc("torrent-set", ids=[listed()["id"]], superSeed=False)
        expect(MSG_HAVE_ALL, False, serve)
        # The torrent's own setting is kept in its record and wins over the default.
        self._stop(serve)
        serve = self.start_torrenty(argv + ["--super-seed"], name="serve-2")
        wait_port_listening(rpc_port, 30, proc=serve)
        expect(MSG_HAVE_ALL, False, serve)
        # And on again, without the session default.
        rpc("torrent-set", ids=[listed()["id"]], superSeed=True)
        expect(MSG_HAVE, True, serve)

if __name__ == "__main__":
    unittest.main()
