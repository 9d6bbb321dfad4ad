"""OONI's comparison of the probe's final response with the control's (ooni-format.md 10.5).

Computed exactly as Web Connectivity v0.5 does, so the classic keys ``body_length_match``,
``body_proportion``, ``headers_match``, ``status_code_match`` and ``title_match`` mean what OONI
users expect. :func:`has_diff` is the HTTP-diff rule shared by v0.4 and v0.5.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from probe.analysis.observations import ControlObs, HTTPObs

COMMON_HEADERS = frozenset(
    {
        "date", "content-type", "server", "cache-control", "vary", "set-cookie", "location",
        "expires", "x-powered-by", "content-encoding", "last-modified", "accept-ranges", "pragma",
        "x-frame-options", "etag", "x-content-type-options", "age", "via", "p3p",
        "x-xss-protection", "content-language", "cf-ray", "strict-transport-security", "link",
        "x-varnish",
    }
)  # fmt: skip
_TITLE = re.compile(r"<title>([^<]{1,512})</title>", re.IGNORECASE)


#: read-only by convention, not frozen, with a written-out ``__init__``: compiled, it is
#: native code (see probe.analysis.observations)
@dataclass(slots=True, init=False)
class HTTPComparison:
    body_proportion: float
    body_length_match: bool | None
    headers_match: bool | None
    status_code_match: bool | None
    title_match: bool | None

    def __init__(
        self,
        body_proportion: float,
        body_length_match: bool | None,
        headers_match: bool | None,
        status_code_match: bool | None,
        title_match: bool | None,
    ) -> None:
        self.body_proportion = body_proportion
        self.body_length_match = body_length_match
        self.headers_match = headers_match
        self.status_code_match = status_code_match
        self.title_match = title_match

    @property
    def has_diff(self) -> bool:
        """OONI's HTTP-diff rule: no diff iff status matches and one of the other three does."""
        others = (self.body_length_match, self.headers_match, self.title_match)
        return not (self.status_code_match is True and any(v is True for v in others))


NOT_COMPARED = HTTPComparison(0.0, None, None, None, None)


def compare(probe: HTTPObs, control: ControlObs) -> HTTPComparison:
    if not control.http_seen:
        return NOT_COMPARED
    p, c = probe.body_length, control.http_body_length
    proportion = 0.0
    body_match = None
    if c > 0 and p > 0 and not probe.truncated:
        proportion = min(p, c) / max(p, c)
        body_match = proportion > 0.7
    ps, cs = probe.status, control.http_status
    status_match: bool | None = None
    headers_match: bool | None = None
    if ps > 0 and cs > 0:
        if ps == cs:
            status_match = True
        elif 200 <= cs < 300:
            status_match = False
        pnames = {k.lower() for k, _ in probe.headers} - COMMON_HEADERS
        cnames = {k.lower() for k, _ in control.http_headers} - COMMON_HEADERS
        headers_match = bool(pnames & cnames)
    title_match = None
    if cs > 0:
        m = _TITLE.search(probe.body)
        ptitle = m.group(1) if m else ""
        title_match = _words(ptitle) == _words(control.http_title)
    return HTTPComparison(proportion, body_match, headers_match, status_match, title_match)


def _words(title: str) -> frozenset[str]:
    return frozenset(w.lower() for w in title.split(" ") if len(w.encode("utf-8")) >= 5)
