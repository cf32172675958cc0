"""A partner's NATS consumer in a page of Python: read the feed, de-duplicate, acknowledge.

    python nats_consumer.py --server nats://kinetic.example:4222 --key knk_...

It needs ``kinetic-contracts[nats]``. The key (issued by the clinic's operator) is the
connection's token and names everything else: the stream, the partner's durable consumer,
which keeps the position (stop it and start it again: it goes on from there), and the inbox
prefix the server allows it. Every event is printed as one JSON line; an event id already
seen is acknowledged and not printed again (Kinetic publishes at least once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import nats
from nats.aio.client import Client

from kinetic_contracts import CloudEvent
from kinetic_contracts.partner_feed import FeedAccess


async def consume(server: str, key: str, batch: int = 100) -> None:
    """Read the feed for good. The server admits a connection for a session (15 minutes by
    default) and then closes it; connecting again with the current key goes on where the
    durable consumer is, so a session's end, like a network break, loses nothing."""
    feed = FeedAccess.from_key(key)
    seen: set[str] = set()
    while True:
        closed = asyncio.Event()

        async def on_close() -> None:
            closed.set()

        nc = await nats.connect(server, token=key, inbox_prefix=feed.inbox_prefix,
                                max_reconnect_attempts=-1, closed_cb=on_close)
        try:
            await read(nc, feed, seen, batch, closed)
        finally:
            await nc.close()
        print("session ended: connecting again", file=sys.stderr, flush=True)


async def read(nc: Client, feed: FeedAccess, seen: set[str], batch: int,
               closed: asyncio.Event) -> None:
    # Fetched messages come to an inbox under the prefix the server allows: named here, as
    # older nats-py releases (nats-io/nats.py#777) use `_INBOX.` there, which it refuses.
    subscription = await nc.jetstream().pull_subscribe_bind(
        feed.durable, feed.stream, inbox_prefix=f"{feed.inbox_prefix}.".encode())
    print(f"reading {feed.subjects}", file=sys.stderr, flush=True)
    try:
        while not closed.is_set():
            try:
                messages = await subscription.fetch(batch, timeout=5)
            except asyncio.TimeoutError:  # nothing new (nats-py raises either kind)
                continue
            for message in messages:
                event = CloudEvent.model_validate_json(message.data)
                if str(event.id) not in seen:
                    seen.add(str(event.id))
                    print(json.dumps({"id": str(event.id), "type": event.type,
                                      "data": event.data}), flush=True)
                await message.ack()
    except nats.errors.ConnectionClosedError:
        pass  # the session ended: an unacknowledged event comes again, and is seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="nats://127.0.0.1:4222")
    parser.add_argument("--key", required=True, help="the partner's NATS key (knk_…)")
    args = parser.parse_args()
    try:
        asyncio.run(consume(args.server, args.key))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
