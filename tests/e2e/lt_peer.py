#!/usr/bin/python3
"""A libtorrent peer on loopback, run as its own process by the e2e harness.

  lt_peer.py --torrent T|--magnet URI --save-path DIR --port P --mode seed|leech
             [--connect HOST:PORT]... [--stop-after-bytes N] [--download-rate B/S]
             [--ipv6] [--upload-rate B/S] [--print-peers] [--timeout SECONDS]

seed:  checks the data in DIR, prints "SEEDING" once in state seeding, then serves until killed
       (or, with --stop-after-bytes N, prints "STOPPING uploaded=X" and exits 0 as soon as it
       has uploaded N payload bytes: every connection is dropped midway).
leech: downloads into DIR, prints "DONE" once every piece is verified, exits 0.
Both announce to the torrent's tracker. Progress goes to stderr once a second.
--print-peers prints "PEER HOST:PORT source=S outgoing=0|1" once for each peer endpoint seen
connected (S: libtorrent's peer_info source bits; 4 = learned through ut_pex).
Only loopback addresses (127.0.0.0/8, [::1]) are accepted for --connect; --ipv6 listens on [::1]
as well.
"""
import argparse
import ipaddress
import os
import sys
import time

import libtorrent as lt


def parse_hostport(text):
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # [::1]:PORT
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"bad HOST:PORT: {text!r}")
    if not ipaddress.ip_address(host).is_loopback:
        raise argparse.ArgumentTypeError(f"only loopback peers allowed: {text!r}")
    return host, int(port)


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def log(line):
    sys.stderr.write(f"[lt_peer {time.monotonic():.2f}] {line}\n")
    sys.stderr.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent")
    ap.add_argument("--magnet", help="leech from a magnet link: the metadata comes from peers")
    ap.add_argument("--save-path", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["seed", "leech"], required=True)
    ap.add_argument("--connect", type=parse_hostport, action="append", default=[])
    ap.add_argument("--stop-after-bytes", type=int, default=None)
    ap.add_argument("--download-rate", type=int, default=0, help="leech: bytes/s, 0 = unlimited")
    ap.add_argument("--upload-rate", type=int, default=0, help="bytes/s, 0 = unlimited")
    ap.add_argument("--print-peers", action="store_true")
    ap.add_argument("--lsd", action="store_true", help="BEP 14 local service discovery on")
    ap.add_argument("--ipv6", action="store_true",
                    help="listen on [::1] too (BEP 7), same port")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="give up (exit 3) after this many seconds")
    args = ap.parse_args()

    settings = {
        "listen_interfaces": (f"127.0.0.1:{args.port},[::1]:{args.port}" if args.ipv6
                              else f"127.0.0.1:{args.port}"),
        # libtorrent binds outgoing sockets to the first listed interface only, so an IPv4 entry
        # would make every IPv6 dial fail: with --ipv6 the kernel picks the source address.
        "outgoing_interfaces": "" if args.ipv6 else "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": args.lsd,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": args.upload_rate,
        "download_rate_limit": args.download_rate,
        "stop_tracker_timeout": 1,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification,
        "user_agent": "torrenty-e2e-lt-peer",
    }
    ses = lt.session(settings)
    if args.download_rate or args.upload_rate:
        # Loopback peers are in the unlimited local class: put every IP in the global one.
        f = lt.ip_filter()
        f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(f)

    if args.magnet:
        atp = lt.parse_magnet_uri(args.magnet)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(args.torrent)
    atp.save_path = args.save_path
    atp.flags = (lt.torrent_flags.default_flags
                 & ~lt.torrent_flags.auto_managed
                 & ~lt.torrent_flags.paused)
    h = ses.add_torrent(atp)
    log(f"added {args.magnet or atp.ti.name()} mode={args.mode} port={args.port}")
    metadata_seen = args.magnet is None

    deadline = time.monotonic() + args.timeout
    announced = False
    last_log = 0.0
    last_connect = 0.0
    peers_seen = set()
    poll = 0.005 if args.stop_after_bytes is not None else 0.1
    while True:
        now = time.monotonic()
        if now > deadline:
            log("timeout")
            out("TIMEOUT")
            return 3
        st = h.status()
        if not metadata_seen and st.has_metadata:
            metadata_seen = True
            out("METADATA")
        for a in ses.pop_alerts():
            log(f"alert: {a.message()}")

        if args.connect and st.state not in (lt.torrent_status.checking_files,
                                             lt.torrent_status.checking_resume_data) \
                and now - last_connect > 1.0 and st.num_peers < len(args.connect):
            for hp in args.connect:
                h.connect_peer(hp)
            last_connect = now

        if args.mode == "seed":
            if st.state == lt.torrent_status.seeding and not announced:
                out("SEEDING")
                announced = True
            if args.stop_after_bytes is not None and st.total_payload_upload >= args.stop_after_bytes:
                out(f"STOPPING uploaded={st.total_payload_upload}")
                log(f"stop-after-bytes reached: uploaded {st.total_payload_upload}; exiting")
                sys.stderr.flush()
                os._exit(0)  # drop every connection at once, mid-transfer
        else:
            if st.is_finished or st.state == lt.torrent_status.seeding:
                out("DONE")
                log(f"finished: downloaded {st.total_payload_download} bytes")
                h.pause()
                return 0

        if args.print_peers:
            for p in h.get_peer_info():
                ep = f"{p.ip[0]}:{p.ip[1]}"
                if ep not in peers_seen:
                    peers_seen.add(ep)
                    outgoing = 1 if p.flags & lt.peer_info.local_connection else 0
                    out(f"PEER {ep} source={p.source} outgoing={outgoing}")

        if now - last_log >= 1.0:
            log(f"state={st.state} progress={st.progress:.3f} peers={st.num_peers} "
                f"up={st.total_payload_upload} down={st.total_payload_download} "
                f"err={st.errc.message() if st.errc.value() else ''}")
            last_log = now
        time.sleep(poll)


if __name__ == "__main__":
    sys.exit(main())
