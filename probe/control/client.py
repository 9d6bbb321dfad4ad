"""Client side of the control vantage: POST one :class:`ControlRequest` to a test helper.

``query_control`` never raises for network or protocol trouble; it returns
``(response_json, None)`` or ``(None, control_failure)``, the failure being an OONI string:
the classified network error (``connection_refused``, ``ssl_unknown_authority``, ...),
``generic_timeout_error`` when ``timeouts.control`` expires (enforced by a cancel scope around
the whole exchange), ``http_request_failed`` for a non-200 status (503 = TH overloaded) and
``json_parse_error`` for a body that is not JSON or does not match the TH response schema.

A run shares one pooled client (:func:`open_pool`): keep-alive connections to the TH save a
TCP+TLS handshake per target. The control channel is infrastructure, not a measured step, so
when a pooled exchange fails before an answer (typically a keep-alive connection the server had
closed), it is tried once more on a fresh connection within the same deadline.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpcore
import pydantic
import trio

from probe import __version__
from probe.archival import ControlRequest, ControlResponse
from probe.config import Timeouts
from probe.failures import Failure, Operation, classify

#: a TH answer larger than this is not a TH answer
MAX_RESPONSE_BYTES = 4 << 20
USER_AGENT = f"censorprobe/{__version__}"


async def query_control(
    url: str,
    request: ControlRequest,
    *,
    ssl_context: ssl.SSLContext,
    timeouts: Timeouts,
    pool: httpcore.AsyncConnectionPool | None = None,
) -> tuple[dict[str, Any] | None, str | None]:
    """POST ``request`` to the TH at ``url``: (response JSON, None) or (None, control_failure)."""
    payload = request.model_dump_json().encode()
    result: tuple[dict[str, Any] | None, str | None] = (
        None,
        str(Failure.GENERIC_TIMEOUT_ERROR),
    )
    with trio.move_on_after(timeouts.control):
        if pool is not None:
            result = await _exchange(url, payload, client=pool)
            if result[0] is not None or result[1] in _ANSWERED:
                return result
        async with open_pool(ssl_context, size=1) as client:
            result = await _exchange(url, payload, client=client)
    return result


#: failures that came with an answer from the TH: trying again would not change them
_ANSWERED = frozenset({str(Failure.HTTP_REQUEST_FAILED), str(Failure.JSON_PARSE_ERROR)})


def open_pool(ssl_context: ssl.SSLContext, *, size: int) -> httpcore.AsyncConnectionPool:
    """Keep-alive connections to the TH, at most ``size`` (use ``async with``).

    httpcore directly rather than httpx: the exchange is one POST, and httpx's layers (cookies,
    auth, redirects, URL models) were the largest CPU cost per target after the TLS handshake.
    """
    return httpcore.AsyncConnectionPool(
        ssl_context=ssl_context, max_connections=size, max_keepalive_connections=size
    )


async def _exchange(
    url: str, payload: bytes, *, client: httpcore.AsyncConnectionPool
) -> tuple[dict[str, Any] | None, str | None]:
    headers = [
        (b"Content-Type", b"application/json"),
        (b"User-Agent", USER_AGENT.encode()),
        (b"Content-Length", str(len(payload)).encode()),
    ]
    body = bytearray()
    try:
        async with client.stream("POST", url, headers=headers, content=payload) as response:
            if response.status != 200:
                return None, str(Failure.HTTP_REQUEST_FAILED)
            async for chunk in response.aiter_stream():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    return None, str(Failure.JSON_PARSE_ERROR)
    except (httpcore.UnsupportedProtocol, ValueError):
        return None, str(Failure.HTTP_REQUEST_FAILED)
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
        return None, classify(exc, Operation.HTTP_ROUND_TRIP)
    except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
        return None, classify(exc, Operation.HTTP_ROUND_TRIP)
    return _decode(bytes(body))


def _decode(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data = json.loads(body)
        ControlResponse.model_validate(data, strict=False)
    except (ValueError, pydantic.ValidationError):
        return None, str(Failure.JSON_PARSE_ERROR)
    if not isinstance(data, dict):
        return None, str(Failure.JSON_PARSE_ERROR)
    return data, None
