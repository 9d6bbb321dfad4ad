"""Probe-in-the-lab fixtures: one lab per session, commands run inside cp-client.

``lab`` gives the lab facts (resolver, ca_file, control_url, public_ranges, targets, ...),
``run_in_client(*argv)`` runs a command in the volunteer's namespace, ``run_in_inet`` in the
control vantage's. The code is shared with tests/lab (tests/lab/fixtures.py).
"""

from tests.lab.fixtures import lab, run_in_client, run_in_inet  # noqa: F401
