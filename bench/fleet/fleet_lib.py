"""Pure helpers of bench/fleet: flag parsing, percentiles, the lower bound T*, the report rows,
the Markdown table and the SVG plot. No I/O besides reading /proc/stat; unit-tested by
bench/fleet/test_fleet_lib.py.
"""
import math
import re

MiB = 1 << 20
GiB = 1 << 30

_RATE_UNITS = {"": 1, "bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9,
               "k": 10**3, "m": 10**6, "g": 10**9, "bps": 8, "kbps": 8 * 10**3,
               "mbps": 8 * 10**6, "gbps": 8 * 10**9}


def parse_rate(text):
    """A link rate as tc spells it (100mbit, 1gbit, 500kbit; kbps/mbps are bytes) -> bits/s."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text or "")
    if not m or m.group(2).lower() not in _RATE_UNITS:
        raise ValueError(f"bad rate {text!r} (e.g. 100mbit, 1gbit)")
    bits = float(m.group(1)) * _RATE_UNITS[m.group(2).lower()]
    if bits < 8000:
        raise ValueError(f"rate {text!r} is below 8kbit")
    return int(bits)


def fmt_rate(bits):
    for unit, div in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if bits >= div and bits % div == 0:
            return f"{bits // div}{unit}"
    return f"{bits}bit"


def parse_size(text):
    """Bytes from 256M, 1G, 64MiB, 4096 (powers of 1024)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMgG]?)(?:i?[bB])?\s*", text or "")
    if not m:
        raise ValueError(f"bad size {text!r} (e.g. 64M, 1G)")
    n = int(float(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()])
    if n <= 0:
        raise ValueError(f"size {text!r} must be positive")
    return n


def fmt_size(n):
    if n % GiB == 0:
        return f"{n // GiB} GiB"
    if n % MiB == 0:
        return f"{n // MiB} MiB"
    return f"{n} B"


def parse_duration(text):
    """Seconds from 0, 0ms, 5ms, 1.5s, 200us."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(us|ms|s|)\s*", text or "")
    if not m:
        raise ValueError(f"bad duration {text!r} (e.g. 0ms, 5ms)")
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "": 1e-3}[m.group(2)]


def parse_list(text, allowed=None, what="value"):
    items = [x.strip() for x in (text or "").split(",") if x.strip()]
    if not items:
        raise ValueError(f"empty {what} list")
    if allowed is not None:
        bad = [x for x in items if x not in allowed]
        if bad:
            raise ValueError(f"unknown {what} {', '.join(bad)} (choose from {', '.join(allowed)})")
    return list(dict.fromkeys(items))


def parse_hosts(text):
    try:
        ns = [int(x) for x in parse_list(text, what="host count")]
    except ValueError as e:
        raise ValueError(f"bad --hosts {text!r}: {e}") from None
    if any(n < 1 or n > 250 for n in ns):
        raise ValueError(f"bad --hosts {text!r}: each N must be 1..250")
    return ns


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list: an observed value, never
    interpolated, so p100 is the last host and p99 of 8 hosts is also the last one."""
    if not values:
        return float("nan")
    v = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(v)))
    return v[min(rank, len(v)) - 1]


def t_star(size_bytes, origin_bits, host_bits):
    """The lower bound of the time to the last host: the origin must send S once and every host
    must receive S, so T* = max(S/O, S/B)."""
    s = size_bytes * 8.0
    return max(s / origin_bits, s / host_bits)


def targets(p99, p100, ts):
    """The issue's targets: p100 <= 1.5 T* + 2 s and p99 <= 1.25 T* + 1 s."""
    return p100 <= 1.5 * ts + 2.0 and p99 <= 1.25 * ts + 1.0


# --------------------------------------------------------------------------- help-text detection

def supports_flag(help_text, flag):
    """True if a --help text lists the flag as an option word (not as a prefix of a longer one)."""
    return re.search(re.escape(flag) + r"(?![A-Za-z0-9-])", help_text or "") is not None


