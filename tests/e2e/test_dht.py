"""The DHT (BEP 5) against libtorrent's DHT on 127.0.0.1: Torrenty's announce_peer makes it
findable by a libtorrent node, a trackerless torrent downloads from a seeder found only through
the DHT, and a query flood is survived with bounded memory and a log line. No test reaches past
loopback: every torrenty run names its bootstrap nodes with --dht-bootstrap."""
import os
import signal
import socket
import time
import unittest

from harness import (LOOPBACK, TorrentyTestCase, free_port, sanitized_build, torrenty_bin, wait_until,
                     write_random_file, bdecode, info_hash_stdlib)

try:
    import libtorrent as lt
except ImportError:  # the e2e suite runs under /usr/bin/python3, which has it
    lt = None


def lt_dht_node(port, host=LOOPBACK):
    """A libtorrent session with only the DHT on, made to work on loopback (IPv6 when host is)."""
    settings = {
        "listen_interfaces": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "enable_dht": True,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        "dht_bootstrap_nodes": "",
        "allow_multiple_connections_per_ip": True,
        # Every node sees Torrenty's nodes (the metadata fetch's, then the session's) at 127.0.0.1,
        # so libtorrent's per-IP limit (5 packets/s, then a 5-minute block) would add them up.
        "dht_block_ratelimit": 100000,
        "alert_mask": lt.alert.category_t.dht_notification | lt.alert.category_t.dht_operation_notification
        | lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
    }
    return lt.session(settings)


def dht_nodes(ses):
    return ses.status().dht_nodes


def make_trackerless_torrent(data_path, out, private=False):
    fs = lt.file_storage()
    lt.add_files(fs, str(data_path))
    ct = lt.create_torrent(fs, 256 * 1024, flags=lt.create_torrent.v1_only)
    ct.set_priv(private)
    lt.set_piece_hashes(ct, str(data_path.parent))
    out.write_bytes(lt.bencode(ct.generate()))
    return info_hash_stdlib(out)


class LtDhtMixin:
    """libtorrent DHT nodes that know each other, Torrenty with its own state directory, and
    libtorrent's get_peers; LT_HOST and lt_node() pick the family (IPv6 in test_dht6)."""
    LT_HOST = LOOPBACK

    def lt_node(self, port):
        return lt_dht_node(port)

    def lt_nodes(self, n):
        """n libtorrent DHT nodes that know each other."""
        ports = [free_port() for _ in range(n)]
        nodes = [self.lt_node(p) for p in ports]
        self.addCleanup(nodes.clear)  # the sessions shut down as their last reference goes
        for i, s in enumerate(nodes):
            for j, p in enumerate(ports):
                if i != j:
                    s.add_dht_node((self.LT_HOST, p))
        wait_until(lambda: all(dht_nodes(s) >= n - 1 for s in nodes), 30, "libtorrent DHT nodes to meet")
        return nodes, ports

    def env(self):
        return dict(os.environ, XDG_STATE_HOME=str(self.path("state")))

    def torrenty(self, args, name="torrenty"):
        return self.start(name, [torrenty_bin()] + [str(a) for a in args], separate_stdout=True,
                          env=self.env())

    def get_peers(self, ses, ih_hex, timeout):
        """Asks libtorrent's DHT for peers of ih_hex until some arrive; returns the set of (ip, port)."""
        sha = lt.sha1_hash(bytes.fromhex(ih_hex))
        found = set()
        deadline = time.monotonic() + timeout
        next_query = 0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_query:
                ses.dht_get_peers(sha)
                next_query = time.monotonic() + 3
            for a in ses.pop_alerts():
                if isinstance(a, lt.dht_get_peers_reply_alert):
                    for ep in a.peers():
                        found.add((ep[0], ep[1]))
            yield found
            time.sleep(0.1)


