"""A corpus of .torrent files as real creators (and attackers) write them, with what Torrenty
must make of each.

The cases are modelled on the kinds of torrents in libtorrent's test/test_torrents (pad files,
BEP 47 attributes, symlinks, unclean paths, duplicate paths, UTF-8 keys, web seeds, v2 and
hybrid torrents, sloppy encodings); every file here is generated, none is copied.

    /usr/bin/python3 tests/e2e/make_corpus.py OUT_DIR           # writes OUT_DIR/<case>.torrent
    /usr/bin/python3 tests/e2e/make_corpus.py --table           # what `torrenty info` says now

Each case is (bytes, expectation). An expectation is either {"error": text}, the exact message
after "torrenty info: PATH: ", or what `torrenty info --json` must report: "name", "files" (a
list of [path, size, attrs] without pad files), "total_size", and optionally "trackers",
"web_seeds", "http_seeds", "comment", "symlinks" ({path: target}), "pieces".
"""
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import bencode  # noqa: E402

PL = 16384


def pieces_for(total, piece_length=PL):
    return bytes(20) * ((total - 1) // piece_length + 1)


def multi(files, name="dir", piece_length=PL, data_total=None, **extra):
    """A multi-file info dict; the piece count follows the bytes the files occupy (symlinks
    occupy none, pad files do)."""
    if data_total is None:
        data_total = sum(0 if "l" in f.get("attr", "") and "p" not in f.get("attr", "")
                         else f.get("length", 0) for f in files)
    info = {"name": name, "piece length": piece_length, "files": files,
            "pieces": pieces_for(data_total, piece_length)}
    info.update(extra)
    return info


def single(length=1000, name="a.bin", piece_length=PL, **extra):
    info = {"name": name, "piece length": piece_length, "length": length,
            "pieces": pieces_for(length, piece_length)}
    info.update(extra)
    return info


def torrent(info, **top):
    return bencode(dict(top, info=info))


def raw_dict(*pairs):
    """A dict with keys in the given order, repeats allowed (bencode() would sort and dedupe)."""
    return b"d" + b"".join(bencode(k) + v for k, v in pairs) + b"e"


def info_hash(info):
    return hashlib.sha1(bencode(info)).hexdigest()


def f(path, length, attr=None, **extra):
    d = {"length": length, "path": path}
    if attr is not None:
        d["attr"] = attr
    d.update(extra)
    return d


def ok(name, files, **more):
    exp = {"name": name, "files": [list(x) for x in files],
           "total_size": sum(x[1] for x in files)}
    exp.update(more)
    return exp


def cases():
    c = {}

    # BEP 47 pad files: libtorrent 2 / qBittorrent 4.4+ hybrids have one after every file, and two
    # of the same size used to fail as a duplicate path.
    c["pad_files_same_size"] = (
        torrent(multi([f(["a"], 100), f([".pad", "16284"], 16284, "p"), f(["b"], 100),
                       f([".pad", "16284"], 16284, "p"), f(["c"], 50)])),
        ok("dir", [("dir/a", 100, ""), ("dir/b", 100, ""), ("dir/c", 50, "")], pieces=3))
    c["pad_file_no_path"] = (
        torrent(multi([f(["a"], 100), {"length": 16284, "attr": "p"}, f(["b"], 100)])),
        ok("dir", [("dir/a", 100, ""), ("dir/b", 100, "")]))
    c["pad_file_bitcomet"] = (
        torrent(multi([f(["a"], 100), f(["_____padding_file_0_if you see this file, please update"], 16284),
                       f(["b"], 100)])),
        ok("dir", [("dir/a", 100, ""), ("dir/b", 100, "")]))
    c["attr_executable_hidden"] = (
        torrent(multi([f(["run.sh"], 10, "x"), f([".secret"], 10, "h"), f(["both"], 10, "hx"),
                       f(["unknown"], 10, "zq")])),
        ok("dir", [("dir/run.sh", 10, "x"), ("dir/.secret", 10, "h"), ("dir/both", 10, "xh"),
                   ("dir/unknown", 10, "")]))
    c["attr_single_file"] = (torrent(single(attr="x")), ok("a.bin", [("a.bin", 1000, "x")]))
    # A symlink's length is ignored (BEP 47): the pieces here cover only the 100 real bytes.
    c["symlink_with_length"] = (
        torrent(multi([f(["a"], 100), f(["link"], 5000, "l", **{"symlink path": ["a"]})])),
        ok("dir", [("dir/a", 100, ""), ("dir/link", 0, "l")], symlinks={"dir/link": "dir/a"},
           pieces=1))
    c["symlink_escaping"] = (
        torrent(multi([f(["a"], 100), f(["evil"], 0, "l", **{"symlink path": ["..", "..", "etc", "passwd"]})])),
        ok("dir", [("dir/a", 100, ""), ("dir/evil", 0, "l")], symlinks={"dir/evil": "dir/etc/passwd"}))

    # Paths are cleaned, not refused; nothing may leave DIR/<name>.
    c["parent_path"] = (torrent(multi([f(["..", "..", "escaped.bin"], 100)])),
                        ok("dir", [("dir/escaped.bin", 100, "")]))
    c["slash_in_component"] = (torrent(multi([f(["a/../../b", "c"], 100)])),
                               ok("dir", [("dir/a_.._.._b/c", 100, "")]))
    c["absolute_path"] = (torrent(multi([f(["/etc", "passwd"], 100)])),
                          ok("dir", [("dir/etc/passwd", 100, "")]))
    c["backslash_path"] = (torrent(multi([f(["a\\b", "\\c"], 100)])),
                           ok("dir", [("dir/a_b/c", 100, "")]))
    c["empty_components"] = (torrent(multi([f(["a", "", ".", "b"], 100)])),
                             ok("dir", [("dir/a/b", 100, "")]))
    c["only_dots_path"] = (torrent(multi([f(["..", "."], 100)])), ok("dir", [("dir/_", 100, "")]))
    c["control_chars"] = (
        torrent(multi([f(["line\nbreak", "esc\x1b[31m.txt"], 100)], name="ctl\x07name"),
                comment="hi\x1b[2J\nthere"),
        ok("ctl_name", [("ctl_name/line_break/esc_[31m.txt", 100, "")], comment="hi\x1b[2J\nthere"))
    c["long_component"] = (torrent(multi([f(["x" * 300 + ".txt"], 100)])),
                           ok("dir", [("dir/" + "x" * 251 + ".txt", 100, "")]))
    c["duplicate_files"] = (
        torrent(multi([f(["same", "x.bin"], 100), f(["same", "x.bin"], 200), f(["same", "x.bin"], 300)])),
        ok("dir", [("dir/same/x.bin", 100, ""), ("dir/same/x.1.bin", 200, ""), ("dir/same/x.2.bin", 300, "")]))
    c["file_and_directory"] = (torrent(multi([f(["a"], 100), f(["a", "b"], 200)])),
                               ok("dir", [("dir/a.1", 100, ""), ("dir/a/b", 200, "")]))
    c["name_dotdot"] = (torrent(single(name="..")), ok(info_hash(single(name="..")),
                                                        [(info_hash(single(name="..")), 1000, "")]))
    c["name_absolute"] = (torrent(single(name="/tmp/x")), ok("tmp_x", [("tmp_x", 1000, "")]))
    c["utf8_keys"] = (
        torrent(multi([f([b"l\xe9"], 100, **{"path.utf-8": ["u\u00e9"]})], name=b"caf\xe9",
                      **{"name.utf-8": "caf\u00e9"})),
        ok("caf\u00e9", [("caf\u00e9/u\u00e9", 100, "")]))
    c["invalid_utf8_name"] = (torrent(single(name=b"caf\xe9")), ok("caf_", [("caf_", 1000, "")]))

    # What real files contain.
    t = torrent(single(), announce="http://127.0.0.1:1/announce")
    c["trailing_newline"] = (t + b"\n", ok("a.bin", [("a.bin", 1000, "")]))
    c["trailing_garbage"] = (t + b"\r\n\x00junk", ok("a.bin", [("a.bin", 1000, "")]))
    c["repeated_keys"] = (
        raw_dict(("announce", bencode("http://first/a")), ("announce", bencode("http://second/a")),
                 ("info", bencode(single(name="first"))), ("info", bencode(single(name="second")))),
        ok("first", [("first", 1000, "")], trackers=[["http://first/a"]]))
    c["tracker_whitespace"] = (
        torrent(single(), announce=" http://t/announce\n",
                **{"announce-list": [["  http://t/announce\r\n", "\tudp://u:80 "], ["   "]]}),
        ok("a.bin", [("a.bin", 1000, "")], trackers=[["http://t/announce", "udp://u:80"]]))
    c["url_list_string"] = (torrent(single(), **{"url-list": "http://w/file"}),
                            ok("a.bin", [("a.bin", 1000, "")], web_seeds=["http://w/file"]))
    c["url_list_list"] = (
        torrent(single(), **{"url-list": ["http://w/1/", " http://w/2/ ", "", "http://w/1/"]}),
        ok("a.bin", [("a.bin", 1000, "")], web_seeds=["http://w/1/", "http://w/2/"]))
    c["httpseeds"] = (torrent(single(), httpseeds=["http://h/seed"]),
                      ok("a.bin", [("a.bin", 1000, "")], http_seeds=["http://h/seed"]))
    c["piece_length_512mib"] = (
        torrent(single(length=600 << 20, piece_length=512 << 20)),
        ok("a.bin", [("a.bin", 600 << 20, "")], pieces=2))

    # BEP 52.
    tree = {"a": {"": {"length": 100, "pieces root": b"r" * 32}},
            "b": {"": {"length": 100, "pieces root": b"s" * 32}}}
    c["v2_only"] = (torrent({"name": "v2", "piece length": PL, "meta version": 2, "file tree": tree}),
                    {"error": "metainfo: v2-only torrents are not supported yet"})
    c["hybrid"] = (
        torrent(multi([f(["a"], 100), f([".pad", "16284"], 16284, "p"), f(["b"], 100)],
                      name="hy", **{"meta version": 2, "file tree": tree})),
        ok("hy", [("hy/a", 100, ""), ("hy/b", 100, "")], pieces=2))

    # Still refused.
    c["path_too_long"] = (torrent(multi([f(["d" * 255] * 17, 100)])),
                          {"error": "metainfo: file 0 path longer than 4096 bytes"})
    c["piece_length_1gib"] = (torrent(single(piece_length=1 << 30)),
                              {"error": "metainfo: piece length must be <= 536870912"})
    return c


# Where Torrenty and libtorrent 2.0.8 disagree on loading a case, and why.
LIBTORRENT_DIFFERS = {
    "v2_only": "libtorrent supports v2; Torrenty does not yet",
    "name_dotdot": "libtorrent refuses a name that cleans to nothing; Torrenty names it by info-hash",
    "path_too_long": "libtorrent has no total path limit; Linux cannot open a path over 4096 bytes",
}


def write(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, (data, _) in cases().items():
        (out / f"{name}.torrent").write_bytes(data)
    return out


def table():
    """case -> the line `torrenty info` prints that says most about it."""
    import subprocess
    import tempfile
    from harness import torrenty_bin
    with tempfile.TemporaryDirectory() as d:
        out = write(d)
        for name in cases():
            r = subprocess.run([torrenty_bin(), "info", str(out / f"{name}.torrent")],
                               capture_output=True, timeout=10)
            if r.returncode != 0:
                print(f"{name}: {r.stderr.decode().strip().split(': ', 2)[-1]}")
                continue
            lines = r.stdout.decode().splitlines()
            files = lines[lines.index("files:") + 1:lines.index("trackers:")]
            extra = [l for l in lines if l.startswith(("comment:", "  tier"))]
            if "web seeds:" in lines or "http seeds:" in lines:
                extra += [l.strip() for l in lines[lines.index("trackers:") + 1:] if not l.startswith("  tier")]
            print(f"{name}: {lines[2]}; " + "; ".join(x.strip() for x in files + extra))


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        table()
    elif len(sys.argv) == 2:
        print(write(sys.argv[1]))
    else:
        sys.exit(__doc__)
