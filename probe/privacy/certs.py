"""Whether a DER certificate names one of the probe's addresses (then it is never published).

A certificate can name an address in many places: the subject or issuer (a CN of
``192-0-2-2.dyn.example``), a SAN DNS name, an IP SAN (the 4 or 16 raw bytes), a URI or e-mail
SAN, an extension nobody parses. Scrubbing inside a signed blob would publish a certificate
that never existed, so the question is only yes or no. :func:`names_address` answers from the
raw DER (packed bytes anywhere; textual forms in the bytes read as Latin-1 and as UTF-16, which
covers the string types X.509 uses) and from the certificate as ``cryptography`` parses it (every
attribute and SAN value, decoded). A blob that does not parse is judged by its bytes alone. In
the raw bytes a form counts even glued to its neighbours: when in doubt, the certificate is
withheld.
"""

from __future__ import annotations

import ipaddress

from probe.privacy.scrubber import Scrubber


def names_address(der: bytes, scrubber: Scrubber) -> str | None:
    """Why this certificate must not be published (it names the address), or None."""
    if scrubber.packed_in(der):
        return "certificate holds the probe's address as raw bytes (an IP SAN)"
    # loose: in DER a string's neighbours are tags and lengths (0x30 is "0"), so a form may be
    # glued to characters that would otherwise make it part of a longer number
    if scrubber.finds_data(der, loose=True) or scrubber.hidden_in_data(der, wide=True, loose=True):
        return "certificate names the probe's address"
    for value in _parsed_values(der):
        if isinstance(value, bytes):
            if scrubber.packed_in(value) or scrubber.finds_data(value):
                return "certificate names the probe's address"
        elif scrubber.finds_text(value) or scrubber.hidden_in_text(value):
            return "certificate names the probe's address"
    return None


def _parsed_values(der: bytes) -> list[str | bytes]:
    """Every decoded name and SAN value of the certificate ([] if it does not parse)."""
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
        values: list[str | bytes] = []
        for name in (cert.subject, cert.issuer):
            values.extend(_text(attr.value) for attr in name)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return values
        for entry in san:
            value = entry.value
            if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
                values.append(value.packed)
                values.append(str(value))
            elif isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
                values.append(str(value.network_address))
            elif isinstance(value, x509.Name):
                values.extend(_text(attr.value) for attr in value)
            else:
                values.append(_text(value))
        return values
    except Exception:  # any malformed certificate: judged by its raw bytes only
        return []


def _text(value: object) -> str | bytes:
    if isinstance(value, bytes | str):
        return value
    return str(value)