def origin_support(seed_help, download_help):
    """origin -> None if this torrenty build can drive it, else the reason."""
    return {
        "seeder": None,
        "superseed": None if supports_flag(seed_help, "--super-seed")
        else "not supported by this build (torrenty seed has no --super-seed)",
        "webseed": None if supports_flag(download_help, "--web-seed-max-rate")
        else "not supported by this build (torrenty download has no web seeds / --web-seed-max-rate)",
    }


# --------------------------------------------------------------------------- /proc/stat

def read_cpu_times(text=None):
    """(idle, total) jiffies of all CPUs from /proc/stat; idle counts iowait too."""
    if text is None:
        with open("/proc/stat") as f:
            text = f.read()
    for line in text.splitlines():
        if line.startswith("cpu "):
            f = [int(x) for x in line.split()[1:]]
            total = sum(f[:8])  # guest time is already inside user/nice
            return f[3] + (f[4] if len(f) > 4 else 0), total
    raise ValueError("no cpu line in /proc/stat")


def idle_percent(before, after):
    di, dt = after[0] - before[0], after[1] - before[1]
    return 100.0 * di / dt if dt > 0 else float("nan")


# --------------------------------------------------------------------------- one run's summary

def summarize(run):
    """Fill the derived numbers of a run dict (size, n, origin/host bits, done: list of seconds
    or None per host, origin_tx_bytes, cpu_seconds, pieces) and return it."""
    done = [t for t in run["done"] if t is not None]
    n = run["n"]
    run["completed"] = len(done)
    run["t_star"] = t_star(run["size"], run["origin_bits"], run["host_bits"])
    if len(done) == n and n > 0:
        run["first"] = min(done)
        run["p50"] = percentile(done, 50)
        run["p99"] = percentile(done, 99)
        run["p100"] = max(done)
        run["pieces_per_s"] = n * run["pieces"] / run["p100"] if run["p100"] > 0 else float("nan")
        run["meets_targets"] = targets(run["p99"], run["p100"], run["t_star"])
    delivered = run["size"] * len(done)
    run["origin_copies"] = run["origin_tx_bytes"] / run["size"] if run.get("origin_tx_bytes") is not None else None
    run["cpu_per_gib"] = (run["cpu_seconds"] / (delivered / GiB)
                          if delivered and run.get("cpu_seconds") is not None else None)
    wall, cpus = run.get("wall_s"), run.get("cpus")
    run["fleet_cpu_pct"] = (100.0 * run["cpu_seconds"] / (wall * cpus)
                            if wall and cpus and run.get("cpu_seconds") is not None else None)
    return run


