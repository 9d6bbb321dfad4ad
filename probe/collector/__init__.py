"""The collector: an OONI-compatible measurement collector (``probe collector serve``).

Probes submit measurements with OONI's collector protocol (ooni/spec ``bk-003-collector.md``):
``POST /report`` opens a report, ``POST /report/{report_id}`` submits one measurement as
``{"format": "json", "content": {...}}``, ``POST /report/{report_id}/close`` closes it. The
collector validates each submission, assigns OONI's ``measurement_uid`` and answers only once
the measurement is durable; then it files measurements in the layout of OONI's public raw-data
bucket (``raw/YYYYMMDD/HH/CC/testname/<...>.jsonl.gz``) on a local folder or an S3 bucket, so
OONI's tools and ours read the store the same way. See docs/collector.md.

Modules, each with one job:

- ``protocol``  pure: request validation, report ids, measurement uids, the dedup digest
- ``layout``    pure: the store's key layout (write and parse part names)
- ``journal``   the write-ahead journal and dedup index (SQLite, WAL, fsync'd per commit)
- ``committer`` group commit under trio: many submissions, one fsync, then the acks
- ``storage``   where parts go: a local folder or S3 (pyarrow's S3 filesystem)
- ``roller``    journal -> ``.jsonl.gz`` parts, by size and age, crash-safe and idempotent
- ``app``       the ASGI application (routes, limits, errors, logs)
- ``service``   wires them together and serves with hypercorn's trio worker
"""
