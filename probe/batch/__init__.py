"""Researchers' batch pipeline: OONI-format JSONL in, a Parquet dataset and reports out.

The flow follows censoredplanet-analysis's thin-shell design (STYLE.md 1.3):

``reader``    streams JSONL / JSONL.gz / JSON files into bounded chunks of raw lines
``step``      the pure per-chunk function: parse, re-derive the verdict, flatten, partition
``verdict``   the verdict of one measurement (``probe.analysis.analyze``; app tests: ``apps``)
``flatten``   one measurement row and its observation rows (measurement x stage x endpoint)
``dataset``   incremental Parquet writer, hive-partitioned by ``date=`` and ``cc=``
``pipeline``  runs ``step`` on a local process pool or a Dask cluster, in input order
``queries``   named DuckDB queries over the dataset
``report``    one self-contained HTML file (inline SVG charts) with the tables behind them
``synth``     synthetic measurement generator for the benchmark (templates from real samples)
"""
