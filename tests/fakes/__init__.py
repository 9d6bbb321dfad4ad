"""An in-memory internet for deterministic tests of the orchestrators (trio's ``Scenario``).

:class:`~tests.fakes.network.FakeNetwork` implements :class:`probe.net.Network` with nothing
but memory: every address is scripted (connect delay, refusal, dropped SYN, ICMP unreachable,
a server handler), every host name has scripted getaddrinfo answers, every resolver a DNS
handler. Servers are real protocol code over in-memory streams (:mod:`tests.fakes.streams`):
trio's TLS with trustme certificates, h11 for HTTP, dnspython messages for DNS
(:mod:`tests.fakes.servers`). Nothing touches a socket, so trio's ``autojump_clock`` runs a
whole measurement in virtual time and tests assert exact virtual durations (a timeout took the
configured seconds, not "about").

The network logs what the probe did (``connects``, ``lookups``, ``datagrams``), so a test can
also prove that something was NOT attempted (a private address after a redirect).
"""
