"""Relay TCP from one address to another: `python -m tests.tcp_forward HOST:PORT=HOST:PORT ...`.

The two-host test's services on this machine listen on loopback; the worker in the other
network namespace reaches them through this relay on the host side of their veth pair. A
listening port 0 takes a free one; the line "ready PORT ..." gives them in order.
"""

from __future__ import annotations

import asyncio
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def _serve(listen: str, target: str) -> asyncio.Server:
    host, port = listen.rsplit(":", 1)
    to_host, to_port = target.rsplit(":", 1)

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(to_host, int(to_port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return await asyncio.start_server(relay, host, int(port))


async def main(pairs: list[str]) -> None:
    servers = [await _serve(*pair.split("=", 1)) for pair in pairs]
    ports = [str(server.sockets[0].getsockname()[1]) for server in servers]
    print("ready", *ports, flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
