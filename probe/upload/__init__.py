"""Upload, durably: every measurement the volunteer agreed to publish reaches a collector once.

The path of one measurement (docs/collector.md):

1. the probe writes its JSONL line to the local results file first (the scrubbed bytes);
2. the same bytes go into the **outbox** (:mod:`probe.upload.outbox`), a SQLite queue fsync'd
   at each commit, that survives ``kill -9`` at any instant;
3. the **sender** (:mod:`probe.upload.sender`) opens a report on the collector (OONI's protocol,
   :mod:`probe.upload.client`), submits the line's bytes as the ``content`` of
   ``{"format": "json", "content": ...}`` and removes it from the outbox once the collector
   acknowledged it with a ``measurement_uid``. Collector unreachable or blocked: the line waits,
   the sender backs off (exponential, with jitter, bounded), the next run or ``probe upload``
   sends it. A crash between sending and recording the answer sends it again: our collector
   recognises the measurement (content hash) and stores it once;
4. through a proxy when the collector is blocked: ``http(s)://`` (CONNECT) or ``socks5h://``
   (Tor's SOCKS port), httpx's own proxy support.

Modules: ``policy`` (timeouts, backoff), ``outbox``, ``client``, ``sender``.
"""
