#!/usr/bin/python3
"""Line echo server for the cluster tests: answers every line with "<name> <line>".

Usage: echo_server.py <name> [port]. Binds 0.0.0.0 (the VIP lives on lo, so VIP:port is served
too). Prints "echo_server: ready" to stderr once listening.
"""
import asyncio
import sys

NAME = sys.argv[1].encode()
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 9000


async def handle(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(NAME + b" " + line)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "0.0.0.0", PORT, backlog=2048, reuse_address=True)
    print("echo_server: ready", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
