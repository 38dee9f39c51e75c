"""A TLS endpoint in front of the test broker, as RabbitMQ's own TLS listener would be.

The end-to-end tests share one RabbitMQ; reconfiguring it for TLS would restart it under every
other test. So the TLS tests put this terminator in front of its plain AMQP port instead: it
serves TLS with the certificate `rekisteri tls trial-certificates` made, and passes the
decrypted bytes on, both ways. A client must complete a TLS handshake with it, trusting its
certificate, before a single AMQP byte reaches the broker.

It runs its own event loop in a thread of its own, so a test that blocks (running the real
`rekisteri` with `subprocess.run`) does not stall the connections it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

CHUNK_BYTES = 64 * 1024


class TlsTerminator:
    def __init__(self, certificate: Path, key: Path, upstream: tuple[str, int]) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._context.load_cert_chain(certificate, key)
        self._upstream = upstream
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls", daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port = 0

    def __enter__(self) -> Self:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._context)

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for connection in list(self._connections):
            connection.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, client: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            broker, broker_out = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_out.close()
            self._connections.discard(task)
            return
        try:
            await asyncio.gather(_pipe(client, broker_out), _pipe(broker, client_out))
        finally:
            for writer in (client_out, broker_out):
                writer.close()
            self._connections.discard(task)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until either side ends; the end of one direction ends the other (`_serve`)."""
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while chunk := await source.read(CHUNK_BYTES):
            sink.write(chunk)
            await sink.drain()
    sink.close()
