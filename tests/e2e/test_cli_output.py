"""What a user sees at the end of a run: elapsed time and rate, when seeding starts, the uploaded
total, and the exit status after SIGINT/SIGTERM (130/143, the shell's 128 + signal number)."""
import re
import signal
import unittest

from harness import (LOOPBACK, MiB, TorrentyTestCase, free_port, make_torrent, wait_port_listening,
                     write_random_file)


class CliOutput(TorrentyTestCase):

    def setUp(self):
        super().setUp()
        self.data = self.path("data")
        write_random_file(self.data / "f.bin", 6 * MiB + 17)
        # No tracker: peers are given with --peer, so nothing but these processes takes part.
        self.torrent = make_torrent(self.data / "f.bin", "http://127.0.0.1:1/announce",
                                    self.path("f.torrent"), piece_log2=18)

    def start_seed(self):
        port = free_port()
        seed = self.start_torrenty(["seed", self.torrent, "--data", self.data, "--port", port],
                                   name="torrenty-seed")
        wait_port_listening(port, 60, proc=seed)
        return seed, port

    def test_download_prints_elapsed_time_and_average_rate(self):
        seed, port = self.start_seed()
        res = self.run_torrenty(["download", self.torrent, "-o", self.path("out"), "--port", free_port(),
                                 "--peer", f"{LOOPBACK}:{port}"], timeout=60)
        self.assertTorrentyOk(res, "torrenty download")
        m = re.search(r"^f\.bin: downloaded 6\.0 MiB in (\d+\.\d) s \((\d+\.\d) (KiB|MiB|GiB)/s average\)$",
                      res.stderr, re.M)
        self.assertIsNotNone(m, f"no elapsed/average line:\n{res.stderr}")
        self.assertLessEqual(float(m.group(1)), res.elapsed)
        self.assertIn("f.bin: complete, 6.0 MiB verified in", res.stderr)
        seed.send_signal(signal.SIGTERM)
        self.assertEqual(self.wait_exit(seed, 10), 0, seed.tail())
        # The seed served the whole file to that one leecher.
        self.assertRegex(seed.log_text(), r"(?m)^f\.bin: seeding until SIGINT/SIGTERM$")
        self.assertRegex(seed.log_text(), r"(?m)^f\.bin: uploaded 6\.0 MiB in \d")

    def test_seed_flag_says_when_seeding_starts_and_reports_upload_on_exit(self):
        seed, port = self.start_seed()
        lport = free_port()
        leech = self.start_torrenty(["download", self.torrent, "-o", self.path("out"), "--port", lport,
                                     "--peer", f"{LOOPBACK}:{port}", "--seed"], name="torrenty-leech")
        leech.wait_for_output("f.bin: seeding until SIGINT/SIGTERM", 60, stdout_only=False)
        log = leech.log_text()
        self.assertRegex(log, r"(?m)^f\.bin: download complete in \d+\.\d s \([\d.]+ \w+/s average\)$")
        self.assertLess(log.index("download complete in"), log.index("seeding until"))
        self.assertSameData(self.data / "f.bin", self.path("out", "f.bin"))
        # A second leecher takes the file from the --seed one: its upload total is the file.
        res = self.run_torrenty(["download", self.torrent, "-o", self.path("out2"), "--port", free_port(),
                                 "--peer", f"{LOOPBACK}:{lport}"], timeout=60, name="torrenty-leech2")
        self.assertTorrentyOk(res, "second download")
        leech.send_signal(signal.SIGINT)
        self.assertEqual(self.wait_exit(leech, 10), 0, leech.tail())
        self.assertRegex(leech.log_text(), r"(?m)^f\.bin: uploaded 6\.0 MiB in \d")
        seed.send_signal(signal.SIGTERM)
        self.assertEqual(self.wait_exit(seed, 10), 0, seed.tail())

    def test_unfinished_download_exits_130_on_sigint_and_143_on_sigterm(self):
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            with self.subTest(sig.name):
                # A peer that refuses connections: the download can never finish.
                dl = self.start_torrenty(["download", self.torrent, "-o", self.path(f"out-{sig.name}"),
                                          "--port", free_port(), "--peer", f"{LOOPBACK}:{free_port()}"],
                                         name=f"torrenty-{sig.name}")
                dl.wait_for_output("listening on port", 30, stdout_only=False)
                dl.send_signal(sig)
                self.assertEqual(self.wait_exit(dl, 10), code, dl.tail())
                self.assertIn("stopped before the download completed", dl.log_text())


if __name__ == "__main__":
    unittest.main()
