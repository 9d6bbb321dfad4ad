"""Geolocation of the probe: which network and country it measures from.

Like OONI probe-cli's ``geolocate``: discover the public address (:mod:`probe.geo.publicip`:
our control vantage's ``/x/whoami``, then STUN with our codec in :mod:`probe.geo.stun`), look it
up in MaxMind-format databases (:mod:`probe.geo.db`, kept fresh by :mod:`probe.geo.update` from
DB-IP's free lite databases), and merge the answer into the run's config by precedence
(:mod:`probe.geo.locate`). The public address is never written: it is only added to the
addresses scrubbed from every measurement. See docs/geolocation.md.
"""
