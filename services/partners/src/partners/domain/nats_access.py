"""What a partner may do on NATS: read its own feed (kinetic_contracts.partner_feed), nothing
else. These are the permissions the NATS server enforces on the partner's connection: ask its
own durable consumer for messages, acknowledge them, read its own subjects, and receive
answers only on an inbox prefix of its own (so it cannot read another partner's replies
either). Anything else is a permissions violation.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from kinetic_contracts.partner_feed import FEED_STREAM, durable_name, feed_subjects, inbox_prefix


def permissions(tenant_id: UUID, partner_id: UUID) -> dict[str, Any]:
    """The partner's NATS permissions, in the shape of a NATS user JWT's ``pub``/``sub``."""
    durable = durable_name(partner_id)
    return {
        "pub": {"allow": [
            f"$JS.API.CONSUMER.MSG.NEXT.{FEED_STREAM}.{durable}",
            f"$JS.API.CONSUMER.INFO.{FEED_STREAM}.{durable}",
            f"$JS.ACK.{FEED_STREAM}.{durable}.>",
        ]},
        "sub": {"allow": [feed_subjects(tenant_id, partner_id),
                          f"{inbox_prefix(partner_id)}.>"]},
    }
