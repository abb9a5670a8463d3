"""A TCP proxy on 127.0.0.1 in front of a real server (PostgreSQL here), for faults the server itself is never
put through: ``cut()`` drops every connection and refuses new ones (a partition, a failover), ``stall()``
keeps them open and forwards nothing (a server or a network that stopped answering), ``restore()`` ends
either."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.is_cut = False
        self.is_stalled = False
        self.accepted = 0
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._while_stalled()
        if self.is_cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._links.discard(link)
            for w in link:
                w.transport.abort()

    async def _while_stalled(self) -> None:
        while self.is_stalled and not self.is_cut:
            await asyncio.sleep(0.05)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ConnectionError):
            while data := await reader.read(65536):
                await self._while_stalled()
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    def cut(self) -> None:
        self.is_cut = True
        for link in list(self._links):
            for w in link:
                w.transport.abort()

    def stall(self) -> None:
        self.is_stalled = True

    def restore(self) -> None:
        self.is_cut = self.is_stalled = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
