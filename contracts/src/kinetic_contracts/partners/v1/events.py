"""The partners service's public events, version 1: which partner systems an organization
connected and what it granted them (secrets never appear here), and what it discloses to one
partner beyond identifiers: a patient's contact details, an evaluation's clinical notes and
its addenda, only to a partner granted that data class and named in the patient's
data-sharing consent, and the instruction to erase them when the patient withdraws that
consent. The disclosures
travel on the partner's own feed only, never on the organization's stream."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from kinetic_contracts.assessment.v1.events import DriverRationale
from kinetic_contracts.booking.v1.events import ContactDetails
from kinetic_contracts.envelope import DataClass, EventData


class PartnerRegistered(EventData):
    event_type: ClassVar[str] = "kinetic.partners.partner.registered.v1"
    aggregate_id_field: ClassVar[str] = "partner_id"

    partner_id: UUID
    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_-]*$",
                      examples=["acme-crm"],
                      description="As patients' data-sharing consents name the partner")
    webhook_url: str = Field(max_length=2000, examples=["https://crm.example/kinetic"])
    event_types: list[str] = Field(min_length=1, examples=[["kinetic.booking.appointment.*"]])
    data_classes: list[DataClass]
    registered_at: datetime


class ContactDetailsDisclosed(ContactDetails, EventData):
    """The patient's name and contact details, for this partner only: sent when they are
    recorded and when the patient consents to this partner; the latest one is current."""

    event_type: ClassVar[str] = "kinetic.partners.patient.contact_details_disclosed.v1"
    aggregate_id_field: ClassVar[str] = "patient_id"
    data_class: ClassVar[DataClass] = "contact_details"

    disclosed_at: datetime


class ClinicalNotesDisclosed(EventData):
    """A completed evaluation's working diagnosis, drivers' rationale and the explanation the
    patient took home, for this partner only."""

    event_type: ClassVar[str] = "kinetic.partners.evaluation.clinical_notes_disclosed.v1"
    aggregate_id_field: ClassVar[str] = "evaluation_id"
    data_class: ClassVar[DataClass] = "clinical_free_text"

    evaluation_id: UUID
    episode_id: UUID
    patient_id: UUID
    working_diagnosis: str = ""
    drivers: list[DriverRationale] = Field(default_factory=list)
    explanation: str = ""
    disclosed_at: datetime


class AddendumDisclosed(EventData):
    """An addendum to a completed evaluation (its reason and text), for this partner only:
    it corrects the clinical notes disclosed before, which never change themselves."""

    event_type: ClassVar[str] = "kinetic.partners.evaluation.addendum_disclosed.v1"
    aggregate_id_field: ClassVar[str] = "evaluation_id"
    data_class: ClassVar[DataClass] = "clinical_free_text"

    evaluation_id: UUID
    episode_id: UUID
    patient_id: UUID
    addendum_id: UUID
    reason: str
    text: str
    added_at: datetime
    disclosed_at: datetime


class DisclosureWithdrawn(EventData):
    """The patient withdrew data sharing with this partner: erase the contact details and
    clinical notes disclosed to you; no more of the patient's events follow."""

    event_type: ClassVar[str] = "kinetic.partners.patient.disclosure_withdrawn.v1"
    aggregate_id_field: ClassVar[str] = "patient_id"

    patient_id: UUID
    erase: list[DataClass] = Field(min_length=1, examples=[["contact_details"]],
                                   description="What to erase: the data classes beyond identifiers you are granted")
    withdrawn_at: datetime


EVENTS: list[type[EventData]] = [PartnerRegistered, ContactDetailsDisclosed,
                                 ClinicalNotesDisclosed, AddendumDisclosed, DisclosureWithdrawn]
