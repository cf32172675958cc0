"""Billing's patient accounts: a self-pay account opens with the patient's first episode of
care and counts the episodes billed to it. Fed by booking's ``episode.opened`` through the
inbox, so a redelivered event never counts an episode twice."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, Table
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import CloudEvent
from kinetic_contracts.booking.v1.events import EpisodeOpened
from kinetic_infra.inbox.consumer import Subscription

metadata = MetaData()

accounts = Table(
    "patient_accounts", metadata,
    Column("patient_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("episodes", Integer, nullable=False),
    Column("last_episode_id", UUID(as_uuid=True), nullable=False),
    Column("last_location_id", UUID(as_uuid=True), nullable=False),
)


def subscription() -> Subscription:
    sub = Subscription(name="billing-accounts", source_service="booking")

    @sub.on(EpisodeOpened.event_type)
    async def on_episode_opened(conn: AsyncConnection, event: CloudEvent) -> None:
        opened = EpisodeOpened.model_validate(event.data)
        statement = insert(accounts).values(
            patient_id=opened.patient_id, tenant_id=event.tenantid, opened_at=opened.opened_at,
            episodes=1, last_episode_id=opened.episode_id, last_location_id=opened.location_id,
        )
        await conn.execute(statement.on_conflict_do_update(
            index_elements=["patient_id"],
            set_={"episodes": accounts.c.episodes + 1,
                  "last_episode_id": statement.excluded.last_episode_id,
                  "last_location_id": statement.excluded.last_location_id},
            where=accounts.c.tenant_id == statement.excluded.tenant_id,
        ))

    return sub
