"""Fingerprint loaders (against the shared copies), matching semantics, and the update command."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import pickle
import re
import string
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probe.analysis.fingerprints import (
    BLOCKING_SCOPES,
    Fingerprint,
    Fingerprints,
    builtin,
    load_directory,
    make_fingerprint,
    parse_censoredplanet_jsonl,
    parse_ooni_csv,
    reconstruct_page,
)
from probe.analysis.needles import needle_of, unfoldable
from probe.cli import main

FP_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "fingerprints"


@functools.cache
def _shared() -> Fingerprints:
    return load_directory(FP_DIR)


def test_ooni_csv_rows_including_multiline_fields() -> None:
    dns = parse_ooni_csv((FP_DIR / "fingerprints_dns.csv").read_text("utf-8"))
    http = parse_ooni_csv((FP_DIR / "fingerprints_http.csv").read_text("utf-8"))
    assert len(dns) == 226  # README counts
    assert len(http) == 1729  # 1,739 lines: some quoted fields span lines
    assert all(f.location == "dns" and f.pattern_type == "full" for f in dns)
    assert sum(f.scope == "fp" for f in http) == 475
    ru = {f.fid: f for f in http if "RU" in f.countries}
    assert len(ru) >= 190
    assert ru["ooni.ru_6"].location == "header.location"


def test_censoredplanet_jsonl_counts_and_scopes() -> None:
    bp = parse_censoredplanet_jsonl(
        (FP_DIR / "censoredplanet/blockpage_signatures.json").read_text("utf-8"),
        false_positive=False,
    )
    fp = parse_censoredplanet_jsonl(
        (FP_DIR / "censoredplanet/false_positive_signatures.json").read_text("utf-8"),
        false_positive=True,
    )
    assert (len(bp), len(fp)) == (622, 460)
    assert {f.scope for f in fp} == {"fp"}
    assert next(f for f in bp if f.fid == "cp:a_prod_barracuda_2").scope == "prod"
    assert all(f.location == "page" for f in bp)


def test_page_signatures_see_headers_and_fp_vetoes() -> None:
    fps = _shared()
    m = fps.match_http(status=200, headers=[("Server", "Barracuda/NGFirewall")], body="")
    assert m.blockpage is not None and m.false_positive is None
    body = "<p>FortiGuard Web Filtering</p><p><em>Thank you for using nginx.</em></p>"
    m = fps.match_http(status=200, headers=[], body=body)
    assert m.blockpage is None and m.false_positive is not None


def test_dns_match_respects_countries() -> None:
    fps = _shared()
    assert fps.match_dns("95.167.13.50", probe_cc="RU") is not None
    assert fps.match_dns("95.167.13.50", probe_cc="IT") is None
    assert fps.match_dns("93.184.216.34", probe_cc="RU") is None


def test_unusable_rows_are_skipped() -> None:
    assert make_fingerprint("x", "nat", "body", "regexp", "(unclosed") is None
    assert make_fingerprint("x", "nat", "cookie", "contains", "a") is None
    assert make_fingerprint("x", "nat", "body", "glob", "a") is None


def test_builtin_set_is_ours_and_versioned() -> None:
    fps = builtin()
    assert len(fps) >= 8
    assert all(f.fid.startswith("cpr.") for f in fps.items)
    assert "censorprobe-" in fps.version


_FP_SAMPLE = [f for f in _shared().items if f.is_false_positive and f.location == "page"][:60]


@settings(max_examples=200, deadline=None)
@given(
    fp=st.sampled_from(_FP_SAMPLE),
    data=st.data(),
    block=st.sampled_from(
        ["FortiGuard Web Filtering", "Доступ к ресурсу ограничен", "http://eais.rkn.gov.ru/"]
    ),
)
def test_false_positive_page_is_never_a_blockpage(
    fp: object, data: st.DataObject, block: str
) -> None:
    assert hasattr(fp, "pattern")
    example = data.draw(st.from_regex(fp.pattern, fullmatch=False).filter(lambda s: len(s) < 400))
    body = f"<html>{block}\n{example}</html>"
    fps = _shared().merged(builtin())
    m = fps.match_http(status=200, headers=[], body=body)
    assert m.blockpage is None


# ---------------------------------------------------------------------------------- needles

_REGEXES = [f.regex for f in _shared().merged(builtin()).items if f.regex is not None]


@settings(max_examples=300, deadline=None)
@given(regex=st.sampled_from(_REGEXES), data=st.data(), noise=st.sampled_from(["", "é", "Ж"]))
def test_a_needle_never_rejects_a_text_its_regex_matches(
    regex: re.Pattern[str], data: st.DataObject, noise: str
) -> None:
    example = data.draw(st.from_regex(regex, fullmatch=False).filter(lambda s: len(s) < 400))
    for text in (example, example.upper(), example.lower(), noise + example.swapcase()):
        needle = needle_of(regex)
        if regex.search(text) is not None and needle is not None:
            assert needle.may_occur(text), (regex.pattern, text)


@settings(max_examples=300, deadline=None)
@given(
    regex=st.sampled_from(_REGEXES),
    data=st.data(),
    before=st.text(max_size=300),
    after=st.text(max_size=50),
    case=st.sampled_from([str, str.upper, str.lower, str.swapcase]),
)
def test_a_search_from_the_needles_start_finds_the_first_match(
    regex: re.Pattern[str],
    data: st.DataObject,
    before: str,
    after: str,
    case: Callable[[str], str],
) -> None:
    example = data.draw(st.from_regex(regex, fullmatch=False).filter(lambda s: len(s) < 400))
    needle = needle_of(regex)
    for text in (case(example), before + case(example) + after, before + after):
        first = regex.search(text)
        start = needle.start(text) if needle is not None else 0
        if first is None:
            continue
        assert start >= 0, (regex.pattern, text)
        again = regex.search(text, start)
        assert again is not None and again.span() == first.span(), (regex.pattern, text, start)


def test_the_search_window_starts_before_the_needle_by_the_longest_match() -> None:
    rkn = re.compile(r"(?i)(eais|blocklist)\.rkn\.gov\.ru", re.DOTALL)
    needle = needle_of(rkn)
    assert needle is not None and needle.width == len("blocklist.rkn.gov.ru")
    body = "x" * 5000 + "see http://EAIS.rkn.gov.ru/ for details"
    start = needle.start(body)
    assert 4980 <= start <= 5010
    assert rkn.search(body, start) is not None
    assert needle.start("x" * 5000) == -1
    unbounded = needle_of(re.compile(r"blocked.*by", re.DOTALL))
    assert unbounded is not None and unbounded.width == -1
    assert unbounded.start("a" * 100 + "blocked by") == 0


def test_needles_reject_what_cannot_match_and_keep_unicode_case_folding() -> None:
    plain = needle_of(re.compile(r"<title>\s*(Blocked|Denied) page</title>", re.DOTALL))
    assert plain is not None and not plain.fold
    assert not plain.may_occur("<title>Welcome</title>")
    cyrillic = needle_of(re.compile(r"(?i)доступ\s+ограничен", re.DOTALL))
    assert cyrillic is not None and cyrillic.never_ascii
    assert not cyrillic.may_occur("<html>plain ASCII page</html>")
    assert cyrillic.may_occur("ДОСТУП ОГРАНИЧЕН")
    # re folds the Kelvin sign and the long s onto k and s: a non-ASCII text is never rejected
    # by an ASCII lower-case comparison
    kelvin = re.compile(r"(?i)blocked by kaspersky", re.DOTALL)
    text = "BLOCKED BY \u212aAſPERſKY"
    assert kelvin.search(text) is not None
    needle = needle_of(kelvin)
    assert needle is not None and needle.may_occur(text)
    assert needle_of(re.compile(r"a|[bc]", re.DOTALL)) is None  # no usable literal: searched


def _naive(fps: Fingerprints, *, headers: list[tuple[str, str]], body: str) -> tuple[str, str]:
    """The ordered scan without needles (the semantics the fast path must keep)."""
    page = reconstruct_page(200, "", headers, body)
    hdrs: dict[str, list[str]] = {}
    for name, value in headers:
        hdrs.setdefault(name.lower(), []).append(value)

    def hit(fp: Fingerprint) -> bool:
        if fp.location == "body":
            return fp.matches(body)
        if fp.location == "page":
            return fp.matches(page)
        return any(fp.matches(v) for v in hdrs.get(fp.location[len("header.") :], ()))

    http = [f for f in fps.items if f.location != "dns"]
    for fp in http:
        if fp.is_false_positive and hit(fp):
            return "", fp.fid
    for fp in http:
        if fp.scope in BLOCKING_SCOPES and hit(fp):
            return fp.fid, ""
    return "", ""


@settings(max_examples=150, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from([f.pattern for f in _shared().items if f.pattern_type != "regexp"][:400])
        | st.sampled_from(["Доступ к ресурсу ограничен", "eais.rkn.gov.ru", "<title>", " "])
        | st.text(max_size=20),
        max_size=6,
    ),
    location=st.sampled_from(["body", "server", "location"]),
)
def test_match_http_equals_the_plain_ordered_scan(parts: list[str], location: str) -> None:
    fps = _shared().merged(builtin())
    text = "".join(parts)
    headers = [] if location == "body" else [(location.title(), text)]
    body = text if location == "body" else ""
    m = fps.match_http(status=200, headers=headers, body=body)
    got = (m.blockpage.fid if m.blockpage else "", m.false_positive.fid if m.false_positive else "")
    assert got == _naive(fps, headers=headers, body=body)


_PAGE_REGEXES = [f.pattern for f in _shared().items if f.regex is not None][:600]


@functools.cache
def _both() -> tuple[Fingerprints, Fingerprints]:
    """The shared set with our own, indexed (Aho-Corasick) and as the plain scan."""
    items = _shared().merged(builtin()).items
    return Fingerprints(items, version="t"), Fingerprints(items, version="t", index=False)


def test_a_large_set_is_indexed_when_ahocorasick_is_installed() -> None:
    indexed, plain = _both()
    assert importlib.util.find_spec("ahocorasick_rs") is not None  # the research extra
    assert indexed._index is not None and plain._index is None
    assert Fingerprints(builtin().items, version="small")._index is None  # not worth it
    # the pool and Dask pickle the set: the choice survives
    assert pickle.loads(pickle.dumps(indexed))._index is not None
    assert pickle.loads(pickle.dumps(plain))._index is None


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    regex=st.sampled_from(_PAGE_REGEXES),
    parts=st.lists(
        st.sampled_from([f.pattern for f in _shared().items if f.pattern_type != "regexp"])
        | st.sampled_from(["Доступ к ресурсу ограничен", "eais.rkn.gov.ru", "\r\n\r\n", " "])
        | st.text(max_size=30),
        max_size=5,
    ),
    header=st.sampled_from(["Server", "Location", "Content-Type", "X-Squid-Error"]),
    where=st.sampled_from(["body", "header", "both"]),
)
def test_the_index_finds_what_the_plain_scan_finds(
    data: st.DataObject, regex: str, parts: list[str], header: str, where: str
) -> None:
    example = data.draw(st.from_regex(regex, fullmatch=False).filter(lambda s: len(s) < 300))
    text = "".join(parts[:2]) + example + "".join(parts[2:])
    body = text if where != "header" else "".join(parts)
    headers = [(header, text if where != "body" else "x"), ("Date", "today")]
    indexed, plain = _both()
    for status in (200, 403):
        a = indexed.match_http(status=status, headers=headers, body=body)
        b = plain.match_http(status=status, headers=headers, body=body)
        assert (a.blockpage, a.false_positive) == (b.blockpage, b.false_positive)


def test_a_page_the_index_cannot_read_gets_the_plain_scan() -> None:
    indexed, plain = _both()
    body = "\ud800 eais.rkn.gov.ru"  # a lone surrogate: not UTF-8, the automaton refuses it
    a = indexed.match_http(status=200, headers=[], body=body)
    b = plain.match_http(status=200, headers=[], body=body)
    assert a.blockpage is not None and a.blockpage == b.blockpage


# -------------------------------------------------------------------- probe fingerprints update


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def loopback_mirror() -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(FP_DIR.resolve()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_update_downloads_validates_and_installs(
    loopback_mirror: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fingerprints", "update", "--dest", str(tmp_path), "--ooni-base-url", loopback_mirror,
            "--cp-base-url", loopback_mirror + "censoredplanet/"]  # fmt: skip
    assert main(argv) == 0
    assert "1729" in capsys.readouterr().out
    assert len(load_directory(tmp_path)) == len(_shared())


def test_update_failure_keeps_old_files(loopback_mirror: str, tmp_path: Path) -> None:
    (tmp_path / "fingerprints_dns.csv").write_text("old", encoding="utf-8")
    argv = ["fingerprints", "update", "--dest", str(tmp_path), "--ooni-base-url",
            loopback_mirror + "missing/", "--cp-base-url", loopback_mirror]  # fmt: skip
    assert main(argv) == 1
    assert (tmp_path / "fingerprints_dns.csv").read_text(encoding="utf-8") == "old"


def test_unfoldable_is_exactly_what_re_folds_differently_from_lower() -> None:
    every = "".join(chr(cp) for cp in range(128, 0x110000) if not 0xD800 <= cp < 0xE000)
    every = string.printable + every
    chars = {c.lower() for c in map(chr, range(0x20, 0x180))}
    chars |= {chr(cp).lower() for cp in range(0x370, 0x530)}
    chars = {c for c in chars if len(c) == 1 and c.isalpha()}
    for char in sorted(chars):
        found = {x for x in re.findall(re.escape(char), every, re.IGNORECASE) if x.lower() != char}
        odd = unfoldable(char)
        assert odd is not None and found == set(odd), (char, found, odd)
    assert unfoldable("中") is None  # outside the ranges checked here: always searched


def test_folded_needles_search_the_unfoldable_texts() -> None:
    needle = needle_of(re.compile(r"(?i)this site is blocked", re.DOTALL))
    assert needle is not None and needle.unfoldable == "\u0130\u0131\u017f"
    assert needle.may_occur("THİS SİTE İS BLOCKED")  # re matches İ with i
    assert needle.may_occur("thıs ſıte ıs blocked")
    assert needle.may_occur("Добро пожаловать: THIS SITE IS BLOCKED")
    assert not needle.may_occur("Добро пожаловать, welcome")
    regex = re.compile(r"(?i)доступ\s+ограничен", re.DOTALL)
    cyrillic = needle_of(regex)
    assert cyrillic is not None and cyrillic.unfoldable
    text = "ДОСТУП \u1c82ГРАНИЧЕН"  # U+1C82 (narrow o) is о for re, not for lower()
    assert regex.search(text) is not None and cyrillic.may_occur(text)
    assert not cyrillic.may_occur("Добро пожаловать")
    upper = re.compile(r"(?i)Доступ\s+ОГРАНИЧЕН", re.DOTALL)  # a needle written in capitals
    needle = needle_of(upper)
    assert needle is not None and upper.search("доступ ограничен") is not None
    assert needle.may_occur("доступ ограничен") and needle.may_occur("ДОСТУП ОГРАНИЧЕН")
    dotted = needle_of(re.compile(r"(?i)İstanbul engeli", re.DOTALL))  # lower() grows U+0130
    assert dotted is not None and dotted.unfoldable is None
    assert dotted.may_occur("istanbul engeli") and dotted.may_occur("İSTANBUL ENGELİ")
