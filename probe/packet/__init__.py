"""The packet-level test ``censor_trace``: where on the path a censor sits, and proof of injection.

A privileged, optional follow-up for targets whose web measurement was blocked at the TLS, HTTP
or DNS stage (docs/packet.md is the test's specification). It needs raw sockets (root or
CAP_NET_RAW) and scapy (the ``privileged`` extra); without them :func:`~probe.packet.privilege.
unavailable` says why in one line and nothing else changes.

Method (CenTrace's and OONI's ``tlsmiddlebox``, our own code): for each TTL from 1 up, open an
ordinary kernel TCP connection (a real handshake with the real server, at the default TTL), then
send the triggering packet (the ClientHello with the real SNI, or the HTTP request with the real
Host) with that IP TTL, and record every reply: ICMP time exceeded and its router, RST, FIN, an
answer, silence. The same trace with an innocuous SNI/Host gives the path length (the TTL at
which the server answers) and what a router normally says at each hop; the first TTL at which the
real trigger draws a different, blocking reaction is the censor's hop. DNS: a query with
increasing TTL towards the resolver, the hop from which a forged answer comes back.

Each reply's IP TTL, IP ID, TCP window and options are recorded next to the server's own SYN-ACK
(or the resolver's genuine answer), so that the pure analysis (:mod:`probe.analysis.packet`) can
call a packet injected. Router addresses up to the volunteer's network edge are never published.

Modules, in the order a measurement runs through them:

- ``spec``       the test's limits and innocuous names (data; name and version: the registry)
- ``target``     what to probe, read from a web measurement's facts (pure)
- ``sockets``    the test's own network seam: the only module here that opens a socket
- ``privilege``  can this process open raw sockets? (one line when not)
- ``bpf``        classic BPF filters for the raw capture sockets
- ``wire``       captured bytes -> demultiplexing key (struct) and recorded facts (scapy)
- ``capture``    raw-socket copies of the replies, by flow (trio)
- ``triggers``   the ClientHello, HTTP request and DNS query bytes
- ``probes``     one TTL-limited probe: TCP (kernel socket + IP_TTL) or DNS (UDP + IP_TTL)
- ``tracer``     the control and target traces: stopping rules, packet budget, rate limit
- ``hops``       which router addresses may be published (bogons, the volunteer's network)
- ``measure``    ``measure_packet(target, ctx=...)``: one OONI-style measurement (the connect
                 policy asked first)
- ``follow``     the follow-up of one web measurement (``probe packet``), and the run's
                 follow-up hook (``probe run --packet-level``), with the report of its own
"""
