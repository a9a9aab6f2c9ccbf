#!/usr/bin/python3
"""One libtorrent fleet host of bench/fleet, run inside a host's network namespace.

  lt_host.py --torrent T --save-path DIR --ip ADDR --port P [--timeout S]

Downloads from the tracker's peers (and the torrent's url-list web seeds, if any), prints "DONE"
on stdout once every piece is verified, then keeps seeding to the rest of the fleet until
SIGTERM/SIGINT (exit 0). DHT, LSD, UPnP, NAT-PMP and uTP are off; rate limits are off (the
fleet's links are limited by tc).
"""
import argparse
import signal
import sys
import time

import libtorrent as lt

stop = False


def on_signal(signum, frame):
    global stop
    stop = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--save-path", required=True)
    ap.add_argument("--ip", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=3600.0)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ses = lt.session({
        "listen_interfaces": f"{a.ip}:{a.port}", "outgoing_interfaces": a.ip,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": 0, "download_rate_limit": 0, "stop_tracker_timeout": 1,
        "alert_mask": lt.alert.category_t.error_notification, "user_agent": "torrenty-bench-fleet",
    })
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(a.torrent)
    atp.save_path = a.save_path
    atp.flags = lt.torrent_flags.default_flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + a.timeout
    done = False
    while not stop and time.monotonic() < deadline:
        st = h.status()
        if not done and st.is_seeding:
            sys.stdout.write("DONE\n")
            sys.stdout.flush()
            done = True
        for al in ses.pop_alerts():
            sys.stderr.write(f"alert: {al.message()}\n")
        time.sleep(0.02 if not done else 0.2)
    st = h.status()
    sys.stderr.write(f"exit: seeding={st.is_seeding} downloaded={st.total_payload_download} "
                     f"uploaded={st.total_payload_upload}\n")
    sys.stderr.flush()
    return 0 if done else 3


if __name__ == "__main__":
    sys.exit(main())
