"""The library floor of one web target: the probe's network steps and nothing else.

    python -m tests.bench.floor --list FILE --resolver IP:PORT --ca-file PEM --control URL
        [--concurrency 20]

Per target, with the libraries the design card fixes (trio, dnspython, the ssl module,
httpcore) and orjson: getaddrinfo in a worker thread, UDP A and AAAA queries (dnspython
builds and parses them), one TCP connect, one TLS handshake, one GET over httpcore on that
connection, one POST to the control vantage over a kept-alive httpcore pool, one JSON line
written. No event recording, no pydantic models, no verdicts, no scrubbing, no listening for
injected duplicates, no progress output. ``bench_core`` runs it beside ``probe run`` on the
same list: the difference is what the probe's own work costs; this is what no amount of work
on the probe's code can remove while it keeps these libraries.
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dns.message
import dns.rdatatype
import httpcore
import orjson
import trio

HEADERS = [
    (b"Host", b""),
    (b"User-Agent", b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0.0.0 Safari/537.36"),
    (b"Accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"Accept-Language", b"en-US;q=0.8,en;q=0.5"),
]


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's view of one trio stream (what the probe's http stage also does)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return bytes(await self._stream.receive_some(max_bytes))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.send_all(buffer)

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self._stream)


async def _udp(host: str, rdtype: dns.rdatatype.RdataType, resolver: tuple[str, int]) -> list[str]:
    query = dns.message.make_query(host, rdtype)
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.connect(resolver)
        await sock.send(query.to_wire())
        reply = dns.message.from_wire(await sock.recv(4096))
    return [str(rd.address) for rrset in reply.answer for rd in rrset if rd.rdtype == rdtype]


async def _target(
    url: str, *, resolver: tuple[str, int], ctx: ssl.SSLContext, pool: Any, control: str
) -> dict[str, Any]:
    host = urlsplit(url).hostname or ""
    await trio.socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    found: dict[str, list[str]] = {}

    async def lookup(rdtype: dns.rdatatype.RdataType) -> None:
        found[rdtype.name] = await _udp(host, rdtype, resolver)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lookup, dns.rdatatype.A)
        nursery.start_soon(lookup, dns.rdatatype.AAAA)
    ip = found["A"][0]
    tcp = await trio.open_tcp_stream(ip, 443)
    tls = trio.SSLStream(tcp, ctx, server_hostname=host)
    await tls.do_handshake()
    headers = [(n, v or host.encode()) for n, v in HEADERS]
    conn = httpcore.AsyncHTTP11Connection(origin=httpcore.URL(url).origin, stream=_Stream(tls))
    response = await conn.handle_async_request(httpcore.Request("GET", url, headers=headers))
    body = bytearray()
    async for chunk in response.aiter_stream():
        body += chunk
    await response.aclose()
    await conn.aclose()
    payload = orjson.dumps(
        {
            "http_request": url,
            "http_request_headers": {"User-Agent": [HEADERS[1][1].decode()]},
            "tcp_connect": [f"{ip}:443"],
        }
    )
    answer = await pool.request(
        "POST",
        control,
        headers=[(b"Content-Type", b"application/json")],
        content=payload,
    )
    control_answer = orjson.loads(answer.content)
    return {"url": url, "status": response.status, "body": len(body), "control": control_answer}


async def _main(args: argparse.Namespace) -> int:
    urls = [u.strip() for u in Path(args.list).read_text().splitlines() if u.strip()]
    ip, _, port = args.resolver.rpartition(":")
    ctx = ssl.create_default_context(cafile=args.ca_file)
    ctx.set_alpn_protocols(["http/1.1"])
    limiter = trio.CapacityLimiter(args.concurrency)
    with Path(args.output).open("wb") as out:
        async with httpcore.AsyncConnectionPool(
            ssl_context=ctx, max_connections=args.concurrency
        ) as pool:

            async def one(url: str) -> None:
                async with limiter:
                    result = await _target(
                        url, resolver=(ip, int(port)), ctx=ctx, pool=pool, control=args.control
                    )
                    out.write(orjson.dumps(result, option=orjson.OPT_APPEND_NEWLINE))

            async with trio.open_nursery() as nursery:
                for url in urls:
                    nursery.start_soon(one, url)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--list", "--resolver", "--ca-file", "--control", "--output"):
        parser.add_argument(name, required=True)
    parser.add_argument("--concurrency", type=int, default=20)
    return trio.run(_main, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
