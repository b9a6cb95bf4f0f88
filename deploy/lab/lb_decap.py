#!/usr/bin/python3
"""lb_decap: a user-space decapsulator for lab backends of lbnode's TUN and GUE modes.

lbnode's TUN mode sends the client's packet inside an outer IP header addressed to the backend
(IPv4 inner: IP protocol 4, IPv6 inner: IP protocol / next header 41, in an outer IPv4 or IPv6
header); GUE mode sends it as the payload of a UDP datagram to port 6080. A backend normally
decapsulates with the kernel's ipip/ip6tnl/fou modules; on a kernel without them this script
does the same job in user space:

  * it creates a Linux tun device (IFF_TUN | IFF_NO_PI) and brings it up (no address needed);
  * it receives the tunnelled packets:
      - IPv4 outer, protocol 4 or 41: a raw AF_INET socket, which gets the whole outer packet;
        the outer header (IHL * 4 bytes) is stripped;
      - IPv6 outer, next header 4 or 41: a raw AF_INET6 socket, which gets the payload without
        the outer header (the kernel strips it for IPv6 raw sockets);
      - GUE: a UDP socket (IPv4 and IPv6) bound to the GUE port, whose payloads are the packets;
  * it writes each inner packet to the tun device. The kernel then receives the client's packet
    on the tun device, addressed to the VIP, which the backend holds on lo, and answers the
    client directly.

Backend settings this needs (the test scripts set them): the VIP on lo; reverse-path filtering
off for the tun device (this script writes its conf/<tun>/rp_filter = 0) and for "all" (the
kernel uses the larger of the two), since the client's address is routed through the backend's
real interface, not the tun device. With rp_filter left on the inner packets are dropped silently.

On a kernel that has the ipip/sit/ip6_tunnel or fou modules loaded with tunnels configured, use
those instead (or --no-ipip / --no-gue): the kernel would decapsulate the packets as well.

Bad packets (too short, wrong version, outer header longer than the packet, an inner packet
that is not IPv4/IPv6 or whose length field disagrees with what was received) are counted and
skipped. SIGTERM or SIGINT stops it after logging the counters to stderr; SIGUSR1 logs them
without stopping. Needs root (CAP_NET_ADMIN and CAP_NET_RAW).

Usage: lb_decap.py [--tun NAME] [--gue-port N] [--no-ipip] [--no-gue]
Prints "lb_decap: ready ..." to stderr once every socket is open and the device is up.
"""

import argparse
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_UP = 0x1
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IPPROTO_IPIP = 4
IPPROTO_IPV6 = 41
BUF = 65535


def log(msg):
    print(f"lb_decap: {msg}", file=sys.stderr, flush=True)


