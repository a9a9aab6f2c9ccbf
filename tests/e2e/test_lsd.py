"""BEP 14 local service discovery: peers with no tracker and no --peer find each other through
multicast on the LAN.

Multicast needs an interface that carries it; the host's loopback has no MULTICAST flag and tests
must not announce on a real LAN. So each test makes its own network namespace (`ip netns add`,
lo up with multicast on, a route for 239.0.0.0/8 through lo with source 127.0.0.1), runs every
process in it with `ip netns exec` and deletes the namespace afterwards, also on failure. That
needs root: the tests skip otherwise.
"""
import itertools
import os
import shutil
import subprocess
import sys
import unittest

from harness import MiB, PYTHON, TorrentyTestCase, torrenty_bin, wait_until, write_random_file

_ns_seq = itertools.count()

LSD_GROUP = "239.192.152.143"
LSD_PORT = 6771

# Prints "PORT INFOHASH" for every BEP 14 announce heard on the group, one line per info-hash.
LISTENER = r"""
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", %d))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             struct.pack("4s4s", socket.inet_aton("%s"), socket.inet_aton("0.0.0.0")))
print("LISTENING", flush=True)
while True:
    data, addr = s.recvfrom(4096)
    lines = data.decode("latin-1").split("\r\n")
    port = [l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("port:")]
    for l in lines:
        if l.lower().startswith("infohash:"):
            print(addr[0], port[0] if port else "-", l.split(":", 1)[1].strip().lower(), flush=True)
""" % (LSD_PORT, LSD_GROUP)


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10,
                          check=check)


class LsdTestCase(TorrentyTestCase):
    """Every process of the test runs in a fresh network namespace (self.ns)."""

    multicast_route = True

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to create a network namespace (ip netns add)")
        if shutil.which("ip") is None:
            self.skipTest("needs iproute2's ip to create a network namespace")
        self.ns = f"torrenty-lsd-{os.getpid()}-{next(_ns_seq)}"
        r = _ip("netns", "add", self.ns, check=False)
        if r.returncode != 0:
            self.skipTest(f"cannot create a network namespace: {r.stdout.decode(errors='replace').strip()}")
        # Registered first, so it runs last: after the base class has killed every process.
        self.addCleanup(_ip, "netns", "del", self.ns, check=False)
        cmds = [["link", "set", "lo", "up"]]
        if self.multicast_route:
            cmds += [["link", "set", "lo", "multicast", "on"],
                     ["route", "add", "239.0.0.0/8", "dev", "lo", "src", "127.0.0.1"]]
        for cmd in cmds:
            _ip("netns", "exec", self.ns, "ip", *cmd)
        super().setUp()

    def in_ns(self):
        # ip netns exec execs the command in place, so the PID the harness kills is the program's.
        return ["ip", "netns", "exec", self.ns]

    def start_torrenty_ns(self, args, name):
        return self.start(name, self.in_ns() + [torrenty_bin()] + [str(a) for a in args],
                          separate_stdout=True)

    def start_listener(self):
        p = self.start("lsd-listener", self.in_ns() + [PYTHON, "-c", LISTENER], separate_stdout=True)
        p.wait_for_output("LISTENING", 10)
        return p

    def make_payload(self, name, size, private=False):
        data = self.path("data")
        write_random_file(data / name, size, seed=size)
        torrent = self.path(f"{name}.torrent")
        args = ["create", data / name, "-o", torrent]  # no --tracker: no announce URL at all
        if private:
            args.append("--private")
        r = self.run_torrenty(args, timeout=60, name="torrenty-create")
        self.assertTorrentyOk(r, "torrenty create")
        ih = [l.split()[-1] for l in r.stdout.splitlines() + r.stderr.splitlines()
              if l.startswith("info-hash:")][0]
        return data, torrent, ih


