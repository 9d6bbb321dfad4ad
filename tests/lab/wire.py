"""Wire-level checks run INSIDE cp-client (``ip netns exec cp-client python -m tests.lab.wire``).

Each subcommand does one plain-socket operation and prints one JSON object; tests/lab/test_lab.py
asserts on it. Results name errnos (ECONNREFUSED, ECONNRESET, EHOSTUNREACH) or "timeout".

    dns-replies RESOLVER NAME --window S   every reply to one A query on one UDP socket
    connect IP PORT --timeout S            a TCP connect
    tls IP SNI --ca FILE --timeout S        TCP connect + TLS handshake with that SNI
    http IP HOST --timeout S [--path P]     HTTP/1.1 GET with that Host (status, headers, body)
    rate URL --seconds S --ca FILE          bytes/s of a GET body read for S seconds (urllib)
    traceroute IP --max N                  UDP datagrams with TTL 1..N: who answers each (the
                                           ICMP error's offender, read from IP_RECVERR)
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import ssl
import time
from typing import Any

import dns.message
import dns.rdatatype

IP_RECVERR = getattr(socket, "IP_RECVERR", 11)  # linux/in.h; Python does not export it


def _err(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        return f"ssl:{exc.reason}"
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__


def dns_replies(resolver: str, name: str, window: float) -> dict[str, Any]:
    query = dns.message.make_query(name, dns.rdatatype.A)
    replies: list[dict[str, Any]] = []
    errors: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((resolver, 53))
        start = time.monotonic()
        sock.send(query.to_wire())
        deadline = start + window
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                break
            except OSError as exc:  # e.g. ICMP port unreachable from a host without a resolver
                errors.append(_err(exc))
                continue
            msg = dns.message.from_wire(data)
            answers = sorted(r.to_text() for rr in msg.answer for r in rr)
            replies.append(
                {
                    "t": round(time.monotonic() - start, 4),
                    "rcode": msg.rcode(),
                    "answers": answers,
                    "id_ok": msg.id == query.id,
                }
            )
    return {"replies": replies, "errors": errors}


def connect(ip: str, port: int, timeout: float) -> tuple[socket.socket | None, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((ip, port))
    except OSError as exc:
        sock.close()
        return None, _err(exc)
    return sock, "ok"


def tls(ip: str, sni: str, ca: str, timeout: float) -> dict[str, Any]:
    sock, result = connect(ip, 443, timeout)
    if sock is None:
        return {"connect": result}
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the handshake is what is measured, not the name check
    try:
        with ctx.wrap_socket(sock, server_hostname=sni) as tsock:
            return {"connect": "ok", "handshake": "ok", "version": tsock.version()}
    except OSError as exc:
        return {"connect": "ok", "handshake": _err(exc)}
    finally:
        sock.close()


def http(ip: str, host: str, timeout: float, path: str) -> dict[str, Any]:
    sock, result = connect(ip, 80, timeout)
    if sock is None:
        return {"connect": result}
    with sock:
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except OSError as exc:
            return {"connect": "ok", "response": _err(exc), "received": len(data)}
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return {
        "connect": "ok",
        "response": "ok",
        "status": int(lines[0].split()[1]),
        "headers": headers,
        "body": body.decode("utf-8", "replace"),
    }


def rate(url: str, seconds: float, ca: str) -> dict[str, Any]:
    import urllib.request

    ctx = ssl.create_default_context(cafile=ca)
    received, first = 0, None
    start = time.monotonic()
    with urllib.request.urlopen(url, timeout=seconds + 5, context=ctx) as resp:  # noqa: S310
        status = resp.status
        while time.monotonic() - start < seconds:
            chunk = resp.read1(4096)
            if not chunk:
                break
            first = first if first is not None else time.monotonic()
            received += len(chunk)
    elapsed = time.monotonic() - (first if first is not None else start)
    return {
        "status": status,
        "received": received,
        "seconds": round(elapsed, 3),
        "rate": received / elapsed if elapsed > 0 else None,
    }


def traceroute(ip: str, max_ttl: int, timeout: float) -> dict[str, Any]:
    """One UDP datagram per TTL to an unused port; the ICMP error each one earns (time exceeded
    from a router, port unreachable from the host itself) and its offender address."""
    hops = []
    for ttl in range(1, max_ttl + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            sock.connect((ip, 33434))
            sock.send(b"censorprobe lab traceroute")
            deadline = time.monotonic() + timeout
            hop: dict[str, Any] = {"ttl": ttl, "from": None, "icmp_type": None}
            while time.monotonic() < deadline:
                try:
                    _, ancdata, _, _ = sock.recvmsg(
                        512, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT
                    )
                except BlockingIOError:
                    time.sleep(0.01)
                    continue
                for level, kind, data in ancdata:
                    if level == socket.IPPROTO_IP and kind == IP_RECVERR:
                        # struct sock_extended_err (16 bytes), then the offender's sockaddr_in
                        hop["icmp_type"] = data[5]
                        hop["from"] = socket.inet_ntoa(data[20:24])
                break
            hops.append(hop)
            if hop["icmp_type"] == 3:
                break
    return {"hops": hops}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("dns-replies")
    p.add_argument("resolver")
    p.add_argument("name")
    p.add_argument("--window", type=float, default=1.0)
    p = sub.add_parser("connect")
    p.add_argument("ip")
    p.add_argument("port", type=int)
    p.add_argument("--timeout", type=float, default=2.0)
    p = sub.add_parser("tls")
    p.add_argument("ip")
    p.add_argument("sni")
    p.add_argument("--ca", required=True)
    p.add_argument("--timeout", type=float, default=2.0)
    p = sub.add_parser("http")
    p.add_argument("ip")
    p.add_argument("host")
    p.add_argument("--path", default="/")
    p.add_argument("--timeout", type=float, default=2.0)
    p = sub.add_parser("rate")
    p.add_argument("url")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--ca", required=True)
    p = sub.add_parser("traceroute")
    p.add_argument("ip")
    p.add_argument("--max", type=int, default=8)
    p.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.cmd == "dns-replies":
        out = dns_replies(args.resolver, args.name, args.window)
    elif args.cmd == "connect":
        sock, result = connect(args.ip, args.port, args.timeout)
        if sock is not None:
            sock.close()
        out = {"connect": result}
    elif args.cmd == "tls":
        out = tls(args.ip, args.sni, args.ca, args.timeout)
    elif args.cmd == "http":
        out = http(args.ip, args.host, args.timeout, args.path)
    elif args.cmd == "traceroute":
        out = traceroute(args.ip, args.max, args.timeout)
    else:
        out = rate(args.url, args.seconds, args.ca)
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
