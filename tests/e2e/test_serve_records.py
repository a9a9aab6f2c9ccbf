"""`torrenty serve` keeps one record file per torrent under --state-dir. Each save is an fsync on
the coordinator thread, so an idle torrent's record must not be rewritten (at the periodic save or
at exit): with 10 000 torrents that stalled the RPC for tens of seconds (bench/server). A record
whose content changed (a stop through the RPC) is still written.
"""
import hashlib
import json
import os
import signal
import time
import unittest
import urllib.error
import urllib.request

import harness
from harness import LOOPBACK, TorrentyTestCase, bdecode, bencode

PIECE = 16 * 1024


class Rpc:
    def __init__(self, port):
        self.url = f"http://{LOOPBACK}:{port}/transmission/rpc"
        self.sid = ""

    def call(self, method, arguments=None):
        body = json.dumps({"method": method, "arguments": arguments or {}}).encode()
        for _ in range(3):
            req = urllib.request.Request(self.url, body, {"X-Transmission-Session-Id": self.sid,
                                                          "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                if e.code != 409:
                    raise
                self.sid = e.headers.get("X-Transmission-Session-Id", "")
        raise AssertionError("no session id after 3 tries")

    def statuses(self):
        try:
            ts = self.call("torrent-get", {"fields": ["id", "status"]})["arguments"]["torrents"]
        except OSError:
            return None
        return {t["id"]: t["status"] for t in ts}


class ServeRecordsTest(TorrentyTestCase):
    def make_state(self, n):
        data = str(self.path("data"))
        torrents = str(self.path("state", "torrents"))
        os.makedirs(data)
        os.makedirs(torrents)
        record = bencode({"added-date": 1_700_000_000, "done-date": 1_700_000_100, "download-dir": data,
                          "downloaded": 0, "paused": 0, "uploaded": 0})
        hexes = []
        for i in range(n):
            payload = hashlib.sha256(b"%d" % i).digest() * 1000  # 32000 bytes, two pieces
            name = f"r{i}.bin"
            with open(os.path.join(data, name), "wb") as f:
                f.write(payload)
            pieces = b"".join(hashlib.sha1(payload[o:o + PIECE]).digest()
                              for o in range(0, len(payload), PIECE))
            info = bencode({"length": len(payload), "name": name, "piece length": PIECE, "pieces": pieces})
            hx = hashlib.sha1(info).hexdigest()
            with open(os.path.join(torrents, hx + ".torrent"), "wb") as f:
                f.write(b"d4:info" + info + b"e")
            with open(os.path.join(torrents, hx + ".record"), "wb") as f:
                f.write(record)
            hexes.append(hx)
        return str(self.path("state")), data, torrents, hexes

    def test_idle_records_are_not_rewritten_changed_ones_are(self):
        state, data, torrents, hexes = self.make_state(3)
        rpc_port = harness.free_port()
        proc = self.start_torrenty(["serve", "--state-dir", state, "--download-dir", data,
                                    "--rpc-port", str(rpc_port), "--port", str(harness.free_port())])
        rpc = Rpc(rpc_port)
        harness.wait_until(lambda: (rpc.statuses() or {}) and set(rpc.statuses().values()) == {6}, 60,
                           "all three torrents seeding", procs=[proc])
        inodes = {hx: os.stat(os.path.join(torrents, hx + ".record")).st_ino for hx in hexes}
        ids = {t["hashString"]: t["id"] for t in
               rpc.call("torrent-get", {"fields": ["id", "hashString"]})["arguments"]["torrents"]}
        stopped = hexes[0]
        self.assertEqual(rpc.call("torrent-stop", {"ids": [ids[stopped]]})["result"], "success")
        harness.wait_until(lambda: rpc.statuses().get(ids[stopped]) == 0, 30, "the torrent stopped",
                           procs=[proc])
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        self.assertEqual(rc, 128 + signal.SIGTERM, proc.tail())
        for hx in hexes[1:]:
            self.assertEqual(os.stat(os.path.join(torrents, hx + ".record")).st_ino, inodes[hx],
                             f"the record of idle torrent {hx} was rewritten")
        with open(os.path.join(torrents, stopped + ".record"), "rb") as f:
            self.assertEqual(bdecode(f.read())[b"paused"], 1)


if __name__ == "__main__":
    unittest.main()
