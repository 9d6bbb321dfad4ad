"""A minimal nfnetlink_queue client over a raw netlink socket (no libnetfilter_queue binding).

Used by the lab's on-path injectors (DNS in cp-isp, TCP in cp-border; :func:`inject_on_path`)
and by the LAB_DELAY_MS packet holder in cp-isp. Protocol: linux/netfilter/nfnetlink_queue.h
(bind a queue, set the copy mode, receive NFQNL_MSG_PACKET, answer NFQNL_MSG_VERDICT with the
packet id).
"""

from __future__ import annotations

import errno
import socket
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_META, NFQNL_COPY_PACKET = 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_PAYLOAD = 1, 2, 10
NF_DROP, NF_ACCEPT = 0, 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


@dataclass(frozen=True)
class Packet:
    packet_id: int
    payload: bytes


def _attr(kind: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind) + value
    return raw + b"\0" * (-len(raw) % 4)


class Queue:
    """One bound NFQUEUE number. Use as a context manager."""

    def __init__(self, number: int, *, copy_packet: bool, maxlen: int = 4096) -> None:
        self.number = number
        self._seq = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))
        self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_INET)))
        mode = NFQNL_COPY_PACKET if copy_packet else NFQNL_COPY_META
        self._config(_attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0xFFFF, mode)))
        self._config(_attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen)))

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._send(NFQNL_MSG_CONFIG, _attr(NFQA_CFG_CMD, struct.pack("!BxH", 2, 0)), ack=False)
        except OSError:
            pass
        self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    def _send(self, msg: int, attrs: bytes, *, ack: bool) -> None:
        self._seq += 1
        flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
        body = struct.pack("!BBH", socket.AF_UNSPEC, 0, self.number) + attrs
        header = struct.pack(
            "=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg, flags, self._seq, 0
        )
        self.sock.send(header + body)

    def _config(self, attrs: bytes) -> None:
        self._send(NFQNL_MSG_CONFIG, attrs, ack=True)
        data = self.sock.recv(65536)
        _len, kind = struct.unpack_from("=IH", data)
        if kind == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, 16)
            if code != 0:
                raise OSError(-code, f"nfqueue config failed: {errno.errorcode.get(-code, code)}")

    def verdict(self, packet_id: int, verdict: int = NF_ACCEPT) -> None:
        self._send(
            NFQNL_MSG_VERDICT,
            _attr(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id)),
            ack=False,
        )

    def receive(self) -> Iterator[Packet]:
        """Packets from one recv() (blocking unless the socket is non-blocking)."""
        try:
            data = self.sock.recv(1 << 17)
        except OSError as exc:
            if exc.errno in (errno.ENOBUFS, errno.EAGAIN):
                return
            raise
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            if length < 16:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                packet = self._parse(data[offset + 20 : offset + length])
                if packet is not None:
                    yield packet
            offset += (length + 3) & ~3

    @staticmethod
    def _parse(attrs: bytes) -> Packet | None:
        packet_id: int | None = None
        payload = b""
        pos = 0
        while pos + 4 <= len(attrs):
            alen, akind = struct.unpack_from("=HH", attrs, pos)
            if alen < 4:
                break
            value = attrs[pos + 4 : pos + alen]
            akind &= 0x3FFF
            if akind == NFQA_PACKET_HDR:
                (packet_id,) = struct.unpack_from("!I", value)
            elif akind == NFQA_PAYLOAD:
                payload = value
            pos += (alen + 3) & ~3
        return None if packet_id is None else Packet(packet_id, payload)


def inject_on_path(number: int, forge: Callable[[bytes], bytes | None], *, ready: str) -> None:
    """Serve queue ``number`` as an on-path injector, forever: for each queued packet, send what
    ``forge`` makes of it (a whole IPv4 packet, from a raw socket) first, then let the original
    continue. Logs ``ready`` once and one line per forged packet on stderr."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    with Queue(number, copy_packet=True) as queue:
        print(ready, file=sys.stderr, flush=True)
        while True:
            for packet in queue.receive():
                forged = forge(packet.payload)
                if forged is not None:
                    to = socket.inet_ntoa(forged[16:20])
                    raw.sendto(forged, (to, 0))
                    print(f"forged {len(forged)} bytes to {to}", file=sys.stderr, flush=True)
                queue.verdict(packet.packet_id, NF_ACCEPT)
