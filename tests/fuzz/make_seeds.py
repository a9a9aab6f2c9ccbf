#!/usr/bin/env python3
"""Writes the hand-made seed inputs of tests/fuzz/corpus/<target>/seed_*.

Re-run after changing an input format; files the fuzzer found (other names) are left alone.
The mktorrent-made torrents (corpus/metainfo/mktorrent_*) are checked in as they are.
"""
import hashlib
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode("latin-1")
    with open(os.path.join(ROOT, target, "seed_" + name), "wb") as f:
        f.write(data)


def benc(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode("latin-1")
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(benc(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode("latin-1") if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(benc(k) + benc(x) for k, x in items) + b"e"
    raise TypeError(v)


# --- bencode -----------------------------------------------------------------------------------
for name, data in {
    "int": "i42e", "int_neg": "i-9223372036854775808e", "int_max": "i9223372036854775807e",
    "int_overflow": "i9223372036854775808e", "int_lead0": "i03e", "int_negzero": "i-0e",
    "str": "4:spam", "str_empty": "0:", "str_short": "5:abc", "str_lead0": "04:spam",
    "list": "l4:spami42ee", "list_empty": "le", "dict": "d3:cow3:moo4:spam4:eggse",
    "dict_unsorted": "d4:spam4:eggs3:cow3:mooe", "dict_dup": "d1:ai1e1:ai2ee",
    "dict_nonstr_key": "di1ei2ee", "nested": "d1:ald1:bli1ei2eeee1:cdee", "deep": "l" * 300 + "e" * 300,
    "trailing": "i1ei2e", "unterminated": "l4:spam", "garbage": "x",
    "dict_dup_unsorted": "d1:bi1e1:ai2e1:bi3ee",
}.items():
    write("bencode", name, data)

# --- metainfo ----------------------------------------------------------------------------------
PL = 16384
data = bytes(range(256)) * 160  # 40960 bytes: three pieces, the last one short
pieces = b"".join(hashlib.sha1(data[i:i + PL]).digest() for i in range(0, len(data), PL))
single = {"announce": "http://tracker.example/announce", "comment": "seed",
          "info": {"name": "a.bin", "piece length": PL, "length": len(data), "pieces": pieces}}
write("metainfo", "single", benc(single))
multi_info = {"name": "dir", "piece length": PL, "pieces": pieces, "private": 1,
              "files": [{"length": 100, "path": ["a.txt"]},
                        {"length": 0, "path": ["empty"]},
                        {"length": len(data) - 100 - 5000, "path": ["sub", "b.bin"]},
                        {"length": 5000, "path": ["sub", "c", "d.bin"]}]}
write("metainfo", "multi", benc({"announce-list": [["http://a/ann", "udp://b:80"], ["http://c/"]],
                                 "info": multi_info}))
bad = dict(multi_info, files=[{"length": len(data), "path": ["..", "etc", "passwd"]}])
write("metainfo", "traversal", benc({"info": bad}))
bad = dict(multi_info, files=[{"length": 1, "path": ["x"]}, {"length": len(data) - 1, "path": ["x"]}])
write("metainfo", "dup_path", benc({"info": bad}))
bad = dict(multi_info, files=[{"length": 1, "path": ["x"]}, {"length": len(data) - 1, "path": ["x", "y"]}])
write("metainfo", "file_is_dir", benc({"info": bad}))
write("metainfo", "wrong_piece_count", benc({"info": dict(single["info"], length=len(data) + PL)}))
write("metainfo", "both_length_files", benc({"info": dict(multi_info, length=5)}))
write("metainfo", "zero_length", benc({"info": dict(single["info"], length=0, pieces=b"")}))
write("metainfo", "name_slash", benc({"info": dict(single["info"], name="a/b")}))
write("metainfo", "huge_piece_length", benc({"info": dict(single["info"], **{"piece length": 1 << 40})}))
write("metainfo", "overflow_total", benc({"info": dict(multi_info, files=[
    {"length": 2**63 - 1, "path": ["a"]}, {"length": 2, "path": ["b"]}])}))

# Torrents as real creators write them (BEP 47 attributes, BEP 19/17 web seeds, BEP 52 hybrids,
# sloppy files), so the fuzzer starts from every branch of the cleaning and tolerance code.
pad_info = dict(multi_info, files=[{"length": 100, "path": ["a.txt"]},
                                   {"length": PL - 100, "path": [".pad", str(PL - 100)], "attr": "p"},
                                   {"length": 100, "path": ["b.sh"], "attr": "xh"},
                                   {"length": PL - 100, "path": [".pad", str(PL - 100)], "attr": "p"},
                                   {"length": 0, "path": ["link"], "attr": "l",
                                    "symlink path": ["..", "sub", "a.txt"]},
                                   {"length": 5000, "path": ["_____padding_file_0_"]},
                                   {"length": len(data) - 2 * PL - 5000, "path": ["c"]}])
write("metainfo", "pad_attr_symlink", benc({"info": pad_info}))
write("metainfo", "symlink_with_length", benc({"info": dict(multi_info, files=[
    {"length": len(data), "path": ["a"]},
    {"length": 999, "path": ["l"], "attr": "l", "symlink path": ["a"]}])}))
write("metainfo", "unclean_paths", benc({"info": dict(multi_info, name="../\x1bname", files=[
    {"length": 1, "path": ["", ".", "..", "/abs", "a\\b", "c\nd"]},
    {"length": 2, "path": ["x" * 300 + ".mkv"]},
    {"length": 3, "path": ["caf\xe9", "\xe2\x80\xaetxt.exe"]},
    {"length": 4, "path": ["dup"]}, {"length": 5, "path": ["dup"]},
    {"length": len(data) - 15, "path": ["dup", "inner"]}])}))
write("metainfo", "utf8_keys", benc({"comment.utf-8": "c\xc3\xa9", "info": dict(
    single["info"], name="caf\xe9", **{"name.utf-8": "caf\xc3\xa9"})}))
write("metainfo", "utf8_path", benc({"info": dict(multi_info, files=[
    {"length": len(data), "path": ["l\xe9"], "path.utf-8": ["u\xc3\xa9"]}])}))
write("metainfo", "trailing_newline", benc(single) + b"\n")
info_raw = benc(single["info"])
write("metainfo", "repeated_keys", b"d4:info" + info_raw + b"4:info" + benc(dict(single["info"], name="b"))
      + b"8:announce4:x://8:announce4:y://e")
write("metainfo", "web_seeds", benc(dict(single, **{"url-list": [" http://w/1 ", "http://w/2", "http://w/1"],
                                                  "httpseeds": ["http://h/"],
                                                  "announce": "  http://t/ann \n"})))
write("metainfo", "url_list_string", benc(dict(single, **{"url-list": "http://w/only"})))
tree = {"a.bin": {"": {"length": len(data), "pieces root": b"r" * 32}}}
write("metainfo", "v2_only", benc({"info": {"name": "v2", "piece length": PL, "meta version": 2,
                                            "file tree": tree}}))
write("metainfo", "hybrid", benc({"info": dict(single["info"], **{"meta version": 2, "file tree": tree})}))
write("metainfo", "piece_length_512mib", benc({"info": dict(single["info"], **{"piece length": 512 << 20,
                                                                             "pieces": pieces[:20]})}))

# --- tracker_http ------------------------------------------------------------------------------
compact = b"".join(struct.pack(">4sH", bytes([10, 0, 0, i]), 6881 + i) for i in range(1, 6))
compact += struct.pack(">4sH", b"\x01\x02\x03\x04", 0)  # port 0: skipped
write("tracker_http", "compact", benc({"interval": 1800, "min interval": 60, "complete": 5,
                                       "incomplete": 3, "tracker id": "abc", "peers": compact}))
write("tracker_http", "dict_peers", benc({"interval": 900, "peers": [
    {"ip": "192.168.1.2", "port": 6881, "peer id": "x" * 20},
    {"ip": "::1", "port": 6881}, {"ip": "01.2.3.4", "port": 1}, {"ip": "1.2.3.4", "port": 0},
    {"ip": "host.example", "port": 80}, {"ip": "255.255.255.255", "port": 65535}]}))
peers6 = (b"\0" * 15 + b"\1" + struct.pack(">H", 6881) +            # [::1]:6881
          bytes.fromhex("20010db8000000000000000000000002") + b"\0\0" +  # port 0: skipped
          b"\0" * 10 + b"\xff\xff\x7f\0\0\1" + struct.pack(">H", 80))  # mapped 127.0.0.1
write("tracker_http", "peers6", benc({"interval": 1800, "peers": compact, "peers6": peers6}))
write("tracker_http", "bad_peers6", benc({"interval": 1, "peers6": b"x" * 17}))
write("tracker_http", "failure", benc({"failure reason": "torrent not registered"}))
write("tracker_http", "failure_empty", benc({"failure reason": ""}))
write("tracker_http", "warning", benc({"warning message": "w" * 2000, "interval": -5, "peers": b""}))
write("tracker_http", "bad_compact", benc({"interval": 1, "peers": b"12345"}))
write("tracker_http", "wrong_types", benc({"interval": "soon", "peers": 3}))
write("tracker_http", "not_dict", "l1:ae")
write("tracker_http", "url", "http://tracker.example:6969/announce?passkey=abc#frag")
write("tracker_http", "url_https", "HTTPS://t.example/ann?")

# --- wire --------------------------------------------------------------------------------------
def msg(mid, payload=b""):
    return struct.pack(">IB", 1 + len(payload), mid) + payload


def header(flags, max_len=200, chunks=(255, 255, 255, 255, 255, 255, 255, 255)):
    return bytes([flags, max_len]) + bytes(chunks)


every = (struct.pack(">I", 0) + msg(0) + msg(1) + msg(2) + msg(3) + msg(4, struct.pack(">I", 1)) +
         msg(5, b"\xe0") + msg(6, struct.pack(">III", 0, 0, 16384)) +
         msg(8, struct.pack(">III", 0, 0, 16384)) + msg(9, struct.pack(">H", 6881)) +
         msg(20, b"\x00d1:md11:ut_metadatai1eee") + msg(7, struct.pack(">II", 0, 0) + b"\0" * 16))
write("wire", "every_type", header(0x00) + every)
write("wire", "every_type_split1", header(0x00, chunks=(0, 1, 2, 3, 0, 0, 1, 7)) + every)
# Geometry 2 (64-byte pieces of zeros, 10 pieces): the peer has everything and unchokes us, then
# sends piece 0 and a corrupt piece 1.
g2 = (msg(5, b"\xff\xc0") + msg(1) + msg(7, struct.pack(">II", 0, 0) + b"\0" * 64) +
      msg(7, struct.pack(">II", 1, 0) + b"\1" * 64) + msg(7, struct.pack(">II", 2, 0) + b"\0" * 64))
write("wire", "download_tiny", header(0x02, chunks=(8, 8, 8, 8, 8, 8, 8, 8)) + g2)
write("wire", "download_tiny_late_disk", header(0x82 | 0x40, chunks=(3, 9, 1, 0, 20, 2, 5, 1)) + g2)
# Geometry 0 (4 pieces), we are a seed: the peer is interested, we unchoke, it requests.
seed = (msg(2) + msg(6, struct.pack(">III", 0, 0, 16384)) + msg(6, struct.pack(">III", 3, 0, 100)) +
        msg(8, struct.pack(">III", 0, 0, 16384)) + msg(6, struct.pack(">III", 1, 0, 16384)))
write("wire", "serve", header(0x04 | 0x10, chunks=(2, 4, 4, 4, 4, 4, 4, 4)) + seed)
write("wire", "serve_then_not_interested", header(0x08, chunks=(2, 4, 4, 4, 4, 4, 4, 4)) + seed + msg(3))
write("wire", "request_out_of_range", header(0x04) + msg(2) + msg(6, struct.pack(">III", 3, 0, 200)))
write("wire", "bad_bitfield_spare_bits", header(0x03) + msg(5, b"\xff" * 13))
write("wire", "have_out_of_range", header(0x00) + msg(4, struct.pack(">I", 4)))
write("wire", "oversize", header(0x00, max_len=10) + struct.pack(">I", 0x7fffffff) + b"\0" * 8)
write("wire", "wrong_len_have", header(0x00) + msg(4, b"\0\0"))
write("wire", "raw_bad_handshake", header(0x20) + b"\x13BitTorrent protocoX" + b"\0" * 48)
# Geometry 1 (two blocks per piece): both blocks of piece 0 from the fuzzed peer, endgame with the
# helper seed.
g1 = (msg(5, b"\xe0") + msg(1) + msg(7, struct.pack(">II", 0, 0) + b"\0" * 16384) +
      msg(7, struct.pack(">II", 0, 16384) + b"\0" * 16384) + msg(0))
write("wire", "download_two_blocks", header(0x41, chunks=(100, 3, 128, 7, 255, 1, 0, 60)) + g1)
# BEP 6 Fast extension: an odd max_len sets the Fast bit in the handshake made for the stream.
fast_every = (msg(15) + msg(13, struct.pack(">I", 1)) + msg(17, struct.pack(">I", 2)) +
              msg(16, struct.pack(">III", 0, 0, 16384)) + msg(14) + msg(17, struct.pack(">I", 9)))
write("wire", "fast_every_type", header(0x00, max_len=201) + fast_every)
write("wire", "fast_without_bit", header(0x00) + msg(14))
write("wire", "fast_wrong_len_reject", header(0x00, max_len=201) + msg(16, b"\0" * 8))
# Geometry 2, choked: the peer has all and allows pieces 0 and 3 fast, serves 0, rejects 3.
fast_g2 = (msg(14) + msg(17, struct.pack(">I", 0)) + msg(17, struct.pack(">I", 3)) +
           msg(7, struct.pack(">II", 0, 0) + b"\0" * 64) + msg(16, struct.pack(">III", 3, 0, 64)) +
           msg(1) + msg(16, struct.pack(">III", 4, 0, 64)) + msg(0))
write("wire", "fast_download_choked", header(0x02, max_len=201, chunks=(8, 8, 8, 8, 8, 8, 8, 8)) + fast_g2)
# Geometry 0, we are a seed: requests while choked (rejected unless allowed fast), then interest,
# requests, a cancel and not interested (the choke rejects what is queued).
fast_seed = (msg(15) + msg(6, struct.pack(">III", 1, 0, 16384)) + msg(2) +
             msg(6, struct.pack(">III", 0, 0, 16384)) + msg(6, struct.pack(">III", 2, 0, 16384)) +
             msg(8, struct.pack(">III", 2, 0, 16384)) + msg(6, struct.pack(">III", 1, 0, 16384)) +
             msg(3))
write("wire", "fast_serve", header(0x04 | 0x10, max_len=201, chunks=(2, 4, 4, 4, 4, 4, 4, 4)) + fast_seed)
write("wire", "fast_serve_late_disk", header(0x84, max_len=201, chunks=(9, 9, 9, 9, 9, 9, 9, 9)) + fast_seed)

# --- udp_tracker -------------------------------------------------------------------------------
def rec(op, payload=b"", length=None):
    return bytes([op]) + struct.pack(">H", len(payload) if length is None else length) + payload


connect_resp = struct.pack(">IIQ", 0, 0, 0x1122334455667788)
peers = b"".join(struct.pack(">4sH", bytes([10, 0, 0, i]), 6881) for i in range(1, 4))
announce_resp = struct.pack(">IIIII", 1, 0, 1800, 2, 5) + peers + struct.pack(">4sH", b"\1\2\3\4", 0)
error_resp = struct.pack(">II", 3, 0) + b"torrent not registered"
write("udp_tracker", "connect_response", connect_resp)
write("udp_tracker", "announce_response", announce_resp)
write("udp_tracker", "error_response", error_resp)
write("udp_tracker", "scrape_response", struct.pack(">IIIII", 2, 0, 1, 2, 3))
write("udp_tracker", "short", b"\0\0\0\1\0\0")
write("udp_tracker", "url", "udp://tracker.example:6969/announce?x=1")
write("udp_tracker", "script_ok", bytes([8]) + rec(1, connect_resp) + rec(1, announce_resp))
write("udp_tracker", "script_retransmit", bytes([3]) + rec(2, length=150) + rec(1, connect_resp) +
      rec(2, length=300) + rec(2, length=600) + rec(2, length=1200) + rec(2, length=2400))
write("udp_tracker", "script_error", bytes([8]) + rec(1, connect_resp) + rec(1, error_resp))
write("udp_tracker", "script_reuse", bytes([8]) + rec(1, connect_resp) + rec(1, announce_resp) +
      rec(3, length=0) + rec(0, announce_resp) + rec(1, announce_resp[:25]) + rec(2, length=700) +
      rec(3, length=1))

# --- http_request: 4 header bytes (limits, then three chunk sizes), then the byte stream --------
body = '{"method":"torrent-get","arguments":{"fields":["id","name"]},"tag":4}'
rpc_post = ("POST /transmission/rpc/ HTTP/1.1\r\nHost: 127.0.0.1:9091\r\nX-Transmission-Session-Id: abc\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
for name, data in {
    "post": rpc_post,
    "pipelined": rpc_post + "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n" + rpc_post,
    "get_bare_lf": "GET /metrics HTTP/1.1\nHost: [::1]:9091\nConnection: close\n\n",
    "http10": "GET / HTTP/1.0\r\n\r\n",
    "expect": "POST /transmission/rpc HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "chunked": "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "cl_conflict": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "cl_list": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
    "too_big": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
    "fold": "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
    "http2": "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
    "auth": "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n",
    "leading_crlf": "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
}.items():
    write("http_request", name, b"\x23\x07\x1f\x00" + data.encode("latin-1"))

# --- lsd: one BEP 14 datagram -------------------------------------------------------------------
lsd_ih0, lsd_ih1 = "00" * 20, "11" * 20
for name, data in {
    "libtorrent": "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: %s\r\n"
                  "cookie: 1a2b\r\n\r\n\r\n" % lsd_ih1,
    "two_hashes": "BT-SEARCH * HTTP/1.1\r\nPort: 51413\r\nInfohash: %s\r\nInfohash: %s\r\n\r\n" % (lsd_ih0, lsd_ih1),
    "bare_lf": "BT-SEARCH * HTTP/1.1\nport:7000\ninfohash: %s\n" % lsd_ih1.upper(),
    "own_cookie": "BT-SEARCH * HTTP/1.1\r\nPort: 6881\r\nInfohash: %s\r\ncookie: self\r\n\r\n" % lsd_ih0,
    "v6_host": "BT-SEARCH * HTTP/1.1\r\nHost: [ff15::efc0:988f]:6771\r\nPort: 1\r\nInfohash: %s\r\n\r\n" % lsd_ih0,
    "bad_port": "BT-SEARCH * HTTP/1.1\r\nPort: 65536\r\nInfohash: %s\r\n\r\n" % lsd_ih0,
    "short_hash": "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: abcd\r\n\r\n",
    "not_lsd": "M-SEARCH * HTTP/1.1\r\nHost: 239.255.255.250:1900\r\n\r\n",
}.items():
    write("lsd", name, data)

# --- pex: one ut_pex payload (BEP 11) -----------------------------------------------------------
def compact4(ip, port):
    return bytes(int(x) for x in ip.split(".")) + struct.pack(">H", port)


def compact6(last, port):
    return b"\x20\x01" + b"\0" * 13 + bytes([last]) + struct.pack(">H", port)


for name, data in {
    "v4": benc({"added": compact4("127.0.0.1", 6881) + compact4("10.0.0.2", 51413),
                "added.f": b"\x12\x00", "dropped": compact4("192.168.0.1", 1000)}),
    "v6": benc({"added6": compact6(1, 6881), "added6.f": b"\x10", "dropped6": compact6(2, 7)}),
    "both": benc({"added": compact4("1.2.3.4", 1), "added6": compact6(3, 2), "dropped": compact4("5.6.7.8", 3)}),
    "empty": b"de",
    "port0": benc({"added": compact4("1.2.3.4", 0) + compact4("1.2.3.5", 9)}),
    "many": benc({"added": b"".join(compact4("10.0.%d.%d" % (i // 256, i % 256), 1) for i in range(80))}),
    "ragged": b"d5:added5:abcdee",
    "bad_flags": benc({"added": compact4("1.2.3.4", 1), "added.f": b"\x01\x02"}),
}.items():
    write("pex", name, data)
