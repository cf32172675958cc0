"""Booking's public events, version 1.

Payloads carry identifiers and codes, except one: ``patient.contact_details_recorded``
carries the patient's name and contact details for the partners service alone, which
discloses them only to a partner granted ``contact_details`` and named in the patient's
data-sharing consent (``kinetic.partners.patient.contact_details_disclosed.v1``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from kinetic_contracts.envelope import DataClass, EventData

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Hours(BaseModel):
    """One stretch of a day in local wall-clock time; ``closes`` may be 24:00."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    opens: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["08:00"])
    closes: str = Field(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", examples=["19:00"])

    @model_validator(mode="after")
    def _closes_after_opening(self) -> Hours:
        if self.closes <= self.opens:
            raise ValueError("closes must be after opens")
        return self


WeeklyHours = dict[Weekday, list[Hours]]


def _spans_apart(weekly: WeeklyHours) -> WeeklyHours:
    for day, spans in weekly.items():
        ordered = sorted(spans, key=lambda h: h.opens)  # "HH:MM" sorts as the time it is
        for before, after in zip(ordered, ordered[1:]):
            if after.opens < before.closes:
                raise ValueError(
                    f"{day}: {before.opens}-{before.closes} and {after.opens}-{after.closes} "
                    "overlap; give each stretch of the day once")
    return weekly


# Hours as they are set from now on: a day's stretches may touch but not overlap (overlapping
# ones offered the same hour twice). Only what is being set is checked: the events keep the
# plain ``WeeklyHours``, because hours recorded before this rule may overlap and a recorded
# event must stay readable (the schedule joins such stretches when it reads them).
WeeklyHoursIn = Annotated[WeeklyHours, AfterValidator(_spans_apart)]


class LocationRegistered(EventData):
    event_type: ClassVar[str] = "kinetic.booking.location.registered.v1"
    aggregate_id_field: ClassVar[str] = "location_id"

    location_id: UUID
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(description="IANA timezone name, e.g. Europe/Berlin")
    registered_at: datetime
    late_cancel_hours: int = Field(
        default=24, ge=0, le=168,
        description="A cancellation closer than this to the start is a late cancellation")


class LocationHoursSet(EventData):
    """The location's weekly opening hours, in its own timezone (replaces earlier hours).
    A weekday that is absent is closed."""

    event_type: ClassVar[str] = "kinetic.booking.location.hours_set.v1"
    aggregate_id_field: ClassVar[str] = "location_id"

    location_id: UUID
    opening_hours: WeeklyHours
    set_at: datetime


class LocationClosureAdded(EventData):
    """Whole local days on which the location is closed (holidays, refurbishment)."""

    event_type: ClassVar[str] = "kinetic.booking.location.closure_added.v1"
    aggregate_id_field: ClassVar[str] = "location_id"

    location_id: UUID
    closure_id: UUID
    first_day: date
    last_day: date
    reason: str = Field(min_length=1, max_length=200)
    added_at: datetime


class PatientRegistered(EventData):
    event_type: ClassVar[str] = "kinetic.booking.patient.registered.v1"
    aggregate_id_field: ClassVar[str] = "patient_id"

    patient_id: UUID
    home_location_id: UUID
    birth_year: int = Field(ge=1900, le=2200, description="Year only: enough for age bands")
    registered_at: datetime


class EpisodeOpened(EventData):
    event_type: ClassVar[str] = "kinetic.booking.episode.opened.v1"
    aggregate_id_field: ClassVar[str] = "episode_id"

    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    symptom_site: str = Field(min_length=1, max_length=100,
                              description="Where it hurts, as a short code, e.g. knee_anterior")
    referral: bool = False
    goal_target_date: date | None = None
    opened_at: datetime


class TherapistRegistered(EventData):
    event_type: ClassVar[str] = "kinetic.booking.therapist.registered.v1"
    aggregate_id_field: ClassVar[str] = "therapist_id"

    therapist_id: UUID
    location_ids: list[UUID] = Field(min_length=1, description="Where the therapist works")
    display_name: str | None = Field(default=None, max_length=100,
                                     description="As the front desk's schedule shows it")
    registered_at: datetime


class TherapistHoursSet(EventData):
    """A therapist's weekly working hours at one location, in its timezone."""

    event_type: ClassVar[str] = "kinetic.booking.therapist.hours_set.v1"
    aggregate_id_field: ClassVar[str] = "therapist_id"

    therapist_id: UUID
    location_id: UUID
    working_hours: WeeklyHours
    set_at: datetime


class TherapistTimeOffAdded(EventData):
    """Leave, training or sickness: the therapist takes no appointments in the range."""

    event_type: ClassVar[str] = "kinetic.booking.therapist.time_off_added.v1"
    aggregate_id_field: ClassVar[str] = "therapist_id"

    therapist_id: UUID
    time_off_id: UUID
    starts_at: datetime
    ends_at: datetime
    added_at: datetime


class ContactDetails(BaseModel):
    """Who the patient is and how to reach them: what the ``contact_details`` data class
    covers, wherever it travels."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    patient_id: UUID
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    preferred_language: str | None = Field(default=None, max_length=35,
                                           description="BCP 47 tag, e.g. de or en-GB")


class PatientContactDetailsRecorded(ContactDetails, EventData):
    """Restricted: the patient's name and contact details as registered. No partner receives
    this event as it is; the partners service keeps it and discloses it per grant and
    consent, and billing keeps the name and date of birth for the documents it prints.
    Deployments limit its subject to those two services."""

    event_type: ClassVar[str] = "kinetic.booking.patient.contact_details_recorded.v1"
    aggregate_id_field: ClassVar[str] = "patient_id"
    data_class: ClassVar[DataClass] = "contact_details"

    recorded_at: datetime


class PatientConsentRecorded(EventData):
    """A consent given or withdrawn, with the version of the text the patient saw. The
    latest record per (consent, partner) is in force."""

    event_type: ClassVar[str] = "kinetic.booking.patient.consent_recorded.v1"
    aggregate_id_field: ClassVar[str] = "patient_id"

    patient_id: UUID
    consent: Literal["treatment", "data_sharing", "reminders"]
    partner: str | None = Field(default=None, max_length=100,
                                description="The named partner, for data sharing")
    granted: bool
    version: str = Field(min_length=1, max_length=40, description="Version of the consent text")
    recorded_at: datetime


class EpisodeClosed(EventData):
    event_type: ClassVar[str] = "kinetic.booking.episode.closed.v1"
    aggregate_id_field: ClassVar[str] = "episode_id"

    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    reason: Literal["discharged"]
    closed_at: datetime


AppointmentType = Literal["initial_assessment", "treatment_session", "reassessment"]


class AppointmentTypeConfigured(EventData):
    """How long an organization's sessions of one type last (60 minutes unless set)."""

    event_type: ClassVar[str] = "kinetic.booking.appointment_type.configured.v1"
    aggregate_id_field: ClassVar[str] = "organization_id"

    organization_id: UUID
    appointment_type: AppointmentType
    minutes: int = Field(ge=15, le=240)
    configured_at: datetime


class _AppointmentEvent(EventData):
    """Every appointment event names who and where, so a consumer needs no lookup."""

    aggregate_id_field: ClassVar[str] = "appointment_id"

    appointment_id: UUID
    patient_id: UUID
    therapist_id: UUID
    location_id: UUID


class AppointmentBooked(_AppointmentEvent):
    """A one-hour (by default) one-on-one session. Times are UTC instants; show them in the
    location's timezone."""

    event_type: ClassVar[str] = "kinetic.booking.appointment.booked.v1"

    episode_id: UUID | None = None
    appointment_type: AppointmentType
    starts_at: datetime
    ends_at: datetime
    booked_at: datetime
    # Optional because it was added within v1.
    replaces: UUID | None = Field(default=None, description=(
        "Set when the patient recorded as a no-show did come: this appointment takes the "
        "no-show's hour (which was reversed just before, reason recorded_in_error) and is "
        "checked in at once. It starts in the past, so no confirmation or reminder is due"))


class AppointmentCancelled(_AppointmentEvent):
    event_type: ClassVar[str] = "kinetic.booking.appointment.cancelled.v1"

    starts_at: datetime
    late: bool = Field(description="Inside the location's late-cancellation window")
    cancelled_at: datetime
    # Optional because it was added within v1: events recorded before it were all the
    # patient's (or the front desk's on the patient's behalf).
    by_clinic: bool = Field(default=False, description=(
        "The clinic cancelled, not the patient (an episode of care discharged with sessions "
        "still booked ahead, or the front desk cancelling for the clinic: a therapist off "
        "sick): never late and never charged, whatever a cancellation policy's window says"))


class AppointmentRescheduled(_AppointmentEvent):
    """Moved to another time (and possibly another therapist at the same location);
    ``therapist_id`` is the therapist from now on."""

    event_type: ClassVar[str] = "kinetic.booking.appointment.rescheduled.v1"

    episode_id: UUID | None = None
    appointment_type: AppointmentType
    previous_therapist_id: UUID
    previous_starts_at: datetime
    starts_at: datetime
    ends_at: datetime
    rescheduled_at: datetime


class AppointmentReminderDue(_AppointmentEvent):
    """Time to remind the patient. Kinetic sends nothing itself: a partner's messaging
    system subscribes, checks the patient's reminder consent and sends."""

    event_type: ClassVar[str] = "kinetic.booking.appointment.reminder_due.v1"

    appointment_type: AppointmentType
    starts_at: datetime
    lead_minutes: int = Field(ge=0, description="How long before the start this is due")
    due_at: datetime


class _AppointmentOutcome(_AppointmentEvent):
    """What happened at a booked session."""

    episode_id: UUID | None = None
    appointment_type: AppointmentType
    starts_at: datetime
    at: datetime


class AppointmentCheckedIn(_AppointmentOutcome):
    event_type: ClassVar[str] = "kinetic.booking.appointment.checked_in.v1"


class AppointmentCompleted(_AppointmentOutcome):
    event_type: ClassVar[str] = "kinetic.booking.appointment.completed.v1"


class AppointmentNoShow(_AppointmentOutcome):
    event_type: ClassVar[str] = "kinetic.booking.appointment.no_show.v1"


class AppointmentReversed(_AppointmentEvent):
    """The front desk reversed what was recorded for the session: a completion or a no-show
    recorded in error, or a late cancellation whose fee the clinic waives. Billing credits
    whatever it charged for it."""

    event_type: ClassVar[str] = "kinetic.booking.appointment.reversed.v1"

    episode_id: UUID | None = None
    appointment_type: AppointmentType
    starts_at: datetime
    reversed_outcome: Literal["completed", "no_show", "cancelled"] = Field(
        description="What was recorded and is now undone; a cancellation is always a late one")
    reason_code: Literal["recorded_in_error", "fee_waived"] = Field(
        description="recorded_in_error: it did not happen; fee_waived: it did, the clinic "
                    "waives the charge as goodwill")
    reversed_at: datetime


class WaitlistJoined(EventData):
    """A patient asks for an earlier slot at a location (with one therapist, or any)."""

    event_type: ClassVar[str] = "kinetic.booking.waitlist.joined.v1"
    aggregate_id_field: ClassVar[str] = "entry_id"

    entry_id: UUID
    patient_id: UUID
    location_id: UUID
    therapist_id: UUID | None = None
    appointment_type: AppointmentType
    wants_before: datetime | None = Field(
        default=None, description="Only slots starting before this are of interest")
    joined_at: datetime


class WaitlistSlotOffered(EventData):
    """A cancellation freed an hour and this entry, first come first served, is offered
    it. A partner's messaging system tells the patient; the front desk books on reply."""

    event_type: ClassVar[str] = "kinetic.booking.waitlist.slot_offered.v1"
    aggregate_id_field: ClassVar[str] = "entry_id"

    entry_id: UUID
    patient_id: UUID
    location_id: UUID
    therapist_id: UUID
    appointment_type: AppointmentType
    starts_at: datetime
    ends_at: datetime
    freed_by: UUID = Field(description="The cancelled appointment")
    offered_at: datetime


class WaitlistLeft(EventData):
    event_type: ClassVar[str] = "kinetic.booking.waitlist.left.v1"
    aggregate_id_field: ClassVar[str] = "entry_id"

    entry_id: UUID
    patient_id: UUID
    reason: Literal["booked", "withdrawn"]
    left_at: datetime


EVENTS: list[type[EventData]] = [
    LocationRegistered, LocationHoursSet, LocationClosureAdded, PatientRegistered,
    PatientContactDetailsRecorded, PatientConsentRecorded, EpisodeOpened, EpisodeClosed, TherapistRegistered,
    TherapistHoursSet, TherapistTimeOffAdded, AppointmentTypeConfigured, AppointmentBooked,
    AppointmentRescheduled, AppointmentCancelled, AppointmentCheckedIn, AppointmentCompleted,
    AppointmentNoShow, AppointmentReversed, AppointmentReminderDue, WaitlistJoined,
    WaitlistSlotOffered, WaitlistLeft,
]
