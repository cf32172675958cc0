"""Where a partner system reads its events on NATS: the names are part of the public contract.

Each partner's permitted events are republished, one message per event with the event's
original id, on subjects of its own in the ``PARTNERS`` stream::

    kinetic.<organization>.partners.feed.<partner>.<service>.<aggregate>.<event>

A durable pull consumer named ``partner-<partner>`` holds the partner's position, so a
consumer that stops resumes where it was. The partner connects with its NATS key
(``knk_…``, issued by the operator) as the connection's token and reads through that
consumer, with the inbox prefix ``_INBOX_<partner, hex>``; the server refuses anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from kinetic_contracts.naming import EventType, stream_name_for_service

FEED_STREAM = stream_name_for_service("partners")
NATS_KEY_PREFIX = "knk_"


def feed_subjects(tenant_id: UUID, partner_id: UUID) -> str:
    """Every subject of the partner's feed (a wildcard)."""
    return f"kinetic.{tenant_id}.partners.feed.{partner_id}.>"


def feed_subject(tenant_id: UUID, partner_id: UUID, event_type: str) -> str:
    unversioned = EventType.parse(event_type).unversioned
    return f"kinetic.{tenant_id}.partners.feed.{partner_id}.{unversioned}"


def durable_name(partner_id: UUID) -> str:
    return f"partner-{partner_id}"


def inbox_prefix(partner_id: UUID) -> str:
    return f"_INBOX_{partner_id.hex}"


def partner_key_ids(key: str, prefix: str) -> tuple[UUID, UUID]:
    """(organization, partner) a partner key names: ``<prefix><org>_<partner>_<secret>``
    (FHIR keys have ``kfk_``, NATS keys ``knk_``); ValueError for anything else."""
    parts = key.removeprefix(prefix).split("_", 2)
    if not key.startswith(prefix) or len(parts) != 3:
        raise ValueError(f"a partner key looks like {prefix}<organization>_<partner>_<secret>")
    return UUID(parts[0]), UUID(parts[1])


@dataclass(frozen=True)
class FeedAccess:
    """What a partner's NATS client needs, all of it named by the key."""

    tenant_id: UUID
    partner_id: UUID

    @classmethod
    def from_key(cls, key: str) -> FeedAccess:
        return cls(*partner_key_ids(key, NATS_KEY_PREFIX))

    @property
    def stream(self) -> str:
        return FEED_STREAM

    @property
    def durable(self) -> str:
        return durable_name(self.partner_id)

    @property
    def inbox_prefix(self) -> str:
        return inbox_prefix(self.partner_id)

    @property
    def subjects(self) -> str:
        return feed_subjects(self.tenant_id, self.partner_id)
