"""Health probe for the local Kafka broker: succeeds once the broker answers a metadata request.

Usage: python deploy/local/kafka_probe.py [--bootstrap HOST:PORT] [--wait SECONDS] [--pid PID]

Exit 0 when a Metadata request lists at least one broker; 1 otherwise. With --wait it retries until
the deadline, and gives up early when --pid (the broker process) has exited.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _probe_once(bootstrap: str, attempt_timeout: float) -> str | None:
    from aiokafka import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(attempt_timeout * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), attempt_timeout)
        brokers = client.cluster.brokers()
        if not brokers:
            return None
        return ",".join(f"{b.nodeId}@{b.host}:{b.port}" for b in brokers)
    except Exception:
        return None
    finally:
        await client.close()


async def _main(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.wait
    while True:
        found = await _probe_once(args.bootstrap, args.timeout)
        if found:
            if args.verbose:
                print(f"kafka metadata ok: brokers {found}")
            return 0
        if time.monotonic() >= deadline:
            return 1
        if not _alive(args.pid):
            print(f"kafka process {args.pid} exited", file=sys.stderr)
            return 1
        await asyncio.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default=os.environ.get("CLOSELOOP_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--wait", type=float, default=0.0, help="keep trying for this many seconds")
    parser.add_argument("--timeout", type=float, default=3.0, help="per-attempt timeout in seconds")
    parser.add_argument("--pid", type=int, default=None, help="stop waiting when this process exits")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    # aiokafka logs every refused connection at ERROR while the broker starts: keep the probe quiet.
    logging.basicConfig(level=logging.CRITICAL)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
