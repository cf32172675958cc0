"""The charge for one appointment: what a completed session, a no-show or a late cancellation
costs, and how it is paid (a pack or an invoice), decided once per appointment.

The fee comes from the tariff in force on the session's date. A completed session costs the
flat fee of its type; a no-show costs the no-show fee; a cancellation inside the location's
late-cancel window costs the late-cancellation fee; where the policy has no such fee nothing
is charged (and that is recorded, so billing staff see why). A completed session is paid
from the patient's pack while it has sessions; fees are invoiced.

A reversal (booking reverses the appointment's outcome) is final: before the charge it
prevents one, after it the application credits the invoice or returns the pack's session.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from billing.domain.price_list import NoTariffError, Tariff
from kinetic_contracts.billing.v1.events import ChargeKind
from kinetic_contracts.booking.v1.events import AppointmentCancelled, AppointmentType
from kinetic_infra.event_store.model import StoredEvent

Outcome = Literal["completed", "no_show", "cancelled"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Occurrence(_Frozen):
    """What booking said happened to the appointment."""

    appointment_id: UUID
    patient_id: UUID
    location_id: UUID
    therapist_id: UUID
    episode_id: UUID | None = None
    appointment_type: AppointmentType
    starts_at: datetime
    outcome: Outcome
    at: datetime


class Fee(_Frozen):
    kind: ChargeKind
    amount: int


def fee_for(occurrence: Occurrence, tariff: Tariff) -> Fee | str:
    """The fee, or why there is none."""
    policy = tariff.policy
    if occurrence.outcome == "completed":
        return Fee(kind="session", amount=tariff.fees.of(occurrence.appointment_type))
    if occurrence.outcome == "no_show":
        if policy.no_show_fee is None:
            return "the location charges no no-show fee"
        return Fee(kind="no_show", amount=policy.no_show_fee)
    notice = occurrence.starts_at - occurrence.at
    if notice >= timedelta(hours=policy.late_cancel_hours):
        hours = notice.total_seconds() / 3600
        return (f"cancelled {hours:.1f} h before the start, outside the "
                f"{policy.late_cancel_hours} h late-cancellation window")
    if policy.late_cancel_fee is None:
        return "the location charges no late-cancellation fee"
    return Fee(kind="late_cancellation", amount=policy.late_cancel_fee)


def cancellation_chargeable(cancelled: AppointmentCancelled,
                            late_cancel_hours: int | None) -> bool:
    """Whether a cancellation may cost the late-cancellation fee. Never when the clinic
    cancelled (a discharge ends care; the patient did nothing to owe a fee, and the front desk
    could not waive one: booking records such a cancellation as not late). Otherwise, when it
    came inside billing's window in force (booking's own ``late`` follows the location's
    booking window, which may differ); with no price list yet (``None``), booking's flag."""
    if cancelled.by_clinic:
        return False
    if late_cancel_hours is None:
        return cancelled.late
    return cancelled.starts_at - cancelled.cancelled_at < timedelta(hours=late_cancel_hours)


class SessionCharged(StoredEvent):
    event_type: ClassVar[str] = "kinetic.billing.charge.charged.v1"

    occurrence: Occurrence
    fee: Fee
    currency: str
    service_date: date
    tariff_from: date
    cpt_codes: list[str]
    paid_by: Literal["pack", "invoice"]
    pack_id: UUID | None = None
    invoice_id: UUID | None = None
    charged_at: datetime


class NothingCharged(StoredEvent):
    event_type: ClassVar[str] = "kinetic.billing.charge.nothing.v1"

    occurrence: Occurrence
    reason: str
    decided_at: datetime


class ChargeReversed(StoredEvent):
    event_type: ClassVar[str] = "kinetic.billing.charge.reversed.v1"

    appointment_id: UUID
    reason_code: str
    reversed_at: datetime


ChargeEvent = SessionCharged | NothingCharged | ChargeReversed
EVENT_TYPES: dict[str, type[BaseModel]] = {e.event_type: e for e in (
    SessionCharged, NothingCharged, ChargeReversed)}


class Charge(_Frozen):
    charged: SessionCharged | None = None
    nothing: NothingCharged | None = None
    reversed: ChargeReversed | None = None

    @property
    def decided(self) -> bool:
        return self.charged is not None or self.nothing is not None or \
            self.reversed is not None


INITIAL = Charge()


def evolve(state: Charge, event: ChargeEvent) -> Charge:
    if isinstance(event, SessionCharged):
        return state.model_copy(update={"charged": event})
    if isinstance(event, NothingCharged):
        return state.model_copy(update={"nothing": event})
    return state.model_copy(update={"reversed": event})


class ChargeSession(_Frozen):
    occurrence: Occurrence
    tariff: Tariff | None  # None: no price list in force on the session's date
    service_date: date
    pack_id: UUID | None = None  # the patient's pack with a session left, if any
    invoice_id: UUID
    now: datetime


class ReverseCharge(_Frozen):
    appointment_id: UUID
    reason_code: str
    now: datetime


def decide(command: ChargeSession | ReverseCharge, state: Charge) -> Sequence[BaseModel]:
    if isinstance(command, ReverseCharge):
        if state.reversed is not None:
            return []
        return [ChargeReversed(appointment_id=command.appointment_id,
                               reason_code=command.reason_code, reversed_at=command.now)]
    if state.decided:
        return []  # one charge per appointment, whichever delivery comes first
    occurrence, tariff = command.occurrence, command.tariff
    if tariff is None:
        if occurrence.outcome == "completed":
            raise NoTariffError(f"no price list is in force at location "
                                f"{occurrence.location_id} on {command.service_date}",
                                day=command.service_date.isoformat())
        return [NothingCharged(occurrence=occurrence, decided_at=command.now,
                               reason=f"no price list in force on {command.service_date}")]
    fee = fee_for(occurrence, tariff)
    if not isinstance(fee, str) and fee.amount == 0:
        fee = "the fee is zero"
    if isinstance(fee, str):
        return [NothingCharged(occurrence=occurrence, reason=fee, decided_at=command.now)]
    by_pack = fee.kind == "session" and command.pack_id is not None
    return [SessionCharged(
        occurrence=occurrence, fee=fee, currency=tariff.currency,
        service_date=command.service_date, tariff_from=tariff.effective_from,
        cpt_codes=tariff.cpt_for(occurrence.appointment_type) if fee.kind == "session" else [],
        paid_by="pack" if by_pack else "invoice",
        pack_id=command.pack_id if by_pack else None,
        invoice_id=None if by_pack else command.invoice_id, charged_at=command.now)]
