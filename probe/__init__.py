"""censorprobe: a stage-by-stage network censorship measurement probe.

The probe measures each target step by step (DNS, TCP connect to one address, TLS handshake on
that connection, HTTP over that connection), records every step as an OONI archival event and
writes one OONI-compatible measurement per target (JSONL). Verdicts are computed afterwards by
pure functions in :mod:`probe.analysis` over the recorded facts, so they can be recomputed.

Package map (see docs/ARCHITECTURE.md):

- ``config``      frozen run configuration and the single Timeouts object
- ``failures``    OONI failure strings and the one exception classifier
- ``trace``       per-measurement event recorder (t0/t, transaction ids)
- ``stages``      one module per network step (dns, tcp, tls, http)
- ``experiment``  orchestrates the stages for one web target
- ``archival``    pydantic v2 models of the OONI measurement format
- ``privacy``     scrubbing the volunteer's IP from everything written
- ``control``     Web Connectivity test-helper protocol: client and server
- ``analysis``    pure verdict functions, rules and fingerprints
- ``batch``       researchers' batch analysis (Parquet, DuckDB, Dask)
- ``apps``        app API host measurements (LinkedIn, WhatsApp, Telegram, Signal, Messenger)
- ``runner``/``cli``  the command line
- ``native``      optional mypyc compilation of the analysis hot path (same source)
"""

import os as _os

if _os.environ.get("CENSORPROBE_PURE"):  # run the sources even where compiled modules exist
    from probe.native import prefer_source as _prefer_source

    _prefer_source()

__version__ = "0.1.0"
SOFTWARE_NAME = "censorprobe"