def _f(v, fmt="{:.2f}", none="–"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    return fmt.format(v)


TABLE_HEAD = ("| N | fleet client | origin | first s | p50 s | p99 s | p100 s | T* s | p100 ÷ T* | targets "
              "| origin bytes ÷ S | CPU s/GiB | pieces/s | fleet CPU % | machine idle % |\n"
              "|--:|---|---|--:|--:|--:|--:|--:|--:|:-:|--:|--:|--:|--:|--:|")


def table_row(r):
    head = f"| {r['n']} | {r['client']} | {r['origin']} |"
    if r.get("skipped"):
        return head + f" {r['skipped']} |" + " |" * 11
    ts = r["t_star"]
    if r.get("p100") is None:
        why = r.get("error") or f"{r['completed']}/{r['n']} hosts completed"
        return (head + f" FAILED: {why} | | | | {_f(ts)} | | ✗ | {_f(r.get('origin_copies'))} "
                f"| {_f(r.get('cpu_per_gib'))} | | {_f(r.get('fleet_cpu_pct'), '{:.0f}')} "
                f"| {_f(r.get('idle_pct'), '{:.0f}')} |")
    return (head + f" {_f(r['first'])} | {_f(r['p50'])} | {_f(r['p99'])} | {_f(r['p100'])} | {_f(ts)} "
            f"| {_f(r['p100'] / ts)} | {'✓' if r['meets_targets'] else '✗'} | {_f(r.get('origin_copies'))} "
            f"| {_f(r.get('cpu_per_gib'))} | {_f(r.get('pieces_per_s'), '{:.0f}')} "
            f"| {_f(r.get('fleet_cpu_pct'), '{:.0f}')} | {_f(r.get('idle_pct'), '{:.0f}')} |")


def markdown_table(runs):
    return "\n".join([TABLE_HEAD] + [table_row(r) for r in runs])


# --------------------------------------------------------------------------- SVG plot

_COLORS = {"torrenty": "#d62728", "libtorrent": "#1f77b4", "aria2c": "#2ca02c"}
_DASH = ["", "6,3", "2,3", "8,3,2,3"]


def _esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg_plot(runs, title="Completion time per host"):
    """Hand-written SVG: per run one line of completion times, hosts sorted (x = host rank as a
    fraction of the fleet), a dotted line per N at T*. Runs without data are left out."""
    series = [r for r in runs if not r.get("skipped") and any(t is not None for t in r["done"])]
    W, H, L, R, T, B = 760, 420, 60, 200, 40, 50
    ymax = max([t for r in series for t in r["done"] if t is not None] + [r["t_star"] for r in series] + [1.0])
    ymax = _nice(ymax * 1.05)
    pw, ph = W - L - R, H - T - B

    def x(frac):
        return L + frac * pw

    def y(sec):
        return T + ph - sec / ymax * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" '
           f'font-size="12">', f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="22" font-size="15">{_esc(title)}</text>',
           f'<line x1="{L}" y1="{T + ph}" x2="{L + pw}" y2="{T + ph}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{T + ph}" stroke="black"/>']
    for i in range(6):
        v = ymax * i / 5
        out.append(f'<line x1="{L - 4}" y1="{y(v):.1f}" x2="{L + pw}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    for i in range(5):
        f = i / 4
        out.append(f'<text x="{x(f):.1f}" y="{T + ph + 18}" text-anchor="middle">{int(f * 100)}%</text>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 10}" text-anchor="middle">hosts complete (sorted by time)</text>')
    out.append(f'<text x="16" y="{T + ph / 2}" transform="rotate(-90 16 {T + ph / 2})" '
               f'text-anchor="middle">seconds since start</text>')
    ns = sorted({r["n"] for r in series})
    legend_y = T
    for ts in sorted({round(r["t_star"], 3) for r in series}):
        out.append(f'<line x1="{L}" y1="{y(ts):.1f}" x2="{L + pw}" y2="{y(ts):.1f}" stroke="#555" '
                   f'stroke-dasharray="1,3"/>')
        out.append(f'<text x="{L + pw - 4}" y="{y(ts) - 4:.1f}" text-anchor="end" fill="#555">T* = {ts:.2f} s</text>')
    for r in series:
        times = sorted(t for t in r["done"] if t is not None)
        n = r["n"]
        pts = []
        for i, t in enumerate(times):
            pts.append(f"{x(i / n):.1f},{y(t):.1f}")
            pts.append(f"{x((i + 1) / n):.1f},{y(t):.1f}")
        color = _COLORS.get(r["client"], "#9467bd")
        dash = _DASH[ns.index(n) % len(_DASH)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash_attr} points="{" ".join(pts)}"/>')
        out.append(f'<line x1="{L + pw + 12}" y1="{legend_y + 6}" x2="{L + pw + 40}" y2="{legend_y + 6}" '
                   f'stroke="{color}" stroke-width="2"{dash_attr}/>')
        out.append(f'<text x="{L + pw + 46}" y="{legend_y + 10}">{_esc(r["client"])} N={n} '
                   f'({_esc(r["origin"])})</text>')
        legend_y += 18
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _nice(v):
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * e:
            return m * e
    return 10 * e
