"""A partner system an organization registered: where its webhooks go, which events it is
granted (by pattern) and which data classes (identifiers and codes only, unless granted
more). What a partner receives is decided here, event by event, without I/O.

Grant patterns are event types with ``*`` wildcards (``kinetic.billing.*``,
``kinetic.booking.appointment.*.v1``); a pattern that names no event Kinetic publishes is
refused, so a typo never silently grants nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from fnmatch import fnmatchcase
from typing import ClassVar
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kinetic_contracts.envelope import DataClass
from kinetic_contracts.partners.v1 import events as public
from kinetic_contracts.problems import ConflictError, NotFoundError, RuleViolationError
from kinetic_infra.event_store.model import StoredEvent

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class PartnerNotFoundError(NotFoundError):
    type_slug = "partner-not-found"
    title = "No such partner"


class UnknownEventTypeError(RuleViolationError):
    type_slug = "unknown-event-type"
    title = "The grant names no event Kinetic publishes"


class InsecureWebhookError(RuleViolationError):
    type_slug = "insecure-webhook"
    title = "Webhooks go to HTTPS addresses only"


class RotationInProgressError(ConflictError):
    type_slug = "rotation-in-progress"
    title = "The previous secret still signs: a second rotation would end it early"


def may_rotate(previous_until: datetime | None, overlap_hours: int, now: datetime) -> None:
    """A rotation keeps the secret the partner signs with until its overlap ends, so a
    second one inside that overlap would end it early and fail the partner's checks. Only
    an immediate replacement (no overlap: a leaked secret) may cut it short."""
    if overlap_hours and previous_until is not None and previous_until > now:
        raise RotationInProgressError(
            f"the previous secret signs until {previous_until.isoformat()}; rotate again "
            f"after that, or with overlap_hours 0 to end every earlier secret now")


class PartnerExistsError(ConflictError):
    type_slug = "partner-exists"
    title = "The organization already has a partner of that name"


class Grant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_types: list[str] = Field(
        min_length=1, max_length=50,
        examples=[["kinetic.booking.appointment.*", "kinetic.billing.invoice.issued.v1"]],
        description="Event types, with * wildcards")
    data_classes: list[DataClass] = Field(
        default_factory=lambda: ["identifiers"],
        description="identifiers and codes always; contact details and clinical free text "
                    "only for patients whose consent covers this partner")

    def allows(self, event_type: str) -> bool:
        return any(fnmatchcase(event_type, pattern) for pattern in self.event_types)

    @property
    def richer(self) -> list[DataClass]:
        """The data classes beyond identifiers it grants."""
        return [c for c in self.data_classes if c != "identifiers"]


class PartnerRegistered(StoredEvent):
    event_type: ClassVar[str] = "kinetic.partners.partner.registered.v1"

    registered: public.PartnerRegistered

    def to_public(self) -> public.PartnerRegistered:
        return self.registered


class Partner(BaseModel):
    model_config = ConfigDict(frozen=True)

    partner_id: UUID
    name: str
    webhook_url: str
    grant: Grant
    registered_at: datetime


PartnerState = Partner | None
INITIAL: PartnerState = None
EVENT_TYPES = {PartnerRegistered.event_type: PartnerRegistered}


def evolve(_state: PartnerState, event: PartnerRegistered) -> PartnerState:
    r = event.registered
    return Partner(partner_id=r.partner_id, name=r.name, webhook_url=r.webhook_url,
                   grant=Grant(event_types=r.event_types, data_classes=r.data_classes),
                   registered_at=r.registered_at)


class RegisterPartner(BaseModel):
    model_config = ConfigDict(frozen=True)

    partner_id: UUID
    name: str
    webhook_url: str
    grant: Grant
    known_event_types: frozenset[str]
    allow_loopback_http: bool = False
    now: datetime


def check_webhook_url(url: str, allow_loopback_http: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if allow_loopback_http and parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return  # development and tests: a receiver on this machine
    raise InsecureWebhookError(f"{url!r} is not an https:// address", webhook_url=url)


def check_grant(grant: Grant, known: Iterable[str]) -> None:
    known = list(known)
    unknown = [p for p in grant.event_types if not any(fnmatchcase(t, p) for t in known)]
    if unknown:
        raise UnknownEventTypeError(f"no published event matches {', '.join(unknown)}",
                                    patterns=unknown)


def decide(command: RegisterPartner, state: PartnerState) -> Sequence[PartnerRegistered]:
    if state is not None:
        return []  # registered already: the same request again
    check_webhook_url(command.webhook_url, command.allow_loopback_http)
    check_grant(command.grant, command.known_event_types)
    return [PartnerRegistered(registered=public.PartnerRegistered(
        partner_id=command.partner_id, name=command.name, webhook_url=command.webhook_url,
        event_types=command.grant.event_types, data_classes=command.grant.data_classes,
        registered_at=command.now))]


def withdrawn(consents: dict[str, bool], partner_name: str) -> bool:
    """The patient withdrew data sharing with this partner (the latest record wins)."""
    return consents.get(partner_name) is False


def may_send_again(event_type: str, patient_id: str | None,
                   withdrawn_patients: set[str]) -> bool:
    """A replay sends a partner again only what it may have now: nothing of a patient who
    has withdrawn data sharing with it since, except the instruction to erase."""
    return (patient_id not in withdrawn_patients
            or event_type == public.DisclosureWithdrawn.event_type)


def may_disclose(grant: Grant, consents: dict[str, bool], partner_name: str,
                 data_class: DataClass) -> bool:
    """More than identifiers goes to a partner only when both say yes: the organization granted
    it the class, and the patient's data-sharing consent names it (its latest record)."""
    return data_class in grant.data_classes and consents.get(partner_name) is True
