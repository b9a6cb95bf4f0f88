#!/usr/bin/python3
"""Bad input on the wire for the cluster tests (scapy). Bounded counts; prints what it sent.

  bad_input.py l3 <vip>                      from the client: through the router to the VIP
  bad_input.py l2 <iface> <src mac> <dst mac>... from a namespace on the nodes' segment
L3: TCP with bogus data offsets and random flags, truncated TCP/UDP headers, other protocols,
fragments (first, middle, overlapping, tiny), full-MTU packets and 4000-byte packets without DF
(the router fragments them), random payloads. Source ports are below the client's ephemeral
range, so nothing can hit a live connection's 4-tuple.
L2: random frames, runts, IPv4 with random or inconsistent headers (bad IHL, total length,
checksum, version), IPv6 garbage, VLAN tags, all addressed to each node's MAC.
"""
import os
import random
import sys

from scapy.all import IP, TCP, UDP, ICMP, Ether, Raw, Dot1Q, fragment, send, sendp, conf  # noqa

conf.verb = 0
rnd = random.Random(6)


def rbytes(n):
    return bytes(rnd.getrandbits(8) for _ in range(n))


def sport():
    return rnd.randint(1024, 30000)


def l3(vip):
    pkts = []
    for _ in range(400):  # TCP: random flags, sequence numbers, data offsets
        pkts.append(IP(dst=vip) / TCP(sport=sport(), dport=rnd.choice([80, 9000, 443]),
                                      flags=rnd.getrandbits(8), seq=rnd.getrandbits(32),
                                      dataofs=rnd.choice([0, 1, 4, 5, 9, 15])) / Raw(rbytes(rnd.randint(0, 40))))
    for _ in range(300):  # truncated L4 headers
        pkts.append(IP(dst=vip, proto=rnd.choice([6, 17, 1])) / Raw(rbytes(rnd.randint(0, 7))))
    for _ in range(200):  # other protocols, UDP to the TCP VIP, ICMP
        pkts.append(IP(dst=vip, proto=rnd.choice([17, 47, 50, 132, 4, 41, 255])) / Raw(rbytes(rnd.randint(0, 100))))
        pkts.append(IP(dst=vip) / ICMP(type=rnd.choice([0, 3, 8, 11, 12]), code=rnd.randint(0, 15)) / Raw(rbytes(28)))
    for _ in range(150):  # fragments: whole fragmented TCP segments and lone pieces
        base = IP(dst=vip, id=rnd.getrandbits(16)) / TCP(sport=sport(), dport=80, flags="S") / Raw(rbytes(600))
        pkts.extend(fragment(base, fragsize=rnd.choice([8, 64, 256])))
        pkts.append(IP(dst=vip, id=rnd.getrandbits(16), flags="MF", frag=rnd.randint(0, 8000), proto=6) / Raw(rbytes(rnd.randint(8, 200))))
    for _ in range(100):  # full-size packets, and oversized ones the router fragments
        pkts.append(IP(dst=vip) / TCP(sport=sport(), dport=80, flags="A") / Raw(rbytes(1460)))
        pkts.append(IP(dst=vip, flags=0) / TCP(sport=sport(), dport=9000, flags="PA") / Raw(rbytes(4000)))
    send(pkts)
    print(f"bad_input l3: {len(pkts)} packets to {vip}")


def l2(iface, src, dsts):
    frames = []
    for dst in dsts:
        eth = lambda t: Ether(src=src, dst=dst, type=t)  # noqa: E731
        for _ in range(200):  # random ether types and bytes
            frames.append(eth(rnd.getrandbits(16)) / Raw(rbytes(rnd.randint(0, 300))))
        for _ in range(300):  # IPv4 ether type, random bytes
            frames.append(eth(0x0800) / Raw(rbytes(rnd.randint(0, 80))))
        for _ in range(300):  # IPv4 with inconsistent headers
            ip = IP(dst="10.99.100.1", src="10.99.1.2", ihl=rnd.choice([0, 1, 4, 5, 6, 15]),
                    len=rnd.choice([0, 1, 19, 20, 40, 1500, 65535]), version=rnd.choice([4, 4, 4, 6, 0, 15]),
                    chksum=rnd.getrandbits(16), proto=rnd.choice([6, 17, 1, 4]),
                    flags=rnd.getrandbits(3), frag=rnd.choice([0, 0, 1, 8191]))
            frames.append(eth(0x0800) / ip / Raw(rbytes(rnd.randint(0, 60))))
        for _ in range(100):  # IPv6 and ARP garbage, VLAN-tagged frames
            frames.append(eth(0x86DD) / Raw(rbytes(rnd.randint(0, 120))))
            frames.append(eth(0x0806) / Raw(rbytes(rnd.randint(0, 40))))
            frames.append(Ether(src=src, dst=dst) / Dot1Q(vlan=rnd.randint(0, 4095)) / IP(dst="10.99.100.1") / TCP(dport=80, sport=sport()))
        for _ in range(100):  # runts
            frames.append(Raw(bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + rbytes(rnd.randint(0, 3))))
    sendp(frames, iface=iface)
    print(f"bad_input l2: {len(frames)} frames to {len(dsts)} nodes on {iface}")


if sys.argv[1] == "l3":
    l3(sys.argv[2])
else:
    l2(sys.argv[2], sys.argv[3], sys.argv[4:])
