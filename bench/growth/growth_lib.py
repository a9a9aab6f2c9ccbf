"""Pure helpers of bench/growth (no processes, no files but the ones passed in): the matrix, size
parsing, the piece-memory budget, growth ratios, the verdict and the Markdown table.
Checked by bench/growth/test_growth_lib.py."""
import re
import statistics

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

# How much a ratio may exceed linear before it counts as super-linear: the machine is shared and
# three runs of the same row differ by 10-20% here, so a stricter bound would judge the noise.
TOLERANCE = 0.15

GROUPS = ("size", "files", "piece", "seeders")


def parse_size(text):
    """'1G', '256K', '16MiB', '1048576' -> bytes. Rejects empty, zero, negative and unknown units."""
    t = str(text).strip().upper()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(I?B)?", t)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    mult = {"": 1, "K": KiB, "M": MiB, "G": GiB, "T": 1 << 40}[m.group(2)]
    if m.group(3) and m.group(3) != "B" and not m.group(2):
        raise ValueError(f"not a size: {text!r}")
    n = int(float(m.group(1)) * mult)
    if n <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return n


def fmt_size(n):
    for unit, mult in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= mult and n % mult == 0:
            return f"{n // mult} {unit}"
    if n >= GiB:
        return f"{n / GiB:.2f} GiB"
    return f"{n} B"


def parse_groups(text):
    """'size,piece' -> ['size', 'piece'] in matrix order; '' -> all groups."""
    if not text:
        return list(GROUPS)
    want = [g.strip() for g in text.split(",") if g.strip()]
    bad = [g for g in want if g not in GROUPS]
    if bad or not want:
        raise ValueError(f"unknown group(s) {bad or text!r}; choose from {', '.join(GROUPS)}")
    return [g for g in GROUPS if g in want]


def piece_memory_budget(header_text, default=32 * MiB):
    """The default piece-memory budget as io/session/session_config.h declares it, e.g.
    `int64_t piece_memory_bytes = int64_t{32} << 20;`; `default` when the line is not found."""
    m = re.search(r"piece_memory_bytes\s*=\s*(?:int64_t\{)?(\d+)\}?\s*(?:<<\s*(\d+))?\s*;", header_text)
    if not m:
        return default
    return int(m.group(1)) << int(m.group(2) or 0)


def effective_budget(budget, piece_length):
    """engine/torrent/piece_memory.h: memory for pieces never exceeds max(budget, one piece)."""
    return max(budget, piece_length)


def matrix(quick=False, aggregate_rate=2000 * 10**6):
    """Rows as dicts: group, key, size, files, piece, seeders, rate (per-seeder cap, bytes/s or 0)."""
    if quick:
        sizes, files, pieces, seeders, base = [64 * MiB, 256 * MiB], [10, 100], [16 * KiB, MiB, 16 * MiB], [1, 4], 64 * MiB
    else:
        sizes, files, pieces, seeders, base = ([GiB, 4 * GiB, 10 * GiB], [10, 1000, 10000],
                                               [16 * KiB, 256 * KiB, MiB, 4 * MiB, 16 * MiB], [1, 8, 32], GiB)
    rows = []
    for s in sizes:
        rows.append(dict(group="size", size=s, files=1, piece=MiB, seeders=1, rate=0))
    for f in files:
        rows.append(dict(group="files", size=base, files=f, piece=MiB, seeders=1, rate=0))
    for p in pieces:
        rows.append(dict(group="piece", size=base, files=1, piece=p, seeders=1, rate=0))
    for n in seeders:
        rows.append(dict(group="seeders", size=base, files=1, piece=MiB, seeders=n, rate=seeder_cap(aggregate_rate, n)))
    for r in rows:
        r["key"] = row_key(r)
    return rows


