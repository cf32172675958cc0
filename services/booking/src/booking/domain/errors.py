"""Booking's business rejections (mapped to problem+json at the HTTP edge)."""

from kinetic_contracts.problems import ConflictError, NotFoundError, RuleViolationError


class PatientNotFoundError(NotFoundError):
    type_slug = "patient-not-found"
    title = "No such patient"


class LocationNotFoundError(NotFoundError):
    type_slug = "location-not-found"
    title = "No such location"


class EpisodeNotFoundError(NotFoundError):
    type_slug = "episode-not-found"
    title = "No such episode of care"


class AlreadyExistsError(ConflictError):
    type_slug = "already-exists"
    title = "It already exists"


class InvalidTimezoneError(RuleViolationError):
    type_slug = "invalid-timezone"
    title = "Not an IANA timezone"


class ImplausibleDateOfBirthError(RuleViolationError):
    type_slug = "implausible-date-of-birth"
    title = "The date of birth is before 1900"


class DateOfBirthInFutureError(RuleViolationError):
    type_slug = "date-of-birth-in-future"
    title = "The date of birth is in the future"


class TherapistNotFoundError(NotFoundError):
    type_slug = "therapist-not-found"
    title = "No such therapist"


class AppointmentNotFoundError(NotFoundError):
    type_slug = "appointment-not-found"
    title = "No such appointment"


class SlotTakenError(ConflictError):
    type_slug = "slot-taken"
    title = "The therapist or the patient already has an appointment at that time"


class NotAtLocationError(RuleViolationError):
    type_slug = "therapist-not-at-location"
    title = "The therapist does not work at that location"


class InThePastError(RuleViolationError):
    type_slug = "appointment-in-the-past"
    title = "Appointments are booked for the future"


class AlreadyCancelledError(ConflictError):
    type_slug = "appointment-already-cancelled"
    title = "The appointment is already cancelled"


class LocationNotVisibleError(NotFoundError):
    """A location where the caller holds no role reads as unknown (existence does not leak)."""

    type_slug = "location-not-found"
    title = "No such location"


class WrongAppointmentStateError(ConflictError):
    type_slug = "appointment-state"
    title = "The appointment is not in a state that allows this"


class InvalidClosureError(RuleViolationError):
    type_slug = "invalid-closure"
    title = "The closure ends before it starts"


class InvalidTimeOffError(RuleViolationError):
    type_slug = "invalid-time-off"
    title = "The time off ends before it starts"


class LocationClosedError(RuleViolationError):
    type_slug = "location-closed"
    title = "The location is closed that day"


class OutsideOpeningHoursError(RuleViolationError):
    type_slug = "outside-opening-hours"
    title = "The location is not open then"


class OutsideWorkingHoursError(RuleViolationError):
    type_slug = "outside-working-hours"
    title = "The therapist does not work then"


class TherapistTimeOffError(RuleViolationError):
    type_slug = "therapist-time-off"
    title = "The therapist is off then"


class FirstSessionIsAssessmentError(RuleViolationError):
    type_slug = "first-session-is-assessment"
    title = "The first session of an episode of care is an initial assessment"


class EpisodeClosedError(RuleViolationError):
    type_slug = "episode-closed"
    title = "The episode of care is closed"


class EpisodeOfAnotherPatientError(RuleViolationError):
    type_slug = "episode-of-another-patient"
    title = "The episode of care belongs to another patient"


class WaitlistEntryNotFoundError(NotFoundError):
    type_slug = "waitlist-entry-not-found"
    title = "No such waitlist entry"


class ConsentPartnerError(RuleViolationError):
    type_slug = "consent-partner"
    title = "Data sharing names its partner; other consents name none"


class WaitlistEntryElsewhereError(RuleViolationError):
    type_slug = "waitlist-entry-elsewhere"
    title = "The waitlist entry is another patient's, or at another location"


class WaitlistEntryClosedError(ConflictError):
    type_slug = "waitlist-entry-closed"
    title = "The patient is no longer on the waitlist"
