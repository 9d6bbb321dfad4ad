"""Read a collector store with OONI's own data client (run under ``.venv-ref``).

Usage: ``python oonidata_store.py STORE_ROOT``. For every ``raw/**/*.jsonl.gz`` part it does
what ooni/data's ``oonidata.dataclient`` does with the public bucket's files: parse the file
name (``get_filename_meta_v2``), stream the gzip'd JSONL (``stream_jsonl``) and load each
measurement with its test's model (``load_measurement``). Prints one JSON object: per part its
key, the name's timestamp/country/test, and the measurement_uid and report_id of each line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from oonidata.dataclient import get_filename_meta_v2, load_measurement, stream_jsonl


def main() -> None:
    root = Path(sys.argv[1])
    parts = []
    for path in sorted((root / "raw").rglob("*.jsonl.gz")):
        meta = get_filename_meta_v2(path.name)
        rows = []
        with path.open("rb") as body:
            for msmt in stream_jsonl(body):
                loaded = load_measurement(msmt)
                rows.append([msmt.get("measurement_uid"), loaded.report_id, loaded.test_name])
        parts.append(
            {
                "key": path.relative_to(root).as_posix(),
                "timestamp": meta.timestamp.strftime("%Y%m%d%H"),
                "probe_cc": meta.probe_cc,
                "testname": meta.testname,
                "rows": rows,
            }
        )
    print(json.dumps(parts))


if __name__ == "__main__":
    main()