def seeder_cap(aggregate_rate, seeders):
    """Per-seeder upload cap that keeps the seeders' sum at `aggregate_rate` (0 = no cap)."""
    if aggregate_rate <= 0:
        return 0
    return max(1, aggregate_rate // seeders)


def row_key(r):
    return f"{r['group']}/{fmt_size(r['size']).replace(' ', '')}/f{r['files']}/p{fmt_size(r['piece']).replace(' ', '')}/s{r['seeders']}"


def num_pieces(size, piece):
    return -(-size // piece)


def scale_factor(row, first, memory=False):
    """How much bigger this row's job is than the group's first row, in whichever dimension grew the
    most (never below 1). Time and CPU may grow with bytes, files, pieces and seeders; memory may
    also grow with the piece length (one piece buffer is a piece long). Piece length does not count
    for time: a 16 MiB piece carries the same bytes as 1024 pieces of 16 KiB."""
    dims = [
        row["size"] / first["size"],
        row["files"] / first["files"],
        num_pieces(row["size"], row["piece"]) / num_pieces(first["size"], first["piece"]),
        row["seeders"] / first["seeders"],
    ]
    if memory:
        dims.append(row["piece"] / first["piece"])
    return max(1.0, max(dims))


def median(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def summarize(runs):
    """Medians over successful runs (dicts with wall, cpu, rss, seeder_cpu) of one row."""
    ok = [r for r in runs if isinstance(r, dict)]
    if not ok:
        return None
    return {k: median(r.get(k) for r in ok) for k in ("wall", "cpu", "rss", "seeder_cpu")}


def growth(row, med, first_row, first_med):
    """Ratios against the group's first row: wall / size (time per byte), CPU per GiB, RSS; and the
    allowed linear factor. None when either side is missing."""
    if not med or not first_med:
        return None
    size_ratio = row["size"] / first_row["size"]
    cpu_gib = med["cpu"] / (row["size"] / GiB)
    cpu_gib0 = first_med["cpu"] / (first_row["size"] / GiB)
    return {
        "scale": scale_factor(row, first_row),
        "rss_scale": scale_factor(row, first_row, memory=True),
        "wall": med["wall"] / first_med["wall"],
        "wall_per_size": (med["wall"] / first_med["wall"]) / size_ratio,
        "cpu": med["cpu"] / first_med["cpu"],
        "cpu_gib": cpu_gib / cpu_gib0,
        "rss": med["rss"] / first_med["rss"],
    }


def verdict(g, tolerance=TOLERANCE):
    """'≤ linear' when wall time, CPU and RSS each grew at most linearly in the row's scale factors;
    otherwise 'super-linear (...)' naming what grew too fast."""
    if g is None:
        return "–"
    over = [name for name in ("wall", "cpu", "rss")
            if g[name] > g["rss_scale" if name == "rss" else "scale"] * (1 + tolerance)]
    return "≤ linear" if not over else f"super-linear ({', '.join(over)})"


def rss_verdict(rss, baseline, budget):
    """Peak RSS above the idle footprint must fit in the (effective) piece-memory budget."""
    if rss is None or baseline is None:
        return "–"
    return "within" if rss - baseline <= budget else "**over**"


def row_label(r):
    if r["group"] == "size":
        return f"{fmt_size(r['size'])} single file"
    if r["group"] == "files":
        return f"{r['files']:,} files"
    if r["group"] == "piece":
        return f"{fmt_size(r['piece'])} pieces"
    return f"{r['seeders']} seeder{'s' if r['seeders'] > 1 else ''}"


def fmt(v, digits=2):
    return "–" if v is None else f"{v:.{digits}f}"


COLUMNS = [  # (title, right-aligned)
    ("group", False), ("row", False), ("size", True), ("files", True), ("piece", True), ("pieces", True),
    ("seeders × cap MB/s", True), ("wall s", True), ("MB/s", True), ("pieces/s", True),
    ("leecher CPU s/GiB", True), ("seeders CPU s/GiB", True), ("peak RSS MiB", True),
    ("RSS − idle / budget MiB", True), ("RSS check", False), ("scale ×", True), ("wall × / size ×", True),
    ("CPU/GiB ×", True), ("RSS ×", True), ("verdict", False), ("runs", False),
]


def table(rows, results, baseline_rss, budget):
    """Markdown table. results: key -> list of per-run dicts or failure strings."""
    lines = ["| " + " | ".join(t for t, _ in COLUMNS) + " |",
             "|" + "|".join("--:" if right else "---" for _, right in COLUMNS) + "|"]
    firsts = {}
    for r in rows:
        res = results.get(r["key"], [])
        med = summarize(res)
        if r["group"] not in firsts:
            firsts[r["group"]] = (r, med)
        fr, fm = firsts[r["group"]]
        g = growth(r, med, fr, fm)
        n_ok = sum(isinstance(x, dict) for x in res)
        fails = [x for x in res if not isinstance(x, dict)]
        runs = f"{n_ok}/{len(res)}" + (" — FAILED " + "; ".join(str(x)[:120] for x in fails) if fails else "")
        pieces = num_pieces(r["size"], r["piece"])
        cap = "uncapped" if not r["rate"] else f"{r['rate'] / 1e6:.0f}"
        eff = effective_budget(budget, r["piece"])
        cells = [r["group"], row_label(r), fmt_size(r["size"]), f"{r['files']:,}", fmt_size(r["piece"]),
                 f"{pieces:,}", f"{r['seeders']} × {cap}"]
        if med is None:
            cells += ["FAILED"] + [""] * (len(COLUMNS) - len(cells) - 3) + ["–", runs]
        else:
            gib = r["size"] / GiB
            over_idle = None if baseline_rss is None else (med["rss"] - baseline_rss) / MiB
            sc = None if med["seeder_cpu"] is None else med["seeder_cpu"] / gib
            gv = (lambda k: None) if g is None else (lambda k: g[k])
            cells += [fmt(med["wall"]), f"{r['size'] / med['wall'] / 1e6:.0f}", f"{pieces / med['wall']:,.0f}",
                      fmt(med["cpu"] / gib), fmt(sc), fmt(med["rss"] / MiB, 1),
                      f"{fmt(over_idle, 1)} / {eff / MiB:.0f}", rss_verdict(med["rss"], baseline_rss, eff),
                      fmt(gv("scale"), 1), fmt(gv("wall_per_size")), fmt(gv("cpu_gib")), fmt(gv("rss")),
                      verdict(g), runs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace_section(doc, name, body):
    """Put body between <!-- name:begin --> and <!-- name:end --> (replacing what was there), or
    append the marked section at the end of doc."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    pat = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pat.search(doc):
        return pat.sub(lambda _: block, doc, count=1)
    return doc.rstrip("\n") + "\n\n" + block + "\n"
