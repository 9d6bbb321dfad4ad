"""OONI's collector protocol, client side (ooni/spec bk-003; probe-cli's ``probeservices``).

* ``open_report(template)``: ``POST /report`` with the report template (the measurement's
  ``probe_asn``, ``probe_cc``, ``software_*``, ``test_*``, ``data_format_version``, ``format``)
  plus our ``x_report_id`` (the id already in the measurement, which our collector keeps and
  others ignore); the answer's ``report_id`` is what the measurement must carry, and the
  template must say ``json`` is supported.
* ``submit(report_id, line)``: ``POST /report/{report_id}`` with the body
  ``{"format":"json","content":`` + *the line's bytes* + ``}``: the bytes of the results file go
  out untouched, never re-serialised. The answer's ``measurement_uid`` (OONI's) or
  ``measurement_id`` (the spec's older name) is returned, ``""`` when there is none (OONI's
  backend answers ``{}`` for measurements it drops).
* ``close_report(report_id)``: ``POST /report/{report_id}/close``.

Outcomes: 200 with a JSON object is success (a 200 that is not JSON is a blockpage or a portal,
not a collector: it is a failure, and the line waits). 429, 5xx, network failures and timeouts
are retryable (:class:`UploadError` ``retryable=True``, with the collector's ``Retry-After``);
any other 4xx means the collector refuses this request for good. Network failures carry OONI's
failure string (:func:`probe.failures.classify`): ``connection_refused``,
``generic_timeout_error``, ``ssl_unknown_authority`` ... which is also what a volunteer sees.

Proxies (``proxy=``): ``http://``/``https://`` proxies tunnel with CONNECT to an https
collector (and forward requests to an http one); ``socks5://`` and ``socks5h://`` go through
httpx's SOCKS5 support, which sends the collector's *name* to the proxy (Tor resolves it: no DNS
query leaves the volunteer's machine). Environment proxy variables are ignored: uploads take the
route the volunteer chose, nothing else. Each request runs under a trio cancel scope of
``policy.request_timeout``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from probe import __version__
from probe.failures import Operation, classify
from probe.upload.policy import UploadPolicy
from probe.vocabulary import Failure

USER_AGENT = f"censorprobe/{__version__}"


class UploadError(Exception):
    """A request to the collector failed; ``retryable`` says whether trying later may work."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


class _Body(httpx.AsyncByteStream):
    """A request body that is not an async generator: when the connection dies mid-send,
    nothing is left for the garbage collector to finalise (httpx's own byte stream is one)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Once(self._data)


class _Once:
    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __aiter__(self) -> _Once:
        return self

    async def __anext__(self) -> bytes:
        if self._data is None:
            raise StopAsyncIteration
        data, self._data = self._data, None
        return data


def ssl_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Mozilla's roots (certifi), plus ``ca_file`` (the lab's CA) when given."""
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def submission_body(line: bytes) -> bytes:
    """``{"format":"json","content":<line>}`` around the line's exact bytes (no newline)."""
    return b'{"format":"json","content":' + line.rstrip(b"\r\n") + b"}"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class CollectorClient:
    """A connection pool to one collector (optionally through a proxy)."""

    def __init__(
        self,
        base_url: str,
        *,
        policy: UploadPolicy,
        proxy: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._policy = policy
        self._http = httpx.AsyncClient(
            proxy=proxy,
            verify=ssl_context(ca_file),
            timeout=httpx.Timeout(None, connect=policy.connect_timeout),
            trust_env=False,
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            limits=httpx.Limits(max_connections=max(policy.parallel, 1) + 1),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> CollectorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _post(self, path: str, body: bytes) -> dict[str, Any]:
        request = self._http.build_request(
            "POST",
            self.base_url + path,
            headers={"content-type": "application/json", "content-length": str(len(body))},
        )
        request.stream = _Body(body)
        response = None
        with trio.move_on_after(self._policy.request_timeout):
            try:
                response = await self._http.send(request)
            except httpx.HTTPError as exc:
                failure = classify(exc, Operation.HTTP_ROUND_TRIP).failure
                raise UploadError(failure, retryable=True) from exc
        if response is None:
            raise UploadError(Failure.GENERIC_TIMEOUT_ERROR.value, retryable=True)
        status = response.status_code
        if status == 429 or status >= 500:
            raise UploadError(
                f"http_{status}", retryable=True, status=status, retry_after=_retry_after(response)
            )
        if status != 200:
            permanent = 400 <= status < 500
            detail = response.text[:200].replace("\n", " ") if permanent else ""
            raise UploadError(
                f"http_{status}" + (f": {detail}" if detail else ""),
                retryable=not permanent,
                status=status,
            )
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):  # a blockpage or a captive portal, not a collector
            raise UploadError("not_a_collector_answer", retryable=True, status=status)
        return answer

    async def open_report(self, template: dict[str, Any], *, own_report_id: str | None) -> str:
        body = dict(template)
        if own_report_id:
            body["x_report_id"] = own_report_id
        answer = await self._post("/report", orjson.dumps(body))
        report_id = answer.get("report_id")
        formats = answer.get("supported_formats") or ["json"]
        if not isinstance(report_id, str) or not report_id:
            raise UploadError("open_report: no report_id in the answer", retryable=True)
        if "json" not in formats:
            raise UploadError("open_report: the collector does not take JSON", retryable=False)
        return report_id

    async def submit(self, report_id: str, line: bytes) -> str:
        answer = await self._post(f"/report/{report_id}", submission_body(line))
        uid = answer.get("measurement_uid") or answer.get("measurement_id") or ""
        return uid if isinstance(uid, str) else ""

    async def close_report(self, report_id: str) -> None:
        await self._post(f"/report/{report_id}/close", b"")
