"""Pure verdicts from recorded facts (no trio, socket, ssl, httpcore or probe.stages imports).

``analyze(measurement, *, fingerprints=None, public_ranges=())`` turns one measurement (ours, or
OONI web_connectivity 0.4/0.5) into OONI's classic verdict keys plus our richer ``x_outcome``.
Modules, in pipeline order:

- ``values``        defensive readers for untrusted JSON
- ``observations``  measurement -> flat rows (DNS lookup / endpoint / HTTP round trip + control)
- ``dnscheck``      DNS consistency (OONI's, minus two false-positive sources)
- ``httpdiff``      OONI's body/header/status/title comparisons
- ``transfer``      goodput comparison for throttling
- ``fingerprints``  blockpage fingerprints (OONI CSV, Censored Planet JSONL, ours); passed in
- ``context``       derived facts: failing step, fingerprint hits
- ``rules``         the rule table (data, first match wins, RULES_VERSION)
- ``verdict``       ``analyze``
- ``packet``        packet-level facts (``censor_trace``, ``x_packet``) -> the censor's hop and
                    the injection evidence (docs/packet.md)
"""

from probe.analysis.fingerprints import Fingerprints
from probe.analysis.rules import RULES, RULES_VERSION
from probe.analysis.verdict import VERDICT_KEYS, analyze

__all__ = ["RULES", "RULES_VERSION", "VERDICT_KEYS", "Fingerprints", "analyze"]
