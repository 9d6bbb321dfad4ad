"""Public-IP discovery: each method is one explicit attempt under one cancel scope.

* :func:`whoami`: ``GET <control>/x/whoami`` on our own control vantage, which answers
  ``{"ip": "<the client address it sees>"}``. OONI's test helper has no such endpoint: its 404
  (like any failure) just means "try the next method".
* :func:`stun`: one RFC 5389 Binding request over UDP to one STUN server; the answer's
  (XOR-)MAPPED-ADDRESS is the address the server saw. Datagrams from another source or for
  another transaction are ignored until the deadline.

Neither raises for network or protocol trouble: each returns an :class:`Attempt` with either the
address or a failure string (OONI's vocabulary where one fits, else ``stun_bad_response``).
:func:`discover` tries the methods in order and the first that answers wins; :func:`discover_both`
runs it once per address family.
"""

from __future__ import annotations

import ipaddress
import json
import math
import secrets
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpcore
import trio

from probe import __version__
from probe.failures import Failure, Operation, classify
from probe.geo import stun as stun_codec
from probe.net import TRIO, HTTPCoreBackend, Network
from probe.netaddr import parse_ip, split_endpoint

WHOAMI_PATH = "x/whoami"
MAX_WHOAMI_BYTES = 4096
USER_AGENT = f"censorprobe/{__version__}"
STUN_BAD_RESPONSE = "stun_bad_response"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One discovery attempt: ``method`` is ``whoami`` or ``stun``; ``server`` as configured."""

    method: str
    server: str
    ip: str | None = None
    failure: str | None = None


def whoami_url(control_url: str) -> str:
    """The whoami endpoint next to the TH root (the control URL's path is kept as a prefix)."""
    base = control_url if control_url.endswith("/") else control_url + "/"
    return urljoin(base, WHOAMI_PATH)


def _parse_ip(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def parse_whoami(body: bytes) -> str | None:
    """The address in a whoami answer, or None if the body is not ``{"ip": "<address>"}``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return _parse_ip(data.get("ip")) if isinstance(data, dict) else None


#: what binding to each family's wildcard address makes a connection use
_WILDCARD: dict[int, str] = {socket.AF_INET: "0.0.0.0", socket.AF_INET6: "::"}


def _other_family_literal(host: str, family: int) -> bool:
    """True when ``host`` is an address literal of another family than ``family``."""
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return family != 0 and family != (socket.AF_INET if addr.version == 4 else socket.AF_INET6)


async def whoami(
    control_url: str,
    *,
    ssl_context: ssl.SSLContext,
    timeout: float,
    family: int = 0,
    network: Network = TRIO,
) -> Attempt:
    """Ask our control vantage which address it sees (one GET, no retries, no proxy), over
    ``family`` only when given (AF_INET / AF_INET6; 0: whichever connects)."""
    url = whoami_url(control_url)
    local = _WILDCARD.get(family)
    with trio.move_on_after(timeout) as scope:
        try:
            async with httpcore.AsyncConnectionPool(
                ssl_context=ssl_context,
                retries=0,
                local_address=local,
                network_backend=HTTPCoreBackend(network),
            ) as pool:
                headers = [(b"User-Agent", USER_AGENT.encode()), (b"Accept", b"application/json")]
                async with pool.stream("GET", url, headers=headers) as response:
                    body = bytearray()
                    async for chunk in response.aiter_stream():
                        # past the cap the rest is drained and dropped (breaking out would leave
                        # httpcore's body generators unclosed); the deadline bounds the drain
                        if len(body) <= MAX_WHOAMI_BYTES:
                            body += chunk
                    status = response.status
        except Exception as exc:
            return Attempt(
                "whoami", control_url, failure=classify(exc, Operation.HTTP_ROUND_TRIP).failure
            )
    if scope.cancelled_caught:
        return Attempt("whoami", control_url, failure=str(Failure.GENERIC_TIMEOUT_ERROR))
    if status != 200:
        return Attempt("whoami", control_url, failure=str(Failure.HTTP_REQUEST_FAILED))
    ip = parse_whoami(bytes(body)) if len(body) <= MAX_WHOAMI_BYTES else None
    if ip is None:
        return Attempt("whoami", control_url, failure=str(Failure.JSON_PARSE_ERROR))
    return Attempt("whoami", control_url, ip=ip)


def split_host_port(server: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` -> (host, port); ValueError when malformed (the port
    is required and not 0)."""
    host, port = split_endpoint(server)
    if port == 0:
        raise ValueError(f"not HOST:PORT: {server!r}")
    return host, port


async def stun(server: str, *, timeout: float, family: int = 0, network: Network = TRIO) -> Attempt:
    """One Binding request to ``server`` (``host:port``), waiting up to ``timeout`` for it,
    over ``family`` only when given."""
    try:
        host, port = split_host_port(server)
    except ValueError:
        return Attempt("stun", server, failure=str(Failure.INVALID_ARGUMENT))
    txid = secrets.token_bytes(12)
    last_error: str | None = None
    with trio.move_on_after(timeout) as scope:
        try:
            if parse_ip(host) is not None:
                ip = host.strip("[]")
            else:
                ip = (await network.getaddrinfo(host, family=family))[0].ip
            sock = await network.open_udp(ip, port)  # the kernel drops others' datagrams
            try:
                await sock.send(stun_codec.binding_request(txid))
                while True:
                    data = await sock.receive()
                    try:
                        mapped = stun_codec.parse_binding_response(data, transaction_id=txid)
                    except stun_codec.StunError:
                        last_error = STUN_BAD_RESPONSE
                        continue
                    return Attempt("stun", server, ip=mapped.ip)
            finally:
                sock.close()
        except OSError as exc:
            op = Operation.RESOLVE if isinstance(exc, socket.gaierror) else Operation.READ_FROM
            return Attempt("stun", server, failure=classify(exc, op).failure)
    assert scope.cancelled_caught
    return Attempt("stun", server, failure=last_error or str(Failure.GENERIC_TIMEOUT_ERROR))


async def discover(
    *,
    control_url: str | None,
    ssl_context: ssl.SSLContext,
    stun_servers: Sequence[str],
    timeout: float,
    use_whoami: bool = True,
    family: int = 0,
    attempts: list[Attempt] | None = None,
    network: Network = TRIO,
) -> list[Attempt]:
    """Every attempt made, in order (appended to ``attempts`` when given, as they finish); the
    last one holds the address when one answered. With ``family``, only that family is used,
    and servers given as literals of the other family are skipped (no attempt)."""
    if attempts is None:
        attempts = []
    host = (urlsplit(control_url).hostname or "") if control_url else ""
    if control_url and use_whoami and not _other_family_literal(host, family):
        attempts.append(
            await whoami(
                control_url,
                ssl_context=ssl_context,
                timeout=timeout,
                family=family,
                network=network,
            )
        )
        if attempts[-1].ip is not None:
            return attempts
    for server in stun_servers:
        try:
            stun_host, _port = split_host_port(server)
        except ValueError:
            stun_host = ""
        if _other_family_literal(stun_host, family):
            continue
        attempts.append(await stun(server, timeout=timeout, family=family, network=network))
        if attempts[-1].ip is not None:
            break
    return attempts


async def discover_both(
    *,
    control_url: str | None,
    ssl_context: ssl.SSLContext,
    stun_servers: Sequence[str],
    timeout: float,
    use_whoami: bool = True,
    network: Network = TRIO,
) -> tuple[list[Attempt], list[Attempt]]:
    """:func:`discover` over IPv4 and over IPv6 at the same time: a dual-stack volunteer has a
    public address in each family (the IPv4 one often behind NAT), and both must be scrubbed.
    Returns (IPv4 attempts, IPv6 attempts).

    The IPv6 chain has ``timeout`` in all (one attempt's worth), not one per attempt: IPv6
    addresses are rarely translated (the interface address, already scrubbed, is usually the
    public one), and a network that blackholes IPv6 must not add every attempt's timeout to the
    start of the run. A chain cut short returns the attempts it finished."""
    chains: dict[int, list[Attempt]] = {socket.AF_INET: [], socket.AF_INET6: []}

    async def one(family: int) -> None:
        deadline = timeout if family == socket.AF_INET6 else math.inf
        with trio.move_on_after(deadline):
            await discover(
                control_url=control_url,
                ssl_context=ssl_context,
                stun_servers=stun_servers,
                timeout=timeout,
                use_whoami=use_whoami,
                family=family,
                attempts=chains[family],
                network=network,
            )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, socket.AF_INET)
        nursery.start_soon(one, socket.AF_INET6)
    return chains[socket.AF_INET], chains[socket.AF_INET6]
