#!/usr/bin/python3
"""Long-lived TCP connections for the cluster tests.

Opens N connections to HOST:PORT (paced), then for DURATION seconds each connection sends a
numbered line every INTERVAL seconds and checks the echo ("<backend> <seq>"), as answered by
tests/cluster/echo_server.py. Records per connection: the backend that answers, resets / EOFs /
other errors, wrong or moved answers, and the longest time a line waited for its echo (a stall).
Writes READY_FILE once all connections are up (the test acts then), and prints one JSON summary
on stdout at the end.
"""
import argparse
import errno
import json
import os
import selectors
import socket
import time

ap = argparse.ArgumentParser()
ap.add_argument("host")
ap.add_argument("port", type=int)
ap.add_argument("-n", type=int, default=500)
ap.add_argument("--interval", type=float, default=0.2)
ap.add_argument("--duration", type=float, default=15.0)
ap.add_argument("--stall", type=float, default=2.0)
ap.add_argument("--ready-file")
ap.add_argument("--connect-timeout", type=float, default=20.0)
args = ap.parse_args()


class Conn:
    __slots__ = ("i", "sock", "state", "buf", "seq", "pending", "next_send", "backend", "error",
                 "max_wait", "ok", "moved", "connected_at")

    def __init__(self, i):
        self.i = i
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.state = "connecting"
        self.buf = b""
        self.seq = 0
        self.pending = []  # [(seq, sent_at)]
        self.next_send = 0.0
        self.backend = None
        self.error = None
        self.max_wait = 0.0
        self.ok = 0
        self.moved = False


sel = selectors.DefaultSelector()
conns = []
t_start = time.monotonic()


def fail(c, why):
    if c.state == "dead":
        return
    c.error = why
    c.state = "dead"
    try:
        sel.unregister(c.sock)
    except Exception:
        pass
    c.sock.close()


def on_readable(c, now):
    try:
        data = c.sock.recv(65536)
    except ConnectionResetError:
        return fail(c, "reset")
    except BlockingIOError:
        return
    except OSError as e:
        return fail(c, "error:" + errno.errorcode.get(e.errno, str(e.errno)))
    if not data:
        return fail(c, "eof")
    c.buf += data
    while b"\n" in c.buf:
        line, c.buf = c.buf.split(b"\n", 1)
        parts = line.decode(errors="replace").split()
        if len(parts) != 2 or not c.pending or parts[1] != str(c.pending[0][0]):
            return fail(c, "garbled")
        seq, sent = c.pending.pop(0)
        c.max_wait = max(c.max_wait, now - sent)
        if c.backend is None:
            c.backend = parts[0]
        elif c.backend != parts[0]:
            c.moved = True
            return fail(c, "moved")
        c.ok += 1


def send(c, now):
    c.seq += 1
    try:
        n = c.sock.send(b"%d\n" % c.seq)
        if n == 0:
            return fail(c, "send0")
    except BlockingIOError:
        c.seq -= 1
        return
    except ConnectionResetError:
        return fail(c, "reset")
    except BrokenPipeError:
        return fail(c, "pipe")
    except OSError as e:
        return fail(c, "error:" + errno.errorcode.get(e.errno, str(e.errno)))
    c.pending.append((c.seq, now))


# Phase 1: connect, paced (50 per 50 ms); each sends its first line once connected.
for i in range(args.n):
    c = Conn(i)
    conns.append(c)
    try:
        c.sock.connect((args.host, args.port))
    except BlockingIOError:
        pass
    except OSError as e:
        fail(c, "connect:" + str(e))
        continue
    sel.register(c.sock, selectors.EVENT_WRITE, c)
    if i % 50 == 49:
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            for key, ev in sel.select(0.01):
                c2 = key.data
                if c2.state == "connecting":
                    err = c2.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail(c2, "connect:" + errno.errorcode.get(err, str(err)))
                    else:
                        c2.state = "up"
                        sel.modify(c2.sock, selectors.EVENT_READ, c2)
                        c2.next_send = time.monotonic()
                else:
                    on_readable(c2, time.monotonic())

deadline = time.monotonic() + args.connect_timeout
while time.monotonic() < deadline and any(c.state == "connecting" for c in conns):
    for key, ev in sel.select(0.05):
        c = key.data
        if c.state == "connecting":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                fail(c, "connect:" + errno.errorcode.get(err, str(err)))
            else:
                c.state = "up"
                sel.modify(c.sock, selectors.EVENT_READ, c)
        else:
            on_readable(c, time.monotonic())
connect_failed = 0
for c in conns:
    if c.state == "connecting":
        fail(c, "connect:timeout")
    if c.error and c.error.startswith("connect"):
        connect_failed += 1
connect_s = time.monotonic() - t_start

# Phase 2: exchange. Sends are spread over the interval.
now = time.monotonic()
for c in conns:
    c.next_send = now + (c.i % 97) / 97.0 * args.interval
    c.error = None if c.state != "dead" else c.error
if args.ready_file:
    with open(args.ready_file, "w") as f:
        f.write("%d\n" % sum(1 for c in conns if c.state == "up"))
end = now + args.duration
live = [c for c in conns if c.state == "up"]
while True:
    now = time.monotonic()
    if now >= end:
        break
    for key, ev in sel.select(0.02):
        on_readable(key.data, time.monotonic())
    now = time.monotonic()
    for c in live:
        if c.state == "up" and now >= c.next_send:
            send(c, now)
            c.next_send += args.interval
            if c.next_send < now:
                c.next_send = now + args.interval
# Drain: give outstanding lines up to the stall limit to come back.
drain_end = time.monotonic() + args.stall
while time.monotonic() < drain_end and any(c.pending for c in live if c.state == "up"):
    for key, ev in sel.select(0.05):
        on_readable(key.data, time.monotonic())
now = time.monotonic()
for c in live:
    if c.state == "up" and c.pending:
        c.max_wait = max(c.max_wait, now - c.pending[0][1])

errors = {}
by_backend = {}
err_by_backend = {}
for c in conns:
    b = c.backend or "?"
    by_backend[b] = by_backend.get(b, 0) + 1
    if c.error and not c.error.startswith("connect"):
        errors[c.error] = errors.get(c.error, 0) + 1
        err_by_backend[b] = err_by_backend.get(b, 0) + 1
stalled = [c for c in live if c.state == "up" and c.max_wait > args.stall]
summary = {
    "n": args.n,
    "connected": len(live),
    "connect_failed": connect_failed,
    "connect_s": round(connect_s, 2),
    "broken": sum(errors.values()),
    "errors": errors,
    "stalled": len(stalled),
    "max_wait_s": round(max([c.max_wait for c in live] or [0.0]), 3),
    "max_wait_ok_s": round(max([c.max_wait for c in live if not c.error] or [0.0]), 3),
    "messages": sum(c.ok for c in conns),
    "by_backend": by_backend,
    "broken_by_backend": err_by_backend,
    "moved": sum(1 for c in conns if c.moved),
}
print(json.dumps(summary, sort_keys=True))
