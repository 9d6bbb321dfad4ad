"""Analysis straight from a collector store (a local folder or ``s3://bucket/prefix``).

A store is what ``probe collector serve`` writes, in the layout of OONI's public raw-data bucket
(``raw/YYYYMMDD/HH/CC/testname/*.jsonl.gz``, :mod:`probe.collector.layout`), so OONI's own
bucket can be read the same way. Modules:

- ``listing``  list a store's parts, filtered by receive date, country and test (from the keys
  alone: nothing is downloaded to filter)
- ``state``    what a dataset already holds from a store (``DIR/_store_state.json``)
- ``analyze``  incremental analysis: only the parts that arrived since the last run are read,
  streamed into the batch pipeline (:func:`probe.batch.pipeline.run` with ``files=``); the
  dataset says what it covers
"""
