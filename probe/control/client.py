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

import httpx
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
    pool: httpx.AsyncClient | None = None,
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


def open_pool(ssl_context: ssl.SSLContext, *, size: int) -> httpx.AsyncClient:
    """An HTTP client for the TH keeping up to ``size`` connections alive (use ``async with``)."""
    return httpx.AsyncClient(
        verify=ssl_context,
        trust_env=False,
        timeout=None,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
    )


async def _exchange(
    url: str, payload: bytes, *, client: httpx.AsyncClient
) -> tuple[dict[str, Any] | None, str | None]:
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    body = bytearray()
    try:
        async with client.stream("POST", url, content=payload, headers=headers) as response:
            if response.status_code != 200:
                return None, str(Failure.HTTP_REQUEST_FAILED)
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    return None, str(Failure.JSON_PARSE_ERROR)
    except (httpx.HTTPError, OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
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
