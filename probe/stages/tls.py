"""TLS stage: one handshake on a given (already connected) stream, with explicit SNI.

:func:`make_ssl_context` trusts certifi's Mozilla roots (the probe's own store, like probe-cli,
not the OS store) plus an optional extra CA file (the lab's), requires TLS 1.2+, offers ALPN,
and with ``verify=False`` skips validation (recorded as ``no_tls_verify``; used by diagnostics).

:func:`handshake` has the :class:`~probe.net.Network` wrap the stream (``trio.SSLStream`` with
``server_hostname=server_name``) and returns a :class:`~probe.stages.result.StageResult` whose
value is the TLS stream.
Python sends no SNI when that is an IP literal (and then checks the IP SAN), which is what OONI
expects. The recorded ``TLSHandshake`` carries version, cipher (IANA name where known, OpenSSL
name otherwise), ALPN and the peer chain, DER base64, leaf first.

Chain evidence when verification FAILS: we looked at the options and chose to read the chain from
the failed ``SSLObject`` itself. OpenSSL stores the received chain in the session before it
verifies it, and CPython (3.10+) exposes it as the private
``SSLObject._sslobj.get_unverified_chain()``; trio keeps the ``SSLObject`` as
``SSLStream._ssl_object``. So one handshake gives both the failure and the certificates, with no
second connection (which could be treated differently by a censor). If that private API is ever
missing we fall back to ``getpeercert(binary_form=True)``, which only works after a successful
handshake (the chain is then ``null`` on verification failures). Python 3.13 makes the method
public as ``SSLSocket/SSLObject.get_unverified_chain()``; we try the public one first.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import certifi
import trio

from probe.archival import BinaryData, TLSHandshake
from probe.config import Timeouts
from probe.failures import OpFailure, classify, failed
from probe.net import TRIO, Network, TLSStream
from probe.stages.result import StageResult
from probe.trace import Trace
from probe.vocabulary import Failure, Operation

_DER = 2  # _ssl.ENCODING_DER

#: OpenSSL -> IANA names for the TLS 1.2 suites a modern server picks (TLS 1.3 names match)
_IANA_CIPHERS = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-SHA": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "ECDHE-ECDSA-AES256-SHA": "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "ECDHE-RSA-AES128-SHA": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "ECDHE-RSA-AES256-SHA": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "AES128-GCM-SHA256": "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "AES256-GCM-SHA384": "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "AES128-SHA": "TLS_RSA_WITH_AES_128_CBC_SHA",
    "AES256-SHA": "TLS_RSA_WITH_AES_256_CBC_SHA",
}


def make_ssl_context(
    *,
    ca_file: Path | None = None,
    verify: bool = True,
    alpn: Sequence[str] = ("http/1.1",),
) -> ssl.SSLContext:
    """A client context: Mozilla roots (certifi) + ``ca_file``, TLS 1.2+, the given ALPN list."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=certifi.where())
    if ca_file is not None:
        ctx.load_verify_locations(cafile=str(ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


TLSResult = StageResult[TLSStream | None]


async def handshake(
    trace: Trace,
    stream: trio.abc.Stream,
    *,
    address: str,
    server_name: str | None,
    ssl_context: ssl.SSLContext,
    timeouts: Timeouts,
    transaction_id: int,
    tags: Sequence[str] = (),
    net: Network = TRIO,
) -> TLSResult:
    """Handshake on ``stream``; records one TLSHandshake. The TLS stream is the result's value
    (None on failure, when ``stream`` has been closed)."""
    t0 = trace.elapsed()
    error: OpFailure | None = None
    tls = net.wrap_tls(stream, ssl_context, server_hostname=server_name or None)
    try:
        with trio.move_on_after(timeouts.tls) as scope:
            try:
                await tls.do_handshake()
            except (trio.BrokenResourceError, OSError, ssl.SSLError) as exc:
                error = classify(exc, Operation.TLS_HANDSHAKE)
        if scope.cancelled_caught:
            error = failed(Failure.GENERIC_TIMEOUT_ERROR, Operation.TLS_HANDSHAKE)
    except trio.Cancelled:
        interrupted = Failure.INTERRUPTED.value
        _record(
            trace, tls, address, server_name, ssl_context, t0, interrupted, transaction_id, tags
        )
        await trio.aclose_forcefully(stream)
        raise
    failure = None if error is None else error.failure
    t = _record(trace, tls, address, server_name, ssl_context, t0, failure, transaction_id, tags)
    if error is not None:
        await trio.aclose_forcefully(stream)
        return StageResult(None, error, Operation.TLS_HANDSHAKE, transaction_id, t0, t)
    return StageResult(tls, None, Operation.TLS_HANDSHAKE, transaction_id, t0, t)


def _record(
    trace: Trace,
    tls: TLSStream,
    address: str,
    server_name: str | None,
    ctx: ssl.SSLContext,
    t0: float,
    failure: str | None,
    transaction_id: int,
    tags: Sequence[str],
) -> float:
    obj: Any = getattr(tls, "_ssl_object", None)
    version = cipher = alpn = ""
    if failure is None and obj is not None:
        version = obj.version() or ""
        name = (obj.cipher() or ("",))[0]
        cipher = _IANA_CIPHERS.get(name, name)
        alpn = obj.selected_alpn_protocol() or ""
    chain = peer_chain(obj)
    t = trace.elapsed()
    trace.tls_handshakes.append(
        TLSHandshake(
            network="tcp",
            address=address,
            server_name=server_name,
            cipher_suite=cipher,
            tls_version=version,
            negotiated_protocol=alpn,
            no_tls_verify=ctx.verify_mode == ssl.CERT_NONE,
            peer_certificates=[BinaryData.of(der) for der in chain] if chain else None,
            failure=failure,
            t0=t0,
            t=t,
            tags=list(tags),
            transaction_id=transaction_id,
        )
    )
    return t


def peer_chain(ssl_object: Any) -> list[bytes]:
    """DER certificates the peer sent, leaf first; ``[]`` when nothing is available."""
    if ssl_object is None:
        return []
    for owner in (ssl_object, getattr(ssl_object, "_sslobj", None)):
        method = getattr(owner, "get_unverified_chain", None)
        if method is None:
            continue
        try:
            certs = method() or []
            return [c if isinstance(c, bytes) else c.public_bytes(_DER) for c in certs]
        except (ValueError, AttributeError, ssl.SSLError):
            continue
    try:
        leaf = ssl_object.getpeercert(binary_form=True)
    except (ValueError, ssl.SSLError):
        return []
    return [leaf] if leaf else []