class LocalDiscovery(LsdTestCase):

    def test_two_torrentys_find_each_other_and_download(self):
        data, torrent, ih = self.make_payload("lsd-payload.bin", 6 * MiB + 4321)
        seed = self.start_torrenty_ns(["seed", torrent, "--data", data, "--port", 7101, "-v"],
                                      name="torrenty-seed")
        out = self.path("out")
        dl = self.start_torrenty_ns(["download", torrent, "-o", out, "--port", 7102, "-v"],
                                    name="torrenty-download")
        self.assertEqual(self.wait_exit(dl, 60, others=[seed]), 0, dl.tail() + seed.tail())
        self.assertSameData(data / "lsd-payload.bin", out / "lsd-payload.bin")
        # Whichever started second heard the other's first announce.
        logs = dl.log_text() + seed.log_text()
        self.assertRegex(logs, r"local peer discovery: 127\.0\.0\.1:710[12]")

    def test_announces_public_torrents_only_with_our_port(self):
        listener = self.start_listener()
        pdata, ptorrent, pih = self.make_payload("private.bin", 1 * MiB, private=True)
        private = self.start_torrenty_ns(["seed", ptorrent, "--data", pdata, "--port", 7201],
                                         name="torrenty-seed-private")
        private.wait_for_output("seeding", 30, stdout_only=False)
        data, torrent, ih = self.make_payload("public.bin", 1 * MiB + 1)
        public = self.start_torrenty_ns(["seed", torrent, "--data", data, "--port", 7202],
                                        name="torrenty-seed-public")
        text = listener.wait_for_output(f"127.0.0.1 7202 {ih}", 30)
        # The private seed started (and would have announced) before the public one did.
        self.assertNotIn(pih, text)
        # --no-lsd: a third seed of the public torrent stays silent; the public seed's next
        # announce is 5 min away, so any further line for ih would be this one's.
        silent = self.start_torrenty_ns(["seed", torrent, "--data", data, "--port", 7203, "--no-lsd"],
                                        name="torrenty-seed-no-lsd")
        silent.wait_for_output("seeding", 30, stdout_only=False)
        # A seed started after it announces at once: by then the silent one would have too.
        later = self.start_torrenty_ns(["seed", torrent, "--data", data, "--port", 7204],
                                       name="torrenty-seed-later")
        listener.wait_for_output(f"127.0.0.1 7204 {ih}", 30)
        later.stop()
        private.stop()
        public.stop()
        silent.stop()
        self.assertNotIn(" 7203 ", listener.output())
        self.assertNotIn(pih, listener.output())

    def test_download_without_trackers_needs_lsd_or_peers(self):
        data, torrent, ih = self.make_payload("nolsd.bin", 1 * MiB)
        r = self.run_torrenty(["download", torrent, "-o", self.path("out"), "--no-lsd"], timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no trackers", r.stderr)
        pdata, ptorrent, pih = self.make_payload("private.bin", 1 * MiB, private=True)
        r = self.run_torrenty(["download", ptorrent, "-o", self.path("out2")], timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no trackers", r.stderr)


class NoMulticast(LsdTestCase):
    """A namespace whose only interface, lo, carries no multicast."""
    multicast_route = False

    def test_download_goes_on_without_local_discovery(self):
        data, torrent, ih = self.make_payload("nomc.bin", 2 * MiB + 5)
        seed = self.start_torrenty_ns(["seed", torrent, "--data", data, "--port", 7501, "--no-lsd"],
                                      name="torrenty-seed")
        seed.wait_for_output("seeding", 30, stdout_only=False)
        out = self.path("out")
        dl = self.start_torrenty_ns(["download", torrent, "-o", out, "--port", 7502,
                                     "--peer", "127.0.0.1:7501"], name="torrenty-download")
        self.assertEqual(self.wait_exit(dl, 60, others=[seed]), 0, dl.tail())
        self.assertSameData(data / "nomc.bin", out / "nomc.bin")
        lines = [l for l in dl.log_text().splitlines() if "local peer discovery" in l]
        self.assertEqual(len(lines), 1, dl.log_text())
        self.assertIn("local peer discovery unavailable: joining the multicast group", lines[0])
        self.assertNotIn("local peer discovery", seed.log_text())


class LocalDiscoveryWithLibtorrent(LsdTestCase):

    def test_torrenty_downloads_from_libtorrent_found_by_lsd(self):
        data, torrent, ih = self.make_payload("lt-lsd.bin", 4 * MiB + 99)
        lt = self.start_lt_peer(torrent, data, "seed", port=7301, lsd=True, wrap=self.in_ns(),
                                name="lt-seed-lsd")
        lt.wait_for_output("SEEDING", 60)
        out = self.path("out")
        dl = self.start_torrenty_ns(["download", torrent, "-o", out, "--port", 7302, "-v"],
                                    name="torrenty-download")
        self.assertEqual(self.wait_exit(dl, 90, others=[lt]), 0, dl.tail() + lt.tail())
        self.assertSameData(data / "lt-lsd.bin", out / "lt-lsd.bin")

    def test_libtorrent_downloads_from_torrenty_found_by_lsd(self):
        # Torrenty seeds first, so it is libtorrent's announce, parsed by Torrenty, that joins them.
        data, torrent, ih = self.make_payload("lt-lsd2.bin", 4 * MiB + 7)
        seed = self.start_torrenty_ns(["seed", torrent, "--data", data, "--port", 7401, "-v"],
                                      name="torrenty-seed")
        seed.wait_for_output("seeding", 30, stdout_only=False)
        out = self.path("lt-out")
        lt = self.start_lt_peer(torrent, out, "leech", port=7402, lsd=True, wrap=self.in_ns(),
                                name="lt-leech-lsd")
        lt.wait_for_output("DONE", 90)
        self.assertSameData(data / "lt-lsd2.bin", out / "lt-lsd2.bin")
        self.assertIn("local peer discovery: 127.0.0.1:7402", seed.log_text())


if __name__ == "__main__":
    unittest.main()
