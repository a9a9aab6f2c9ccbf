"""The systemd unit in tools/systemd/torrenty.service: systemd's own parser accepts every line, the
hardening the issue asks for is there, and `systemd-analyze security` rates it well.

systemd-analyze comes from Debian's systemd package (tools/setup installs it); a missing one fails
these tests rather than skipping them. No systemd needs to be running: `verify` and
`security --offline=yes` only read the file.
"""
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from harness import REPO_ROOT, torrenty_bin

UNIT = REPO_ROOT / "tools" / "systemd" / "torrenty.service"
INSTALLED_BIN = "/usr/local/bin/torrenty"


def systemd_analyze():
    path = shutil.which("systemd-analyze")
    if path is None:
        raise AssertionError("systemd-analyze not found: run tools/setup (Debian package systemd)")
    return path


def parse_unit(text):
    """{(section, key): [values]} in file order; continuation lines joined."""
    entries = {}
    section = None
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {raw!r}"
        entries.setdefault((section, key.strip()), []).append(value.strip())
    return entries


class SystemdUnitTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="torrenty-unit-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.text = UNIT.read_text()

    def unit_copy(self, text=None):
        """The unit with ExecStart pointing at the built binary (verify requires an executable;
        nothing is installed in /usr/local/bin on a test machine)."""
        self.assertTrue(Path(torrenty_bin()).is_file(), f"{torrenty_bin()} not built")
        path = self.tmp / "torrenty.service"
        path.write_text((text or self.text).replace(INSTALLED_BIN, torrenty_bin()))
        return path

    def verify(self, path):
        r = subprocess.run([systemd_analyze(), "verify", str(path)], capture_output=True,
                           text=True, timeout=60)
        return r.returncode, (r.stdout + r.stderr).strip()

    def test_systemd_parses_every_line(self):
        # systemd only warns about an unknown key or a bad value and exits 0, so any output fails.
        rc, out = self.verify(self.unit_copy())
        self.assertEqual((rc, out), (0, ""))

    def test_verify_reports_a_broken_line(self):
        # Guards the check above: the same call must complain about a typo.
        for good, broken in (("ProtectSystem=strict", "ProtectSystem=strictt"),
                             ("DynamicUser=yes", "DynamicUsr=yes"),
                             ("Restart=on-failure", "Restart=sometimes")):
            self.assertIn(good, self.text)
            rc, out = self.verify(self.unit_copy(self.text.replace(good, broken, 1)))
            self.assertNotEqual(out, "", f"systemd-analyze verify accepted {broken}")

    def test_hardening_and_commands(self):
        u = parse_unit(self.text)
        svc = lambda key: u.get(("Service", key), [])
        self.assertEqual(svc("DynamicUser"), ["yes"])
        self.assertEqual(svc("StateDirectory"), ["torrenty"])
        self.assertEqual(svc("ProtectSystem"), ["strict"])
        self.assertTrue(svc("ReadWritePaths"), "no ReadWritePaths for the download folder")
        self.assertEqual(svc("NoNewPrivileges"), ["yes"])
        self.assertEqual(svc("PrivateTmp"), ["yes"])
        self.assertEqual(svc("ProtectHome"), ["yes"])
        self.assertEqual(svc("RestrictAddressFamilies"), ["AF_INET AF_INET6 AF_UNIX"])
        self.assertGreaterEqual(int(svc("LimitNOFILE")[0]), 65536)
        self.assertEqual(svc("Restart"), ["on-failure"])
        self.assertEqual(svc("ExecReload"), ["/bin/kill -HUP $MAINPID"])
        [start] = svc("ExecStart")
        argv = start.split()
        self.assertEqual(argv[:2], [INSTALLED_BIN, "serve"])
        flags = dict(zip(argv[2::2], argv[3::2]))
        self.assertEqual(flags["--state-dir"], "${STATE_DIRECTORY}")
        self.assertEqual(flags["--download-dir"], "/var/lib/torrenty/downloads")
        self.assertEqual(flags["--rpc-bind"], "127.0.0.1")
        self.assertEqual(u.get(("Install", "WantedBy")), ["multi-user.target"])

    def test_security_exposure_is_low(self):
        # --threshold is on systemd's 0-100 scale (the printed level is a tenth of it):
        # exit status 1 if the exposure is above 2.0.
        path = self.unit_copy()
        r = subprocess.run([systemd_analyze(), "security", "--offline=yes", "--threshold=20",
                            "--no-pager", str(path)], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr)
        self.assertRegex(r.stdout, r"Overall exposure level for torrenty\.service: [01]\.\d")


if __name__ == "__main__":
    unittest.main()
