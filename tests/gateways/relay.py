"""Byte relays between TCP on loopback and Unix sockets, to reach into a network namespace.

The Portkey gateway listens on every interface, so it runs in a private network namespace whose
only interface is its own loopback. A Unix socket is a file, reachable from both namespaces:
``tcp_to_unix`` listens on the namespace's loopback and carries each connection to a Unix
socket; ``unix_to_tcp`` listens on a Unix socket and carries each connection to a TCP port on
the loopback of the namespace it runs in. Nothing listens on any other address.

Run inside the namespace (``unshare -n python relay.py …``) it also brings the loopback up and
starts the command after ``--``, relaying until that command exits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _join(left: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                right: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    await asyncio.gather(_pipe(left[0], right[1]), _pipe(right[0], left[1]))


async def tcp_to_unix(port: int, path: str) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            other = await asyncio.open_unix_connection(path)
        except OSError:
            writer.close()
            return
        await _join((reader, writer), other)

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def unix_to_tcp(path: str, port: int) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            other = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await _join((reader, writer), other)

    if os.path.exists(path):
        os.unlink(path)
    return await asyncio.start_unix_server(handle, path)


async def _main(args: argparse.Namespace, command: list[str]) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    servers = [await tcp_to_unix(int(port), path) for port, path in (s.split("=", 1) for s in args.out)]
    servers += [await unix_to_tcp(path, int(port)) for path, port in (s.split("=", 1) for s in args.into)]
    process = await asyncio.create_subprocess_exec(*command)
    code = await process.wait()
    for server in servers:
        server.close()
    return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", action="append", default=[], help="PORT=SOCKET: namespace TCP port -> Unix socket")
    parser.add_argument("--into", action="append", default=[], help="SOCKET=PORT: Unix socket -> namespace TCP port")
    argv = sys.argv[1:]
    split = argv.index("--")
    sys.exit(asyncio.run(_main(parser.parse_args(argv[:split]), argv[split + 1:])))
