"""Torrenty against hostile peers (tests/e2e/evil_peer.py) next to one honest libtorrent seeder.

Download side: `torrenty download --peer HONEST --peer EVIL` must finish with the right bytes within a
bound, and the evil connection must be dropped soon after its offence (and logged as a protocol error
or ban where the engine reports one). corrupt_blocks must get the evil peer banned, not redialled.
Seed side: request_flood dials `torrenty seed` on several sockets and never reads; the seed's RSS
must stay bounded and a libtorrent leecher must still complete.
"""
import signal
import time
import unittest

from evil_peer import EvilPeer, TorrentFacts
from harness import (KiB, MiB, LOOPBACK, TorrentyTestCase, free_port, make_torrent, tracker_url,
                     wait_port_listening, wait_until, write_random_file)

# 16 MiB + 100 KiB in 256 KiB pieces: 65 pieces, so the bitfield has 7 spare bits.
PAYLOAD_SIZE = 16 * MiB + 100 * KiB
DOWNLOAD_TIMEOUT = 60          # seconds for a whole download next to an evil peer
DROP_WITHIN = 2.0              # seconds from the offence to Torrenty closing the connection
FLOOD_RSS_LIMIT = 200 * MiB


def vm_rss(pid):
    """VmRSS of pid in bytes, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class MaliciousPeers(TorrentyTestCase):

    def _payload(self, size=PAYLOAD_SIZE, name="payload.bin"):
        src = self.path("src")
        data = write_random_file(src / name, size, seed=7)
        # The tracker URL points at a closed port: every peer here is given by hand.
        torrent = make_torrent(data, tracker_url(free_port()), self.path(f"{name}.torrent"), piece_log2=18)
        return src, data, torrent

    def _download_next_to(self, mode, variant=None, timeout=DOWNLOAD_TIMEOUT, extra=()):
        src, data, torrent = self._payload()
        seeder = self.start_lt_seeder(torrent, src)
        out = self.path("out")
        evil = EvilPeer(mode, torrent, data, variant=variant)
        self.addCleanup(evil.stop)
        evil.start()
        res = self.run_torrenty(["download", torrent, "-o", out, "--port", free_port(),
                                 "--peer", f"{LOOPBACK}:{seeder.port}", "--peer", f"{LOOPBACK}:{evil.port}",
                                 *extra],
                                timeout=timeout)
        exited_at = evil.now()
        evil.stop()
        # Only Torrenty's own connections: the libtorrent seeder learns the evil peer through
        # Torrenty's ut_pex and dials it too.
        records = [r for r in evil.records() if r["peer_id"] is None or r["peer_id"].startswith("-TY")]
        self.assertTorrentyOk(res, f"torrenty download next to a {mode} peer")
        self.assertIsNone(seeder.poll(), "the honest libtorrent seeder died")
        self.assertSameData(data, out / data.name)
        self.assertGreaterEqual(len(records), 1, f"torrenty never dialled the {mode} peer")
        sys_note = f"{mode}: {len(records)} connection(s), download {res.elapsed:.1f}s, records {records}"
        print(f"\n  [{sys_note[:300]}]", end="")
        return res, records, exited_at, evil.port

    def _assert_dropped(self, records, exited_at, log, port, reason=None):
        """Every connection that misbehaved was closed by Torrenty soon after the offence, while
        Torrenty was still running (not merely at exit)."""
        offended = [r for r in records if r["offense_at"] is not None]
        self.assertTrue(offended, f"the evil peer never got to misbehave: {records}")
        for r in offended:
            self.assertEqual(r["closed_by"], "peer", f"connection not closed by torrenty: {r}")
            self.assertLess(r["closed_at"] - r["offense_at"], DROP_WITHIN, f"dropped too late: {r}")
            self.assertLess(r["closed_at"], exited_at, f"only closed when torrenty exited: {r}")
        if reason is not None:
            self.assertIn(f"closed peer {LOOPBACK}:{port}: {reason}", log)

    # ------------------------------------------------------------------ download side

    def test_corrupt_blocks_peer_is_banned(self):
        res, records, exited_at, port = self._download_next_to("corrupt_blocks")
        self.assertIn(f"closed peer {LOOPBACK}:{port}: banned", res.stderr)
        self.assertEqual(len(records), 1, f"banned peer was dialled again: {records}")
        self.assertEqual(records[0]["closed_by"], "peer")
        self.assertLess(records[0]["closed_at"], exited_at)

    def test_racing_corrupt_peer_is_banned_and_does_not_stall(self):
        # One corrupt block in every copy of a piece, the rest from the honest seeder: the piece
        # failed forever and the evil peer was never judged. Fetched from one peer after its
        # first failure, the piece passes and smart ban names the evil peer.
        # One shard, so both peers serve the same copy of a piece (with two, the honest peer's
        # shard may fetch a whole duplicate and the evil copy is simply dropped).
        res, records, exited_at, port = self._download_next_to("race_corrupt", extra=("--threads", 1))
        self.assertIn(f"closed peer {LOOPBACK}:{port}: banned", res.stderr)
        self.assertEqual(len(records), 1, f"banned peer was dialled again: {records}")
        self.assertLess(records[0]["closed_at"], exited_at)
        failed = res.stderr.count("failed its hash check")
        self.assertGreater(failed, 0, "the evil block never made a piece fail")
        # Each piece fails with several senders at most once.
        self.assertLessEqual(failed, 65, res.stderr)

    def test_huge_length_prefix(self):
        res, records, exited_at, port = self._download_next_to("huge_length")
        self._assert_dropped(records, exited_at, res.stderr, port, "protocol error")

    def test_bitfield_too_long(self):
        res, records, exited_at, port = self._download_next_to("bad_bitfield", "long")
        self._assert_dropped(records, exited_at, res.stderr, port, "protocol error")

    def test_bitfield_too_short(self):
        res, records, exited_at, port = self._download_next_to("bad_bitfield", "short")
        self._assert_dropped(records, exited_at, res.stderr, port, "protocol error")

    def test_bitfield_spare_bits_set(self):
        res, records, exited_at, port = self._download_next_to("bad_bitfield", "spare")
        self._assert_dropped(records, exited_at, res.stderr, port, "protocol error")

    def test_bad_piece_index_and_unrequested_block(self):
        res, records, exited_at, port = self._download_next_to("bad_piece")
        self._assert_dropped(records, exited_at, res.stderr, port, "protocol error (piece message out of range)")
        # Its unrequested garbage blocks must not have been mixed into pieces fetched from the honest
        # seeder (that would fail them and get the honest peer blamed and eventually banned).
        self.assertGreater(records[0]["blocks_sent"], 0)
        self.assertNotIn("failed its hash check", res.stderr)

    def test_garbage_after_handshake(self):
        res, records, exited_at, port = self._download_next_to("garbage")
        self._assert_dropped(records, exited_at, res.stderr, port, "protocol error")

    def test_wrong_infohash(self):
        _, records, exited_at, _ = self._download_next_to("wrong_infohash")
        self._assert_dropped(records, exited_at, "", 0)

    def test_protocol_violator_is_not_redialled_at_once(self):
        # Only a garbage-sending peer: Torrenty drops it at once; it must not keep redialling it
        # every second (connect backoff starts at 10 s).
        _, data, torrent = self._payload(size=1 * MiB, name="small.bin")
        with EvilPeer("garbage", torrent, data) as evil:
            t = self.start_torrenty(["download", torrent, "-o", self.path("out"), "--port", free_port(),
                                     "--peer", f"{LOOPBACK}:{evil.port}"])
            first = wait_until(lambda: [r for r in evil.records() if r["closed_by"] == "peer"], 30,
                               "torrenty dropping the garbage peer", procs=[t])[0]
            # Then watch one backoff interval (10 s) less a margin: a redial in it fails at once.
            watch_until = first["closed_at"] + 8
            while evil.now() < watch_until and len(evil.records()) <= 2 and t.poll() is None:
                time.sleep(0.05)
            records = evil.records()
            self.assertIsNone(t.poll(), "torrenty exited\n" + t.tail())
            t.send_signal(signal.SIGTERM)
            self.wait_exit(t, 10)
        print(f"\n  [garbage peer alone for 8 s: {len(records)} connection(s)]", end="")
        self.assertGreaterEqual(len(records), 1)
        self.assertLessEqual(len(records), 2, f"protocol violator redialled too often: {records}")
        self.assertIn("protocol error", t.log_text())

    def test_silent_peer_does_not_stall_download(self):
        _, records, _, _ = self._download_next_to("silent")
        for r in records:
            self.assertIsNotNone(r["closed_at"], f"silent connection left open after exit: {r}")

    def test_silent_peer_times_out_handshake(self):
        # Only the silent peer: Torrenty must give up on it after its handshake timeout (20 s) and
        # keep running (it redials with backoff), then stop promptly on SIGTERM.
        _, data, torrent = self._payload(size=1 * MiB, name="small.bin")
        with EvilPeer("silent", torrent, data) as evil:
            t = self.start_torrenty(["download", torrent, "-o", self.path("out"), "--port", free_port(),
                                     "--peer", f"{LOOPBACK}:{evil.port}"])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if any(r["closed_by"] == "peer" for r in evil.records()) or t.poll() is not None:
                    break
                time.sleep(0.05)
            records = evil.records()
            self.assertIsNone(t.poll(), "torrenty exited\n" + t.tail())
            closed = [r for r in records if r["closed_by"] == "peer"]
            self.assertTrue(closed, f"silent connection not dropped within 30 s: {records}")
            self.assertLess(closed[0]["closed_at"] - closed[0]["opened_at"], 25, closed[0])
            self.assertFalse(closed[0]["handshake_received"])  # we never read it, but it was sent
            t.send_signal(signal.SIGTERM)
            self.wait_exit(t, 10)

    # ------------------------------------------------------------------ seed side

    def test_request_flood_against_seed(self):
        src, data, torrent = self._payload(size=32 * MiB + 5 * KiB, name="seeded.bin")
        port = free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", src, "--port", port], name="torrenty-seed")
        wait_port_listening(port, 60, proc=seed)
        facts = TorrentFacts(torrent)
        self.assertGreater(facts.num_pieces, 0)
        rss = [vm_rss(seed.pid)]
        flood = EvilPeer("request_flood", torrent, data, target_port=port, connections=8, duration=20)
        self.addCleanup(flood.stop)
        flood.start()
        wait_until(lambda: sum(r["requests_seen"] for r in flood.records()) > 0
                   and len(flood.records()) >= 8, 30,
                   "the flood is on before the honest leecher arrives", procs=[seed])
        leecher = self.start_lt_peer(torrent, self.path("lt-out"), "leech", connect=[(LOOPBACK, port)],
                                     timeout=120)
        deadline = time.monotonic() + 90
        done = False
        while time.monotonic() < deadline:
            r = vm_rss(seed.pid)
            if r is not None:
                rss.append(r)
            self.assertIsNone(seed.poll(), "torrenty seed died under the request flood\n" + seed.tail())
            if "DONE" in leecher.output():
                done = True
                if flood.now() > 12:  # keep sampling while the flood is still going
                    break
            elif leecher.poll() is not None:
                self.fail("libtorrent leecher exited early\n" + leecher.tail())
            time.sleep(0.1)
        flood.stop()
        records = flood.records()
        peak = max(rss)
        dropped = sum(1 for r in records if r["closed_by"] == "peer")
        sent = sum(r["requests_seen"] for r in records)
        print(f"\n  [request_flood: peak VmRSS {peak / MiB:.1f} MiB over {len(rss)} samples, "
              f"{len(records)} connections, {dropped} dropped by torrenty, {sent} requests sent]", end="")
        self.assertTrue(done, "libtorrent leecher did not complete while the seed was flooded\n"
                        + leecher.tail() + "\n" + seed.tail())
        self.assertSameData(data, self.path("lt-out") / data.name)
        self.assertLess(peak, FLOOD_RSS_LIMIT, f"seed RSS peaked at {peak / MiB:.1f} MiB")
        self.assertGreater(dropped, 0, "torrenty never dropped a flooding connection")
        self.assertIn("too many queued requests", seed.log_text())
        self.assertIsNone(seed.poll(), "torrenty seed died\n" + seed.tail())
        seed.send_signal(signal.SIGTERM)
        self.assertEqual(self.wait_exit(seed, 10), 0, seed.tail())


if __name__ == "__main__":
    unittest.main()
