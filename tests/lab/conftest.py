"""Lab fixtures (shared with tests/integration; see tests/lab/fixtures.py)."""

from tests.lab.fixtures import lab, run_in_client, run_in_inet  # noqa: F401
