"""What billing's documents and pages print beside the numbers: location names and
timezones, therapists' names and who each patient is (from booking), and each episode's
working diagnosis as ICD-10 (from assessment's evaluation), for superbills. Kept through the
inbox, so a redelivery changes nothing.

Of a patient's restricted contact details billing keeps only the name and the date of
birth: an invoice, a receipt and above all a superbill must say whom they are for (an
insurer matches a superbill to its member by them). Phone, e-mail and language are not
kept."""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import CloudEvent
from kinetic_contracts.assessment.v1.events import EvaluationCompleted
from kinetic_contracts.booking.v1.events import (
    LocationRegistered,
    PatientContactDetailsRecorded,
    TherapistRegistered,
)
from kinetic_infra.inbox.consumer import Subscription

metadata = MetaData()

locations = Table(
    "billing_locations", metadata,
    Column("location_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("timezone", Text, nullable=False),
)

therapists = Table(
    "billing_therapists", metadata,
    Column("therapist_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("display_name", Text),
)

patients = Table(
    "billing_patients", metadata,
    Column("patient_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("given_name", Text, nullable=False),
    Column("family_name", Text, nullable=False),
    Column("date_of_birth", Date, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

diagnoses = Table(
    "diagnoses", metadata,
    Column("episode_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("icd10", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)


def subscriptions() -> list[Subscription]:
    booking = Subscription(name="billing-directory", source_service="booking")
    assessment = Subscription(name="billing-diagnoses", source_service="assessment")

    @booking.on(LocationRegistered.event_type)
    async def on_location(conn: AsyncConnection, event: CloudEvent) -> None:
        loc = LocationRegistered.model_validate(event.data)
        await conn.execute(insert(locations).values(
            location_id=loc.location_id, tenant_id=event.tenantid, name=loc.name,
            timezone=loc.timezone).on_conflict_do_nothing())

    @booking.on(TherapistRegistered.event_type)
    async def on_therapist(conn: AsyncConnection, event: CloudEvent) -> None:
        t = TherapistRegistered.model_validate(event.data)
        await conn.execute(insert(therapists).values(
            therapist_id=t.therapist_id, tenant_id=event.tenantid,
            display_name=t.display_name).on_conflict_do_nothing())

    @booking.on(PatientContactDetailsRecorded.event_type)
    async def on_patient(conn: AsyncConnection, event: CloudEvent) -> None:
        who = PatientContactDetailsRecorded.model_validate(event.data)
        statement = insert(patients).values(
            patient_id=who.patient_id, tenant_id=event.tenantid, given_name=who.given_name,
            family_name=who.family_name, date_of_birth=who.date_of_birth,
            recorded_at=who.recorded_at)
        await conn.execute(statement.on_conflict_do_update(
            index_elements=["patient_id"],
            set_={c: statement.excluded[c] for c in ("given_name", "family_name",
                                                      "date_of_birth", "recorded_at")},
            where=patients.c.recorded_at < statement.excluded.recorded_at))

    @assessment.on(EvaluationCompleted.event_type)
    async def on_evaluated(conn: AsyncConnection, event: CloudEvent) -> None:
        done = EvaluationCompleted.model_validate(event.data)
        if done.working_diagnosis_icd10 is None:
            return
        statement = insert(diagnoses).values(
            episode_id=done.episode_id, tenant_id=event.tenantid,
            icd10=done.working_diagnosis_icd10, recorded_at=done.completed_at)
        await conn.execute(statement.on_conflict_do_update(
            index_elements=["episode_id"], set_={"icd10": statement.excluded.icd10,
                                                 "recorded_at": statement.excluded.recorded_at},
            where=diagnoses.c.recorded_at < statement.excluded.recorded_at))

    return [booking, assessment]
