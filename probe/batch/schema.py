"""Arrow schemas of the two tables of the dataset (``measurements`` and ``observations``).

Both live under ``DIR/<table>/date=YYYY-MM-DD/cc=XX/part-N.parquet`` (hive partitioning). The
columns are documented in docs/research.md. ``SCHEMA_VERSION`` is written into each file's
metadata next to the rules version, so a dataset says how it was made.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1"

MEASUREMENTS = "measurements"
OBSERVATIONS = "observations"

MEASUREMENT_SCHEMA = pa.schema(
    [
        ("msmt_id", pa.string()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("measurement_uid", pa.string()),
        ("report_id", pa.string()),
        ("test_name", pa.string()),
        ("test_version", pa.string()),
        ("software_name", pa.string()),
        ("software_version", pa.string()),
        ("input", pa.string()),
        ("target", pa.string()),
        ("hostname", pa.string()),
        ("probe_cc", pa.string()),
        ("probe_asn", pa.string()),
        ("probe_network_name", pa.string()),
        ("resolver_asn", pa.string()),
        ("measurement_start_time", pa.timestamp("s")),
        ("day", pa.date32()),
        ("blocking", pa.string()),
        ("accessible", pa.bool_()),
        ("anomaly", pa.bool_()),
        ("outcome", pa.string()),
        ("outcome_stage", pa.string()),
        ("rule_id", pa.string()),
        ("rules_version", pa.string()),
        ("fingerprint_id", pa.string()),
        ("verdict_source", pa.string()),
        ("verdict_error", pa.string()),
        ("recorded_blocking", pa.string()),
        ("recorded_accessible", pa.bool_()),
        ("issues", pa.list_(pa.string())),
        ("n_observations", pa.int32()),
    ]
)

OBSERVATION_SCHEMA = pa.schema(
    [
        ("obs_id", pa.string()),
        ("msmt_id", pa.string()),
        ("obs_index", pa.int32()),
        ("test_name", pa.string()),
        ("target", pa.string()),
        ("probe_cc", pa.string()),
        ("probe_asn", pa.string()),
        ("measurement_start_time", pa.timestamp("s")),
        ("stage", pa.string()),
        ("transaction_id", pa.int64()),
        ("tags", pa.string()),
        ("hostname", pa.string()),
        ("query_type", pa.string()),
        ("engine", pa.string()),
        ("resolver", pa.string()),
        ("answer_type", pa.string()),
        ("ip", pa.string()),
        ("answer", pa.string()),
        ("answer_asn", pa.int64()),
        ("port", pa.int32()),
        ("failure", pa.string()),
        ("t0", pa.float64()),
        ("t", pa.float64()),
        ("tls_version", pa.string()),
        ("cipher_suite", pa.string()),
        ("http_url", pa.string()),
        ("http_method", pa.string()),
        ("http_status", pa.int32()),
        ("http_body_length", pa.int64()),
        ("http_body_truncated", pa.bool_()),
    ]
)

SCHEMAS = {MEASUREMENTS: MEASUREMENT_SCHEMA, OBSERVATIONS: OBSERVATION_SCHEMA}

#: columns written dictionary-encoded: the few-valued ones, where a dictionary shrinks the file.
#: Not the others (ids, addresses, URLs): there a dictionary page is one more compressed page
#: per column for nothing, which more than doubled the cost of the many small partition files
#: (zstd sets up a context per page) and made them larger.
DICTIONARY_COLUMNS = {
    MEASUREMENTS: [
        "source_file",
        "test_name",
        "test_version",
        "software_name",
        "software_version",
        "probe_cc",
        "probe_asn",
        "probe_network_name",
        "resolver_asn",
        "blocking",
        "outcome",
        "outcome_stage",
        "rule_id",
        "rules_version",
        "fingerprint_id",
        "verdict_source",
        "verdict_error",
        "recorded_blocking",
    ],
    OBSERVATIONS: [
        "test_name",
        "probe_cc",
        "probe_asn",
        "stage",
        "tags",
        "query_type",
        "engine",
        "resolver",
        "answer_type",
        "failure",
        "tls_version",
        "cipher_suite",
        "http_method",
    ],
}
