"""Disclosure: what a partner receives beyond identifiers, built without I/O.

Booking and assessment publish a patient's contact details, an evaluation's clinical notes
and each addendum's text once, in restricted events (``EventData.data_class`` says which
class) that no partner receives as they are. The feed keeps the latest of each (an addendum
is a subject of its own, so an evaluation's addenda are all kept beside its notes) and turns
it into the partner's own disclosure event when the partner is granted the class and the
patient's data-sharing consent names it (``may_disclose``): when the restricted event
arrives, when the patient consents later and when that partner is registered later. A
withdrawal tells each partner granted more than identifiers to erase what it holds.

Ids are derived from the partner, the restricted event and the cause (the restricted event
itself or the consent), so handling the same events again yields the same deliveries.

One public event carries free text all the same: ``evaluation.completed``'s goals, in the
patient's words ("carry my daughter upstairs"). The contract keeps them (plan builds
discharge criteria on them), so the feed gives a partner its own copy (``as_granted``): the
goals' text as it is only under the rule above for ``clinical_free_text``, else each goal's
activity and level ``WITHHELD`` (its target date, a date, stays).
"""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from kinetic_contracts import CloudEvent, EventData
from kinetic_contracts.assessment.v1.events import (
    AddendumTextRecorded,
    ClinicalNotesRecorded,
    EvaluationCompleted,
)
from kinetic_contracts.booking.v1.events import PatientContactDetailsRecorded
from kinetic_contracts.envelope import DataClass
from kinetic_contracts.partners.v1.events import (
    AddendumDisclosed,
    ClinicalNotesDisclosed,
    ContactDetailsDisclosed,
    DisclosureWithdrawn,
)
from kinetic_contracts.registry import schema_uri

SOURCE = "/kinetic/partners"

# What a goal's activity and level say to a partner not granted the patient's free text. The
# contract wants text there (min_length 1), so the copy stays valid against the published
# schema. The FHIR projection (domain/fhir.py) masks a goal reading so; a goal a therapist
# typed so would be masked too, which withholds, never discloses.
WITHHELD = "[withheld]"


def as_granted(event: CloudEvent, free_text: bool) -> CloudEvent:
    """The public event as delivered to one partner: as it is, but for the free text of an
    evaluation's goals, which only a partner that may have clinical free text (``free_text``:
    granted the class and named in the patient's consent, ``may_disclose``) receives. The
    copy keeps the event's id, so a partner still de-duplicates on it."""
    if free_text or event.type != EvaluationCompleted.event_type:
        return event
    goals = [{**goal, "activity": WITHHELD, "level": WITHHELD}
             for goal in event.data.get("goals", [])]
    return event.model_copy(update={"data": {**event.data, "goals": goals}})


def disclosed(restricted: CloudEvent, at: datetime) -> EventData:
    """The partner-facing copy of a restricted event's payload."""
    if restricted.type == PatientContactDetailsRecorded.event_type:
        details = PatientContactDetailsRecorded.model_validate(restricted.data)
        return ContactDetailsDisclosed(**details.model_dump(exclude={"recorded_at"}),
                                       disclosed_at=at)
    if restricted.type == ClinicalNotesRecorded.event_type:
        notes = ClinicalNotesRecorded.model_validate(restricted.data)
        return ClinicalNotesDisclosed(
            **notes.model_dump(include={"evaluation_id", "episode_id", "patient_id",
                                        "working_diagnosis", "drivers", "explanation"}),
            disclosed_at=at)
    if restricted.type == AddendumTextRecorded.event_type:
        addendum = AddendumTextRecorded.model_validate(restricted.data)
        return AddendumDisclosed(
            **addendum.model_dump(include={"evaluation_id", "episode_id", "patient_id",
                                           "addendum_id", "reason", "text"}),
            added_at=addendum.recorded_at, disclosed_at=at)
    raise ValueError(f"{restricted.type} is not a restricted event the feed discloses")


def disclosure(partner_id: UUID, restricted: CloudEvent, cause: CloudEvent) -> CloudEvent:
    """The restricted event as disclosed to one partner, because of ``cause``."""
    return _envelope(uuid5(NAMESPACE_URL,
                           f"kinetic:disclosure:{partner_id}:{restricted.id}:{cause.id}"),
                     disclosed(restricted, cause.time), cause, restricted.episodeid)


def withdrawal(partner_id: UUID, consent: CloudEvent, patient_id: UUID,
               erase: list[DataClass]) -> CloudEvent:
    """The instruction to erase, for a partner the patient no longer shares data with."""
    return _envelope(uuid5(NAMESPACE_URL, f"kinetic:withdrawal:{partner_id}:{consent.id}"),
                     DisclosureWithdrawn(patient_id=patient_id, erase=erase,
                                         withdrawn_at=consent.time), consent, None)


def _envelope(event_id: UUID, data: EventData, cause: CloudEvent,
              episode_id: UUID | None) -> CloudEvent:
    return CloudEvent(
        id=event_id, source=SOURCE, type=data.event_type, subject=str(data.aggregate_id()),
        time=cause.time, dataschema=schema_uri(data.event_type),
        data=data.model_dump(mode="json"), tenantid=cause.tenantid, episodeid=episode_id,
        sequence=cause.sequence,  # a disclosure has no stream of its own: its cause's place
        correlationid=cause.correlationid, causationid=cause.id)
