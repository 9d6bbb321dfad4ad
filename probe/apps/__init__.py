"""App API host tests: measure the hosts an app really talks to, stage by stage.

An app is described by a TOML *app file* (``targets/apps/<name>.toml``, format in docs/apps.md):
its hosts or fixed addresses, ports, the last stage to run on each (dns, tcp, tls, http), the
trust store for TLS (the system's Mozilla roots, or those plus the app's own CA, as Signal needs)
and the OONI component each host feeds.

Modules, one job each:

- :mod:`probe.apps.spec`     load and validate app files (``AppSpec``, ``AppSpecError``)
- :mod:`probe.apps.runner`   measure one app: every (host, port) through the stages plus a
                             control query each; returns facts only (OONI base format)
- :mod:`probe.apps.facts`    pure: the recorded events of one (host, port) entry, summarised
- :mod:`probe.apps.ooni`     pure: OONI's test keys of whatsapp / telegram / signal /
                             facebook_messenger, decided as OONI's specs say
- :mod:`probe.apps.verdict`  pure: ``analyze_app`` = OONI keys + per-host ``x_hosts`` outcomes +
                             ``x_app_verdict``, the control deciding "down" versus "blocked"

Measurement and analysis are separate: the runner records events tagged ``x_app_host=<id>``
and the plan (``x_app_hosts``) and control answers (``x_app_control``) in the test keys, so
every verdict can be recomputed from a stored measurement.
"""
