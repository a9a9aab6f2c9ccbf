"""A real Prometheus server (Debian's `prometheus` package) on 127.0.0.1 for end-to-end tests.

    with PrometheusServer(workdir, f"127.0.0.1:{rpc_port}") as prom:
        samples = prom.wait_for_sample("torrenty_payload_received_bytes_total", timeout=30)

or, inside a TorrentyTestCase, `prom = start_prometheus(self, target)`, which the test case stops by
PID when the test ends. Prometheus listens on a free port of 127.0.0.1, keeps its TSDB in a folder
under `workdir`, scrapes the one target every second, and is stopped by PID (then its process group
is killed); every wait has a timeout. Stdlib only.
"""
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from harness import LOOPBACK, Proc, free_port

PROMETHEUS = "prometheus"


class PrometheusServer:
    def __init__(self, workdir, target, metrics_path="/metrics", job="torrenty",
                 basic_auth=None, scrape_interval_s=1, ready_timeout=60.0):
        """target: "host:port" to scrape over http; basic_auth: (user, password) or None."""
        self.workdir = Path(workdir)
        self.target = target
        self.metrics_path = metrics_path
        self.job = job
        self.basic_auth = basic_auth
        self.scrape_interval_s = scrape_interval_s
        self.ready_timeout = ready_timeout
        self.port = None
        self.proc = None

    @property
    def url(self):
        return f"http://{LOOPBACK}:{self.port}"

    # ---------------------------------------------------------------- lifecycle

    def start(self):
        self.port = free_port()
        root = self.workdir / f"prometheus-{self.port}"
        (root / "data").mkdir(parents=True, exist_ok=True)
        config = root / "prometheus.yml"
        config.write_text(self._config())
        self.proc = Proc("prometheus", [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--log.level=info",
        ], self.workdir / "logs")
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _config(self):
        # JSON is YAML, so no YAML library is needed and every string is quoted safely.
        job = {
            "job_name": self.job,
            "scheme": "http",
            "metrics_path": self.metrics_path,
            "scrape_interval": f"{self.scrape_interval_s}s",
            "scrape_timeout": f"{self.scrape_interval_s}s",
            "static_configs": [{"targets": [self.target]}],
        }
        if self.basic_auth is not None:
            job["basic_auth"] = {"username": self.basic_auth[0], "password": self.basic_auth[1]}
        return json.dumps({
            "global": {"scrape_interval": f"{self.scrape_interval_s}s",
                       "evaluation_interval": f"{self.scrape_interval_s}s"},
            "scrape_configs": [job],
        }, indent=2) + "\n"

    def _wait_ready(self):
        deadline = time.monotonic() + self.ready_timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode} before it was "
                                     f"ready\n" + self.proc.tail())
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError) as e:  # not listening yet, or 503 starting
                last = e
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus not ready within {self.ready_timeout}s ({last})\n"
                                     + self.proc.tail())
            time.sleep(0.1)

    # ---------------------------------------------------------------- HTTP API

    def _api(self, path, params=None):
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:  # a bad query answers 400 with a JSON error
            body = json.load(e)
        if body.get("status") != "success":
            raise AssertionError(f"prometheus API {path} {params}: {body.get('errorType')}: "
                                 f"{body.get('error')}")
        return body["data"]

    def query(self, expr):
        """Evaluates a PromQL instant query now. Returns [(labels dict, float value)]."""
        data = self._api("query", {"query": expr})
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        if data["resultType"] != "vector":
            raise AssertionError(f"query {expr!r} gave a {data['resultType']}, not a vector")
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def targets(self):
        """The active targets: dicts with scrapeUrl, health ("up", "down", "unknown"), lastError."""
        return self._api("targets")["activeTargets"]

    def wait_for_target(self, health="up", timeout=30.0):
        """Waits until the target has been scraped with that health; returns its target dict.
        Prometheus' discovery hands a new target to the scraper only after up to 5 s."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}\n"
                                     + self.proc.tail())
            found = self.targets()
            if found and found[0].get("health") == health:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"target {self.target} not {health} within {timeout}s: "
                                     f"{found}\n" + self.proc.tail(20))
            time.sleep(0.2)

    def wait_for_sample(self, expr, timeout=30.0, predicate=None):
        """Polls `expr` (a metric name or any PromQL) until it has a sample (and predicate(samples)
        is true, if given). Returns the samples; fails with the targets' state after `timeout`,
        or at once if prometheus exits. Allow 5 s or more: the first scrape waits for discovery."""
        deadline = time.monotonic() + timeout
        samples = []
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}\n"
                                     + self.proc.tail())
            samples = self.query(expr)
            if samples and (predicate is None or predicate(samples)):
                return samples
            if time.monotonic() > deadline:
                state = [(t.get("scrapeUrl"), t.get("health"), t.get("lastError"))
                         for t in self.targets()]
                raise AssertionError(f"no{' matching' if samples else ''} sample of {expr!r} within "
                                     f"{timeout}s (last: {samples}); targets: {state}\n"
                                     + self.proc.tail(20))
            time.sleep(0.2)


def start_prometheus(testcase, target, **kw):
    """Starts a PrometheusServer in testcase's workdir; the test case stops it by PID at the end."""
    prom = PrometheusServer(testcase.workdir, target, **kw)
    try:
        prom.start()
    finally:
        if prom.proc is not None:
            testcase.procs.append(prom.proc)
    return prom
