"""Measurement primitives: one async function per network step, each recording its own event.

The experiment composes them in the order of probe-cli's step-by-step design (dd-003):

* :mod:`probe.stages.dns`: ``lookup_getaddrinfo`` (system resolver) and ``lookup_udp``
  (wire-level A/AAAA, keeps listening for injected or late replies);
* :mod:`probe.stages.tcp`: ``connect`` to ONE ``ip:port`` (no retries, no racing);
* :mod:`probe.stages.tls`: ``handshake`` on *that* connection with explicit SNI, keeping the
  peer chain even when verification fails; ``make_ssl_context``;
* :mod:`probe.stages.http`: ``get`` over *that* stream with httpcore's HTTP/1.1 connection
  (the single-use dialer), body read up to a cap, transfer-rate samples.

Shared contract (docs/ARCHITECTURE.md, "probe.stages"):

* ``trace`` first, keyword-only arguments after; ``tags`` are copied onto the event; ``net``
  is the :class:`~probe.net.Network` to use (production: :data:`probe.net.TRIO`).
* Each returns a :class:`~probe.stages.result.StageResult`: the value (stream, addresses,
  response), the failure bound to its operation, the transaction id, ``t0``/``t``. Callers
  decide from it, never from the trace lists (the trace is the record, not the answer).
* Every attempt appends exactly one event to its list in :class:`probe.trace.Trace` (plus
  network events), with ``t0``/``t`` relative to the trace zero and the given
  ``transaction_id``; ``failure`` is ``None`` or a string of :mod:`probe.failures`.
* Deadlines come from :class:`probe.config.Timeouts` and are enforced with cancel scopes; a scope
  of ours that fired is ``generic_timeout_error``. Network failures are recorded and returned,
  never raised. A cancellation from an *outer* scope is recorded as ``interrupted`` and then
  re-raised: ``trio.Cancelled`` is never swallowed.
* On failure a stage closes the stream it was given; ``http.get`` always consumes its stream.
"""
