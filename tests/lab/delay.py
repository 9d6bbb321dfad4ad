"""LAB_DELAY_MS without netem (runs in cp-isp): hold every queued packet N ms, then accept it.

iptables (mangle table) queues the packets entering cp-isp from the client link and those leaving
towards it to this NFQUEUE, so each direction gets N ms and the round trip grows by 2N ms.
Packets keep their order (one FIFO, constant delay). The rest of the censor's rules still apply
after the verdict, because mangle runs before filter and nat.

    python -m tests.lab.delay --queue 2 --ms 50
"""

from __future__ import annotations

import argparse
import collections
import select
import sys
import time

from tests.lab.nfqueue import NF_ACCEPT, Queue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--ms", type=float, required=True)
    args = parser.parse_args(argv)
    hold = args.ms / 1000.0
    pending: collections.deque[tuple[float, int]] = collections.deque()
    with Queue(args.queue, copy_packet=False, maxlen=65536) as queue:
        queue.sock.setblocking(False)
        print(f"delay ready on queue {args.queue}: {args.ms} ms", file=sys.stderr, flush=True)
        while True:
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                queue.verdict(pending.popleft()[1], NF_ACCEPT)
            timeout = max(0.0, pending[0][0] - now) if pending else None
            readable, _, _ = select.select([queue], [], [], timeout)
            if readable:
                arrived = time.monotonic() + hold
                for packet in queue.receive():
                    pending.append((arrived, packet.packet_id))


if __name__ == "__main__":
    raise SystemExit(main())