@unittest.skipIf(lt is None, "python3-libtorrent is not importable")
class DhtTest(LtDhtMixin, TorrentyTestCase):
    def test_announce_makes_torrenty_findable_by_libtorrent(self):
        (a, b), (pa, pb) = self.lt_nodes(2)
        data = self.path("data")
        data.mkdir()
        write_random_file(data / "payload.bin", 300 * 1024, seed=1)
        torrent = self.path("t.torrent")
        ih = make_trackerless_torrent(data / "payload.bin", torrent)
        port = free_port()
        seed = self.torrenty(["seed", torrent, "--data", data, "--port", port, "-v",
                              "--dht-bootstrap", f"{LOOPBACK}:{pa}"])
        seen = set()
        for seen in self.get_peers(b, ih, 60):
            if (LOOPBACK, port) in seen:
                break
            self.assertIsNone(seed.poll(), seed.tail())
        self.assertIn((LOOPBACK, port), seen, "libtorrent never found torrenty through the DHT\n" + seed.tail())
        # Torrenty answered libtorrent's queries too: it sits in libtorrent's routing table.
        wait_until(lambda: "announced to" in seed.log_text(), 30, "torrenty's announce line", procs=[seed])
        # Good nodes are kept across runs, under the XDG state directory.
        seed.stop(signal.SIGINT)
        state = self.path("state", "torrenty", "dht.dat")
        self.assertTrue(state.exists(), "no DHT state file after a clean stop")
        saved = bdecode(state.read_bytes())
        self.assertEqual(len(saved[b"id"]), 20)
        self.assertGreaterEqual(len(saved[b"nodes"]) // 26, 1)
        self.assertEqual(len(saved[b"nodes"]) % 26, 0)

    def test_private_torrents_never_use_the_dht(self):
        (a, b), (pa, pb) = self.lt_nodes(2)
        seeds = {}
        for private in (False, True):
            data = self.path(f"data-{private}")
            data.mkdir()
            write_random_file(data / "payload.bin", 300 * 1024, seed=4 + private)
            torrent = self.path(f"t-{private}.torrent")
            ih = make_trackerless_torrent(data / "payload.bin", torrent, private=private)
            port = free_port()
            proc = self.torrenty(["seed", torrent, "--data", data, "--port", port, "-v",
                                  "--dht-bootstrap", f"{LOOPBACK}:{pa}"], name=f"seed-private-{private}")
            seeds[private] = (ih, port, proc)
        # The public one is found: the DHT works within this time ...
        ih, port, public = seeds[False]
        found = set()
        for found in self.get_peers(b, ih, 60):
            if (LOOPBACK, port) in found:
                break
        self.assertIn((LOOPBACK, port), found, public.tail())
        # ... and the private one is neither announced nor looked up.
        ih, port, private = seeds[True]
        found = set()
        for i, found in enumerate(self.get_peers(b, ih, 5)):
            pass
        self.assertEqual(found, set())
        self.assertNotIn("dht:", private.log_text())

    def dht_swarm(self, size, seed):
        """Three libtorrent DHT nodes; the third seeds a trackerless torrent of `size` random bytes
        and its announce has reached the first. Returns (DHT ports, payload path, torrent, info-hash)."""
        (a, b, c), ports = self.lt_nodes(3)
        data = self.path("data")
        data.mkdir()
        write_random_file(data / "payload.bin", size, seed=seed)
        torrent = self.path("t.torrent")
        ih = make_trackerless_torrent(data / "payload.bin", torrent)
        handle = c.add_torrent({"ti": lt.torrent_info(str(torrent)), "save_path": str(data)})
        wait_until(lambda: handle.status().state == lt.torrent_status.seeding, 60, "libtorrent seeding")
        found = set()
        for found in self.get_peers(a, ih, 60):
            if (LOOPBACK, ports[2]) in found:
                break
        self.assertIn((LOOPBACK, ports[2]), found, "the seeder never reached the DHT")
        return ports, data / "payload.bin", torrent, ih

    def test_download_finds_a_seeder_only_through_the_dht(self):
        ports, payload, torrent, ih = self.dht_swarm(3 * 1024 * 1024 + 1234, seed=3)
        out = self.path("out")
        res_proc = self.torrenty(["download", torrent, "-o", out, "--port", free_port(), "-v",
                                  "--dht-bootstrap", f"{LOOPBACK}:{ports[0]}"], name="torrenty-dl")
        try:
            rc = res_proc.popen.wait(timeout=60)
        except Exception:
            self.fail("the download did not finish within 60 s\n" + res_proc.tail())
        self.assertEqual(rc, 0, res_proc.tail())
        # Torrenty dialled the seeder the DHT named (it dials before its own announce goes out,
        # which is how the seeder could learn of it).
        self.assertIn(f"peer {LOOPBACK}:{ports[2]}: connected (outgoing)", res_proc.log_text())
        self.assertSameData(payload, out / "payload.bin")

    def test_magnet_with_no_tracker_and_no_peer_is_fetched_through_the_dht(self):
        """Issue 10's first test: three libtorrent DHT nodes, one seeding; Torrenty starts from a
        magnet with only the info-hash and one DHT node to bootstrap from, fetches the metadata
        and the data, and verifies both."""
        ports, payload, torrent, ih = self.dht_swarm(2 * 1024 * 1024 + 777, seed=5)
        out = self.path("out")
        dl = self.torrenty(["download", f"magnet:?xt=urn:btih:{ih}&dn=payload.bin", "-o", out,
                            "--port", free_port(), "-v", "--dht-bootstrap", f"{LOOPBACK}:{ports[0]}"],
                           name="torrenty-magnet")
        try:
            rc = dl.popen.wait(timeout=90)
        except Exception:
            self.fail("the magnet download did not finish within 90 s\n" + dl.tail())
        self.assertEqual(rc, 0, dl.tail())
        log = dl.log_text()
        self.assertIn("fetching metadata", log)
        self.assertRegex(log, r"dht: \d+ peers")
        self.assertSameData(payload, out / "payload.bin")
        # The verified metadata was saved next to the content: the same info dict as the seeder's.
        self.assertEqual(info_hash_stdlib(out / "payload.bin.torrent"), ih)

    def rss_kib(self, pid):
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def test_query_flood_is_survived_with_bounded_memory(self):
        data = self.path("data")
        data.mkdir()
        write_random_file(data / "payload.bin", 300 * 1024, seed=2)
        torrent = self.path("t.torrent")
        make_trackerless_torrent(data / "payload.bin", torrent)
        port = free_port()
        # A bootstrap node that never answers: the node runs, with an empty routing table.
        seed = self.torrenty(["seed", torrent, "--data", data, "--port", port, "-v",
                              "--dht-bootstrap", f"{LOOPBACK}:{free_port()}"])
        wait_until(lambda: "dht: node on UDP port" in seed.log_text(), 30, "the DHT node", procs=[seed])
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.settimeout(0.5)

        def ping():
            sock.sendto(b"d1:ad2:id20:" + os.urandom(20) + b"e1:q4:ping1:t2:pp1:y1:qe", (LOOPBACK, port))
            try:
                reply, _ = sock.recvfrom(2048)
            except socket.timeout:
                return False
            return b"1:y1:r" in reply

        wait_until(ping, 10, "an answer to a ping", procs=[seed])
        rss_before = self.rss_kib(seed.pid)
        # 30,000 queries as fast as one socket sends them: random ids and info-hashes, bad tokens,
        # and answers to questions nobody asked. Bounded in count (and so in time).
        start = time.monotonic()
        for i in range(30_000):
            kind = i % 4
            tid = (i & 0xFFFF).to_bytes(2, "big")
            if kind == 0:
                msg = (b"d1:ad2:id20:" + os.urandom(20) + b"9:info_hash20:" + os.urandom(20) +
                       b"e1:q9:get_peers1:t2:" + tid + b"1:y1:qe")
            elif kind == 1:
                msg = (b"d1:ad2:id20:" + os.urandom(20) + b"9:info_hash20:" + os.urandom(20) +
                       b"4:porti6881e5:token8:" + os.urandom(8) + b"e1:q13:announce_peer1:t2:" + tid +
                       b"1:y1:qe")
            elif kind == 2:
                msg = (b"d1:ad2:id20:" + os.urandom(20) + b"6:target20:" + os.urandom(20) +
                       b"e1:q9:find_node1:t2:" + tid + b"1:y1:qe")
            else:
                msg = b"d1:rd2:id20:" + os.urandom(20) + b"e1:t2:" + tid + b"1:y1:re"
            try:
                sock.sendto(msg, (LOOPBACK, port))
            except BlockingIOError:
                pass
        sent_s = time.monotonic() - start
        wait_until(lambda: "dht: query rate limit: dropped" in seed.log_text(), 15,
                   "the rate-limit log line", procs=[seed])
        self.assertIsNone(seed.poll(), seed.tail())
        # Still answering once the flood is over (its address's bucket refills).
        wait_until(ping, 15, "an answer to a ping after the flood", procs=[seed])
        rss_after = self.rss_kib(seed.pid)
        print(f"\n  flood of 30,000 datagrams in {sent_s:.2f} s: RSS {rss_before} -> {rss_after} KiB")
        if not sanitized_build():
            self.assertLess(rss_after - rss_before, 16 * 1024)
        # One line per 10 s, not one per dropped query.
        lines = [l for l in seed.log_text().splitlines() if "query rate limit" in l]
        self.assertLessEqual(len(lines), 3)


if __name__ == "__main__":
    unittest.main()
