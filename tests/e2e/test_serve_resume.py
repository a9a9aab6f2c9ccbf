"""`torrenty serve --state-dir`: resume data lives under STATE/resume, written by one session-wide
writer. kill -9 in the middle of a download from a real libtorrent seeder, then a restart, finds it
there, loses no piece it claimed and hashes none of them again; torrent-remove deletes it. An idle
torrent costs no thread and no resume write: the serve process has as many threads with 21
torrents as with one.
"""
import os
import re
import signal
import unittest
from pathlib import Path

from harness import MiB, bdecode, free_port, info_hash, make_torrent, tracker_url, wait_until, \
    write_random_file
from swarm_helpers import exit_signal, popcount_bitfield, seeder_uploaded, \
    start_throttled_seeder, torrent_facts, valid_pieces
from test_serve import ServeCase


def claimed(path, num_pieces):
    """(indices, live flag) of the pieces a resume file claims; None while it does not exist."""
    try:
        data = bdecode(Path(path).read_bytes())
    except OSError:
        return None
    bits = data[b"pieces"]
    idx = [i for i in range(num_pieces) if bits[i // 8] & (0x80 >> (i % 8))]
    assert len(idx) == popcount_bitfield(bits, num_pieces)
    return idx, data.get(b"live", 0) == 1


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


class ServeResume(ServeCase):

    def test_kill9_restart_uses_resume_data_in_the_state_dir(self):
        tport = free_port()
        src = self.path("src")
        size = 40 * MiB
        write_random_file(src / "big.bin", size)
        tbig = make_torrent(src / "big.bin", tracker_url(tport), self.path("big.torrent"),
                            piece_log2=20)
        plen, total, hashes = torrent_facts(tbig)
        ih = info_hash(tbig)
        tracker = self.tracker([ih], port=tport)
        seeder = start_throttled_seeder(self, tbig, src, rate=4 * MiB, name="lt-big")
        tracker.wait_for_swarm(ih, 60, seeders=1, procs=[seeder])

        state, dl = self.path("state"), self.path("dl")
        resume = state / "resume" / f"{ih}.resume"
        serve = self.start_serve(state, dl, name="serve-run1")
        self.add(serve, tbig)
        # A save while running claims some pieces; more arrive after it, so the file's mtime moves
        # past the stamp it records (what a kill -9 leaves behind).
        first = wait_until(lambda: (c := claimed(resume, len(hashes))) and len(c[0]) >= 4 and c,
                           60, "resume data under STATE/resume", procs=[serve, seeder])
        self.assertTrue(first[1], "a save while running is marked live")
        sent = seeder_uploaded(seeder)
        wait_until(lambda: seeder_uploaded(seeder) >= sent + 2 * plen, 60,
                   "pieces sent after the save", procs=[serve, seeder], interval=0.02)
        serve.send_signal(signal.SIGKILL)
        self.assertEqual(exit_signal(self.wait_exit(serve, 10)), signal.SIGKILL)
        at_kill, _ = claimed(resume, len(hashes))
        on_disk = set(valid_pieces(tbig, dl / "big.bin"))
        print(f"\n  killed: resume data claims {len(at_kill)}/{len(hashes)} pieces, "
              f"{len(on_disk)} on disk")
        self.assertLess(len(on_disk), len(hashes), "big.bin finished before kill -9")
        # Data before resume data: kill -9 never leaves a claim on a piece that is not there.
        self.assertLessEqual(set(at_kill), on_disk)
        self.assertFalse((dl / ".torrenty").exists(), "resume data written next to the data")

        serve = self.start_serve(state, dl, name="serve-run2")
        line = wait_until(
            lambda: [l for l in serve.log_text().splitlines() if "big.bin: " in l and
                     ("resume data" in l or "rechecking" in l)],
            30, "the start-up check of big.bin", procs=[serve])[0]
        print(f"  restart: {line}")
        m = re.search(r"big\.bin: resume data saved while running: (\d+)/(\d+) pieces trusted", line)
        self.assertIsNotNone(m, f"resume data not used: {line}")
        self.assertGreaterEqual(int(m.group(1)), len(at_kill), "a claimed piece was lost")
        rows = self.wait_done(serve, ["big.bin"], 90, others=[seeder])
        self.assertSameData(src / "big.bin", dl / "big.bin")
        # A clean stop later would rewrite it; here it is removed with the torrent.
        self.remote(serve, "-t", rows["big.bin"]["id"], "-r")
        wait_until(lambda: not resume.exists(), 20, "resume data removed with the torrent",
                   procs=[serve])
        self.assertFalse((state / "torrents" / f"{ih}.record").exists())

    def test_idle_torrents_cost_no_thread_and_no_resume_write(self):
        tport = free_port()
        src = self.path("src")
        torrents = []
        for i in range(21):
            write_random_file(src / f"f{i}.bin", 64 * 1024 + i)
            torrents.append(make_torrent(src / f"f{i}.bin", tracker_url(tport),
                                         self.path(f"t{i}.torrent")))
        self.tracker([info_hash(t) for t in torrents], port=tport)  # no seeder: nothing arrives
        state, dl = self.path("state"), self.path("dl")
        serve = self.start_serve(state, dl)

        def downloading(n):
            ts = serve.rpc.torrents(fields=("id", "status"))
            return len(ts) == n and all(t["status"] == 4 for t in ts)  # TR_STATUS_DOWNLOAD

        self.add(serve, torrents[0])
        wait_until(lambda: downloading(1), 30, "one torrent downloading", procs=[serve])
        # Its first announce starts the tracker thread; count once that is done.
        wait_until(lambda: serve.rpc.call("torrent-get", fields=["trackerStats"])["arguments"]
                   ["torrents"][0]["trackerStats"][0]["lastAnnounceSucceeded"], 30,
                   "the first announce", procs=[serve])
        one = threads(serve.pid)
        for t in torrents[1:]:
            self.add(serve, t)
        wait_until(lambda: downloading(21), 30, "21 torrents downloading", procs=[serve])
        # Bounded wait rather than one sample: a short-lived helper thread may be counted.
        many = wait_until(lambda: (n := threads(serve.pid)) <= one and [n], 15,
                          f"no more threads with 21 torrents than the {one} with one",
                          procs=[serve])[0]
        print(f"\n  threads: {one} with 1 torrent, {many} with 21")
        resume_dir = state / "resume"
        self.assertEqual(sorted(os.listdir(resume_dir)) if resume_dir.exists() else [], [],
                         "idle torrents wrote resume data")


if __name__ == "__main__":
    unittest.main()
