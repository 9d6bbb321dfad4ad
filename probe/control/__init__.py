"""The control vantage: OONI's Web Connectivity test helper (TH), server and client.

``protocol`` validates requests and holds the TH's legacy failure vocabulary (pure);
``safety`` decides which addresses the TH may contact (no SSRF, also after DNS and redirects);
``limits`` bounds abuse (per-client token bucket, in-flight gate); ``measure`` runs the TH's
measurement with the probe's own stages; ``server`` is the ASGI app served by hypercorn's trio
worker (``probe helper serve``); ``client`` is what the probe uses to query a TH.
"""
