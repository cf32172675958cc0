"""The partners service's public events, version 1: which partner systems an organization
connected and what it granted them. Secrets never appear here."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from kinetic_contracts.envelope import EventData


class PartnerRegistered(EventData):
    event_type: ClassVar[str] = "kinetic.partners.partner.registered.v1"
    aggregate_id_field: ClassVar[str] = "partner_id"

    partner_id: UUID
    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_-]*$",
                      examples=["acme-crm"],
                      description="As patients' data-sharing consents name the partner")
    webhook_url: str = Field(max_length=2000, examples=["https://crm.example/kinetic"])
    event_types: list[str] = Field(min_length=1, examples=[["kinetic.booking.appointment.*"]])
    data_classes: list[Literal["identifiers", "contact_details", "clinical_free_text"]]
    registered_at: datetime


EVENTS: list[type[EventData]] = [PartnerRegistered]
