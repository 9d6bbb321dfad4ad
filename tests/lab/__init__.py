"""The censorship lab: real censor mechanisms between network namespaces (issue 3).

``python -m tests.lab up|down|status|env|run-in-client -- CMD|control-start``; the sites and the
verdicts a correct probe reaches are in ``scenarios.toml``. See ``lab.py`` for the topology.
"""
