#!/usr/bin/python3
"""A peer that offers a torrent's metadata (BEP 10 + BEP 9) and lies about it.

  metadata_liar.py --torrent T --port P --mode wrong-bytes|wrong-size

It accepts connections on 127.0.0.1:P, answers the handshake for T's info-hash with the BEP 10
bit set, advertises ut_metadata with the true metadata_size, and answers every metadata request:
  wrong-bytes: the right size, one byte flipped (the SHA-1 check must catch it);
  wrong-size:  a data message whose total_size is 100 bytes more than its handshake said.
Prints LISTENING once bound; runs until killed.
"""
import argparse
import hashlib
import socket
import struct
import sys
import threading


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, dict):
        return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(type(v))


def raw_info(torrent_bytes):
    # mktorrent writes `info` as the last key of the top-level dict.
    i = torrent_bytes.index(b"4:info") + len(b"4:info")
    return torrent_bytes[i:-1]


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def extended(ext_id, payload):
    return struct.pack(">IBB", len(payload) + 2, 20, ext_id) + payload


def serve(conn, info, info_hash, mode):
    try:
        hs = recv_exact(conn, 68)
        if hs[28:48] != info_hash:
            return
        reserved = b"\x00" * 5 + b"\x10" + b"\x00" * 2
        conn.sendall(b"\x13BitTorrent protocol" + reserved + info_hash + b"-LI0001-liarliarliar")
        conn.sendall(extended(0, bencode({b"m": {b"ut_metadata": 3},
                                          b"metadata_size": len(info)})))
        their_id = 0
        while True:
            (length,) = struct.unpack(">I", recv_exact(conn, 4))
            body = recv_exact(conn, length) if length else b""
            if not body or body[0] != 20:
                continue
            if body[1] == 0:
                m = body[2:]
                k = m.find(b"11:ut_metadatai")
                if k >= 0:
                    their_id = int(m[k + 15:m.index(b"e", k + 15)])
                continue
            if body[1] != 3 or their_id == 0:
                continue
            piece = int(body[body.index(b"5:piecei") + 8:body.index(b"e", body.index(b"5:piecei") + 8)])
            chunk = info[piece * 16384:(piece + 1) * 16384]
            total = len(info)
            if mode == "wrong-bytes":
                chunk = bytes([chunk[0] ^ 1]) + chunk[1:]
            else:
                total += 100
                chunk = (info + b"x" * 100)[piece * 16384:(piece + 1) * 16384]
            header = bencode({b"msg_type": 1, b"piece": piece, b"total_size": total})
            conn.sendall(extended(their_id, header + chunk))
    except (EOFError, OSError, ValueError):
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["wrong-bytes", "wrong-size"], required=True)
    args = ap.parse_args()
    info = raw_info(open(args.torrent, "rb").read())
    info_hash = hashlib.sha1(info).digest()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(16)
    print("LISTENING", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, info, info_hash, args.mode), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
