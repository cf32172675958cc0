"""The keys a partner system authenticates with: ``kfk_…`` for its FHIR reads, ``knk_…`` for
its NATS connection. An operator issues one (shown once; only its SHA-256 is stored, and a new
one replaces the old). A key names its organization and partner, so checking it is a lookup
under that organization's row-level security, like any request of that organization."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts.partner_feed import NATS_KEY_PREFIX, partner_key_ids
from kinetic_infra.db.database import Database
from partners.adapters.feed import partners


@dataclass(frozen=True)
class KeyKind:
    prefix: str
    column: Column  # type: ignore[type-arg]  # where the key's digest is kept

    def new(self, tenant_id: UUID, partner_id: UUID) -> str:
        return f"{self.prefix}{tenant_id.hex}_{partner_id.hex}_{secrets.token_urlsafe(32)}"

    def ids(self, key: str) -> tuple[UUID, UUID] | None:
        """(organization, partner) the key names, if it has a key's shape."""
        try:
            return partner_key_ids(key, self.prefix)
        except ValueError:
            return None

    async def issue(self, conn: AsyncConnection, tenant_id: UUID, partner_id: UUID) -> str:
        """A new key for the partner; the previous one stops working."""
        key = self.new(tenant_id, partner_id)
        await conn.execute(partners.update().where(partners.c.partner_id == partner_id)
                           .values({self.column: digest(key)}))
        return key

    async def holder(self, db: Database, key: str) -> tuple[UUID, UUID, str] | None:
        """(organization, partner, name) of the partner whose current key this is."""
        ids = self.ids(key)
        if ids is None:
            return None
        tenant_id, partner_id = ids
        async with db.read(tenant_id) as conn:
            name = await conn.scalar(select(partners.c.name).where(
                partners.c.partner_id == partner_id, self.column == digest(key)))
        return None if name is None else (tenant_id, partner_id, name)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


FHIR_KEY = KeyKind("kfk_", partners.c.fhir_key_sha256)
NATS_KEY = KeyKind(NATS_KEY_PREFIX, partners.c.nats_key_sha256)
