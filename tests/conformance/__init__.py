"""Conformance of our measurements with OONI's reference parser (oonidata, in ``.venv-ref``)."""
