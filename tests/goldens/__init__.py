"""Golden files per tier, as probe-cli's minipipeline keeps them: measurement -> observations ->
verdict, for every lab scenario, every OONI QA case, every shared OONI sample, every
measurement of the real corpus and one targeted case per rule no other golden reaches.

Layout (``tests/goldens/<tier>/<case>/``):

- ``lab/<scenario id>/``: ``measurement.json`` captured by a real lab run (root; it holds only
  lab addresses), for the web, the app and the packet-level scenarios of
  tests/lab/scenarios.toml; ``lab/<web scenario id>+packet-level/``: the web measurement of a
  followed-up scenario as ``probe run --packet-level`` writes it (``x_packet`` embedded, the
  verdict's packet keys: the web verdict's packet hook);
- ``targeted/<name>/``: ``measurement.json`` from a scripted fake network
  (:mod:`tests.goldens.targeted`; each says why it exists);
- ``ooni-qa/<case>/`` and ``ooni-samples/<file>/``: only the derived tiers; their
  measurements stay in ``../shared/data`` (third-party data, read from there);
- ``corpus/<id>/``: the real corpus (tests/corpus, its manifest records each measurement's
  provenance and adjudicated verdict): the verdict with OONI's and Censored Planet's
  fingerprints merged (``../shared/data/fingerprints``: the corpus is adjudicated that way),
  and the observations of the measurements no other tier holds;
- everywhere: ``observations.json`` (what the analysis reads: the web's flat observations, the
  app engine's entries) and ``verdict.json`` (the test's verdict keys, through the registry).

``python -m tests.goldens`` recomputes the derived tiers from the measurements and prints a
unified diff of what changed (``--check``: print it and exit 1 instead of writing);
``capture-targeted`` re-runs the fake-network cases; ``capture-lab`` (root, lab up with its
control, under the lab lock) re-runs the lab scenarios (``capture-lab --missing``: only the
cases that have no golden yet, the others kept as they are). ``tests/unit/test_goldens.py``
recomputes every derived file and compares, and checks that every rule id (web, apps and
packet) fires on at least one golden.
"""