def open_tun(name):
    """Creates (or attaches to) tun device `name`, brings it up; returns (fd, actual name)."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    ifr = struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI)
    ifr = fcntl.ioctl(fd, TUNSETIFF, ifr)
    actual = ifr[:16].rstrip(b"\0").decode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH", actual.encode(), 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req)[:18])[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH", actual.encode(), flags | IFF_UP))
    # Inner packets come from clients routed elsewhere: strict rp_filter would drop them.
    try:
        with open(f"/proc/sys/net/ipv4/conf/{actual}/rp_filter", "w") as f:
            f.write("0")
    except OSError as e:
        log(f"cannot turn off rp_filter on {actual}: {e}")
    return fd, actual


def inner_ok(pkt):
    """True when pkt looks like a whole IPv4 or IPv6 packet."""
    if len(pkt) < 20:
        return False
    version = pkt[0] >> 4
    if version == 4:
        ihl = (pkt[0] & 0x0F) * 4
        total = struct.unpack_from("!H", pkt, 2)[0]
        return ihl >= 20 and ihl <= total <= len(pkt)
    if version == 6:
        return len(pkt) >= 40 and 40 + struct.unpack_from("!H", pkt, 4)[0] <= len(pkt)
    return False


def trim(pkt):
    """Cuts anything past the inner packet's own length (the tun device wants it exact)."""
    if pkt[0] >> 4 == 4:
        return pkt[: struct.unpack_from("!H", pkt, 2)[0]]
    return pkt[: 40 + struct.unpack_from("!H", pkt, 4)[0]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tun", default="lbdecap0", help="tun device name (default lbdecap0)")
    ap.add_argument("--gue-port", type=int, default=6080, help="GUE UDP port (default 6080)")
    ap.add_argument("--no-ipip", action="store_true", help="do not receive IP-in-IP (TUN mode)")
    ap.add_argument("--no-gue", action="store_true", help="do not receive GUE")
    args = ap.parse_args()
    if args.no_ipip and args.no_gue:
        ap.error("nothing to receive: --no-ipip and --no-gue together")
    if not 1 <= args.gue_port <= 65535:
        ap.error(f"--gue-port {args.gue_port}: not a port")
    if not args.tun or len(args.tun.encode()) > 15:
        ap.error(f"--tun {args.tun!r}: a device name has 1 to 15 bytes")

    try:
        tun_fd, tun_name = open_tun(args.tun)
    except OSError as e:
        log(f"cannot create tun device {args.tun}: {e}")
        return 1
    # kind -> (socket, strip outer IPv4 header?)
    socks = {}
    if not args.no_ipip:
        for fam, label in ((socket.AF_INET, "ipv4"), (socket.AF_INET6, "ipv6")):
            for proto, inner in ((IPPROTO_IPIP, "4"), (IPPROTO_IPV6, "6")):
                try:
                    s = socket.socket(fam, socket.SOCK_RAW, proto)
                except OSError as e:  # e.g. IPv6 disabled
                    log(f"no {inner}-in-{label} socket: {e}")
                    continue
                socks[f"{inner}in{label[-1]}"] = (s, fam == socket.AF_INET)
    if not args.no_gue:
        for fam, addr, label in ((socket.AF_INET, "0.0.0.0", "gue4"), (socket.AF_INET6, "::", "gue6")):
            try:
                s = socket.socket(fam, socket.SOCK_DGRAM)
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((addr, args.gue_port))
            except OSError as e:
                log(f"no {label} socket on port {args.gue_port}: {e}")
                continue
            socks[label] = (s, False)
    if not socks:
        log("no socket could be opened")
        return 1

    counts = {k: 0 for k in socks}
    counts.update(written=0, bad=0, write_errors=0)

    def report():
        log("counters " + " ".join(f"{k}={v}" for k, v in counts.items()))

    # Signals wake select() through this pipe; the handlers run in the main loop, not in select.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    pending = set()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(sig, lambda signum, frame: pending.add(signum))

    by_fd = {s.fileno(): (kind, s, strip) for kind, (s, strip) in socks.items()}
    log(f"ready: tun {tun_name}, receiving {' '.join(sorted(socks))}, gue port {args.gue_port}")
    while True:
        try:
            ready, _, _ = select.select(list(by_fd) + [wake_r], [], [])
        except InterruptedError:
            ready = []
        if wake_r in ready:
            try:
                os.read(wake_r, 64)
            except BlockingIOError:
                pass
        if signal.SIGUSR1 in pending:
            pending.discard(signal.SIGUSR1)
            report()
        if pending & {signal.SIGTERM, signal.SIGINT}:
            break
        for fd in ready:
            if fd not in by_fd:
                continue
            kind, s, strip = by_fd[fd]
            try:
                pkt = s.recv(BUF)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:  # e.g. ICMP errors reported on the UDP socket
                if e.errno not in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    log(f"{kind}: recv: {e}")
                continue
            counts[kind] += 1
            if strip:
                if len(pkt) < 20 or pkt[0] >> 4 != 4 or (pkt[0] & 0x0F) < 5:
                    counts["bad"] += 1
                    continue
                pkt = pkt[(pkt[0] & 0x0F) * 4 :]
            if not inner_ok(pkt):
                counts["bad"] += 1
                continue
            try:
                os.write(tun_fd, trim(pkt))
                counts["written"] += 1
            except OSError:
                counts["write_errors"] += 1
    report()
    for _, s, _ in by_fd.values():
        s.close()
    os.close(tun_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
