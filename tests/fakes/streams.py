"""In-memory TCP connections that can be reset, half-closed and closed like real ones.

:func:`stream_pair` returns the client and server ends of one connection. Bytes written on
one end are read on the other; ``send_eof``/``aclose`` are a FIN (the peer reads ``b""``);
:meth:`FakeStream.reset` is a RST: every pending and later read or write on both ends raises
``trio.BrokenResourceError`` caused by ``ConnectionResetError(ECONNRESET)``, which is how
trio reports a reset socket (so :func:`probe.failures.classify` says ``connection_reset``).
:class:`Prepended` gives back bytes a censor already read (a ClientHello it inspected).
"""

from __future__ import annotations

import errno

import trio
import trio.lowlevel


class _Direction:
    """Bytes flowing one way, with the FIN or RST that ended them."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.finished = False
        self.broken: BaseException | None = None
        #: the reading end was closed: a read in progress there raises ClosedResourceError
        self.reader_closed = False
        self.lot = trio.lowlevel.ParkingLot()

    def put(self, data: bytes) -> None:
        self.buffer += data
        self.lot.unpark_all()

    def finish(self) -> None:
        self.finished = True
        self.lot.unpark_all()

    def break_(self, exc: BaseException) -> None:
        self.broken = exc
        self.lot.unpark_all()

    async def get(self, max_bytes: int | None) -> bytes:
        while not self.buffer and not self.finished and self.broken is None:
            if self.reader_closed:
                raise trio.ClosedResourceError
            await self.lot.park()
        if self.reader_closed:
            raise trio.ClosedResourceError
        if self.broken is not None:
            raise trio.BrokenResourceError("connection reset") from self.broken
        size = len(self.buffer) if max_bytes is None else min(max_bytes, len(self.buffer))
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


def _reset_error() -> ConnectionResetError:
    return ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")


class FakeStream(trio.abc.HalfCloseableStream):
    """One end of an in-memory connection."""

    def __init__(self, inbound: _Direction, outbound: _Direction) -> None:
        self._in = inbound
        self._out = outbound
        self._closed = False
        self.bytes_received = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError
        if self._out.broken is not None:
            raise trio.BrokenResourceError("connection reset") from self._out.broken
        if self._out.finished:
            raise trio.ClosedResourceError("send after send_eof")
        self._out.put(bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        await trio.lowlevel.checkpoint()
        self._out.finish()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError
        data = await self._in.get(max_bytes)
        self.bytes_received += len(data)
        return data

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        """A FIN to the peer (if it was not reset); reads and writes here fail from now on."""
        self._closed = True
        self._out.finish()
        self._in.reader_closed = True
        self._in.lot.unpark_all()

    def reset(self, error: OSError | None = None) -> None:
        """A RST (or, with ``error``, any other way a connection breaks: ``ENETDOWN``...):
        the connection is broken for both ends."""
        for direction in (self._in, self._out):
            direction.break_(error if error is not None else _reset_error())
        self._closed = True


def stream_pair() -> tuple[FakeStream, FakeStream]:
    """(client end, server end) of one new connection."""
    up, down = _Direction(), _Direction()
    return FakeStream(down, up), FakeStream(up, down)


class Prepended(trio.abc.Stream):
    """``stream`` whose first reads give back ``data`` first (bytes a censor inspected)."""

    def __init__(self, stream: trio.abc.Stream, data: bytes) -> None:
        self._stream = stream
        self._data = bytearray(data)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._data:
            size = len(self._data) if max_bytes is None else min(max_bytes, len(self._data))
            out = bytes(self._data[:size])
            del self._data[:size]
            await trio.lowlevel.checkpoint()
            return out
        return await self._stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._stream.aclose()
